//! Values the detectors scan, in any script, and the client encodings they arrive in:
//! masking never panics, the boundary-free detectors leave nothing they would mask
//! again, and putting a value's own decoded text back in place gives
//! back its exact bytes in every encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tapline_fuzz::policy::mask::detectors::Detector;
use tapline_fuzz::policy::mask::strategy::Strategy;
use tapline_fuzz::policy::mask::value_masker::{Masked, ValueMasker};
use tapline_fuzz::protocol::postgres::encoding::PgEncoding;

fn maskers() -> &'static [ValueMasker; 2] {
    static M: OnceLock<[ValueMasker; 2]> = OnceLock::new();
    M.get_or_init(|| {
        let with = |s: Strategy| {
            ValueMasker::new(
                Detector::BUILT_IN
                    .iter()
                    .filter_map(|n| Detector::parse(n))
                    .map(|d| (d, s.clone()))
                    .collect(),
            )
            .expect("the built-in detectors compile")
        };
        [with(Strategy::Redact), with(Strategy::Partial { keep: 4 })]
    })
}

fn scanners() -> &'static ValueMasker {
    static M: OnceLock<ValueMasker> = OnceLock::new();
    M.get_or_init(|| {
        ValueMasker::new(
            ["credit_card", "us_ssn", "email"]
                .iter()
                .filter_map(|n| Detector::parse(n))
                .map(|d| (d, Strategy::Redact))
                .collect(),
        )
        .expect("the scanning detectors")
    })
}

/// The client encodings values arrive in; the first byte of an input picks one, so
/// each run is one value in one encoding (and the run covers them all).
const ENCODINGS: [&str; 11] = [
    "UTF8", "SQL_ASCII", "LATIN1", "LATIN5", "WIN1252", "EUC_JP", "SJIS", "GB18030", "BIG5", "UHC",
    "EUC_TW",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, value)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(value);
    for m in maskers() {
        let _ = m.mask(&text);
    }
    let name = ENCODINGS[pick as usize % ENCODINGS.len()];
    let enc = PgEncoding::by_name(name).expect("a known encoding");
    let _ = enc.decode(value);
    let (decoded, map) = enc.decode_mapped(value);
    assert_eq!(map.len(), decoded.chars().count() + 1, "{name}");
    if !enc.is_utf8() || std::str::from_utf8(value).is_ok() {
        assert_eq!(
            enc.splice(value, &decoded),
            value,
            "{name}: an unchanged value keeps its bytes"
        );
    }
    // What the boundary-free detectors (cards, SSNs, emails) leave after redaction
    // holds nothing they would mask again: no value survives in pieces or glued to
    // its neighbours. (Pattern detectors can form new matches from what is left
    // beside a redaction, `1.2.3.4.5` → `[redacted].5`, so they are not held to it.)
    let scanners = scanners();
    if let Masked::Text(masked, _) = scanners.mask(&decoded) {
        assert_eq!(scanners.mask(&masked), Masked::Clean, "{name}: {masked:?}");
    }
});
