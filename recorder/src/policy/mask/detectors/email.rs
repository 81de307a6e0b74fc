//! Email addresses as RFC 5322 and RFC 6531 write them: a local part of atext
//! characters and dots, where any non-ASCII letter counts too (`zoë@example.com`),
//! and a domain of at least two labels, internationalised ones included, ending in a
//! top-level domain of letters (or its `xn--` form). Found from each `@` outwards, so
//! no word boundary is needed around the address.

/// Whether `c` can be part of a local part: RFC 5322 atext, the dot, and any
/// non-ASCII character that is not a space or punctuation (RFC 6531's UTF8-non-ascii,
/// narrowed so quotes and dashes of prose do not join an address).
fn local_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    }
    !c.is_whitespace() && !non_ascii_punctuation(c)
}

/// Punctuation and symbols outside ASCII that end a word in running text.
fn non_ascii_punctuation(c: char) -> bool {
    matches!(c as u32,
        0x00A0..=0x00BF | 0x00D7 | 0x00F7 | 0x2000..=0x206F | 0x2190..=0x2BFF
        | 0x3000..=0x303F | 0xFE30..=0xFE4F | 0xFF00..=0xFF0F | 0xFF1A..=0xFF20)
}

/// Whether `c` can be part of a domain label (LDH, or a letter or digit of an
/// internationalised label).
fn label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
}

/// Whether a label can be a top-level domain.
fn tld_ok(label: &str) -> bool {
    label.chars().count() >= 2
        && (label.chars().all(char::is_alphabetic)
            || (label.len() > 4
                && label
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))))
}

/// Appends the byte spans of email addresses in `text` to `out`.
pub fn find(text: &str, out: &mut Vec<(usize, usize)>) {
    let mut from = 0;
    while let Some(rel) = text[from..].find('@') {
        let at = from + rel;
        from = at + 1;
        let Some(start) = local_start(text, at) else {
            continue;
        };
        let Some(end) = domain_end(text, at + 1) else {
            continue;
        };
        out.push((start, end));
        from = end;
    }
}

/// Where the local part before the `@` at `at` begins, if there is one. The whole
/// run of local-part characters is taken, even past the 64 an address may have: a cut
/// would leave characters of it (digits of a card, say) beside the mask.
fn local_start(text: &str, at: usize) -> Option<usize> {
    let mut start = at;
    for (i, c) in text[..at].char_indices().rev() {
        if !local_char(c) {
            break;
        }
        start = i;
    }
    // A local part does not begin with a dot.
    while text[start..at].starts_with('.') {
        start += 1;
    }
    (start < at).then_some(start)
}

/// Where the domain that starts at `from` ends, if it is one.
fn domain_end(text: &str, from: usize) -> Option<usize> {
    // (start, end) of each label.
    let mut labels: Vec<(usize, usize)> = Vec::new();
    let mut pos = from;
    loop {
        let rest = &text[pos..];
        let len: usize = rest
            .chars()
            .take_while(|&c| label_char(c))
            .map(char::len_utf8)
            .sum();
        let label = rest[..len].trim_end_matches('-');
        if label.is_empty() || label.starts_with('-') {
            break;
        }
        labels.push((pos, pos + label.len()));
        let next = pos + label.len();
        if label.len() < len || !text[next..].starts_with('.') {
            break;
        }
        pos = next + 1;
    }
    while labels.len() >= 2 {
        let (s, e) = labels[labels.len() - 1];
        if tld_ok(&text[s..e]) {
            return Some(e);
        }
        // A top-level domain with digits glued on (`example.com9`): the letters.
        let letters: usize = text[s..e]
            .chars()
            .take_while(|c| c.is_alphabetic())
            .map(char::len_utf8)
            .sum();
        if letters > 0 && tld_ok(&text[s..s + letters]) {
            return Some(s + letters);
        }
        labels.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter().map(|&(a, b)| &text[a..b]).collect()
    }

    #[test]
    fn addresses_with_international_characters_are_found() {
        assert_eq!(spans("write to zoë@example.com."), ["zoë@example.com"]);
        assert_eq!(spans("用户@例子.广告"), ["用户@例子.广告"]);
        assert_eq!(spans("x@bücher.de"), ["x@bücher.de"]);
        assert_eq!(
            spans("a@xn--bcher-kva.xn--p1ai"),
            ["a@xn--bcher-kva.xn--p1ai"]
        );
        assert_eq!(
            spans("«alice.o'neil+tag@mail.example.co.uk»"),
            ["alice.o'neil+tag@mail.example.co.uk"]
        );
    }

    #[test]
    fn addresses_are_found_without_boundaries() {
        assert_eq!(spans("xbob@example.com9"), ["xbob@example.com"]);
        assert_eq!(
            spans("a@b.example,c@d.example"),
            ["a@b.example", "c@d.example"]
        );
        assert_eq!(spans("..dot@example.org"), ["dot@example.org"]);
        // Found by fuzzing: a top-level domain whose fourth byte is inside a character.
        assert!(spans("a@b.xｷｷ").len() <= 1);
    }

    #[test]
    fn lookalikes_are_left_alone() {
        for text in [
            "@home",
            "user@localhost",
            "a@b.c",
            "x@1.2.3.4",
            "price @ 3.50",
            "@@",
            "a@-b.com",
        ] {
            assert!(spans(text).is_empty(), "{text}: {:?}", spans(text));
        }
    }
}
