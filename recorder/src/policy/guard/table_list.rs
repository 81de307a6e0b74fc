//! Deny by table: the tables a statement reads or changes, wherever they appear (every
//! relation of its tree, `ONLY t`, `COPY t`, SQL text passed to `query_to_xml` or
//! `dblink`, a table named to `table_to_xml`, and, for statements sqlparser cannot
//! parse, every name among their words), compared by name with or without schema and
//! case-insensitively, as PostgreSQL folds unquoted names. The statistics views, which
//! show any table's values, count as touching every listed table.

use super::facts::{Facts, STATISTICS_RELATIONS};

/// A named list of tables, e.g. `["payroll", "hr.salaries"]`.
#[derive(Debug, Clone)]
pub struct TableList {
    /// Lower-cased; an entry without a schema matches that table in any schema.
    tables: Vec<String>,
}

impl TableList {
    /// A list from the config's names.
    pub fn new(tables: &[String]) -> Self {
        TableList {
            tables: tables.iter().map(|t| t.to_lowercase()).collect(),
        }
    }

    fn names(&self, dotted: &str) -> bool {
        let qualified = dotted.to_lowercase();
        let table = qualified.rsplit('.').next().unwrap_or("");
        self.tables.iter().any(|t| {
            t == &qualified
                || (!t.contains('.') && t == table)
                || (t.contains('.') && qualified.ends_with(&format!(".{t}")))
        })
    }

    /// Why the statement these facts describe touches a listed table, if it does.
    pub fn touched_by(&self, facts: &Facts) -> Option<String> {
        if let Some(t) = facts.relations.iter().find(|r| self.names(r)) {
            return Some(format!("table {t}"));
        }
        if let Some(t) = facts.relations.iter().find(|r| {
            let last = r.rsplit('.').next().unwrap_or("").to_lowercase();
            STATISTICS_RELATIONS.contains(&last.as_str())
        }) {
            return Some(format!("{t}, which shows the values of listed tables"));
        }
        facts
            .opaque
            .as_ref()
            .map(|why| format!("{why}, whose tables the policy check cannot see"))
    }
}
