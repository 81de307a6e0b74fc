//! SQL the policy check reads: deny rules of every kind, a table list and a pattern,
//! applied fail-closed, an approval's statement shape, and what column rules read of
//! it (each result column's lineage, the views and tables it defines, followed through
//! the definitions seen so far), run where the gateway runs them (in place for short
//! texts, on the deep-stack threads for long ones). Nothing may panic or overflow a
//! stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tapline_fuzz::approvals::shape::shape;
use tapline_fuzz::policy::guard::pattern::Pattern;
use tapline_fuzz::policy::guard::statement_kind::StatementKind;
use tapline_fuzz::policy::guard::table_list::TableList;
use tapline_fuzz::policy::guard::{DenyRule, DenyRules, SessionGuard, Unparseable};
use tapline_fuzz::policy::mask::derived_relations::SharedDerived;
use tapline_fuzz::policy::mask::lineage::{Item, Lineage, align, of_statements};
use tapline_fuzz::policy::sql::lexer::Settings;
use tapline_fuzz::policy::sql::{Sql, on_right_stack_blocking};

fn guard() -> Arc<SessionGuard> {
    static GUARD: OnceLock<Arc<SessionGuard>> = OnceLock::new();
    GUARD
        .get_or_init(|| {
            let rule = DenyRule {
                name: "everything".into(),
                message: "no".into(),
                kinds: StatementKind::ALL.iter().map(|(_, k)| *k).collect(),
                pattern: Some(Pattern::new("(?i)pg_sleep").expect("a valid pattern")),
                tables: Some(TableList::new(&["payroll".into(), "hr.salaries".into()])),
                connections: Vec::new(),
                groups: Vec::new(),
            };
            let rules = DenyRules {
                rules: vec![Arc::new(rule)],
                unparseable: Unparseable::Closed,
                unparseable_closed_groups: Vec::new(),
                allow_fast_path: Vec::new(),
                client_encodings: Vec::new(),
            };
            Arc::new(rules.for_session("pg", &[]))
        })
        .clone()
}

/// Reads the columns of every result of `sql` as the backend does, through the
/// session's derived relations.
fn lineage(sql: &Sql<'_>, derived: &SharedDerived) -> usize {
    let Ok(statements) = sql.statements() else {
        return 0;
    };
    derived.note(statements);
    let mut n = 0;
    for items in of_statements(statements).into_iter().flatten() {
        let names: Vec<String> = (0..items.len() + 1).map(|i| format!("c{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        for l in align(&items, &names) {
            n += derived.read().expand(&l).sources.len();
        }
        for it in &items {
            if let Item::One(l) = it {
                n += derived.read().expand(&Lineage { sources: l.sources.clone(), direct: l.direct }).sources.len();
            }
        }
    }
    n
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let g = guard();
    // What the input defines, followed when its results are read (fresh per input,
    // so a crash reproduces from its input alone).
    let d = SharedDerived::default();
    let settings = Settings {
        standard_conforming_strings: data.first().is_some_and(|b| b & 1 == 0),
        ascii_trail_bytes: data.first().is_some_and(|b| b & 2 == 0),
    };
    let _ = on_right_stack_blocking(
        &text,
        settings,
        move |sql: &Sql<'_>| {
            (
                g.check_sql(sql).is_some(),
                shape(sql).len() + lineage(sql, &d),
            )
        },
        || (true, 0),
    );
});
