//! Deny by table: the tables a statement reads or changes, taken from its parse tree
//! (every relation, plus the objects a DROP names), compared by name with or without
//! schema and case-insensitively, as PostgreSQL folds unquoted names.

use sqlparser::ast::{ObjectName, Statement, visit_relations};
use std::ops::ControlFlow;

/// A named list of tables, e.g. `["payroll", "hr.salaries"]`.
#[derive(Debug, Clone)]
pub struct TableList {
    /// Lower-cased; an entry without a schema matches that table in any schema.
    tables: Vec<String>,
}

fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.to_lowercase()))
        .collect()
}

impl TableList {
    /// A list from the config's names.
    pub fn new(tables: &[String]) -> Self {
        TableList {
            tables: tables.iter().map(|t| t.to_lowercase()).collect(),
        }
    }

    fn names(&self, name: &ObjectName) -> bool {
        let p = parts(name);
        let Some(table) = p.last() else {
            return false;
        };
        let qualified = p.join(".");
        self.tables
            .iter()
            .any(|t| t == &qualified || (!t.contains('.') && t == table))
    }

    /// The first listed table `stmt` touches, if any.
    pub fn touched_by(&self, stmt: &Statement) -> Option<String> {
        let mut hit = None;
        let _ = visit_relations(stmt, |name| {
            if self.names(name) {
                hit = Some(name.to_string());
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if hit.is_none()
            && let Statement::Drop { names, .. } = stmt
        {
            hit = names.iter().find(|n| self.names(n)).map(|n| n.to_string());
        }
        hit
    }
}
