//! What a statement does, collected over its whole tree: every statement kind wherever
//! it sits (a DELETE inside a CTE, under EXPLAIN ANALYZE, in a MERGE clause, in a
//! PREPARE, in a SQL function's body, in the SQL text handed to `query_to_xml` or
//! `dblink_exec`), every relation it names, and whether it runs SQL text the check
//! cannot read. Deny and approval rules judge these facts, never the top of the tree
//! alone.
//!
//! Where sqlparser cannot parse a statement (`DO`, `CREATE RULE`, a PL/pgSQL body),
//! the facts come from its words instead (`words_facts`), read conservatively: a
//! statement that merely might delete everything counts as one that does.

use super::statement_kind::StatementKind;
use crate::policy::sql::lexer::{Lexed, Settings, Words};
use crate::policy::sql::read_nested;
use sqlparser::ast::{
    BinaryOperator, CopySource, CopyTarget, CreateFunction, CreateFunctionBody, Expr, FromTable,
    FunctionArg, FunctionArgExpr, FunctionArguments, MergeAction, ObjectName, Statement,
    TableFactor, TableObject, UnaryOperator, Value, Visit, Visitor,
};
use std::ops::ControlFlow;

/// How deep SQL inside SQL (a function body, a `dblink_exec` text) is followed.
const MAX_NESTING: usize = 4;

/// Functions that run SQL text, and which arguments hold it.
const DYNAMIC_SQL: &[(&str, SqlArgs)] = &[
    ("query_to_xml", SqlArgs::First),
    ("query_to_xmlschema", SqlArgs::First),
    ("query_to_xml_and_xmlschema", SqlArgs::First),
    ("ts_stat", SqlArgs::First),
    ("dblink", SqlArgs::Last),
    ("dblink_exec", SqlArgs::Last),
    ("dblink_open", SqlArgs::Last),
    ("dblink_send_query", SqlArgs::Last),
    ("crosstab", SqlArgs::All),
    ("crosstab2", SqlArgs::All),
    ("crosstab3", SqlArgs::All),
    ("crosstab4", SqlArgs::All),
];

/// Whether `name` (unqualified, any case) is a function that runs SQL text.
pub fn is_dynamic_sql_function(name: &str) -> bool {
    DYNAMIC_SQL
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Functions that read a whole table named by a string (a `regclass`).
const TABLE_BY_NAME: &[&str] = &[
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
];

/// Views and catalogs that show other tables' values (most common values, histogram
/// bounds): a table rule covers them, since they expose the denied table's data.
pub const STATISTICS_RELATIONS: &[&str] = &[
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
    "pg_statistic",
    "pg_statistic_ext_data",
];

#[derive(Debug, Clone, Copy)]
enum SqlArgs {
    First,
    Last,
    All,
}

/// What one statement does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Every kind it is, or holds, anywhere in its tree.
    pub kinds: Vec<StatementKind>,
    /// Every relation it names, dotted, as written (compared case-insensitively).
    pub relations: Vec<String>,
    /// Why it runs SQL the check cannot read (a computed `EXECUTE`, a `dblink_exec`
    /// of a column), if it does: no table rule can vouch for it.
    pub opaque: Option<String>,
}

impl Facts {
    fn kind(&mut self, k: StatementKind) {
        if !self.kinds.contains(&k) {
            self.kinds.push(k);
        }
    }

    fn opaque(&mut self, why: impl Into<String>) {
        if self.opaque.is_none() {
            self.opaque = Some(why.into());
        }
    }

    fn merge(&mut self, other: Facts) {
        for k in other.kinds {
            self.kind(k);
        }
        self.relations.extend(other.relations);
        if let Some(why) = other.opaque {
            self.opaque(why);
        }
    }

    /// The facts of a parsed statement whose words are `words`.
    pub fn of(stmt: &Statement, words: Option<&Words>, settings: Settings) -> Facts {
        statement_facts(stmt, words, settings, 0)
    }
}

/// The facts of one parsed statement, at the top or inside SQL text (`depth` deep):
/// read the same way wherever it sits.
fn statement_facts(
    stmt: &Statement,
    words: Option<&Words>,
    settings: Settings,
    depth: usize,
) -> Facts {
    let mut f = Facts::default();
    collect(stmt, settings, depth, &mut f);
    if let Some(w) = words {
        // Every name among its words counts as well: `ALTER TABLE t RENAME`,
        // `LOCK t` and forms the tree does not mark as relations still name t.
        f.relations.extend(w.names.iter().cloned());
        let has = |word: &str| w.words.iter().any(|x| x == word);
        if has("PASSWORD")
            && (f.kinds.contains(&StatementKind::AlterRole)
                || f.kinds.contains(&StatementKind::CreateRole))
        {
            f.kind(StatementKind::AlterRolePassword);
        }
    }
    f
}

fn name_of(name: &ObjectName) -> String {
    name.0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether `name` is a system catalog: in `pg_catalog`, or a `pg_` name the default
/// search path finds there first.
fn is_catalog(name: &str) -> bool {
    let lower = name.to_lowercase();
    let mut parts = lower.split('.');
    let first = parts.next().unwrap_or("");
    first == "pg_catalog" || lower.rsplit('.').next().unwrap_or("").starts_with("pg_")
}

fn collect(stmt: &Statement, settings: Settings, depth: usize, f: &mut Facts) {
    let mut v = Collector {
        facts: std::mem::take(f),
        settings,
        depth,
    };
    let _ = stmt.visit(&mut v);
    *f = v.facts;
}

struct Collector {
    facts: Facts,
    settings: Settings,
    depth: usize,
}

impl Collector {
    /// SQL text found inside the statement (a body, a `dblink_exec` argument).
    fn nested_sql(&mut self, text: &str, what: &str) {
        if self.depth >= MAX_NESTING {
            self.facts.opaque(format!(
                "{what} nests SQL more than {MAX_NESTING} levels deep"
            ));
            return;
        }
        self.facts
            .merge(facts_of_text(text, self.settings, self.depth + 1, what));
    }

    fn write_target(&mut self, name: &ObjectName) {
        if is_catalog(&name_of(name)) {
            self.facts.kind(StatementKind::CatalogWrite);
        }
    }

    fn function_body(&mut self, cf: &CreateFunction) {
        let language = cf
            .language
            .as_ref()
            .map(|l| l.value.to_lowercase())
            .unwrap_or_else(|| "sql".into());
        let body = match &cf.function_body {
            Some(CreateFunctionBody::AsBeforeOptions { body, .. })
            | Some(CreateFunctionBody::AsAfterOptions(body)) => string_of(body),
            _ => None,
        };
        let Some(body) = body else {
            return;
        };
        match language.as_str() {
            "sql" => self.nested_sql(&body, "a SQL function body"),
            "plpgsql" => self.procedural_body(&body),
            other => {
                // C, plpython, plperl …: what they run cannot be read at all.
                self.facts
                    .opaque(format!("a function body in language {other}"));
                self.facts.kind(StatementKind::DynamicSql);
            }
        }
    }

    fn procedural_body(&mut self, body: &str) {
        if self.depth >= MAX_NESTING {
            self.facts.opaque("a procedural body nested too deep");
            return;
        }
        self.facts
            .merge(procedural_facts(body, self.settings, self.depth + 1));
    }

    fn function_call(&mut self, name: &ObjectName, args: &FunctionArguments) {
        let full = name_of(name).to_lowercase();
        let short = full.rsplit('.').next().unwrap_or("").to_string();
        let list: Vec<&Expr> = match args {
            FunctionArguments::List(l) => l
                .args
                .iter()
                .filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
                    | FunctionArg::Named {
                        arg: FunctionArgExpr::Expr(e),
                        ..
                    }
                    | FunctionArg::ExprNamed {
                        arg: FunctionArgExpr::Expr(e),
                        ..
                    } => Some(e),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        if let Some((_, which)) = DYNAMIC_SQL.iter().find(|(n, _)| *n == short) {
            self.facts.kind(StatementKind::DynamicSql);
            let chosen: Vec<&Expr> = match which {
                SqlArgs::First => list.first().copied().into_iter().collect(),
                SqlArgs::Last => list.last().copied().into_iter().collect(),
                SqlArgs::All => list.clone(),
            };
            if chosen.is_empty() {
                self.facts.opaque(format!("{short}() without its SQL text"));
            }
            for e in chosen {
                match string_of(e) {
                    Some(text) => self.nested_sql(&text, &format!("the SQL text of {short}()")),
                    None => self
                        .facts
                        .opaque(format!("{short}() of SQL text computed at run time")),
                }
            }
        }
        if TABLE_BY_NAME.contains(&short.as_str()) {
            match list.first().and_then(|e| string_of(e)) {
                Some(table) => self.facts.relations.push(table),
                None => self
                    .facts
                    .opaque(format!("{short}() of a table named at run time")),
            }
        }
    }
}

/// The string constant `e` is, if it is one (possibly cast, as `'t'::regclass`).
fn string_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::UnicodeStringLiteral(s)
            | Value::NationalStringLiteral(s) => Some(s.clone()),
            Value::DollarQuotedString(d) => Some(d.value.clone()),
            _ => None,
        },
        Expr::Cast { expr, .. } | Expr::Nested(expr) => string_of(expr),
        _ => None,
    }
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_statement(&mut self, stmt: &Statement) -> ControlFlow<()> {
        use StatementKind as K;
        match stmt {
            Statement::Drop { .. }
            | Statement::DropFunction(_)
            | Statement::DropDomain(_)
            | Statement::DropProcedure { .. }
            | Statement::DropPolicy(_)
            | Statement::DropTrigger(_)
            | Statement::DropExtension(_)
            | Statement::DropOperator(_)
            | Statement::DropOperatorFamily(_)
            | Statement::DropOperatorClass(_)
            | Statement::DropSecret { .. }
            | Statement::DropConnector { .. } => self.facts.kind(K::Drop),
            Statement::Truncate(t) => {
                self.facts.kind(K::Truncate);
                for target in &t.table_names {
                    self.write_target(&target.name);
                    self.facts.relations.push(name_of(&target.name));
                }
            }
            Statement::AlterRole { .. } | Statement::AlterUser(_) => self.facts.kind(K::AlterRole),
            Statement::CreateRole(_) | Statement::CreateUser(_) => self.facts.kind(K::CreateRole),
            Statement::Grant(_) => self.facts.kind(K::Grant),
            Statement::Revoke(_) => self.facts.kind(K::Revoke),
            Statement::Copy {
                source, to, target, ..
            } => {
                if matches!(target, CopyTarget::Program { .. }) {
                    self.facts.kind(K::CopyProgram);
                }
                if let CopySource::Table { table_name, .. } = source {
                    self.facts.relations.push(name_of(table_name));
                    if !to {
                        self.write_target(table_name);
                    }
                }
            }
            Statement::Delete(d) => {
                if d.selection.as_ref().is_none_or(always_true) {
                    self.facts.kind(K::DeleteWithoutWhere);
                }
                let from = match &d.from {
                    FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
                };
                for t in from {
                    if let TableFactor::Table { name, .. } = &t.relation {
                        self.write_target(name);
                    }
                }
                for name in &d.tables {
                    self.write_target(name);
                }
            }
            Statement::Update(u) => {
                if u.selection.as_ref().is_none_or(always_true) {
                    self.facts.kind(K::UpdateWithoutWhere);
                }
                if let TableFactor::Table { name, .. } = &u.table.relation {
                    self.write_target(name);
                }
            }
            Statement::Insert(i) => {
                if let TableObject::TableName(name) = &i.table {
                    self.write_target(name);
                }
            }
            Statement::Merge(m) => {
                // A MERGE clause acts on every matched row its predicate admits.
                for c in &m.clauses {
                    let everything = c.predicate.as_ref().is_none_or(always_true);
                    match &c.action {
                        MergeAction::Delete { .. } if everything => {
                            self.facts.kind(K::DeleteWithoutWhere)
                        }
                        MergeAction::Update(_) if everything => {
                            self.facts.kind(K::UpdateWithoutWhere)
                        }
                        _ => {}
                    }
                }
                if let TableFactor::Table { name, .. } = &m.table {
                    self.write_target(name);
                }
            }
            Statement::CreateFunction(cf) => {
                self.facts.kind(K::CreateFunction);
                self.function_body(cf);
            }
            Statement::CreateProcedure { .. } => self.facts.kind(K::CreateFunction),
            Statement::CreateTrigger(_) => self.facts.kind(K::CreateTrigger),
            Statement::CreateExtension(_) => self.facts.kind(K::CreateExtension),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<()> {
        self.facts.relations.push(name_of(name));
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(func) = e {
            self.function_call(&func.name, &func.args);
        }
        ControlFlow::Continue(())
    }
}

/// Whether a WHERE clause admits every row: `true`, `1 = 1`, `'a' = 'a'`, `NOT false`,
/// `x OR true`, and the like. Such a statement counts as having no WHERE.
pub fn always_true(e: &Expr) -> bool {
    match constant(e) {
        Some(Constant::Bool(b)) => b,
        // A bare string is read as a boolean where one is expected: WHERE 'yes'.
        Some(Constant::Text(s)) => truthy(&s) == Some(true),
        Some(Constant::Number(_)) | None => false,
    }
}

/// How PostgreSQL reads a string as a boolean.
fn truthy(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "t" | "tr" | "tru" | "true" | "y" | "ye" | "yes" | "on" | "1" => Some(true),
        "f" | "fa" | "fal" | "fals" | "false" | "n" | "no" | "of" | "off" | "0" => Some(false),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Constant {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// Folds an expression of constants, as far as it goes.
fn constant(e: &Expr) -> Option<Constant> {
    use BinaryOperator as B;
    match e {
        Expr::Value(v) => match &v.value {
            Value::Boolean(b) => Some(Constant::Bool(*b)),
            Value::Number(n, _) => n.parse().ok().map(Constant::Number),
            Value::SingleQuotedString(s) => Some(Constant::Text(s.clone())),
            _ => None,
        },
        Expr::Nested(inner) => constant(inner),
        Expr::Cast { expr, .. } => match constant(expr)? {
            Constant::Text(s) => Some(truthy(&s).map(Constant::Bool).unwrap_or(Constant::Text(s))),
            Constant::Number(n) => Some(Constant::Bool(n != 0.0)),
            other => Some(other),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => match constant(expr)? {
            Constant::Bool(b) => Some(Constant::Bool(!b)),
            _ => None,
        },
        Expr::IsTrue(inner) => match constant(inner)? {
            Constant::Bool(b) => Some(Constant::Bool(b)),
            _ => None,
        },
        Expr::IsNotFalse(inner) => match constant(inner)? {
            Constant::Bool(b) => Some(Constant::Bool(b)),
            _ => None,
        },
        Expr::IsNotNull(inner) => constant(inner).map(|_| Constant::Bool(true)),
        Expr::BinaryOp { left, op, right } => {
            if *op == B::Or {
                let (l, r) = (constant(left), constant(right));
                if l == Some(Constant::Bool(true)) || r == Some(Constant::Bool(true)) {
                    return Some(Constant::Bool(true));
                }
                return match (l?, r?) {
                    (Constant::Bool(a), Constant::Bool(b)) => Some(Constant::Bool(a || b)),
                    _ => None,
                };
            }
            // `x = x` admits every row where x is not null: as good as everything.
            if matches!(op, B::Eq | B::GtEq | B::LtEq)
                && matches!(**left, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                && left == right
            {
                return Some(Constant::Bool(true));
            }
            let (l, r) = (constant(left)?, constant(right)?);
            match (op, l, r) {
                (B::And, Constant::Bool(a), Constant::Bool(b)) => Some(Constant::Bool(a && b)),
                (op, Constant::Number(a), Constant::Number(b)) => compare(op, a.partial_cmp(&b)?),
                (op, Constant::Text(a), Constant::Text(b)) => compare(op, a.cmp(&b)),
                (op, Constant::Bool(a), Constant::Bool(b)) => compare(op, a.cmp(&b)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn compare(op: &BinaryOperator, ord: std::cmp::Ordering) -> Option<Constant> {
    use BinaryOperator as B;
    use std::cmp::Ordering::*;
    let b = match op {
        B::Eq => ord == Equal,
        B::NotEq => ord != Equal,
        B::Lt => ord == Less,
        B::LtEq => ord != Greater,
        B::Gt => ord == Greater,
        B::GtEq => ord != Less,
        _ => return None,
    };
    Some(Constant::Bool(b))
}

/// The facts of every statement of a parsed nested text, each with its own words.
fn parsed_facts(stmts: &[Statement], lexed: &Lexed, settings: Settings, depth: usize) -> Facts {
    let mut f = Facts::default();
    for (i, stmt) in stmts.iter().enumerate() {
        f.merge(statement_facts(stmt, lexed.words.get(i), settings, depth));
    }
    f
}

/// The facts of SQL text found inside a statement, read as the server would.
fn facts_of_text(text: &str, settings: Settings, depth: usize, what: &str) -> Facts {
    let reading = read_nested(text, settings);
    let mut f = Facts::default();
    match &reading.parsed {
        Ok(stmts) => {
            f.merge(parsed_facts(stmts, &reading.lexed, settings, depth));
        }
        Err(e) => {
            f.merge(words_facts(&reading.lexed, settings, depth));
            f.opaque(format!("{what} that the policy check cannot parse ({e})"));
        }
    }
    f
}

/// The facts of a PL/pgSQL body (a function's, or a `DO` block's): each of its SQL
/// statements is found after the control words (`BEGIN`, `IF … THEN`, `LOOP`,
/// `RETURN QUERY`) and parsed on its own; `PERFORM` is read as `SELECT`; `EXECUTE` of a
/// constant is read as the SQL it runs, of anything else as SQL the check cannot see.
pub fn procedural_facts(body: &str, settings: Settings, depth: usize) -> Facts {
    const VERBS: &[&str] = &[
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "DROP", "TRUNCATE", "ALTER",
        "GRANT", "REVOKE", "COPY", "CREATE", "ANALYZE", "VALUES", "TABLE", "LOCK", "REFRESH",
        "CLUSTER", "REINDEX", "VACUUM", "COMMENT", "SECURITY", "IMPORT", "CALL", "NOTIFY",
        "LISTEN", "SET", "RESET", "REASSIGN", "EXPLAIN", "DISCARD",
    ];
    let lexed = crate::policy::sql::lexer::lex(body, settings);
    let mut f = Facts::default();
    if let Some(why) = &lexed.doubt {
        f.opaque(format!("a procedural body the check cannot read ({why})"));
        return f;
    }
    for w in &lexed.words {
        if let Some(i) = w.words.iter().position(|x| x == "EXECUTE") {
            f.kind(StatementKind::DynamicSql);
            // EXECUTE 'constant' runs exactly that text; anything else is opaque.
            let next = w.at.get(i).copied().unwrap_or(0) + "EXECUTE".len();
            // …when the string is all there is: `EXECUTE 'a' || b` is computed.
            let constant = w
                .strings
                .iter()
                .find(|s| {
                    lexed
                        .text
                        .get(next..s.0)
                        .is_some_and(|t| t.trim().is_empty())
                })
                .filter(|s| {
                    let rest = lexed.text[s.1..w.span.1].trim_start().to_uppercase();
                    rest.is_empty() || rest.starts_with("INTO") || rest.starts_with("USING")
                });
            match constant {
                Some(&span) if depth < MAX_NESTING => {
                    let text = Words::string_value(&lexed.text, span);
                    f.merge(facts_of_text(&text, settings, depth + 1, "EXECUTE"));
                }
                _ => f.opaque("EXECUTE of SQL text computed at run time"),
            }
        }
        let perform = w.words.iter().position(|x| x == "PERFORM");
        let verb = w.words.iter().position(|x| VERBS.contains(&x.as_str()));
        let statement = match (perform, verb) {
            (Some(p), v) if v.is_none_or(|v| p < v) => Some(format!(
                "SELECT {}",
                &w.from_word(&lexed.text, p)["PERFORM".len()..]
            )),
            (_, Some(v)) => Some(w.from_word(&lexed.text, v).to_string()),
            _ => None,
        };
        let Some(statement) = statement else {
            // Not SQL the check knows the verb of: its names still count, so a table
            // rule refuses a body that names the table in a form not listed here.
            f.relations.extend(w.names.iter().cloned());
            continue;
        };
        // `END IF`, `END LOOP` and the like close a block, not the statement.
        let statement = statement
            .trim_end()
            .trim_end_matches(|c: char| c.is_whitespace())
            .to_string();
        let reading = read_nested(&statement, settings);
        match &reading.parsed {
            Ok(stmts) => f.merge(parsed_facts(stmts, &reading.lexed, settings, depth)),
            Err(_) => {
                let single = Lexed {
                    text: lexed.text.clone(),
                    statements: 1,
                    words: vec![w.clone()],
                    doubt: None,
                    max_call_depth: 0,
                    max_name_parts: 0,
                    max_depth: 0,
                };
                f.merge(words_facts(&single, settings, depth));
            }
        }
    }
    f
}

/// The facts of statements sqlparser could not parse, from their words: read
/// conservatively, so a statement that might be of a kind counts as one.
pub fn words_facts(lexed: &Lexed, settings: Settings, depth: usize) -> Facts {
    use StatementKind as K;
    let mut f = Facts::default();
    for w in &lexed.words {
        let words = &w.words;
        let has = |x: &str| words.iter().any(|y| y == x);
        let starts = |prefix: &[&str]| {
            let mut it = words
                .iter()
                .filter(|x| !matches!(x.as_str(), "OR" | "REPLACE"));
            prefix.iter().all(|p| it.next().is_some_and(|x| x == p))
        };
        let first = words.first().map(String::as_str).unwrap_or("");
        if has("DROP") {
            f.kind(K::Drop);
        }
        if has("TRUNCATE") {
            f.kind(K::Truncate);
        }
        if has("DELETE") {
            f.kind(K::DeleteWithoutWhere);
        }
        if has("UPDATE") && has("SET") {
            f.kind(K::UpdateWithoutWhere);
        }
        if has("COPY") && has("PROGRAM") {
            f.kind(K::CopyProgram);
        }
        if has("GRANT") {
            f.kind(K::Grant);
        }
        if has("REVOKE") {
            f.kind(K::Revoke);
        }
        if (starts(&["ALTER", "ROLE"]) || starts(&["ALTER", "USER"]) || starts(&["ALTER", "GROUP"]))
            || (has("ALTER") && (has("ROLE") || has("USER")))
        {
            f.kind(K::AlterRole);
            if has("PASSWORD") {
                f.kind(K::AlterRolePassword);
            }
        }
        if starts(&["CREATE", "ROLE"])
            || starts(&["CREATE", "USER"])
            || starts(&["CREATE", "GROUP"])
        {
            f.kind(K::CreateRole);
            if has("PASSWORD") {
                f.kind(K::AlterRolePassword);
            }
        }
        if starts(&["CREATE", "RULE"]) {
            f.kind(K::CreateRule);
        }
        if has("CREATE") && has("TRIGGER") {
            f.kind(K::CreateTrigger);
        }
        if has("CREATE") && has("EXTENSION") {
            f.kind(K::CreateExtension);
        }
        let function = has("CREATE")
            && (has("FUNCTION") || has("PROCEDURE") || has("AGGREGATE") || has("OPERATOR"));
        if function {
            f.kind(K::CreateFunction);
        }
        if has("EXECUTE") && first != "EXECUTE" {
            f.kind(K::DynamicSql);
        }
        if first == "DO" {
            f.kind(K::DoBlock);
        }
        // A body (DO's, or a function's) is read as PL/pgSQL, whatever it claims.
        if (first == "DO" || function) && depth < MAX_NESTING {
            for &span in &w.strings {
                let body = Words::string_value(&lexed.text, span);
                f.merge(procedural_facts(&body, settings, depth + 1));
            }
        }
        f.relations.extend(w.names.iter().cloned());
        if is_catalog_write_words(words, &w.names) {
            f.kind(K::CatalogWrite);
        }
    }
    f
}

fn is_catalog_write_words(words: &[String], names: &[String]) -> bool {
    let writes = words.iter().any(|w| {
        matches!(
            w.as_str(),
            "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "TRUNCATE"
        )
    });
    writes && names.iter().any(|n| is_catalog(n) && n.contains("pg_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::sql::Sql;

    fn kinds(sql: &str) -> Vec<&'static str> {
        let s = Sql::new(sql);
        let r = &s.readings()[0];
        let mut out: Vec<&'static str> = match &r.parsed {
            Ok(stmts) => stmts
                .iter()
                .enumerate()
                .flat_map(|(i, st)| Facts::of(st, r.lexed.words.get(i), Settings::default()).kinds)
                .map(|k| k.name())
                .collect(),
            Err(_) => words_facts(&r.lexed, Settings::default(), 0)
                .kinds
                .into_iter()
                .map(|k| k.name())
                .collect(),
        };
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn kinds_are_found_anywhere_in_the_tree() {
        for (sql, kind) in [
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
                "delete_without_where",
            ),
            ("EXPLAIN ANALYZE DELETE FROM t", "delete_without_where"),
            ("DELETE FROM t WHERE true", "delete_without_where"),
            ("DELETE FROM t WHERE 1=1", "delete_without_where"),
            (
                "DELETE FROM t WHERE 'a' = 'a' OR id = 3",
                "delete_without_where",
            ),
            ("DELETE FROM t WHERE NOT false", "delete_without_where"),
            ("DELETE FROM t WHERE 'yes'", "delete_without_where"),
            (
                "DELETE FROM t WHERE 't'::bool OR false",
                "delete_without_where",
            ),
            ("UPDATE t SET a = 1 WHERE id = id", "update_without_where"),
            (
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
                "delete_without_where",
            ),
            ("ALTER USER postgres PASSWORD 'x'", "alter_role"),
            ("ALTER USER postgres PASSWORD 'x'", "alter_role_password"),
            ("ALTER ROLE app WITH PASSWORD 'x'", "alter_role_password"),
            ("CREATE ROLE boss SUPERUSER", "create_role"),
            (
                "DO $$ BEGIN IF true THEN ALTER USER app PASSWORD 'x'; END IF; END $$",
                "alter_role_password",
            ),
            // Nested SQL text is read like a top-level statement.
            (
                "DO $$ BEGIN EXECUTE 'CREATE ROLE boss PASSWORD ''x'''; END $$",
                "alter_role_password",
            ),
            (
                "SELECT dblink_exec('dbname=x', 'CREATE USER u PASSWORD ''p''')",
                "alter_role_password",
            ),
            (
                "UPDATE pg_authid SET rolsuper = true WHERE rolname = 'me'",
                "catalog_write",
            ),
            ("REVOKE ALL ON t FROM public", "revoke"),
            (
                "SELECT query_to_xml('select 1', true, false, '')",
                "dynamic_sql",
            ),
            ("SELECT dblink_exec('dbname=x', 'DROP TABLE t')", "drop"),
            (
                "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM t $$",
                "delete_without_where",
            ),
            (
                "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE t; END $$",
                "drop",
            ),
            (
                "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'TRUNCATE t'; END $$",
                "truncate",
            ),
            (
                "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN IF true THEN COPY (SELECT 1) TO PROGRAM 'id'; END IF; END $$",
                "copy_program",
            ),
            (
                "DO $$ BEGIN DELETE FROM t WHERE 1 = 1; END $$",
                "delete_without_where",
            ),
            ("DO $$ BEGIN PERFORM 1; END $$", "do_block"),
            (
                "CREATE RULE r AS ON INSERT TO a DO ALSO DELETE FROM b",
                "create_rule",
            ),
            (
                "CREATE RULE r AS ON INSERT TO a DO ALSO DELETE FROM b",
                "delete_without_where",
            ),
            ("CREATE EXTENSION dblink", "create_extension"),
            (
                "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()",
                "create_trigger",
            ),
            ("PREPARE p AS TRUNCATE t", "truncate"),
        ] {
            let k = kinds(sql);
            assert!(k.contains(&kind), "{sql}: {k:?}");
        }
        for sql in [
            "DELETE FROM t WHERE id = 1",
            "UPDATE t SET a = 1 WHERE id = 2",
            "DELETE FROM t WHERE 1 = 2",
            "SELECT * FROM pg_authid",
        ] {
            let k = kinds(sql);
            assert!(
                !k.contains(&"delete_without_where")
                    && !k.contains(&"update_without_where")
                    && !k.contains(&"catalog_write"),
                "{sql}: {k:?}"
            );
        }
    }

    #[test]
    fn sql_text_inside_sql_names_its_relations() {
        let s = Sql::new("SELECT query_to_xml('select * from payroll', true, false, '')");
        let r = &s.readings()[0];
        let f = Facts::of(&r.parsed.as_ref().unwrap()[0], None, Settings::default());
        assert!(f.relations.iter().any(|t| t == "payroll"), "{f:?}");
        assert_eq!(f.opaque, None);
        let s = Sql::new("SELECT dblink_exec('c', (SELECT q FROM queries))");
        let r = &s.readings()[0];
        let f = Facts::of(&r.parsed.as_ref().unwrap()[0], None, Settings::default());
        assert!(f.opaque.is_some(), "{f:?}");
        let s = Sql::new("SELECT table_to_xml('hr.salaries', true, false, '')");
        let r = &s.readings()[0];
        let f = Facts::of(&r.parsed.as_ref().unwrap()[0], None, Settings::default());
        assert!(f.relations.iter().any(|t| t == "hr.salaries"), "{f:?}");
    }
}
