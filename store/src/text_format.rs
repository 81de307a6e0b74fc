//! The readable forms inside events that other tools read back: the `text` of a
//! result or an error, the markers masking leaves in values, and the entries of the
//! `masked` column. Taps write them, and the `commands` view, `tapline sessions`, the
//! spool's counts and the replay viewer parse them; this file is the one contract
//! between them, so a change of wording is a change here, seen by every reader.
//!
//! It depends on nothing but `std`: the fuzz harness compiles it into the parsers it
//! fuzzes as it is.

/// A value masking replaced whole.
pub const REDACTED: &str = "[redacted]";

/// What the `partial` strategy writes in place of each hidden character.
pub const PARTIAL_HIDDEN: char = '*';

/// The `hash` strategy's token: `h:` and the first 16 hex digits of a keyed hash.
pub fn hash_token(hex: &str) -> String {
    format!("{HASH_PREFIX}{}", &hex[..HASH_HEX_DIGITS.min(hex.len())])
}

const HASH_PREFIX: &str = "h:";
const HASH_HEX_DIGITS: usize = 16;

/// Whether `v` is a value the gateway masked: redacted, a hash token, or a partial
/// mask that hides at least three characters.
pub fn is_masked_value(v: &str) -> bool {
    v == REDACTED || is_hash_token(v) || v.starts_with("***")
}

/// Whether `v` is a `hash` strategy token.
pub fn is_hash_token(v: &str) -> bool {
    v.len() == HASH_PREFIX.len() + HASH_HEX_DIGITS
        && v.starts_with(HASH_PREFIX)
        && v[HASH_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

/// Between the values of a result's header and rows (values themselves have tabs
/// and newlines escaped).
pub const COLUMN_SEPARATOR: char = '\t';

/// The note closing a result whose rows were not all rendered.
pub fn rows_not_rendered(n: u64) -> String {
    format!("{ROWS_NOTE_PREFIX}{n} more rows not rendered")
}

/// The note closing a result recorded only in part.
pub fn recording_truncated(bytes: u64) -> String {
    format!(
        "{TRUNCATED_PREFIX}: {bytes} more bytes were forwarded to the client but not recorded (max_recorded_result_bytes)]"
    )
}

const ROWS_NOTE_PREFIX: &str = "… ";
const TRUNCATED_PREFIX: &str = "[recording truncated";

/// Whether a line of a result's text is one of the notes above, not a row.
pub fn is_note(line: &str) -> bool {
    line.starts_with(ROWS_NOTE_PREFIX) || line.starts_with(TRUNCATED_PREFIX)
}

/// The text of an error: `SQLSTATE SEVERITY: message`, then `DETAIL: …` and
/// `HINT: …` lines.
pub fn error_text(
    code: &str,
    severity: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> String {
    let mut s = format!("{code} {severity}: {message}");
    if let Some(d) = detail {
        s.push_str("\nDETAIL: ");
        s.push_str(d);
    }
    if let Some(h) = hint {
        s.push_str("\nHINT: ");
        s.push_str(h);
    }
    s
}

/// A regular expression matching the SQLSTATE at the start of an error's text.
pub const SQLSTATE_PATTERN: &str = "^[0-9A-Z]{5} ";

/// A regular expression matching the SQLSTATE and severity before the message.
pub const ERROR_PREFIX_PATTERN: &str = "^[0-9A-Z]{5} [A-Z]+: ";

/// An error's text read back: its SQLSTATE (when it starts with one), its first line
/// after the code, and the lines after it.
pub fn parse_error_text(text: &str) -> (Option<&str>, &str, Vec<&str>) {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let (code, message) = match first.split_once(' ') {
        Some((code, rest))
            if code.len() == 5
                && code
                    .bytes()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) =>
        {
            (Some(code), rest)
        }
        _ => (None, first),
    };
    (code, message, lines.collect())
}

/// One entry of the `masked` column: `rule/kind:target=count`, e.g.
/// `cards/column:payments.card=3`, `pii/detector:email=1`.
pub fn masked_entry(label: &str, count: u64) -> String {
    format!("{label}={count}")
}

/// A `masked` entry read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskedEntry<'a> {
    pub rule: &'a str,
    /// `column`, `detector`, `binary_nulled`, …
    pub kind: &'a str,
    /// The column (`table.column` or `column`) or detector it names.
    pub target: &'a str,
    /// How many values; an entry without a count stands for one.
    pub count: u64,
}

impl<'a> MaskedEntry<'a> {
    /// Reads an entry; `None` for text that is not one.
    pub fn parse(entry: &'a str) -> Option<Self> {
        let (label, count) = match entry.rsplit_once('=') {
            Some((label, n)) => (label, n.parse().ok()?),
            None => (entry, 1),
        };
        let (head, target) = label.split_once(':')?;
        let (rule, kind) = head.rsplit_once('/')?;
        Some(MaskedEntry {
            rule,
            kind,
            target,
            count,
        })
    }

    /// The column name a `column` or `binary_nulled` entry names, without its table.
    pub fn column(&self) -> Option<&'a str> {
        matches!(self.kind, "column" | "binary_nulled")
            .then(|| self.target.rsplit_once('.').map_or(self.target, |(_, c)| c))
    }
}

/// How many values an event's `masked` entries count (an unreadable entry counts one).
pub fn masked_count(entries: &[String]) -> u64 {
    entries
        .iter()
        .map(|e| MaskedEntry::parse(e).map_or(1, |m| m.count))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        assert!(is_masked_value(REDACTED));
        let token = hash_token("0123456789abcdef0123");
        assert_eq!(token, "h:0123456789abcdef");
        assert!(is_masked_value(&token) && is_hash_token(&token));
        assert!(is_masked_value("************4242"));
        assert!(!is_masked_value("h:0123") && !is_masked_value("alice"));

        assert!(is_note(&rows_not_rendered(7)));
        assert!(is_note(&recording_truncated(1024)));
        assert!(!is_note("7\talice"));

        let text = error_text("42501", "ERROR", "no", Some("why"), Some("do this"));
        let (code, message, rest) = parse_error_text(&text);
        assert_eq!(code, Some("42501"));
        assert_eq!(message, "ERROR: no");
        assert_eq!(rest, ["DETAIL: why", "HINT: do this"]);
        assert_eq!(parse_error_text("connection reset").0, None);

        let e = masked_entry("cards/column:payments.card", 3);
        let m = MaskedEntry::parse(&e).unwrap();
        assert_eq!(
            (m.rule, m.kind, m.target, m.count),
            ("cards", "column", "payments.card", 3)
        );
        assert_eq!(m.column(), Some("card"));
        assert_eq!(
            MaskedEntry::parse("pii/detector:email=1").unwrap().column(),
            None
        );
        assert_eq!(
            masked_count(&[e, "pii/detector:email=2".into(), "odd".into()]),
            6
        );
    }
}
