//! The statements that fill a relation's columns from other columns, read for what
//! each column is computed from: `CREATE [MATERIALIZED] VIEW … AS`, `CREATE TABLE …
//! AS`, `SELECT … INTO`, `INSERT … SELECT`, `UPDATE … SET` and `MERGE`, wherever they
//! sit (a data-changing CTE included). A view's text read from the catalog is read the
//! same way. See `derived_relations` for how the definitions are used.

use super::lineage::{
    Env, Item, Lineage, Source, add_factor, add_relations, expr_lineage, name_parts, output_names,
    query, sources_in,
};
use sqlparser::ast::{
    AssignmentTarget, ObjectName, Query, SetExpr, Statement, TableFactor, TableObject,
    UpdateTableFromKind, Visit, Visitor,
};
use std::ops::ControlFlow;

/// What one statement puts into one relation's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub schema: Option<String>,
    pub name: String,
    /// The column names, when the statement or the catalog gives them all.
    pub names: Option<Vec<String>>,
    /// The select list that fills them.
    pub items: Vec<Item>,
    /// The names PostgreSQL gives the select list's columns, as far as its text says
    /// (used when `names` is not given).
    pub output_names: Vec<String>,
    /// Whether it makes every column (a view, a table created from a query) rather
    /// than adding to a table's own values (INSERT, UPDATE, MERGE).
    pub whole: bool,
}

impl Definition {
    /// Whether any column is computed from anything (others change nothing).
    pub fn has_sources(&self) -> bool {
        self.items.iter().any(|it| match it {
            Item::One(l) => !l.sources.is_empty(),
            Item::AllOf(t) => !t.is_empty(),
        })
    }
}

/// Every definition the statements make, in order.
pub fn definitions_in(statements: &[Statement]) -> Vec<Definition> {
    struct Finder(Vec<Definition>);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_statement(&mut self, st: &Statement) -> ControlFlow<()> {
            self.0
                .extend(definition_of(st).filter(Definition::has_sources));
            ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let SetExpr::Select(s) = q.body.as_ref()
                && let Some(into) = &s.into
            {
                self.0.extend(
                    Some(filled(&into.name, None, q, true)).filter(Definition::has_sources),
                );
            }
            ControlFlow::Continue(())
        }
    }
    let mut f = Finder(Vec::new());
    for st in statements {
        let _ = st.visit(&mut f);
    }
    f.0
}

/// A view's definition as the catalog prints it (`pg_get_viewdef`), with the view's
/// column names; `None` when the text is not one query.
pub fn view_definition(
    schema: &str,
    name: &str,
    columns: Vec<String>,
    statements: &[Statement],
) -> Option<Definition> {
    let [Statement::Query(q)] = statements else {
        return None;
    };
    Some(Definition {
        schema: Some(schema.to_string()),
        name: name.to_string(),
        names: Some(columns),
        items: query(q, &Env::default()),
        output_names: output_names(q),
        whole: true,
    })
}

fn split(name: &ObjectName) -> (Option<String>, String) {
    let parts = name_parts(name);
    let last = parts.last().cloned().unwrap_or_default();
    let schema = (parts.len() > 1).then(|| parts[parts.len() - 2].clone());
    (schema, last)
}

fn filled(target: &ObjectName, names: Option<Vec<String>>, q: &Query, whole: bool) -> Definition {
    let (schema, name) = split(target);
    Definition {
        schema,
        name,
        names: names.filter(|n| !n.is_empty()),
        items: query(q, &Env::default()),
        output_names: output_names(q),
        whole,
    }
}

fn definition_of(st: &Statement) -> Option<Definition> {
    match st {
        Statement::CreateView(v) => Some(filled(
            &v.name,
            Some(v.columns.iter().map(|c| c.name.value.clone()).collect()),
            &v.query,
            true,
        )),
        Statement::CreateTable(t) => t.query.as_ref().map(|q| {
            filled(
                &t.name,
                Some(t.columns.iter().map(|c| c.name.value.clone()).collect()),
                q,
                true,
            )
        }),
        Statement::Insert(i) => {
            let (TableObject::TableName(target), Some(q)) = (&i.table, &i.source) else {
                return None;
            };
            let names = i
                .columns
                .iter()
                .map(|c| name_parts(c).pop().unwrap_or_default())
                .collect();
            Some(filled(target, Some(names), q, false))
        }
        Statement::Update(u) => {
            let TableFactor::Table { name: target, .. } = &u.table.relation else {
                return None;
            };
            let mut scope = Env::default();
            add_relations(&u.table, &mut scope);
            if let Some(
                UpdateTableFromKind::BeforeSet(from) | UpdateTableFromKind::AfterSet(from),
            ) = &u.from
            {
                for t in from {
                    add_relations(t, &mut scope);
                }
            }
            let (schema, name) = split(target);
            let mut names = Vec::new();
            let mut items = Vec::new();
            for a in &u.assignments {
                let l = expr_lineage(&a.value, &scope);
                match &a.target {
                    AssignmentTarget::ColumnName(c) => {
                        names.push(name_parts(c).pop().unwrap_or_default());
                        items.push(Item::One(l));
                    }
                    // `SET (a, b) = (SELECT …)`: each column may hold any of it.
                    AssignmentTarget::Tuple(cols) => {
                        for c in cols {
                            names.push(name_parts(c).pop().unwrap_or_default());
                            items.push(Item::One(Lineage {
                                sources: l.sources.clone(),
                                direct: false,
                            }));
                        }
                    }
                }
            }
            Some(Definition {
                schema,
                name,
                names: Some(names),
                items,
                output_names: Vec::new(),
                whole: false,
            })
        }
        Statement::Merge(m) => {
            let TableFactor::Table { name: target, .. } = &m.table else {
                return None;
            };
            // Whatever the merge reads may land in any column of its target.
            let mut scope = Env::default();
            add_factor(&m.table, &mut scope);
            add_factor(&m.source, &mut scope);
            let mut all = Lineage::default();
            all.add(sources_in(&m.clauses, &scope));
            all.add(sources_in(&m.source, &scope));
            let (schema, name) = split(target);
            Some(Definition {
                schema,
                name,
                names: None,
                items: vec![Item::One(all)],
                output_names: Vec::new(),
                whole: false,
            })
        }
        _ => None,
    }
}

/// The sources a definition's items reach, whole rows for its `*`s.
pub fn all_sources(d: &Definition) -> Vec<Source> {
    let mut l = Lineage::default();
    for it in &d.items {
        match it {
            Item::One(x) => l.add(x.sources.iter().cloned()),
            Item::AllOf(t) => l.add(t.iter().map(|(schema, table)| Source::WholeRow {
                schema: schema.clone(),
                table: table.clone(),
            })),
        }
    }
    l.sources
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::sql::Sql;

    fn defs(sql: &str) -> Vec<Definition> {
        let parsed = Sql::new(sql);
        definitions_in(parsed.statements().expect("parses"))
    }

    fn card() -> Source {
        Source::Column {
            schema: None,
            table: Some("customers".into()),
            column: "card".into(),
        }
    }

    #[test]
    fn every_statement_that_fills_a_relation_from_columns_is_read() {
        for (sql, target, whole) in [
            (
                "CREATE VIEW v AS SELECT reverse(card) AS r FROM customers",
                "v",
                true,
            ),
            (
                "CREATE OR REPLACE VIEW s.v (r) AS SELECT reverse(card) FROM customers",
                "v",
                true,
            ),
            (
                "CREATE MATERIALIZED VIEW m AS SELECT card || 'x' FROM customers",
                "m",
                true,
            ),
            (
                "CREATE TABLE t AS SELECT substr(card, 1, 12) FROM customers",
                "t",
                true,
            ),
            ("SELECT reverse(card) AS r INTO t FROM customers", "t", true),
            (
                "INSERT INTO t (note) SELECT reverse(card) FROM customers",
                "t",
                false,
            ),
            ("INSERT INTO t SELECT card FROM customers", "t", false),
            (
                "UPDATE t SET note = c.card FROM customers c WHERE c.id = t.id",
                "t",
                false,
            ),
            (
                "WITH x AS (INSERT INTO t (note) SELECT card FROM customers RETURNING 1) SELECT * FROM x",
                "t",
                false,
            ),
            (
                "MERGE INTO t USING customers c ON c.id = t.id WHEN MATCHED THEN UPDATE SET note = c.card",
                "t",
                false,
            ),
        ] {
            let d = defs(sql);
            assert_eq!(d.len(), 1, "{sql}: {d:?}");
            assert_eq!(d[0].name, target, "{sql}");
            assert_eq!(d[0].whole, whole, "{sql}");
            let sources = all_sources(&d[0]);
            assert!(
                sources
                    .iter()
                    .any(|s| matches!(s, Source::Column { column, .. } if column == "card")),
                "{sql}: {sources:?}"
            );
        }
        assert!(defs("SELECT reverse(card) FROM customers").is_empty());
        assert!(
            defs("INSERT INTO t VALUES (1, 'a')").is_empty(),
            "nothing computed"
        );
        assert!(defs("CREATE VIEW one AS SELECT 1").is_empty());
    }

    #[test]
    fn names_come_from_the_column_list_or_the_select_list() {
        let d = &defs("CREATE VIEW v (a, b) AS SELECT id, reverse(card) FROM customers")[0];
        assert_eq!(
            d.names.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        let d = &defs("CREATE VIEW v AS SELECT id, reverse(card) AS r FROM customers")[0];
        assert_eq!(d.names, None);
        assert_eq!(d.output_names, ["id", "r"]);
        let Item::One(l) = &d.items[1] else {
            panic!("one column")
        };
        assert_eq!(l.sources, [card()]);
    }
}
