//! Card numbers, found without word boundaries: a card concatenated to text
//! (`card || 'x'`), preceded by another digit (`'9' || card`), or several cards run
//! together (`string_agg(card, '')`) are still card numbers. Every window of 13–19
//! digits inside a digit run is a candidate; it counts when its issuer prefix allows
//! that length and the Luhn check holds, which keeps order ids, timestamps and phone
//! lists from being masked. Digits may be grouped by single spaces or dashes; a
//! window that crosses a separator must start and end on group edges, as a written
//! card number does.

/// Whether the digits of `text` (separators ignored) pass the Luhn check.
pub fn luhn_ok(text: &str) -> bool {
    let digits: Vec<u8> = text
        .chars()
        .filter_map(|c| c.to_digit(10).map(|d| d as u8))
        .collect();
    (13..=19).contains(&digits.len()) && luhn_digits(&digits)
}

/// The Luhn check over digit values (0–9), rightmost digit last.
fn luhn_digits(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let d = d as u32;
        sum += if i % 2 == 1 {
            if d > 4 { d * 2 - 9 } else { d * 2 }
        } else {
            d
        };
    }
    sum.is_multiple_of(10)
}

/// Whether a number of `len` digits starting with `d` can be a payment card: the
/// issuer identification ranges of the networks in use (Visa, Mastercard, American
/// Express, Discover, UnionPay, JCB, Diners Club, Maestro, Mir, RuPay) and the
/// lengths each issues.
pub fn issuer_allows(d: &[u8], len: usize) -> bool {
    let n = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + x as u32);
    match d[0] {
        4 => matches!(len, 13 | 16 | 19),
        5 => match n(2) {
            51..=55 => len == 16,
            50 | 56..=59 => (13..=19).contains(&len),
            _ => false,
        },
        2 => match n(4) {
            2200..=2204 => (16..=19).contains(&len),
            2221..=2720 => len == 16,
            _ => false,
        },
        3 => match n(2) {
            34 | 37 => len == 15,
            35 => (3528..=3589).contains(&n(4)) && (16..=19).contains(&len),
            36 => (14..=19).contains(&len),
            30 => n(3) <= 305 && (14..=19).contains(&len),
            38 | 39 => (14..=19).contains(&len),
            _ => false,
        },
        6 => (13..=19).contains(&len),
        8 => matches!(n(2), 81 | 82) && len == 16,
        _ => false,
    }
}

/// Whether `text` is one card number as a whole (issuer, length and Luhn).
pub fn is_card_number(text: &str) -> bool {
    let digits: Vec<u8> = text
        .chars()
        .filter_map(|c| c.to_digit(10).map(|d| d as u8))
        .collect();
    (13..=19).contains(&digits.len())
        && issuer_allows(&digits, digits.len())
        && luhn_digits(&digits)
}

/// One digit of a run: its value, its byte offset, and whether a separator comes
/// right before it.
#[derive(Clone, Copy)]
struct RunDigit {
    value: u8,
    at: usize,
    after_separator: bool,
}

/// Appends the byte spans of card numbers in `text` (ASCII digits; fold other
/// scripts first) to `out`. Overlapping or adjacent windows are merged, so a value
/// is masked as a whole however many cards it holds.
pub fn find(text: &str, out: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut run: Vec<RunDigit> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_digit() {
            let after_separator = i > 0 && !bytes[i - 1].is_ascii_digit() && !run.is_empty();
            run.push(RunDigit {
                value: b - b'0',
                at: i,
                after_separator,
            });
            i += 1;
            continue;
        }
        let joins = matches!(b, b' ' | b'-')
            && !run.is_empty()
            && i > 0
            && bytes[i - 1].is_ascii_digit()
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !joins {
            windows(&run, out);
            run.clear();
        }
        i += 1;
    }
    windows(&run, out);
}

/// The card windows of one digit run: every stretch of 13 to 19 digits anywhere in
/// it, so a card glued between other digits (`'1' || card || '2'`) or several run
/// together (`string_agg(card, '')`) is found. The issuer and Luhn checks keep most
/// ordinary long numbers out (benches/README.md measures how many get in).
fn windows(run: &[RunDigit], out: &mut Vec<(usize, usize)>) {
    let n = run.len();
    if n < 13 {
        return;
    }
    let values: Vec<u8> = run.iter().map(|d| d.value).collect();
    // A window [s, e) may cross separators only when it starts and ends on group edges.
    let fits = |s: usize, e: usize| {
        let crosses = run[s + 1..e].iter().any(|d| d.after_separator);
        let edges = (s == 0 || run[s].after_separator) && (e == n || run[e].after_separator);
        (!crosses || edges) && issuer_allows(&values[s..e], e - s) && luhn_digits(&values[s..e])
    };
    let mut current: Option<(usize, usize)> = None;
    for s in 0..=n - 13 {
        let Some(e) = (13..=19)
            .rev()
            .map(|len| s + len)
            .find(|&e| e <= n && fits(s, e))
        else {
            continue;
        };
        // The whole digit groups the window touches are masked: digits glued to a
        // card are not left beside the mask, where they could join the next one.
        let first = (0..=s)
            .rev()
            .find(|&k| k == 0 || run[k].after_separator)
            .unwrap_or(0);
        let last = (e..n).find(|&k| run[k].after_separator).unwrap_or(n);
        let span = (run[first].at, run[last - 1].at + 1);
        current = match current {
            Some((a, b)) if span.0 <= b => Some((a, b.max(span.1))),
            Some(done) => {
                out.push(done);
                Some(span)
            }
            None => Some(span),
        };
    }
    out.extend(current);
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
    fn luhn_accepts_real_numbers_and_refuses_near_misses() {
        assert!(luhn_ok("4111 1111 1111 1111"));
        assert!(luhn_ok("5500-0000-0000-0004"));
        assert!(luhn_ok("378282246310005"));
        assert!(!luhn_ok("4111 1111 1111 1112"));
        assert!(!luhn_ok("1234"));
    }

    #[test]
    fn issuer_ranges_and_lengths_go_together() {
        assert!(is_card_number("378282246310005"), "Amex, 15");
        assert!(is_card_number("6011111111111117"), "Discover");
        assert!(is_card_number("3530111333300000"), "JCB");
        assert!(is_card_number("2223003122003222"), "Mastercard 2-series");
        assert!(is_card_number("30569309025904"), "Diners, 14");
        assert!(!is_card_number("1234567812345670"), "Luhn-valid, no issuer");
        assert!(
            !is_card_number("41111111111111113"),
            "Visa is 13, 16 or 19 digits"
        );
    }

    #[test]
    fn cards_are_found_without_word_boundaries() {
        assert_eq!(spans("4111111111111111x"), ["4111111111111111"]);
        assert_eq!(spans("94111111111111111"), ["94111111111111111"]);
        assert_eq!(spans("ref:a4111111111111111b"), ["4111111111111111"]);
        assert_eq!(
            spans("41111111111111115500000000000004"),
            ["41111111111111115500000000000004"],
            "two cards run together are masked as one span"
        );
        assert_eq!(
            spans("card 4111 1111 1111 1111 on file"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(
            spans("2024-01-15 4111-1111-1111-1111"),
            ["4111-1111-1111-1111"]
        );
        assert_eq!(spans("12 4111111111111111"), ["4111111111111111"]);
        assert_eq!(spans("1241111111111111113"), ["1241111111111111113"]);
        assert_eq!(spans("77 4111 1111 1111 1111 88"), ["4111 1111 1111 1111"]);
    }

    #[test]
    fn ordinary_numbers_are_left_alone() {
        for text in [
            "order 4111 1111 1111 1112",
            "order 1000000000012345 of 2024",
            "ts 20241015123000 id 77",
            "call 555-0132 555-0199 555-0143 555-0187",
            "9780306406157",
            "",
        ] {
            assert!(spans(text).is_empty(), "{text}: {:?}", spans(text));
        }
    }
}
