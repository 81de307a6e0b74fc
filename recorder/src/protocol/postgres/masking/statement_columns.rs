//! The statement a result answers, read once for the lineage of its columns (only
//! when column rules apply). A simple query may hold several statements; each one
//! that returns rows describes its own result, in order.

use super::column_plan::StatementColumns;
use crate::policy::mask::lineage::{Item, of_statements};
use crate::policy::sql::lexer::Settings;
use crate::policy::sql::on_right_stack_blocking;

/// The text of a command and, once read, the select list of each statement in it that
/// returns rows.
#[derive(Debug, Clone)]
pub struct StatementText {
    sql: String,
    settings: Settings,
    /// `None` until read; then `Some(None)` if the text could not be read.
    read: Option<Option<Vec<Option<Vec<Item>>>>>,
}

impl StatementText {
    /// A command's text, read as the session reads SQL (its `standard_conforming_strings`
    /// and encoding).
    pub fn new(sql: &str, settings: Settings) -> Self {
        StatementText {
            sql: sql.to_string(),
            settings,
            read: None,
        }
    }

    /// What the statement says of its `result`-th result (0-based).
    pub fn columns(&mut self, result: usize) -> StatementColumns<'_> {
        let sql = &self.sql;
        let settings = self.settings;
        let read = self.read.get_or_insert_with(|| {
            on_right_stack_blocking(
                sql,
                settings,
                |parsed| parsed.statements().ok().map(of_statements),
                || None,
            )
        });
        match read {
            None => StatementColumns::Unreadable,
            Some(results) => match results.get(result) {
                Some(Some(items)) => StatementColumns::Read(items),
                Some(None) => StatementColumns::Unreadable,
                // More results than statements that return rows: the reading is off.
                None => StatementColumns::Unreadable,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_result_of_a_simple_query_gets_its_own_statement() {
        let mut t = StatementText::new(
            "SET x = 1; SELECT reverse(card) FROM customers; SELECT 1; FETCH ALL FROM c",
            Settings::default(),
        );
        assert!(matches!(t.columns(0), StatementColumns::Read(items) if items.len() == 1));
        assert!(matches!(t.columns(1), StatementColumns::Read(items) if items.len() == 1));
        assert!(matches!(t.columns(2), StatementColumns::Unreadable));
        let mut bad = StatementText::new("SELEC reverse(card) FROM customers", Settings::default());
        assert!(matches!(bad.columns(0), StatementColumns::Unreadable));
    }
}
