//! Masks sensitive values inside text. Pattern detectors share one pass of a combined
//! automaton that says whether any of them can match (for most values none does, and
//! that is all the work done); only the matching ones are then run, their candidates
//! confirmed. Scanning detectors (card numbers, SSNs, emails) each look first for what
//! they cannot do without (enough digits, an `@`), so ordinary values cost them a
//! count of bytes. This keeps masking in process at millions of values a second.
//!
//! Detectors read the text folded (digits of every script as ASCII digits, fullwidth
//! forms as ASCII, see `fold`), and what they find is masked in the original
//! characters. Matches of all detectors are gathered first and rewritten in one pass;
//! overlapping ones are masked as one span, with the strategy of the detector listed
//! first.

use super::detectors::{Context, Detector, Hints};
use super::fold::Folded;
use super::strategy::Strategy;
use regex::{Regex, RegexSet};

/// A set of detectors with the strategy each applies.
#[derive(Debug, Clone)]
pub struct ValueMasker {
    /// The patterns of the pattern detectors in one set.
    any: RegexSet,
    /// For each detector, its pattern's place in `any` (`None`: a scanning detector).
    slot: Vec<Option<usize>>,
    detectors: Vec<(Detector, Option<Regex>, Strategy)>,
    /// What each detector's matches are counted under (its name, or `rule/detector:name`).
    labels: Vec<String>,
}

/// What masking one value did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Masked {
    /// Nothing sensitive was found.
    Clean,
    /// The rewritten text, and how many values each detector masked.
    Text(String, Vec<(String, usize)>),
    /// A `null` strategy matched: the whole value becomes NULL.
    Null(Vec<(String, usize)>),
}

impl ValueMasker {
    /// Compiles the detectors; the error names the one at fault.
    pub fn new(detectors: Vec<(Detector, Strategy)>) -> Result<Self, String> {
        Self::labelled(
            detectors
                .into_iter()
                .map(|(d, s)| (d.name().to_string(), d, s))
                .collect(),
        )
    }

    /// Like `new`, with the label each detector's matches are counted under.
    pub fn labelled(detectors: Vec<(String, Detector, Strategy)>) -> Result<Self, String> {
        let mut compiled = Vec::new();
        let mut labels = Vec::new();
        let mut patterns = Vec::new();
        let mut slot = Vec::new();
        for (label, d, s) in detectors {
            let re = d.compile()?;
            slot.push(d.pattern().map(|p| {
                patterns.push(p.to_string());
                patterns.len() - 1
            }));
            compiled.push((d, re, s));
            labels.push(label);
        }
        let any = RegexSet::new(patterns).map_err(|e| e.to_string())?;
        Ok(ValueMasker {
            any,
            slot,
            detectors: compiled,
            labels,
        })
    }

    /// Whether there is no detector at all (then nothing is ever scanned).
    pub fn is_empty(&self) -> bool {
        self.detectors.is_empty()
    }

    /// Masks what the detectors find in `value`.
    pub fn mask(&self, value: &str) -> Masked {
        self.mask_in(value, Context::default())
    }

    /// Masks what the detectors find in `value`, knowing where it comes from.
    pub fn mask_in(&self, value: &str, context: Context) -> Masked {
        if self.detectors.is_empty() {
            return Masked::Clean;
        }
        let folded = Folded::new(value);
        let text = folded.text();
        // (start, end) in the original, and the detector that found it.
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        let mut found: Vec<(usize, usize)> = Vec::new();
        let add = |i: usize, s: usize, e: usize, spans: &mut Vec<(usize, usize, usize)>| {
            let (s, e) = folded.original_span(s, e);
            if s < e {
                spans.push((s, e, i));
            }
        };
        // In the order the detectors are listed, so the first one wins an overlap.
        let hits = (!self.any.is_empty()).then(|| self.any.matches(text));
        // Counted only when a scanning detector will look.
        let hints = if self.slot.len() > self.any.len() {
            Hints::of(text)
        } else {
            Hints::default()
        };
        for i in 0..self.detectors.len() {
            let (d, re, _) = &self.detectors[i];
            match re {
                Some(re) => {
                    let hit = self.slot[i]
                        .zip(hits.as_ref())
                        .is_some_and(|(k, h)| h.matched(k));
                    if !hit {
                        continue;
                    }
                    for m in re.find_iter(text) {
                        if !m.is_empty() && d.confirm(m.as_str()) {
                            add(i, m.start(), m.end(), &mut spans);
                        }
                    }
                }
                None => {
                    found.clear();
                    d.scan(text, hints, context, &mut found);
                    for &(s, e) in &found {
                        add(i, s, e, &mut spans);
                    }
                }
            }
        }
        if spans.is_empty() {
            return Masked::Clean;
        }
        // Overlapping matches are masked as one span (what one detector's match leaves
        // of another's would still be readable), under the detector listed first.
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize, usize)> = Vec::with_capacity(spans.len());
        for (s, e, i) in spans {
            match merged.last_mut() {
                Some(last) if s < last.1 => {
                    last.1 = last.1.max(e);
                    last.2 = last.2.min(i);
                }
                _ => merged.push((s, e, i)),
            }
        }
        let spans = merged;
        let mut out = String::with_capacity(value.len());
        let mut per_detector = vec![0usize; self.detectors.len()];
        let mut null = false;
        let mut last = 0;
        for (s, e, i) in spans {
            let strategy = &self.detectors[i].2;
            out.push_str(&value[last..s]);
            out.push_str(&strategy.apply(&value[s..e]));
            last = e;
            per_detector[i] += 1;
            null |= *strategy == Strategy::Null;
        }
        out.push_str(&value[last..]);
        let counts: Vec<(String, usize)> = per_detector
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (self.labels[i].clone(), *n))
            .collect();
        if null {
            Masked::Null(counts)
        } else {
            Masked::Text(out, counts)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(strategy: Strategy) -> ValueMasker {
        ValueMasker::new(
            Detector::BUILT_IN
                .iter()
                .map(|n| (Detector::parse(n).unwrap(), strategy.clone()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn every_detector_finds_its_values_and_leaves_lookalikes() {
        let m = all(Strategy::Redact);
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
        let azure_key = format!("{}==", "A".repeat(86));
        for (value, detector) in [
            ("card 4111 1111 1111 1111 on file", "credit_card"),
            ("write to alice.o'neil@example.co.uk", "email"),
            ("ssn 123-45-6789", "us_ssn"),
            ("iban DE89 3704 0044 0532 0130 00", "iban"),
            ("call +1 415-555-0132", "phone"),
            ("from 10.20.30.40", "ipv4"),
            ("from 2001:db8::8a2e:370:7334", "ipv6"),
            ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "jwt"),
            ("key AKIAIOSFODNN7EXAMPLE", "aws_access_key_id"),
            (azure_key.as_str(), "azure_storage_key"),
            (
                "https://a.blob.core.windows.net/c?sv=2022-11-02&sig=abcdEFGH1234%2Bxyz%3D",
                "azure_sas_token",
            ),
            (
                "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net",
                "azure_connection_string",
            ),
            (pem, "pem_private_key"),
        ] {
            match m.mask(value) {
                Masked::Text(text, counts) => {
                    assert!(
                        counts.iter().any(|(d, _)| d == detector),
                        "{detector} not found in {value:?}: {counts:?}"
                    );
                    assert!(text.contains("[redacted]"), "{text}");
                }
                other => panic!("{detector}: {value:?} gave {other:?}"),
            }
        }
        for clean in [
            "order 4111 1111 1111 1112 (not a card)",
            "ssn-like 000-12-3456",
            "iban-like GB82WEST12345698765431",
            "version 1.2.3",
            "plain text with no secrets",
        ] {
            assert_eq!(m.mask(clean), Masked::Clean, "{clean}");
        }
    }

    #[test]
    fn values_written_in_other_digits_are_found_and_masked_in_their_own_characters() {
        let m = all(Strategy::Redact);
        for (value, detector) in [
            ("ssn １２３-４５-６７８９", "us_ssn"),
            ("ssn ٣٢١-٤٥-٦٧٨٩", "us_ssn"),
            (
                "card ４１１１　１１１１　１１１１　１１１１ on file",
                "credit_card",
            ),
            ("card ٤١١١١١١١١١١١١١١١", "credit_card"),
        ] {
            let Masked::Text(text, counts) = m.mask(value) else {
                panic!("{detector} not found in {value:?}");
            };
            assert!(
                counts.iter().any(|(d, _)| d == detector),
                "{value}: {counts:?}"
            );
            assert!(
                !text
                    .chars()
                    .any(|c| super::super::fold::digit_value(c).is_some()),
                "no digit of the value is left: {text}"
            );
        }
        let partial =
            ValueMasker::new(vec![(Detector::CreditCard, Strategy::Partial { keep: 4 })]).unwrap();
        assert_eq!(
            partial.mask("４１１１１１１１１１１１１１１１"),
            Masked::Text(
                "************１１１１".into(),
                vec![("credit_card".into(), 1)]
            ),
            "partial keeps the original characters it keeps"
        );
        // Malformed-looking mixes never panic.
        for s in [
            "１２３-45-６７８９x",
            "٣٢١-٤٥-",
            "\u{0665}\u{0665}\u{0665}-\u{0665}",
        ] {
            let _ = m.mask(s);
        }
    }

    #[test]
    fn values_glued_to_text_or_digits_are_still_found() {
        let m = all(Strategy::Redact);
        for (value, detector) in [
            ("4111111111111111x", "credit_card"),
            ("94111111111111111", "credit_card"),
            ("41111111111111115500000000000004", "credit_card"),
            ("notice: ref 12 4111111111111111 declined", "credit_card"),
            ("１２３４5４１１１１１１１１１１１１１１１", "credit_card"),
            ("9123-45-6789", "us_ssn"),
            ("ssn:123456789", "us_ssn"),
            ("write to zoë@example.com", "email"),
            ("idbob@example.com42", "email"),
        ] {
            let Masked::Text(text, counts) = m.mask(value) else {
                panic!("{detector} not found in {value:?}");
            };
            assert!(
                counts.iter().any(|(d, _)| d == detector),
                "{value}: {counts:?}"
            );
            assert!(text.contains("[redacted]"), "{text}");
        }
        assert_eq!(
            m.mask("123456789"),
            Masked::Clean,
            "bare digits without context"
        );
        assert!(matches!(
            m.mask_in("123456789", Context { ssn_column: true }),
            Masked::Text(t, _) if t == "[redacted]"
        ));
    }

    #[test]
    fn overlapping_matches_leave_nothing_to_find_again() {
        // Found by fuzzing: the second address shares its local part with the end of
        // the first; masking only the first left `o@empF.uc` readable.
        let m = all(Strategy::Redact);
        let Masked::Text(once, _) = m.mask("ei@exae.coe.o@empF.uc now") else {
            panic!("no address found");
        };
        assert_eq!(m.mask(&once), Masked::Clean, "{once}");
    }

    #[test]
    fn strategies_apply_per_match_and_null_nulls_the_value() {
        let partial =
            ValueMasker::new(vec![(Detector::CreditCard, Strategy::Partial { keep: 4 })]).unwrap();
        assert_eq!(
            partial.mask("4111111111111111"),
            Masked::Text("************1111".into(), vec![("credit_card".into(), 1)])
        );
        let null = ValueMasker::new(vec![(Detector::Email, Strategy::Null)]).unwrap();
        assert_eq!(
            null.mask("a@b.example and c@d.example"),
            Masked::Null(vec![("email".into(), 2)])
        );
        let custom = ValueMasker::new(vec![(
            Detector::Custom {
                name: "employee_id".into(),
                pattern: r"\bEMP-\d{6}\b".into(),
            },
            Strategy::Hash { key: [1; 32] },
        )])
        .unwrap();
        let Masked::Text(text, counts) = custom.mask("EMP-123456 and EMP-123456") else {
            panic!("custom pattern missed");
        };
        let tokens: Vec<&str> = text.split(" and ").collect();
        assert_eq!(tokens[0], tokens[1], "equal values give equal tokens");
        assert_eq!(counts, vec![("employee_id".into(), 2)]);
    }
}
