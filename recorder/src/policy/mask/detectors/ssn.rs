//! US Social Security numbers, with or without separators. Written with dashes or
//! spaces (`123-45-6789`) the shape is distinctive enough to find anywhere, even run
//! into other digits or letters. Nine bare digits are an SSN only in context: a
//! keyword earlier on their line (`ssn`, `social security`, …), or a value whose column is
//! about SSNs (its name, or a source column it was computed from, says so), as in
//! `replace(ssn, '-', '')`. Either way the number must be a possible SSN: area not
//! 000, 666 or 9xx, group not 00, serial not 0000.

/// Whether `candidate`'s digits (separators ignored) are a possible US SSN. Reads
/// characters, never byte offsets, so no input can make it slice inside a character.
pub fn ssn_ok(candidate: &str) -> bool {
    let d: Vec<u8> = candidate
        .chars()
        .filter_map(|c| c.to_digit(10).map(|v| v as u8))
        .collect();
    d.len() == 9 && digits_ok(&d)
}

fn digits_ok(d: &[u8]) -> bool {
    let area = &d[..3];
    area != [0, 0, 0]
        && area != [6, 6, 6]
        && area[0] != 9
        && d[3..5] != [0, 0]
        && d[5..] != [0, 0, 0, 0]
}

/// Words that, earlier on the same line as nine bare digits, say they are an SSN
/// (lowercase). The line, not a distance, so masking one value never brings another
/// into or out of context.
const KEYWORDS: [&str; 6] = [
    "ssn",
    "social security",
    "soc sec",
    "ss#",
    "ss no",
    "tax id",
];

/// Whether a column name says its values are SSNs.
pub fn column_suggests_ssn(name: &str) -> bool {
    // Words of the name: split at non-alphanumerics and at camelCase humps.
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() || (c.is_uppercase() && prev_lower) {
            words.push(std::mem::take(&mut word));
        }
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        }
        prev_lower = c.is_lowercase();
    }
    words.push(word);
    let has = |w: &str| words.iter().any(|x| x == w);
    has("ssn") || has("ssns") || (has("social") && has("security")) || has("socialsecurity")
}

/// Appends the byte spans of SSNs in `text` (ASCII digits; fold other scripts first)
/// to `out`. `in_context`: the value as a whole is known to hold SSNs, so bare
/// numbers need no keyword.
pub fn find(text: &str, in_context: bool, out: &mut Vec<(usize, usize)>) {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let start = out.len();
    // Separated: ddd s dd s dddd, the same separator twice, digits on either side
    // allowed (so `'9' || ssn` is still found).
    let mut i = 0;
    while i + 11 <= b.len() {
        let shaped = (i..i + 3).all(digit)
            && matches!(b[i + 3], b'-' | b' ')
            && digit(i + 4)
            && digit(i + 5)
            && b[i + 6] == b[i + 3]
            && (i + 7..i + 11).all(digit);
        if shaped {
            let d: Vec<u8> = [0, 1, 2, 4, 5, 7, 8, 9, 10]
                .iter()
                .map(|&k| b[i + k] - b'0')
                .collect();
            if digits_ok(&d) {
                // Digits glued on either side are masked with it, so none is left
                // beside the mask to join another value.
                let from = (0..i).rev().take_while(|&k| digit(k)).last().unwrap_or(i);
                let to = (i + 11..b.len()).find(|&k| !digit(k)).unwrap_or(b.len());
                out.push((from, to));
                i = to;
                continue;
            }
        }
        i += 1;
    }
    // Bare: exactly nine digits, not part of a longer number nor of a match above.
    let separated: Vec<(usize, usize)> = out[start..].to_vec();
    let mut i = 0;
    while i < b.len() {
        if !digit(i) {
            i += 1;
            continue;
        }
        let end = (i..b.len()).find(|&k| !digit(k)).unwrap_or(b.len());
        let inside = separated.iter().any(|&(s, e)| i < e && s < end);
        if end - i == 9 && !inside {
            let d: Vec<u8> = b[i..end].iter().map(|c| c - b'0').collect();
            if digits_ok(&d) && (in_context || keyword_before(text, i)) {
                out.push((i, end));
            }
        }
        i = end;
    }
    out[start..].sort_unstable();
}

fn keyword_before(text: &str, at: usize) -> bool {
    let line = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let before = text[line..at].to_ascii_lowercase();
    KEYWORDS.iter().any(|k| before.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str, ctx: bool) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, ctx, &mut out);
        out.iter().map(|&(a, b)| &text[a..b]).collect()
    }

    #[test]
    fn separated_ssns_are_found_anywhere() {
        assert_eq!(spans("ssn 123-45-6789", false), ["123-45-6789"]);
        assert_eq!(spans("9123-45-6789", false), ["9123-45-6789"]);
        assert_eq!(spans("id123 45 6789x", false), ["123 45 6789"]);
        assert!(spans("ssn-like 000-12-3456", false).is_empty());
        assert!(spans("123-45 6789", false).is_empty(), "mixed separators");
        assert!(spans("phone 415-555-0132", false).is_empty());
    }

    #[test]
    fn bare_ssns_need_context() {
        assert!(spans("order 123456789 shipped", false).is_empty());
        assert_eq!(spans("SSN: 123456789", false), ["123456789"]);
        assert_eq!(spans("social security no. 123456789", false), ["123456789"]);
        assert!(
            spans("ssn on file\norder 123456789", false).is_empty(),
            "another line"
        );
        assert_eq!(spans("123456789", true), ["123456789"]);
        assert!(
            spans("1234567890", true).is_empty(),
            "ten digits are not an SSN"
        );
        assert!(spans("666123456", true).is_empty());
        assert!(column_suggests_ssn("customer_ssn"));
        assert!(column_suggests_ssn("customerSsn"));
        assert!(column_suggests_ssn("Social Security"));
        assert!(!column_suggests_ssn("classname"));
    }
}
