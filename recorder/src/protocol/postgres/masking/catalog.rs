//! Where result columns come from. A RowDescription names each column's table by
//! OID and its position by attribute number; column rules name tables by name. At
//! session start (only when a column rule applies) the gateway asks the upstream, on
//! the session's own connection and before the client's first command, for the
//! columns whose names match a rule: their table, schema, attribute number and
//! position. Tables created later in the session are told apart by their OIDs
//! (above the highest one seen at start) and are masked by column name alone.
//!
//! A second lookup reads the definition of every view that depends, at any depth, on
//! a table with such a column (`pg_get_viewdef`), so a view's columns carry the rules
//! of the columns they are computed from (see `derived_relations`); views, tables
//! and fills the session itself defines are added as its statements pass.

use crate::policy::mask::column_pattern::ColumnPattern;
use crate::policy::mask::derived_relations::{DerivedRelations, SharedDerived};
use crate::policy::mask::lineage::{Lineage, Source};
use crate::policy::mask::relation_definitions::view_definition;
use crate::policy::sql::lexer::Settings;
use crate::policy::sql::on_right_stack;
use crate::protocol::postgres::encoding::PgEncoding;
use crate::protocol::postgres::idle_query;
use crate::protocol::postgres::wire::Reader;
use bytes::BytesMut;
use std::collections::{HashMap, HashSet};
use tokio::io::{AsyncRead, AsyncWrite};

/// One catalog column that a rule's glob matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub rel: u32,
    pub schema: String,
    pub table: String,
    pub attnum: i16,
    /// 1-based position among the table's live columns (as `COPY table` sends them).
    pub position: usize,
    pub name: String,
}

/// The columns of interest, by table OID and attribute number.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    columns: HashMap<(u32, i16), CatalogColumn>,
    tables: HashSet<u32>,
    /// The highest relation OID at lookup time; 0 if the lookup failed.
    max_rel: u32,
    /// Views and filled tables, from the catalog and the session's own statements
    /// (shared by the session's two directions: one adds, the other reads).
    derived: SharedDerived,
}

impl Catalog {
    /// Builds a catalog from looked-up columns (and the highest relation OID then).
    pub fn new(columns: Vec<CatalogColumn>, max_rel: u32) -> Self {
        Catalog {
            tables: columns.iter().map(|c| c.rel).collect(),
            columns: columns
                .into_iter()
                .map(|c| ((c.rel, c.attnum), c))
                .collect(),
            max_rel,
            derived: SharedDerived::default(),
        }
    }

    /// The catalog with the views read at session start.
    pub fn with_views(mut self, views: DerivedRelations) -> Self {
        self.derived = SharedDerived::new(views);
        self
    }

    /// The views and filled tables of the session, to add to as statements pass.
    pub fn derived(&self) -> &SharedDerived {
        &self.derived
    }

    /// `l` with what the views and filled tables it names are computed from.
    pub fn expand(&self, l: &Lineage) -> Lineage {
        self.derived.read().expand(l)
    }

    /// The source a result column of a view read at session start stands for.
    pub fn view_column(&self, rel: u32, attnum: i16) -> Option<Source> {
        self.derived.read().view_column(rel, attnum)
    }

    /// The column names of a view or table the catalog or the session defined.
    pub fn derived_column_names(&self, schema: Option<&str>, table: &str) -> Option<Vec<String>> {
        self.derived.read().column_names(schema, table)
    }

    /// The source of a result column, if it is one of interest.
    pub fn column(&self, rel: u32, attnum: i16) -> Option<&CatalogColumn> {
        self.columns.get(&(rel, attnum))
    }

    /// Whether the table existed when the catalog was read (so a column of it that
    /// is not listed matches no rule).
    pub fn knows_table(&self, rel: u32) -> bool {
        self.tables.contains(&rel) || (rel <= self.max_rel && self.max_rel > 0)
    }

    /// The listed columns of a table named `table` (and `schema`, if given).
    pub fn columns_of(&self, schema: Option<&str>, table: &str) -> Vec<&CatalogColumn> {
        let mut out: Vec<&CatalogColumn> = self
            .columns
            .values()
            .filter(|c| {
                c.table.eq_ignore_ascii_case(table)
                    && schema.is_none_or(|s| c.schema.eq_ignore_ascii_case(s))
            })
            .collect();
        out.sort_by_key(|c| c.position);
        out
    }
}

/// The lookup query for the given patterns' column globs.
pub fn lookup_sql<'a>(patterns: impl Iterator<Item = &'a ColumnPattern>) -> String {
    columns_sql(&interest_regex(patterns))
}

/// One regex for the patterns' column globs, quoted for a SQL literal.
fn interest_regex<'a>(patterns: impl Iterator<Item = &'a ColumnPattern>) -> String {
    let mut regexes: Vec<String> = patterns.map(ColumnPattern::column_regex).collect();
    regexes.sort();
    regexes.dedup();
    regexes.join("|").replace('\'', "''")
}

fn columns_sql(any: &str) -> String {
    format!(
        "SELECT a.attrelid::int8, n.nspname, c.relname, a.attnum, a.attname, \
         (SELECT count(*) FROM pg_catalog.pg_attribute b WHERE b.attrelid = a.attrelid \
         AND b.attnum > 0 AND NOT b.attisdropped AND b.attnum <= a.attnum), \
         (SELECT max(oid)::int8 FROM pg_catalog.pg_class) \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f') \
         AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND a.attname ~* '{any}' \
         UNION ALL SELECT 0, '', '', 0, '', 0, (SELECT max(oid)::int8 FROM pg_catalog.pg_class)"
    )
}

/// Runs the lookup on a logged-in upstream connection that is idle (before the
/// client's first command), reading its answer up to ReadyForQuery.
pub async fn load<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    leftover: &mut BytesMut,
    patterns: impl Iterator<Item = &ColumnPattern>,
    limit: usize,
    encoding: PgEncoding,
) -> Result<Catalog, String> {
    let mut columns = Vec::new();
    let mut max_rel = 0;
    let interest = interest_regex(patterns);
    let sql = columns_sql(&interest);
    idle_query::run(
        stream,
        leftover,
        &sql,
        limit,
        encoding,
        "catalog lookup",
        |body| {
            let row = parse_row(body, encoding).ok_or("a malformed catalog row")?;
            max_rel = row.1;
            if row.0.rel != 0 {
                columns.push(row.0);
            }
            Ok(())
        },
    )
    .await?;
    let catalog = Catalog::new(columns, max_rel);
    let mut raw = Vec::new();
    let views = idle_query::run(
        stream,
        leftover,
        &views_sql(&interest),
        limit,
        encoding,
        "view lookup",
        |body| {
            raw.push(parse_view_row(body, encoding).ok_or("a malformed view row")?);
            Ok(())
        },
    )
    .await;
    if let Err(e) = views {
        // The columns are known still; views then mask by their own column names.
        tracing::warn!(error = %e, "view lookup for masking failed; views mask by column name alone");
        return Ok(catalog);
    }
    let mut views = DerivedRelations::default();
    for v in raw {
        let (schema, name, names) = (v.schema.clone(), v.name.clone(), v.columns.clone());
        let def = on_right_stack(
            &v.definition,
            Settings::default(),
            move |sql| {
                sql.statements()
                    .ok()
                    .and_then(|st| view_definition(&schema, &name, names, st))
            },
            || None,
        )
        .await;
        match def {
            Some(d) => views.add_view(v.rel, &d),
            None => views.add_unreadable_view(v.rel, &v.schema, &v.name, v.columns),
        }
    }
    Ok(catalog.with_views(views))
}

/// One view the lookup found: its OID, name, printed definition and column names.
struct ViewRow {
    rel: u32,
    schema: String,
    name: String,
    definition: String,
    columns: Vec<String>,
}

/// The most views read at session start (each is one row of the lookup).
const MAX_VIEWS: usize = 2000;

/// The lookup of the views that depend, at any depth, on a relation that has a
/// column of interest (`interest` is the column-name regex).
fn views_sql(interest: &str) -> String {
    format!(
        "WITH RECURSIVE deps(rel) AS (\
         SELECT DISTINCT a.attrelid FROM pg_catalog.pg_attribute a \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attname ~* '{interest}' \
         UNION SELECT r.ev_class FROM deps \
         JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
         AND d.refobjid = deps.rel \
         AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass \
         JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> deps.rel) \
         SELECT v.oid::int8, n.nspname, v.relname, pg_catalog.pg_get_viewdef(v.oid), \
         (SELECT pg_catalog.json_agg(b.attname ORDER BY b.attnum) FROM pg_catalog.pg_attribute b \
         WHERE b.attrelid = v.oid AND b.attnum > 0 AND NOT b.attisdropped)::text \
         FROM deps JOIN pg_catalog.pg_class v ON v.oid = deps.rel AND v.relkind IN ('v','m') \
         JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') LIMIT {MAX_VIEWS}"
    )
}

fn parse_view_row(body: &[u8], encoding: PgEncoding) -> Option<ViewRow> {
    let mut r = Reader::new(b'D', body);
    if r.i16().ok()? != 5 {
        return None;
    }
    let mut text = || -> Option<String> { Some(encoding.decode(r.value().ok()??).into_owned()) };
    let rel = text()?.parse().ok()?;
    let schema = text()?;
    let name = text()?;
    let definition = text()?;
    let columns: Vec<String> = serde_json::from_str(&text()?).ok()?;
    Some(ViewRow {
        rel,
        schema,
        name,
        definition,
        columns,
    })
}

fn parse_row(body: &[u8], encoding: PgEncoding) -> Option<(CatalogColumn, u32)> {
    let mut r = Reader::new(b'D', body);
    if r.i16().ok()? != 7 {
        return None;
    }
    let mut text = || -> Option<String> { Some(encoding.decode(r.value().ok()??).into_owned()) };
    let rel = text()?.parse().ok()?;
    let schema = text()?;
    let table = text()?;
    let attnum = text()?.parse().ok()?;
    let name = text()?;
    let position = text()?.parse().ok()?;
    let max_rel = text()?.parse().ok()?;
    Some((
        CatalogColumn {
            rel,
            schema,
            table,
            attnum,
            position,
            name,
        },
        max_rel,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(rel: u32, table: &str, attnum: i16, position: usize, name: &str) -> CatalogColumn {
        CatalogColumn {
            rel,
            schema: "public".into(),
            table: table.into(),
            attnum,
            position,
            name: name.into(),
        }
    }

    #[test]
    fn tables_created_later_are_unknown() {
        let c = Catalog::new(vec![col(16400, "customers", 3, 2, "ssn")], 16500);
        assert!(c.column(16400, 3).is_some());
        assert!(c.knows_table(16400));
        assert!(c.knows_table(16450), "existed at start, no matching column");
        assert!(!c.knows_table(16600), "created after the lookup");
        assert!(
            !Catalog::default().knows_table(1),
            "a failed lookup knows nothing"
        );
        assert_eq!(c.columns_of(None, "CUSTOMERS").len(), 1);
        assert!(c.columns_of(Some("sales"), "customers").is_empty());
    }

    #[test]
    fn the_lookup_quotes_its_patterns() {
        let p = ColumnPattern::parse("o'neil").unwrap();
        let sql = lookup_sql(std::iter::once(&p));
        assert!(sql.contains("~* '^o\\''neil$'"), "{sql}");
    }
}
