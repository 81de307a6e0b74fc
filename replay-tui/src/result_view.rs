//! What a command returned, shaped for the result pane: a table with headers (from
//! the recorded text rendering: a header line, then tab-separated rows), an error with
//! its SQLSTATE, or plain lines; and the raw payload as hex and ASCII.

/// A result ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultView {
    Table {
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
        /// Columns named by the event's `masked` list.
        masked_columns: Vec<bool>,
        notes: Vec<String>,
    },
    Error {
        sqlstate: Option<String>,
        message: String,
        detail: Vec<String>,
    },
    Lines(Vec<String>),
}

/// Whether a cell holds a value the gateway masked (the archive's text contract
/// says what masking writes).
pub use tapline_store::text_format::is_masked_value;
use tapline_store::text_format::{COLUMN_SEPARATOR, MaskedEntry, is_note, parse_error_text};

impl ResultView {
    /// Builds the view of an event from its kind, text and masked list.
    pub fn from_event(kind: &str, text: Option<&str>, masked: &[String]) -> Self {
        let text = text.unwrap_or_default();
        if kind == "error" {
            let (sqlstate, message, detail) = parse_error_text(text);
            return ResultView::Error {
                sqlstate: sqlstate.map(str::to_string),
                message: message.to_string(),
                detail: detail.into_iter().map(str::to_string).collect(),
            };
        }
        let mut lines = text.lines().peekable();
        let Some(first) = lines.peek().copied() else {
            return ResultView::Lines(Vec::new());
        };
        let columns: Vec<String> = first.split(COLUMN_SEPARATOR).map(str::to_string).collect();
        let rest: Vec<&str> = lines.skip(1).collect();
        let tabular = columns.len() > 1 || rest.iter().any(|l| !is_note(l));
        if kind != "result"
            || !tabular
            || rest
                .iter()
                .any(|l| !is_note(l) && l.split(COLUMN_SEPARATOR).count() != columns.len())
        {
            return ResultView::Lines(text.lines().map(str::to_string).collect());
        }
        let masked_names: Vec<&str> = masked
            .iter()
            .filter_map(|m| MaskedEntry::parse(m)?.column())
            .collect();
        let masked_columns = columns
            .iter()
            .map(|c| masked_names.iter().any(|m| m == c))
            .collect();
        let (notes, rows): (Vec<&str>, Vec<&str>) = rest.into_iter().partition(|l| is_note(l));
        ResultView::Table {
            columns,
            rows: rows
                .into_iter()
                .map(|l| l.split(COLUMN_SEPARATOR).map(str::to_string).collect())
                .collect(),
            masked_columns,
            notes: notes.into_iter().map(str::to_string).collect(),
        }
    }
}

/// Column widths fitted to the values (headers included), each capped so one long
/// value cannot push every other column off screen.
pub fn fit_widths(columns: &[String], rows: &[Vec<String>], cap: usize) -> Vec<usize> {
    use unicode_width::UnicodeWidthStr;
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|v| v.width())
                .chain([c.width()])
                .max()
                .unwrap_or(1)
                .clamp(1, cap)
        })
        .collect()
}

/// The payload as a classic hex dump: offset, 16 bytes in hex, then ASCII.
pub fn hex_dump(bytes: &[u8]) -> Vec<String> {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(i, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let ascii: String = chunk
                .iter()
                .map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("{:08x}  {:<47}  {ascii}", i * 16, hex.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_become_tables_errors_and_lines() {
        let v = ResultView::from_event(
            "result",
            Some("id\temail\n1\t[redacted]\n2\tb@x"),
            &["pii/column:customers.email=2".into()],
        );
        let ResultView::Table {
            columns,
            rows,
            masked_columns,
            ..
        } = v
        else {
            panic!()
        };
        assert_eq!(columns, vec!["id", "email"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(masked_columns, vec![false, true]);
        assert!(is_masked_value("h:0123456789abcdef"), "hash tokens");
        assert!(!is_masked_value("h:not-a-token"));
        let e = ResultView::from_event(
            "error",
            Some("42P01 ERROR: relation \"x\" does not exist"),
            &[],
        );
        assert_eq!(
            e,
            ResultView::Error {
                sqlstate: Some("42P01".into()),
                message: "ERROR: relation \"x\" does not exist".into(),
                detail: vec![]
            }
        );
        assert!(matches!(
            ResultView::from_event("result", Some("INSERT 0 1"), &[]),
            ResultView::Lines(_)
        ));
        assert_eq!(
            hex_dump(b"Q\0\0\0\x0dselect 1\0")[0].len(),
            8 + 2 + 47 + 2 + 14
        );
        assert_eq!(
            fit_widths(&["a".into()], &[vec!["abcdef".into()]], 4),
            vec![4]
        );
    }
}
