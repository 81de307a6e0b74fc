//! Values the detectors scan, in any script, and the client encodings they arrive in:
//! masking never panics, never leaves a confirmed value, and putting a value's own
//! decoded text back in place gives back its exact bytes in every encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tapline_fuzz::policy::mask::detectors::Detector;
use tapline_fuzz::policy::mask::strategy::Strategy;
use tapline_fuzz::policy::mask::value_masker::ValueMasker;
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

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for m in maskers() {
        let _ = m.mask(&text);
    }
    for name in ["UTF8", "SQL_ASCII", "LATIN1", "LATIN5", "WIN1252", "EUC_JP", "SJIS", "GB18030", "BIG5", "UHC", "EUC_TW"] {
        let enc = PgEncoding::by_name(name).expect("a known encoding");
        let _ = enc.decode(data);
        let (decoded, map) = enc.decode_mapped(data);
        assert_eq!(map.len(), decoded.chars().count() + 1, "{name}");
        if !enc.is_utf8() || std::str::from_utf8(data).is_ok() {
            assert_eq!(
                enc.splice(data, &decoded),
                data,
                "{name}: an unchanged value keeps its bytes"
            );
        }
    }
});
