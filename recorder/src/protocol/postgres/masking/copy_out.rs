//! COPY … TO STDOUT: the CopyOutResponse gives formats but no column names, so the
//! columns are read from the COPY statement itself (its table and column list, or
//! its query's select list, through the catalog), and each CopyData row is masked
//! field by field in its own format (text, csv or binary). PostgreSQL sends one row
//! per CopyData message.

use super::catalog::Catalog;
use super::column_plan::{ColumnMask, Encoding, lineage_rule};
use super::data_row::{ValueOutcome, mask_value};
use crate::policy::mask::column_pattern::TableName;
use crate::policy::mask::detectors::Context;
use crate::policy::mask::detectors::ssn::column_suggests_ssn;
use crate::policy::mask::lineage::{Item, Lineage, Source, of_query};
use crate::policy::mask::session_masker::SessionMasker;
use crate::policy::mask::tally::Tally;
use crate::policy::sql::{Sql, is_shallow, on_right_stack_blocking};
use crate::protocol::postgres::encoding::PgEncoding;
use crate::protocol::postgres::wire::Builder;
use bytes::Bytes;
use sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, Expr, ObjectName, SelectItem,
    SetExpr, Statement, TableFactor,
};
use std::sync::Arc;

/// How the rows of one COPY OUT are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text {
        delimiter: u8,
    },
    Csv {
        delimiter: u8,
        quote: u8,
        header: bool,
    },
    Binary,
}

/// How one COPY OUT is masked.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    pub format: CopyFormat,
    /// Masks by field position (text or binary-nulled, by the format).
    pub columns: Vec<ColumnMask>,
    /// The mask of every field past `columns`, when the query's select list could not
    /// be laid over the fields (a `*` of unknown width before a covered column).
    pub rest: Option<ColumnMask>,
    /// Rows seen so far (the CSV header and the binary header come first).
    rows: u64,
}

/// Plans the masking of a COPY OUT of `sql`; `binary` is the CopyOutResponse's
/// overall format. The statement is read within the policy parse budget, on a deep
/// stack when it is long; one it cannot read is masked by value detectors only.
pub fn plan_copy(
    masker: &Arc<SessionMasker>,
    catalog: &Catalog,
    sql: &str,
    binary: bool,
) -> CopyPlan {
    if is_shallow(sql) {
        let parsed = Sql::new(sql);
        return plan_parsed(masker, catalog, parsed.statements().ok(), binary);
    }
    let (m, c) = (masker.clone(), catalog.clone());
    on_right_stack_blocking(
        sql,
        Default::default(),
        move |parsed: &Sql<'_>| plan_parsed(&m, &c, parsed.statements().ok(), binary),
        || CopyPlan::unmasked(binary),
    )
}

fn plan_parsed(
    masker: &SessionMasker,
    catalog: &Catalog,
    parsed: Option<&[Statement]>,
    binary: bool,
) -> CopyPlan {
    let copy = parsed.and_then(|s| {
        s.iter().find_map(|st| match st {
            Statement::Copy {
                source,
                to: true,
                options,
                legacy_options,
                ..
            } => Some((source, options, legacy_options)),
            _ => None,
        })
    });
    let mut format = if binary {
        CopyFormat::Binary
    } else {
        CopyFormat::Text { delimiter: b'\t' }
    };
    let mut names: Vec<ColumnSource> = Vec::new();
    if let Some((source, options, legacy)) = copy {
        format = copy_format(binary, options, legacy);
        names = column_sources(source, catalog);
    }
    let encoding = if binary {
        Encoding::BinaryOther
    } else {
        Encoding::Text
    };
    let mut columns: Vec<ColumnMask> = names
        .iter()
        .map(|(table, candidates)| {
            let rule = candidates
                .iter()
                .find_map(|n| rule_for(masker, catalog, table.as_ref(), n));
            let nulled_label = rule.as_ref().and_then(|(r, _)| {
                binary.then(|| {
                    format!(
                        "{}/binary_nulled:{}",
                        masker.columns[*r].rule,
                        candidates.first().map_or("?", String::as_str)
                    )
                })
            });
            ColumnMask {
                encoding,
                rule,
                nulled_label,
                context: Context {
                    ssn_column: candidates.iter().any(|n| column_suggests_ssn(n)),
                },
                transformed: false,
            }
        })
        .collect();
    let mask_of = |l: &Lineage| {
        let (rule, transformed) = lineage_rule(masker, catalog, l);
        let nulled_label = rule.as_ref().and_then(|(r, label)| {
            binary.then(|| format!("{}/binary_nulled:{label}", masker.columns[*r].rule))
        });
        ColumnMask {
            encoding,
            rule,
            nulled_label,
            context: Context::default(),
            transformed,
        }
    };
    // Fields without a rule of their own take the rules of what they are made from.
    let fill = |columns: &mut Vec<ColumnMask>, lineage: &[Lineage]| {
        for (i, l) in lineage.iter().enumerate() {
            match columns.get_mut(i) {
                Some(c) if c.rule.is_some() => {}
                Some(c) => {
                    let m = mask_of(l);
                    c.rule = m.rule;
                    c.nulled_label = m.nulled_label;
                    c.transformed = m.transformed;
                }
                None => columns.push(mask_of(l)),
            }
        }
    };
    let mut rest = None;
    match copy {
        // Computed columns of a query get the rules of the columns they are made from.
        Some((CopySource::Query(q), _, _)) if masker.has_column_rules() => {
            let (lineage, unplaced) = query_lineage(&of_query(q), catalog);
            fill(&mut columns, &lineage);
            rest = unplaced.map(|l| mask_of(&l)).filter(|m| m.rule.is_some());
        }
        // A view's or a filled table's columns carry what they were made from.
        Some((
            CopySource::Table {
                table_name,
                columns: listed,
            },
            _,
            _,
        )) if masker.has_column_rules() => {
            if let Some((schema, table)) = split_name(table_name) {
                rest = derived_table(
                    &mut columns,
                    &schema,
                    &table,
                    listed,
                    catalog,
                    &fill,
                    &mask_of,
                );
            }
        }
        _ => {}
    }
    CopyPlan {
        format,
        columns,
        rest,
        rows: 0,
    }
}

/// Plans the fields of a COPY of a view or of a table the session filled from other
/// columns: by name where its columns are known, else every field may hold any of
/// what it was made from (the mask of every field, returned as the plan's `rest`).
fn derived_table(
    columns: &mut Vec<ColumnMask>,
    schema: &Option<String>,
    table: &str,
    listed: &[sqlparser::ast::Ident],
    catalog: &Catalog,
    fill: &dyn Fn(&mut Vec<ColumnMask>, &[Lineage]),
    mask_of: &dyn Fn(&Lineage) -> ColumnMask,
) -> Option<ColumnMask> {
    let whole = Lineage {
        sources: vec![Source::WholeRow {
            schema: schema.clone(),
            table: table.to_string(),
        }],
        direct: false,
    };
    if catalog.expand(&whole).sources.len() <= 1 {
        return None; // a plain table: its own columns' rules are all there is
    }
    let names: Option<Vec<String>> = if listed.is_empty() {
        catalog.derived_column_names(schema.as_deref(), table)
    } else {
        Some(listed.iter().map(|c| c.value.clone()).collect())
    };
    match names {
        Some(names) => {
            let lineage: Vec<Lineage> = names
                .into_iter()
                .map(|column| Lineage {
                    sources: vec![Source::Column {
                        schema: schema.clone(),
                        table: Some(table.to_string()),
                        column,
                    }],
                    direct: true,
                })
                .collect();
            fill(columns, &lineage);
            None
        }
        None => {
            let every = mask_of(&whole);
            every.rule.as_ref()?;
            let n = columns.len();
            fill(columns, &vec![whole; n]);
            Some(every)
        }
    }
}

/// The lineage of each field of a COPY of a query. COPY has no RowDescription, so a
/// `*` is as wide as the catalog says its table is; after a `*` it cannot size, the
/// fields cannot be placed, and what the rest of the list reads is returned whole.
fn query_lineage(items: &[Item], catalog: &Catalog) -> (Vec<Lineage>, Option<Lineage>) {
    let mut out = Vec::new();
    for (k, it) in items.iter().enumerate() {
        match it {
            Item::One(l) => out.push(l.clone()),
            Item::AllOf(tables) => {
                let listed = match tables.as_slice() {
                    [(schema, table)] => catalog.columns_of(schema.as_deref(), table),
                    _ => Vec::new(),
                };
                // A view's or a filled table's columns, by the names it was defined with.
                let derived = match tables.as_slice() {
                    [(schema, table)] if listed.is_empty() => catalog
                        .derived_column_names(schema.as_deref(), table)
                        .map(|names| (schema, table, names)),
                    _ => None,
                };
                if let Some((schema, table, names)) = derived {
                    out.extend(names.into_iter().map(|column| Lineage {
                        sources: vec![Source::Column {
                            schema: schema.clone(),
                            table: Some(table.clone()),
                            column,
                        }],
                        direct: true,
                    }));
                    continue;
                }
                if listed.is_empty() {
                    let mut rest = Lineage::default();
                    // What the `*`'s own relations were made from, if any is derived.
                    for (schema, table) in tables {
                        let whole = Lineage {
                            sources: vec![Source::WholeRow {
                                schema: schema.clone(),
                                table: table.clone(),
                            }],
                            direct: false,
                        };
                        rest.sources
                            .extend(catalog.expand(&whole).sources.into_iter().skip(1));
                    }
                    for later in &items[k + 1..] {
                        if let Item::One(l) = later {
                            rest.sources.extend(l.sources.iter().cloned());
                        }
                    }
                    return (out, (!rest.sources.is_empty()).then_some(rest));
                }
                let start = out.len();
                let width = listed.last().map_or(0, |c| c.position);
                out.resize(start + width, Lineage::default());
                for c in listed {
                    out[start + c.position - 1] = Lineage {
                        sources: vec![Source::Column {
                            schema: Some(c.schema.clone()),
                            table: Some(c.table.clone()),
                            column: c.name.clone(),
                        }],
                        direct: true,
                    };
                }
            }
        }
    }
    (out, None)
}

fn copy_format(binary: bool, options: &[CopyOption], legacy: &[CopyLegacyOption]) -> CopyFormat {
    let (mut csv, mut delimiter, mut quote, mut header) = (false, None, b'"', false);
    for o in options {
        match o {
            CopyOption::Format(f) => csv = f.value.eq_ignore_ascii_case("csv"),
            CopyOption::Delimiter(c) => delimiter = Some(*c as u8),
            CopyOption::Quote(c) => quote = *c as u8,
            CopyOption::Header(h) => header = *h,
            _ => {}
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(opts) => {
                csv = true;
                for c in opts {
                    match c {
                        CopyLegacyCsvOption::Header => header = true,
                        CopyLegacyCsvOption::Quote(q) => quote = *q as u8,
                        _ => {}
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => delimiter = Some(*c as u8),
            CopyLegacyOption::Header => header = true,
            _ => {}
        }
    }
    if binary {
        CopyFormat::Binary
    } else if csv {
        CopyFormat::Csv {
            delimiter: delimiter.unwrap_or(b','),
            quote,
            header,
        }
    } else {
        CopyFormat::Text {
            delimiter: delimiter.unwrap_or(b'\t'),
        }
    }
}

/// A table as a COPY statement names it: (schema, table).
type SourceTable = (Option<String>, String);

/// One output column: the table it is read from (if one can be told) and the names
/// it may go by (source name first, then alias).
type ColumnSource = (Option<SourceTable>, Vec<String>);

fn split_name(name: &ObjectName) -> Option<SourceTable> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [t] => Some((None, t.clone())),
        [.., s, t] => Some((Some(s.clone()), t.clone())),
        [] => None,
    }
}

/// For each output position: the table it is read from (if one can be told) and
/// the names it may go by (source name first, then alias).
fn column_sources(source: &CopySource, catalog: &Catalog) -> Vec<ColumnSource> {
    let all_of = |table: &SourceTable| -> Vec<ColumnSource> {
        let cols = catalog.columns_of(table.0.as_deref(), &table.1);
        let width = cols.last().map_or(0, |c| c.position);
        let mut out = vec![(Some(table.clone()), Vec::new()); width];
        for c in cols {
            out[c.position - 1].1.push(c.name.clone());
        }
        out
    };
    match source {
        CopySource::Table {
            table_name,
            columns,
        } => {
            let Some(table) = split_name(table_name) else {
                return Vec::new();
            };
            if columns.is_empty() {
                all_of(&table)
            } else {
                columns
                    .iter()
                    .map(|c| (Some(table.clone()), vec![c.value.clone()]))
                    .collect()
            }
        }
        CopySource::Query(q) => {
            let SetExpr::Select(select) = q.body.as_ref() else {
                return Vec::new();
            };
            let single = match select.from.as_slice() {
                [t] if t.joins.is_empty() => match &t.relation {
                    TableFactor::Table { name, .. } => split_name(name),
                    _ => None,
                },
                _ => None,
            };
            let mut out = Vec::new();
            for item in &select.projection {
                match item {
                    SelectItem::Wildcard(_) => match &single {
                        Some(t) => out.extend(all_of(t)),
                        None => return out,
                    },
                    SelectItem::UnnamedExpr(e) => out.push((single.clone(), source_name(e))),
                    SelectItem::ExprWithAlias { expr, alias } => {
                        let mut names = source_name(expr);
                        names.push(alias.value.clone());
                        out.push((single.clone(), names));
                    }
                    _ => out.push((None, Vec::new())),
                }
            }
            out
        }
    }
}

fn source_name(e: &Expr) -> Vec<String> {
    match e {
        Expr::Identifier(i) => vec![i.value.clone()],
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|i| i.value.clone()).into_iter().collect()
        }
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => source_name(inner),
        _ => Vec::new(),
    }
}

fn rule_for(
    masker: &SessionMasker,
    catalog: &Catalog,
    table: Option<&SourceTable>,
    name: &str,
) -> Option<(usize, String)> {
    let label = |r: usize, what: &str| (r, format!("{}/column:{what}", masker.columns[r].rule));
    if let Some((schema, t)) = table
        && let Some(c) = catalog
            .columns_of(schema.as_deref(), t)
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    {
        let source = TableName {
            schema: &c.schema,
            table: &c.table,
        };
        return masker
            .column_rule(Some(source), &c.name)
            .map(|r| label(r, &format!("{}.{}", c.table, c.name)));
    }
    // Not a column the catalog listed: unqualified rules by name, and qualified ones
    // by their column part, since the table cannot be told for sure.
    masker
        .column_rule_unknown_table(name)
        .map(|r| label(r, name))
}

impl CopyPlan {
    /// The plan of a side that masks nothing.
    pub fn unmasked(binary: bool) -> Self {
        CopyPlan {
            format: if binary {
                CopyFormat::Binary
            } else {
                CopyFormat::Text { delimiter: b'\t' }
            },
            columns: Vec::new(),
            rest: None,
            rows: 0,
        }
    }

    /// Masks one CopyData message (`raw`, tag and length included); `None` when it
    /// is unchanged.
    pub fn mask(
        &mut self,
        masker: &SessionMasker,
        raw: &[u8],
        tally: &mut Tally,
        enc: PgEncoding,
    ) -> Option<Bytes> {
        let body = &raw[5..];
        let first = self.rows == 0;
        self.rows += 1;
        let new_body = match self.format {
            CopyFormat::Text { delimiter } => {
                self.mask_text_row(masker, body, delimiter, tally, enc)
            }
            CopyFormat::Csv {
                delimiter,
                quote,
                header,
            } => {
                if first && header {
                    return None;
                }
                self.mask_csv_row(masker, body, delimiter, quote, tally, enc)
            }
            CopyFormat::Binary => self.mask_binary(masker, body, first, tally, enc),
        }?;
        Some(
            Builder::with_capacity(Some(b'd'), new_body.len() + 5)
                .raw(&new_body)
                .finish(),
        )
    }

    fn mask_text_row(
        &self,
        masker: &SessionMasker,
        body: &[u8],
        delimiter: u8,
        tally: &mut Tally,
        enc: PgEncoding,
    ) -> Option<Vec<u8>> {
        let (line, eol) = match body.strip_suffix(b"\n") {
            Some(l) => (l, &b"\n"[..]),
            None => (body, &b""[..]),
        };
        let fields = split_escaped(line, delimiter);
        let mut changed = false;
        let mut out = Vec::with_capacity(body.len() + 16);
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            if *f == b"\\N" {
                out.extend_from_slice(f);
                continue;
            }
            let value = unescape_text(f);
            match mask_value(
                masker,
                self.columns.get(i).or(self.rest.as_ref()),
                &value,
                tally,
                enc,
            ) {
                ValueOutcome::Keep => out.extend_from_slice(f),
                ValueOutcome::Null => {
                    changed = true;
                    out.extend_from_slice(b"\\N");
                }
                ValueOutcome::Bytes(b) => {
                    changed = true;
                    escape_text(&b, delimiter, &mut out);
                }
            }
        }
        out.extend_from_slice(eol);
        changed.then_some(out)
    }

    fn mask_csv_row(
        &self,
        masker: &SessionMasker,
        body: &[u8],
        delimiter: u8,
        quote: u8,
        tally: &mut Tally,
        enc: PgEncoding,
    ) -> Option<Vec<u8>> {
        let (line, eol) = match body.strip_suffix(b"\n") {
            Some(l) => (l, &b"\n"[..]),
            None => (body, &b""[..]),
        };
        let mut changed = false;
        let mut out = Vec::with_capacity(body.len() + 16);
        for (i, (raw, value, quoted)) in split_csv(line, delimiter, quote).into_iter().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            if raw.is_empty() && !quoted {
                continue; // NULL
            }
            match mask_value(
                masker,
                self.columns.get(i).or(self.rest.as_ref()),
                &value,
                tally,
                enc,
            ) {
                ValueOutcome::Keep => out.extend_from_slice(raw),
                ValueOutcome::Null => changed = true,
                ValueOutcome::Bytes(b) => {
                    changed = true;
                    out.push(quote);
                    for &c in &b {
                        if c == quote {
                            out.push(quote);
                        }
                        out.push(c);
                    }
                    out.push(quote);
                }
            }
        }
        out.extend_from_slice(eol);
        changed.then_some(out)
    }

    fn mask_binary(
        &self,
        masker: &SessionMasker,
        body: &[u8],
        first: bool,
        tally: &mut Tally,
        enc: PgEncoding,
    ) -> Option<Vec<u8>> {
        const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
        let mut pos = 0;
        if first && body.starts_with(SIGNATURE) {
            let ext = body.get(15..19)?;
            pos = 19 + u32::from_be_bytes(ext.try_into().ok()?) as usize;
        }
        let mut changed = false;
        let mut out = body.get(..pos)?.to_vec();
        while pos + 2 <= body.len() {
            let n = i16::from_be_bytes([body[pos], body[pos + 1]]);
            out.extend_from_slice(&body[pos..pos + 2]);
            pos += 2;
            if n < 0 {
                break; // the trailer
            }
            for i in 0..n as usize {
                let at = pos;
                let len = i32::from_be_bytes(body.get(pos..pos + 4)?.try_into().ok()?);
                pos += 4;
                let outcome = if len < 0 {
                    ValueOutcome::Keep
                } else {
                    let v = body.get(pos..pos + len as usize)?;
                    pos += len as usize;
                    // Types are unknown here: a covered field is nulled, others are
                    // scanned as text when they are UTF-8.
                    match self.columns.get(i).or(self.rest.as_ref()) {
                        Some(m) if m.rule.is_some() => mask_value(masker, Some(m), v, tally, enc),
                        _ if std::str::from_utf8(v).is_ok() => {
                            mask_value(masker, None, v, tally, enc)
                        }
                        _ => ValueOutcome::Keep,
                    }
                };
                changed |= !matches!(outcome, ValueOutcome::Keep);
                outcome.put_into(&mut out, &body[at..pos]);
            }
        }
        out.extend_from_slice(body.get(pos..)?);
        changed.then_some(out)
    }
}

/// Splits a COPY text line at unescaped delimiters.
fn split_escaped(line: &[u8], delimiter: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < line.len() {
        if line[i] == b'\\' {
            i += 2;
            continue;
        }
        if line[i] == delimiter {
            out.push(&line[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.push(&line[start.min(line.len())..]);
    out
}

/// Undoes COPY text escapes (the common ones; others are kept as written).
fn unescape_text(f: &[u8]) -> Vec<u8> {
    if !f.contains(&b'\\') {
        return f.to_vec();
    }
    let mut out = Vec::with_capacity(f.len());
    let mut i = 0;
    while i < f.len() {
        if f[i] == b'\\' && i + 1 < f.len() {
            let c = match f[i + 1] {
                b't' => b'\t',
                b'n' => b'\n',
                b'r' => b'\r',
                b'b' => 8,
                b'f' => 12,
                b'v' => 11,
                other => other,
            };
            out.push(c);
            i += 2;
        } else {
            out.push(f[i]);
            i += 1;
        }
    }
    out
}

fn escape_text(v: &[u8], delimiter: u8, out: &mut Vec<u8>) {
    for &c in v {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if c == delimiter => {
                out.push(b'\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// Splits a CSV line into (raw field, value, quoted).
fn split_csv(line: &[u8], delimiter: u8, quote: u8) -> Vec<(&[u8], Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        let mut value = Vec::new();
        let mut quoted = false;
        let mut in_quotes = false;
        while i < line.len() {
            let c = line[i];
            if in_quotes {
                if c == quote {
                    if line.get(i + 1) == Some(&quote) {
                        value.push(quote);
                        i += 2;
                        continue;
                    }
                    in_quotes = false;
                } else {
                    value.push(c);
                }
            } else if c == quote {
                in_quotes = true;
                quoted = true;
            } else if c == delimiter {
                break;
            } else {
                value.push(c);
            }
            i += 1;
        }
        out.push((&line[start..i], value, quoted));
        if i >= line.len() {
            break;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_split_at_unescaped_delimiters() {
        assert_eq!(
            split_escaped(b"a\\tb\tc\\\\\td", b'\t'),
            vec![&b"a\\tb"[..], b"c\\\\", b"d"]
        );
        assert_eq!(unescape_text(b"a\\tb\\\\"), b"a\tb\\");
        let mut out = Vec::new();
        escape_text(b"x\ty\\", b'\t', &mut out);
        assert_eq!(out, b"x\\ty\\\\");
    }

    #[test]
    fn csv_fields_unquote() {
        let f = split_csv(b"1,\"a,\"\"b\"\"\",,\"\"", b',', b'"');
        assert_eq!(f.len(), 4);
        assert_eq!(f[1].1, b"a,\"b\"");
        assert!(f[2].0.is_empty() && !f[2].2, "NULL");
        assert!(f[3].2 && f[3].1.is_empty(), "empty string");
    }
}
