//! Deny by statement kind: what a statement does, read from its parse tree (the
//! `sqlparser` crate DataFusion already builds on) wherever in the tree it sits
//! (`facts`), so spacing, case, comments, quoting, CTEs and wrappers cannot hide it the
//! way they can hide it from a regex.

/// The statement kinds a deny rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// `DROP` of any object.
    Drop,
    Truncate,
    /// `ALTER ROLE`, and its aliases `ALTER USER` and `ALTER GROUP`.
    AlterRole,
    /// A role's password set or changed (`ALTER ROLE … PASSWORD`, `CREATE ROLE …
    /// PASSWORD`): a way to log in as someone else.
    AlterRolePassword,
    /// `CREATE ROLE`, `CREATE USER`, `CREATE GROUP`.
    CreateRole,
    Grant,
    Revoke,
    /// `COPY … TO PROGRAM` and `COPY … FROM PROGRAM`: a shell on the database host.
    CopyProgram,
    /// `DELETE` with no WHERE, or one that admits every row (`WHERE true`,
    /// `WHERE 1 = 1`), and `MERGE … THEN DELETE` with no condition.
    DeleteWithoutWhere,
    /// The same for `UPDATE` and `MERGE … THEN UPDATE`.
    UpdateWithoutWhere,
    /// A write to a system catalog (`UPDATE pg_authid …`).
    CatalogWrite,
    /// `CREATE FUNCTION`, `CREATE PROCEDURE`, `CREATE AGGREGATE`, `CREATE OPERATOR`:
    /// code that runs later, under other names.
    CreateFunction,
    CreateTrigger,
    CreateRule,
    CreateExtension,
    /// `DO $$ … $$`: an anonymous code block.
    DoBlock,
    /// SQL run from text at run time: `query_to_xml`, `ts_stat`, `crosstab`,
    /// `dblink*`, and `EXECUTE` in a PL/pgSQL body.
    DynamicSql,
}

impl StatementKind {
    /// Every kind, as written in the config, with an example the README lists.
    pub const ALL: [(&'static str, StatementKind); 17] = [
        ("drop", StatementKind::Drop),
        ("truncate", StatementKind::Truncate),
        ("alter_role", StatementKind::AlterRole),
        ("alter_role_password", StatementKind::AlterRolePassword),
        ("create_role", StatementKind::CreateRole),
        ("grant", StatementKind::Grant),
        ("revoke", StatementKind::Revoke),
        ("copy_program", StatementKind::CopyProgram),
        ("delete_without_where", StatementKind::DeleteWithoutWhere),
        ("update_without_where", StatementKind::UpdateWithoutWhere),
        ("catalog_write", StatementKind::CatalogWrite),
        ("create_function", StatementKind::CreateFunction),
        ("create_trigger", StatementKind::CreateTrigger),
        ("create_rule", StatementKind::CreateRule),
        ("create_extension", StatementKind::CreateExtension),
        ("do_block", StatementKind::DoBlock),
        ("dynamic_sql", StatementKind::DynamicSql),
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
}
