//! How a masked value is rewritten. Every strategy keeps a value's type plausible for
//! the client (text stays text) and never lets the raw value through.

/// A masking strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Replaced by `[redacted]`.
    Redact,
    /// All but the last `keep` characters become `*` (all of them, if the value is
    /// no longer than `keep`).
    Partial { keep: usize },
    /// A stable token from a keyed blake3 hash: equal values give equal tokens, so
    /// masked columns still group and join, but the value cannot be recovered.
    Hash { key: [u8; 32] },
    /// The value becomes SQL NULL (whole values only; inside text it redacts).
    Null,
}

use crate::text_format::PARTIAL_HIDDEN;
/// The redaction marker (the archive's text contract owns it).
pub use crate::text_format::REDACTED;

impl Strategy {
    /// Parses the config name (`partial` takes `keep`, `hash` takes the key).
    pub fn parse(name: &str, keep: Option<usize>, key: [u8; 32]) -> Option<Self> {
        Some(match name {
            "redact" => Strategy::Redact,
            "partial" => Strategy::Partial {
                keep: keep.unwrap_or(4),
            },
            "hash" => Strategy::Hash { key },
            "null" => Strategy::Null,
            _ => return None,
        })
    }

    /// The strategy for a value computed from a covered column (`reverse(card)`,
    /// `substr(card, 1, 12)`): keeping its last characters would keep characters of
    /// the raw value in another place, so `partial` redacts it whole.
    pub fn for_transformed(&self) -> Strategy {
        match self {
            Strategy::Partial { .. } => Strategy::Redact,
            other => other.clone(),
        }
    }

    /// The replacement for `value`.
    pub fn apply(&self, value: &str) -> String {
        match self {
            Strategy::Redact | Strategy::Null => REDACTED.to_string(),
            Strategy::Partial { keep } => {
                let n = value.chars().count();
                // A value no longer than what would be kept is hidden whole.
                let hidden = if n <= *keep { n } else { n - keep };
                value
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if i < hidden { PARTIAL_HIDDEN } else { c })
                    .collect()
            }
            Strategy::Hash { key } => {
                let h = blake3::keyed_hash(key, value.as_bytes());
                crate::text_format::hash_token(&h.to_hex())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_hide_the_value() {
        assert_eq!(Strategy::Redact.apply("alice@example.com"), "[redacted]");
        assert_eq!(
            Strategy::Partial { keep: 4 }.apply("4111111111111111"),
            "************1111"
        );
        assert_eq!(
            Strategy::Partial { keep: 4 }.apply("abc"),
            "***",
            "short values are hidden whole"
        );
        let h = Strategy::Hash { key: [7; 32] };
        assert_eq!(
            h.apply("alice"),
            h.apply("alice"),
            "stable, so values still join"
        );
        assert_ne!(h.apply("alice"), h.apply("bob"));
        assert!(!h.apply("alice").contains("alice"));
        assert_ne!(
            Strategy::Hash { key: [8; 32] }.apply("alice"),
            h.apply("alice"),
            "keyed"
        );
    }
}
