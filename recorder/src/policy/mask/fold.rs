//! Folding text before detectors look at it, so a value is found however its digits
//! and punctuation are written.
//!
//! A card number in fullwidth digits (`４１１１…`) or an SSN in Arabic-Indic digits
//! (`٣٢١-٤٥-٦٧٨٩`) is still that number to a human reader, so detectors see every
//! Unicode decimal digit as its ASCII digit, and the fullwidth forms of ASCII (and the
//! ideographic space) as ASCII, as NFKC would fold them. Detectors then work on plain
//! ASCII digits, and every match is mapped back to the original characters, which are
//! what gets masked: the client never sees the raw value in any script.

/// The code point of `0` in every run of Unicode decimal digits (general category Nd,
/// which the standard always assigns in runs of ten, 0 to 9). Checked against the
/// regex engine's own `\d` in the tests.
const DIGIT_ZEROS: &[u32] = &[
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10, 0x104A0, 0x10D30, 0x10D40, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450,
    0x114D0, 0x11650, 0x116C0, 0x116D0, 0x116DA, 0x11730, 0x118E0, 0x11950, 0x11BF0, 0x11C50,
    0x11D50, 0x11DA0, 0x11F50, 0x16130, 0x16A60, 0x16AC0, 0x16B50, 0x16D70, 0x1CCF0, 0x1D7CE,
    0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E5F1, 0x1E950, 0x1FBF0,
];

/// The value of a Unicode decimal digit, in any script.
pub fn digit_value(c: char) -> Option<u8> {
    let cp = c as u32;
    if c.is_ascii_digit() {
        return Some((cp - 0x30) as u8);
    }
    if cp < 0x0660 {
        return None;
    }
    let i = DIGIT_ZEROS.partition_point(|&z| z <= cp);
    let zero = DIGIT_ZEROS[i.checked_sub(1)?];
    (cp - zero < 10).then(|| (cp - zero) as u8)
}

/// What a character reads as to a detector: its ASCII fold, if it has one.
fn fold_char(c: char) -> Option<char> {
    if c.is_ascii() {
        return None;
    }
    if let Some(d) = digit_value(c) {
        return Some((b'0' + d) as char);
    }
    match c as u32 {
        // Fullwidth ASCII forms: U+FF01..U+FF5E are U+0021..U+007E.
        cp @ 0xFF01..=0xFF5E => char::from_u32(cp - 0xFF01 + 0x21),
        // The ideographic space, and the no-break spaces, read as a space.
        0x3000 | 0x00A0 | 0x202F => Some(' '),
        // Hyphens and dashes a value may be written with.
        0x2010 | 0x2011 | 0x2012 | 0x2013 | 0x2212 | 0xFE63 => Some('-'),
        _ => None,
    }
}

/// Text as detectors see it, with the way back to the original's bytes.
#[derive(Debug)]
pub struct Folded<'a> {
    original: &'a str,
    /// The folded text (the original itself when nothing folds).
    text: std::borrow::Cow<'a, str>,
    /// For each byte of `text` that starts a character, the original byte offset of
    /// that character (empty when `text` is the original).
    map: Vec<usize>,
}

impl<'a> Folded<'a> {
    /// Folds `original`; ASCII text (the common case) is used as it is, at no cost.
    pub fn new(original: &'a str) -> Self {
        if original.is_ascii() || !original.chars().any(|c| fold_char(c).is_some()) {
            return Folded {
                original,
                text: std::borrow::Cow::Borrowed(original),
                map: Vec::new(),
            };
        }
        let mut text = String::with_capacity(original.len());
        let mut map = Vec::with_capacity(original.len() + 1);
        for (at, c) in original.char_indices() {
            let out = fold_char(c).unwrap_or(c);
            for _ in 0..out.len_utf8() {
                map.push(at);
            }
            text.push(out);
        }
        map.push(original.len());
        Folded {
            original,
            text: std::borrow::Cow::Owned(text),
            map,
        }
    }

    /// The folded text detectors search.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The original bytes a match `start..end` of the folded text stands for. Both ends
    /// are on character boundaries of the original by construction.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        if self.map.is_empty() {
            return (start, end);
        }
        let s = self.map.get(start).copied().unwrap_or(self.original.len());
        let e = self.map.get(end).copied().unwrap_or(self.original.len());
        (s, e.max(s))
    }

    /// The original text.
    pub fn original(&self) -> &'a str {
        self.original
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_the_regex_engine_calls_a_digit_has_a_value() {
        let re = regex::Regex::new(r"^\d$").unwrap();
        let mut buf = [0u8; 4];
        let wrong: Vec<String> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|&c| re.is_match(c.encode_utf8(&mut buf)) != digit_value(c).is_some())
            .map(|c| format!("U+{:04X}", c as u32))
            .collect();
        assert!(
            wrong.is_empty(),
            "the table and the regex engine disagree on {wrong:?}"
        );
    }

    #[test]
    fn digits_in_any_script_fold_and_map_back_to_their_characters() {
        let s = "ssn ٣٢١-٤٥-٦٧٨٩ and １２３－４５－６７８９.";
        let f = Folded::new(s);
        assert_eq!(f.text(), "ssn 321-45-6789 and 123-45-6789.");
        let at = f.text().find("123-45-6789").unwrap();
        let (a, b) = f.original_span(at, at + 11);
        assert_eq!(&s[a..b], "１２３－４５－６７８９");
        let (a, b) = f.original_span(4, 15);
        assert_eq!(&s[a..b], "٣٢١-٤٥-٦٧٨٩");
        assert_eq!(digit_value('٣'), Some(3));
        assert_eq!(digit_value('x'), None);
        assert_eq!(digit_value('\u{0665}'), Some(5));
    }

    #[test]
    fn text_that_needs_no_folding_is_not_copied() {
        let f = Folded::new("plain ascii 4111");
        assert!(matches!(f.text, std::borrow::Cow::Borrowed(_)));
        let g = Folded::new("zoë, straße");
        assert!(matches!(g.text, std::borrow::Cow::Borrowed(_)));
        assert_eq!(g.original_span(0, 3), (0, 3));
    }
}
