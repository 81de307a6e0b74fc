//! A statement's shape: its text with every literal replaced by `?`, so a
//! session-scoped approval of `UPDATE t SET x = 1 WHERE id = 7` also covers
//! `UPDATE t SET x = 2 WHERE id = 8`, and nothing else.

use crate::policy::sql::Sql;
use sqlparser::ast::{Expr, Value, VisitMut, VisitorMut};
use std::ops::ControlFlow;

struct Literals;

impl VisitorMut for Literals {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Value(v) = expr
            && !matches!(v.value, Value::Placeholder(_) | Value::Null)
        {
            v.value = Value::Placeholder("?".into());
        }
        ControlFlow::Continue(())
    }
}

/// The shape of `sql`; SQL that does not parse is its own shape (whitespace aside).
pub fn shape(sql: &Sql<'_>) -> String {
    match sql.statements() {
        Ok(statements) => {
            let mut statements = statements.to_vec();
            let _ = statements.visit(&mut Literals);
            statements
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        }
        Err(_) => sql.text().split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(sql: &str) -> String {
        super::shape(&Sql::new(sql))
    }

    #[test]
    fn literals_do_not_change_the_shape() {
        assert_eq!(
            shape("UPDATE orders SET total = 1 WHERE id = 7"),
            shape("update orders  set total = 2 where id = 8")
        );
        assert_ne!(
            shape("UPDATE orders SET total = 1 WHERE id = 7"),
            shape("UPDATE orders SET total = 1")
        );
        assert_ne!(
            shape("DELETE FROM orders WHERE id = 1"),
            shape("DELETE FROM payroll WHERE id = 1")
        );
        assert_eq!(shape("garbage  in"), "garbage in");
    }
}
