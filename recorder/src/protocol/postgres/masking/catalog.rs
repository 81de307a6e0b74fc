//! Where result columns come from. A RowDescription names each column's table by
//! OID and its position by attribute number; column rules name tables by name. At
//! session start (only when a column rule applies) the gateway asks the upstream, on
//! the session's own connection and before the client's first command, for the
//! columns whose names match a rule: their table, schema, attribute number and
//! position. Tables created later in the session are told apart by their OIDs
//! (above the highest one seen at start) and are masked by column name alone.

use crate::policy::mask::column_pattern::ColumnPattern;
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
        }
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
    let mut regexes: Vec<String> = patterns.map(ColumnPattern::column_regex).collect();
    regexes.sort();
    regexes.dedup();
    let any = regexes.join("|").replace('\'', "''");
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
    let sql = lookup_sql(patterns);
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
    Ok(Catalog::new(columns, max_rel))
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
