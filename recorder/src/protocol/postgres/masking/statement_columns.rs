//! The statement a result answers, read once for the lineage of its columns (only
//! when column rules apply). A simple query may hold several statements; each one
//! that returns rows describes its own result, in order.

use super::column_plan::StatementColumns;
use crate::policy::mask::lineage::{Item, of_statements};
use crate::policy::sql::lexer::Settings;
use crate::policy::sql::{Sql, on_right_stack_blocking};
use std::sync::Arc;

/// The select list of each statement of a text that returns rows (`None` for one
/// whose columns its text does not give); `None` when the text cannot be read.
pub type ReadColumns = Option<Vec<Option<Vec<Item>>>>;

/// Reads the select lists of a parsed text: done with the parse the policy check
/// makes anyway, so the statement is parsed once.
pub fn read_columns(sql: &Sql<'_>) -> ReadColumns {
    sql.statements().ok().map(of_statements)
}

/// A command's select lists, read already or to be read from its text on demand.
#[derive(Debug, Clone)]
pub struct StatementText {
    /// The text and how the session reads SQL, when not read yet.
    text: Option<(String, Settings)>,
    read: Option<Arc<ReadColumns>>,
}

impl StatementText {
    /// A command's text, read when a result needs it, as the session reads SQL (its
    /// `standard_conforming_strings` and encoding).
    pub fn new(sql: &str, settings: Settings) -> Self {
        StatementText {
            text: Some((sql.to_string(), settings)),
            read: None,
        }
    }

    /// A command the policy check has read already.
    pub fn read(columns: Arc<ReadColumns>) -> Self {
        StatementText {
            text: None,
            read: Some(columns),
        }
    }

    /// What the statement says of its `result`-th result (0-based).
    pub fn columns(&mut self, result: usize) -> StatementColumns<'_> {
        let text = &self.text;
        let read: &ReadColumns = self.read.get_or_insert_with(|| {
            Arc::new(match text {
                Some((sql, settings)) => {
                    on_right_stack_blocking(sql, *settings, read_columns, || None)
                }
                None => None,
            })
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
        let sql = Sql::new("SELECT 1, reverse(card) FROM customers");
        let mut read = StatementText::read(Arc::new(read_columns(&sql)));
        assert!(matches!(read.columns(0), StatementColumns::Read(items) if items.len() == 2));
    }
}
