//! Credit card numbers: 13–19 digits, optionally grouped by spaces or dashes, that
//! pass the Luhn check (so order ids and phone numbers of the same length are left
//! alone).

/// Whether the digits of `text` (separators ignored) pass the Luhn check.
pub fn luhn_ok(text: &str) -> bool {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The pattern candidates are found with; each is then Luhn-checked.
pub const PATTERN: &str = r"\b(?:[0-9][ -]?){12,18}[0-9]\b";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_real_numbers_and_refuses_near_misses() {
        assert!(luhn_ok("4111 1111 1111 1111"));
        assert!(luhn_ok("5500-0000-0000-0004"));
        assert!(luhn_ok("378282246310005"));
        assert!(!luhn_ok("4111 1111 1111 1112"));
        assert!(!luhn_ok("1234"));
    }
}
