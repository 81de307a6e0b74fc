//! SQL the policy check reads: deny rules of every kind, a table list and a pattern,
//! applied fail-closed, and an approval's statement shape, run where the gateway runs
//! them (in place for short texts, on the deep-stack threads for long ones). Nothing
//! may panic or overflow a stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tapline_fuzz::approvals::shape::shape;
use tapline_fuzz::policy::guard::pattern::Pattern;
use tapline_fuzz::policy::guard::statement_kind::StatementKind;
use tapline_fuzz::policy::guard::table_list::TableList;
use tapline_fuzz::policy::guard::{DenyRule, DenyRules, SessionGuard, Unparseable};
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

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let g = guard();
    let settings = Settings {
        standard_conforming_strings: data.first().is_some_and(|b| b & 1 == 0),
        ascii_trail_bytes: data.first().is_some_and(|b| b & 2 == 0),
    };
    let _ = on_right_stack_blocking(
        &text,
        settings,
        move |sql: &Sql<'_>| (g.check_sql(sql).is_some(), shape(sql).len()),
        || (true, 0),
    );
});
