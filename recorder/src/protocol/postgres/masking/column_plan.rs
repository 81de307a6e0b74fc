//! How each column of a result is masked, decided once per RowDescription: which
//! column rule covers it (by the table and column it was read from, through the
//! catalog, or by its name), and how its values are encoded on the wire.

use super::catalog::Catalog;
use crate::policy::mask::column_pattern::TableName;
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
}

/// The masks of every column of one result.
pub type ColumnPlan = Vec<ColumnMask>;

const JSON: u32 = 114;
const JSONB: u32 = 3802;

/// Plans the masking of a result described by `cols`.
pub fn plan(masker: &SessionMasker, catalog: &Catalog, cols: &[Column]) -> ColumnPlan {
    cols.iter()
        .map(|c| {
            let encoding = match (c.format, c.type_oid) {
                (1, JSONB) => Encoding::BinaryJsonb,
                (1, JSON) => Encoding::BinaryText,
                (1, oid) if is_text_like(oid) => Encoding::BinaryText,
                (1, _) => Encoding::BinaryOther,
                (_, JSON | JSONB) => Encoding::TextJson,
                _ => Encoding::Text,
            };
            let rule = if masker.has_column_rules() {
                column_rule(masker, catalog, c)
            } else {
                None
            };
            let nulled_label = rule.as_ref().and_then(|(r, _)| {
                (encoding == Encoding::BinaryOther)
                    .then(|| format!("{}/binary_nulled:{}", masker.columns[*r].rule, c.name))
            });
            ColumnMask {
                encoding,
                rule,
                nulled_label,
            }
        })
        .collect()
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
