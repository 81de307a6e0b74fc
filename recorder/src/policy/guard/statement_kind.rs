//! Deny by statement kind: what a statement does, read from its parse tree (the
//! `sqlparser` crate DataFusion already builds on), so spacing, case, comments and
//! quoting cannot hide it the way they can hide it from a regex.

use sqlparser::ast::{CopyTarget, Statement};

/// The statement kinds a deny rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// `DROP` of any object.
    Drop,
    Truncate,
    AlterRole,
    Grant,
    /// `COPY … TO PROGRAM` and `COPY … FROM PROGRAM`: a shell on the database host.
    CopyProgram,
    DeleteWithoutWhere,
    UpdateWithoutWhere,
}

impl StatementKind {
    /// Every kind, as written in the config.
    pub const ALL: [(&'static str, StatementKind); 7] = [
        ("drop", StatementKind::Drop),
        ("truncate", StatementKind::Truncate),
        ("alter_role", StatementKind::AlterRole),
        ("grant", StatementKind::Grant),
        ("copy_program", StatementKind::CopyProgram),
        ("delete_without_where", StatementKind::DeleteWithoutWhere),
        ("update_without_where", StatementKind::UpdateWithoutWhere),
    ];

    /// Parses the config name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, k)| *k)
    }

    /// The config name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Whether `stmt` is of this kind.
    pub fn matches(self, stmt: &Statement) -> bool {
        match (self, stmt) {
            (StatementKind::Drop, Statement::Drop { .. })
            | (StatementKind::Drop, Statement::DropFunction { .. })
            | (StatementKind::Truncate, Statement::Truncate(_))
            | (StatementKind::AlterRole, Statement::AlterRole { .. })
            | (StatementKind::Grant, Statement::Grant(_)) => true,
            (
                StatementKind::CopyProgram,
                Statement::Copy {
                    target: CopyTarget::Program { .. },
                    ..
                },
            ) => true,
            (StatementKind::DeleteWithoutWhere, Statement::Delete(d)) => d.selection.is_none(),
            (StatementKind::UpdateWithoutWhere, Statement::Update(u)) => u.selection.is_none(),
            _ => false,
        }
    }
}
