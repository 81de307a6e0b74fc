//! RowDescription and DataRow, and the readable rendering of result rows.

use super::encoding::PgEncoding;
use super::wire::{DecodeError, Reader};
use crate::text_format::COLUMN_SEPARATOR;

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub table_oid: u32,
    pub column_attr: i16,
    pub type_oid: u32,
    pub format: i16,
}

/// Decodes a RowDescription body (column names in the session's encoding).
pub fn parse_row_description(
    body: &[u8],
    encoding: PgEncoding,
) -> Result<Vec<Column>, DecodeError> {
    let mut r = Reader::in_encoding(b'T', body, encoding);
    let n = r.count16()?;
    let mut cols = Vec::with_capacity(n.min(1664));
    for _ in 0..n {
        let name = r.cstr()?.to_string();
        let table_oid = r.i32()? as u32;
        let column_attr = r.i16()?;
        let type_oid = r.i32()? as u32;
        let _type_len = r.i16()?;
        let _type_mod = r.i32()?;
        let format = r.i16()?;
        cols.push(Column {
            name,
            table_oid,
            column_attr,
            type_oid,
            format,
        });
    }
    Ok(cols)
}

/// Applies Bind result-format codes to a statement's columns (RowDescription from a
/// statement Describe always says text).
pub fn apply_result_formats(cols: &mut [Column], formats: &[i16]) {
    match formats.len() {
        0 => {}
        1 => cols.iter_mut().for_each(|c| c.format = formats[0]),
        _ => cols
            .iter_mut()
            .zip(formats)
            .for_each(|(c, &f)| c.format = f),
    }
}

/// Appends one DataRow as a tab-separated line to `out`; returns an error for a
/// malformed row. Text values are written as they are (tabs and newlines escaped),
/// NULL as `NULL`, binary values as `\x` hex.
pub fn render_data_row(
    body: &[u8],
    cols: Option<&[Column]>,
    encoding: PgEncoding,
    out: &mut String,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(b'D', body);
    let n = r.count16()?;
    for i in 0..n {
        if i > 0 {
            out.push(COLUMN_SEPARATOR);
        }
        match r.value()? {
            None => out.push_str("NULL"),
            Some(v) => {
                let col = cols.and_then(|c| c.get(i));
                if let Some(col) = col.filter(|c| c.format == 1) {
                    match render_binary(col.type_oid, v, encoding) {
                        Some(text) => escape_into(&text, out),
                        None => {
                            out.push_str("\\x");
                            out.push_str(&hex::encode(v));
                        }
                    }
                } else {
                    escape_into(&encoding.decode(v), out);
                }
            }
        }
    }
    out.push('\n');
    Ok(())
}

/// Types whose binary format is their text (text, varchar, bpchar, name, json,
/// unknown) or close to it (jsonb, after a version byte): shown quoted as strings.
pub fn is_text_like(type_oid: u32) -> bool {
    matches!(type_oid, 25 | 1043 | 1042 | 19 | 114 | 705 | 3802)
}

/// Decodes a binary-format value of a common type (bool, integers, floats, text-like,
/// jsonb) for display; `None` for other types, which are shown as hex. Text in binary
/// format is in the client encoding too.
pub fn render_binary(type_oid: u32, v: &[u8], encoding: PgEncoding) -> Option<String> {
    Some(match (type_oid, v.len()) {
        (16, 1) => (v[0] != 0).to_string(),
        (21, 2) => i16::from_be_bytes([v[0], v[1]]).to_string(),
        (23, 4) | (26, 4) => i32::from_be_bytes([v[0], v[1], v[2], v[3]]).to_string(),
        (20, 8) => i64::from_be_bytes(v.try_into().ok()?).to_string(),
        (700, 4) => f32::from_be_bytes([v[0], v[1], v[2], v[3]]).to_string(),
        (701, 8) => f64::from_be_bytes(v.try_into().ok()?).to_string(),
        (3802, _) if v.first() == Some(&1) => encoding.decode(&v[1..]).into_owned(),
        (3802, _) => return None,
        (oid, _) if is_text_like(oid) => encoding.decode(v).into_owned(),
        _ => return None,
    })
}

/// Appends the column names as a tab-separated header line.
pub fn render_header(cols: &[Column], out: &mut String) {
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push(COLUMN_SEPARATOR);
        }
        escape_into(&c.name, out);
    }
    out.push('\n');
}

fn escape_into(s: &str, out: &mut String) {
    for ch in s.chars() {
        match ch {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
}

/// The row count a CommandComplete tag reports: `SELECT 5`, `INSERT 0 5`, `COPY 5`…
pub fn tag_row_count(tag: &str) -> Option<u64> {
    let mut parts = tag.split_whitespace();
    let verb = parts.next()?;
    let last = tag.split_whitespace().last()?;
    match verb {
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "COPY" | "FETCH" | "MOVE" | "MERGE" => {
            last.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::postgres::encoding::UTF8;
    use crate::protocol::postgres::wire::Builder;

    #[test]
    fn rows_render_tab_separated_with_nulls() {
        let desc = Builder::new(Some(b'T'))
            .i16(2)
            .cstr("id")
            .i32(0)
            .i16(0)
            .i32(23)
            .i16(4)
            .i32(-1)
            .i16(0)
            .cstr("name")
            .i32(0)
            .i16(0)
            .i32(25)
            .i16(-1)
            .i32(-1)
            .i16(0)
            .finish();
        let cols = parse_row_description(&desc[5..], UTF8).unwrap();
        let row = Builder::new(Some(b'D'))
            .i16(2)
            .i32(1)
            .raw(b"1")
            .i32(-1)
            .finish();
        let mut out = String::new();
        render_header(&cols, &mut out);
        render_data_row(&row[5..], Some(&cols), UTF8, &mut out).unwrap();
        assert_eq!(out, "id\tname\n1\tNULL\n");
    }

    #[test]
    fn a_truncated_data_row_is_malformed() {
        let row = Builder::new(Some(b'D')).i16(2).i32(5).raw(b"ab").finish();
        assert!(render_data_row(&row[5..], None, UTF8, &mut String::new()).is_err());
    }

    #[test]
    fn tags_give_row_counts() {
        assert_eq!(tag_row_count("SELECT 3"), Some(3));
        assert_eq!(tag_row_count("INSERT 0 7"), Some(7));
        assert_eq!(tag_row_count("COPY 12"), Some(12));
        assert_eq!(tag_row_count("CREATE TABLE"), None);
    }
}
