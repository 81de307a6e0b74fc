//! How each column of a result is masked, decided once per RowDescription: which
//! column rule covers it (by the table and column it was read from, through the
//! catalog, or by its name, or else by the source columns the statement computed it
//! from, see `lineage`), and how its values are encoded on the wire.

use super::catalog::Catalog;
use crate::policy::mask::column_pattern::TableName;
use crate::policy::mask::detectors::Context;
use crate::policy::mask::detectors::ssn::column_suggests_ssn;
use crate::policy::mask::lineage::{Item, Lineage, Source, align};
use crate::policy::mask::session_masker::SessionMasker;
use crate::protocol::postgres::row::{Column, is_text_like};

/// How a column's values travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Text format.
    Text,
    /// Text format of a json or jsonb column (masked whole values stay JSON).
    TextJson,
    /// Binary format of a type whose binary form is its text.
    BinaryText,
    /// Binary jsonb: a version byte, then the text.
    BinaryJsonb,
    /// Binary format of any other type: nothing to scan; nulled under a column rule.
    BinaryOther,
}

/// How one column is masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMask {
    pub encoding: Encoding,
    /// The column rule covering it, and the label its values are counted under.
    pub rule: Option<(usize, String)>,
    /// The label a nulled binary value is counted under.
    pub nulled_label: Option<String>,
    /// What detectors know of the column (whether its name speaks of SSNs).
    pub context: Context,
    /// Whether the covered value is computed from the rule's column (by lineage)
    /// rather than being the column itself.
    pub transformed: bool,
}

/// What the statement says of a result's columns, beyond its RowDescription.
#[derive(Debug, Clone, Copy)]
pub enum StatementColumns<'a> {
    /// No statement text to read (a result no command claims).
    Unknown,
    /// The statement's select list.
    Read(&'a [Item]),
    /// The statement could not be read (or reads its rows from elsewhere, as
    /// `EXECUTE` and `FETCH` do): computed columns may hold anything.
    Unreadable,
}

/// The masks of every column of one result.
pub type ColumnPlan = Vec<ColumnMask>;

const JSON: u32 = 114;
const JSONB: u32 = 3802;

/// Plans the masking of a result described by `cols`, from the statement `stmt`.
pub fn plan(
    masker: &SessionMasker,
    catalog: &Catalog,
    cols: &[Column],
    stmt: StatementColumns<'_>,
) -> ColumnPlan {
    let lineage: Option<Vec<Lineage>> = match stmt {
        StatementColumns::Read(items) if masker.has_column_rules() => {
            let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
            Some(align(items, &names))
        }
        _ => None,
    };
    cols.iter()
        .enumerate()
        .map(|(i, c)| {
            let encoding = match (c.format, c.type_oid) {
                (1, JSONB) => Encoding::BinaryJsonb,
                (1, JSON) => Encoding::BinaryText,
                (1, oid) if is_text_like(oid) => Encoding::BinaryText,
                (1, _) => Encoding::BinaryOther,
                (_, JSON | JSONB) => Encoding::TextJson,
                _ => Encoding::Text,
            };
            // A column of a view read at session start stands for what the view
            // computes it from, whatever the statement's text says.
            let view_source = (masker.has_column_rules() && c.table_oid != 0)
                .then(|| catalog.view_column(c.table_oid, c.column_attr))
                .flatten();
            let (rule, transformed) = if !masker.has_column_rules() {
                (None, false)
            } else if let Some(r) = column_rule(masker, catalog, c) {
                (Some(r), false)
            } else {
                match (&lineage, stmt, view_source) {
                    (Some(l), _, Some(v)) => {
                        let mut l = l[i].clone();
                        if !l.sources.iter().any(|s| same_column(s, &v)) {
                            l.add_source(v);
                        }
                        lineage_rule(masker, catalog, &l)
                    }
                    (Some(l), _, None) => lineage_rule(masker, catalog, &l[i]),
                    (None, _, Some(v)) => lineage_rule(
                        masker,
                        catalog,
                        &Lineage {
                            sources: vec![v],
                            direct: true,
                        },
                    ),
                    // Computed columns of a statement the gateway cannot read: err on
                    // the side of masking, with the first column rule.
                    (None, StatementColumns::Unreadable, None) if c.table_oid == 0 => (
                        Some((0, format!("{}/lineage:unreadable", masker.columns[0].rule))),
                        true,
                    ),
                    _ => (None, false),
                }
            };
            let nulled_label = rule.as_ref().and_then(|(r, _)| {
                (encoding == Encoding::BinaryOther)
                    .then(|| format!("{}/binary_nulled:{}", masker.columns[*r].rule, c.name))
            });
            let source_name = (c.table_oid != 0)
                .then(|| catalog.column(c.table_oid, c.column_attr))
                .flatten()
                .map(|s| s.name.as_str());
            let lineage_says_ssn = lineage.as_ref().is_some_and(|l| {
                l[i].sources.iter().any(|s| match s {
                    Source::Column { column, .. } => column_suggests_ssn(column),
                    _ => false,
                })
            });
            let context = Context {
                ssn_column: column_suggests_ssn(&c.name)
                    || source_name.is_some_and(column_suggests_ssn)
                    || lineage_says_ssn,
            };
            ColumnMask {
                encoding,
                rule,
                nulled_label,
                context,
                transformed,
            }
        })
        .collect()
}

/// The first rule covering any source of a computed column; `transformed` unless the
/// column is exactly its one source.
pub(crate) fn lineage_rule(
    masker: &SessionMasker,
    catalog: &Catalog,
    l: &Lineage,
) -> (Option<(usize, String)>, bool) {
    let label = |r: usize, what: &str| (r, format!("{}/lineage:{what}", masker.columns[r].rule));
    // Views and filled tables stand also for what they are computed from.
    let l = &catalog.expand(l);
    for s in &l.sources {
        let found = match s {
            Source::WholeRow { schema, table } => {
                // The catalog knows which of the table's columns rules cover.
                let listed = catalog.columns_of(schema.as_deref(), table);
                listed
                    .iter()
                    .find_map(|c| {
                        masker
                            .column_rule(
                                Some(TableName {
                                    schema: &c.schema,
                                    table: &c.table,
                                }),
                                &c.name,
                            )
                            .map(|r| label(r, &format!("{}.{}", c.table, c.name)))
                    })
                    .or_else(|| masker.rule_for_source(s).map(|(r, what)| label(r, &what)))
                    // A table the catalog did not list (made in the session, or a
                    // view of one): its columns are not known, so it may hold any.
                    .or_else(|| listed.is_empty().then(|| label(0, &format!("{table}.*"))))
            }
            other => masker
                .rule_for_source(other)
                .map(|(r, what)| label(r, &what)),
        };
        if let Some(f) = found {
            return (Some(f), !l.direct);
        }
    }
    (None, false)
}

/// Whether two sources name the same column of the same table (one may leave the
/// schema out).
fn same_column(a: &Source, b: &Source) -> bool {
    match (a, b) {
        (
            Source::Column {
                schema: s1,
                table: Some(t1),
                column: c1,
            },
            Source::Column {
                schema: s2,
                table: Some(t2),
                column: c2,
            },
        ) => {
            t1.eq_ignore_ascii_case(t2)
                && c1.eq_ignore_ascii_case(c2)
                && (s1.is_none() || s2.is_none() || s1 == s2)
        }
        _ => false,
    }
}

fn column_rule(masker: &SessionMasker, catalog: &Catalog, c: &Column) -> Option<(usize, String)> {
    let label = |r: usize, what: &str| (r, format!("{}/column:{what}", masker.columns[r].rule));
    let by_name = || masker.column_rule(None, &c.name).map(|r| label(r, &c.name));
    if c.table_oid == 0 {
        return by_name();
    }
    match catalog.column(c.table_oid, c.column_attr) {
        Some(source) => masker
            .column_rule(
                Some(TableName {
                    schema: &source.schema,
                    table: &source.table,
                }),
                &source.name,
            )
            .map(|r| label(r, &format!("{}.{}", source.table, source.name)))
            .or_else(by_name),
        None if !catalog.knows_table(c.table_oid) => masker
            .column_rule_unknown_table(&c.name)
            .map(|r| label(r, &c.name)),
        None => by_name(),
    }
}
