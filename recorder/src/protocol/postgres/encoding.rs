//! The session's client encoding: how the text in its messages is read, and written
//! back where masking changes it.
//!
//! PostgreSQL converts between the server's encoding and the one the client chose
//! (`client_encoding`, reported in ParameterStatus at login and after every change), so
//! every string in the protocol (SQL, values, error messages, names) is in the client
//! encoding. The tap reads them with the same encoding: the recorded `command` and
//! `text` are correct UTF-8 whatever the client speaks, masking finds a value in any
//! encoding, and the policy parser reads the SQL the server will read. The recorded
//! payload stays the exact bytes.
//!
//! Bytes that are not valid in the encoding (only possible in SQL_ASCII, where the
//! server checks nothing, or in an encoding the tap cannot decode) are recorded
//! visibly as `\xHH`, never replaced silently.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU8, Ordering};

/// How one encoding is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Utf8,
    /// No conversion at all: bytes as the client sent them; shown as UTF-8 where they
    /// are, `\xHH` where not.
    SqlAscii,
    /// ISO 8859 encodings whose WHATWG decoder is a Windows superset: bytes 0x80..0x9F
    /// are the C1 controls here, as PostgreSQL has them, and the rest is the base's.
    IsoOver(&'static encoding_rs::Encoding),
    /// Exactly ISO 8859-1: every byte is the code point of its value.
    Latin1,
    /// Decoded by encoding_rs as it is.
    Whatwg(&'static encoding_rs::Encoding),
    /// An encoding PostgreSQL offers that no maintained decoder covers (EUC_TW,
    /// MULE_INTERNAL, JOHAB): ASCII is read, every other byte shown as `\xHH`.
    Opaque,
}

/// A client encoding the session may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgEncoding {
    /// The name PostgreSQL reports (`UTF8`, `LATIN1`, `SJIS`, …).
    pub name: &'static str,
    kind: Kind,
}

/// Every encoding PostgreSQL has, by the name ParameterStatus reports.
static ENCODINGS: &[PgEncoding] = &[
    enc("UTF8", Kind::Utf8),
    enc("SQL_ASCII", Kind::SqlAscii),
    enc("LATIN1", Kind::Latin1),
    enc("LATIN2", Kind::Whatwg(encoding_rs::ISO_8859_2)),
    enc("LATIN3", Kind::Whatwg(encoding_rs::ISO_8859_3)),
    enc("LATIN4", Kind::Whatwg(encoding_rs::ISO_8859_4)),
    enc("LATIN5", Kind::IsoOver(encoding_rs::WINDOWS_1254)),
    enc("LATIN6", Kind::Whatwg(encoding_rs::ISO_8859_10)),
    enc("LATIN7", Kind::Whatwg(encoding_rs::ISO_8859_13)),
    enc("LATIN8", Kind::Whatwg(encoding_rs::ISO_8859_14)),
    enc("LATIN9", Kind::Whatwg(encoding_rs::ISO_8859_15)),
    enc("LATIN10", Kind::Whatwg(encoding_rs::ISO_8859_16)),
    enc("ISO_8859_5", Kind::Whatwg(encoding_rs::ISO_8859_5)),
    enc("ISO_8859_6", Kind::Whatwg(encoding_rs::ISO_8859_6)),
    enc("ISO_8859_7", Kind::Whatwg(encoding_rs::ISO_8859_7)),
    enc("ISO_8859_8", Kind::Whatwg(encoding_rs::ISO_8859_8)),
    enc("WIN866", Kind::Whatwg(encoding_rs::IBM866)),
    enc("WIN874", Kind::Whatwg(encoding_rs::WINDOWS_874)),
    enc("WIN1250", Kind::Whatwg(encoding_rs::WINDOWS_1250)),
    enc("WIN1251", Kind::Whatwg(encoding_rs::WINDOWS_1251)),
    enc("WIN1252", Kind::Whatwg(encoding_rs::WINDOWS_1252)),
    enc("WIN1253", Kind::Whatwg(encoding_rs::WINDOWS_1253)),
    enc("WIN1254", Kind::Whatwg(encoding_rs::WINDOWS_1254)),
    enc("WIN1255", Kind::Whatwg(encoding_rs::WINDOWS_1255)),
    enc("WIN1256", Kind::Whatwg(encoding_rs::WINDOWS_1256)),
    enc("WIN1257", Kind::Whatwg(encoding_rs::WINDOWS_1257)),
    enc("WIN1258", Kind::Whatwg(encoding_rs::WINDOWS_1258)),
    enc("KOI8R", Kind::Whatwg(encoding_rs::KOI8_R)),
    enc("KOI8U", Kind::Whatwg(encoding_rs::KOI8_U)),
    enc("EUC_JP", Kind::Whatwg(encoding_rs::EUC_JP)),
    enc("EUC_JIS_2004", Kind::Whatwg(encoding_rs::EUC_JP)),
    enc("SJIS", Kind::Whatwg(encoding_rs::SHIFT_JIS)),
    enc("SHIFT_JIS_2004", Kind::Whatwg(encoding_rs::SHIFT_JIS)),
    enc("EUC_CN", Kind::Whatwg(encoding_rs::GBK)),
    enc("GBK", Kind::Whatwg(encoding_rs::GBK)),
    enc("GB18030", Kind::Whatwg(encoding_rs::GB18030)),
    enc("BIG5", Kind::Whatwg(encoding_rs::BIG5)),
    enc("EUC_KR", Kind::Whatwg(encoding_rs::EUC_KR)),
    enc("UHC", Kind::Whatwg(encoding_rs::EUC_KR)),
    enc("EUC_TW", Kind::Opaque),
    enc("MULE_INTERNAL", Kind::Opaque),
    enc("JOHAB", Kind::Opaque),
];

const fn enc(name: &'static str, kind: Kind) -> PgEncoding {
    PgEncoding { name, kind }
}

/// UTF-8, what a session is in until the server says otherwise.
pub const UTF8: PgEncoding = enc("UTF8", Kind::Utf8);

impl PgEncoding {
    /// The encoding PostgreSQL names so (its canonical names, any case, with or
    /// without `_`, and the aliases `UNICODE`, `WIN`, `ALT`, `TCVN` … reduce to these).
    pub fn by_name(name: &str) -> Option<PgEncoding> {
        let norm = |s: &str| -> String {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_uppercase())
                .collect()
        };
        let want = norm(name);
        let want = match want.as_str() {
            "UNICODE" => "UTF8".to_string(),
            "WIN" | "WINDOWS1251" => "WIN1251".to_string(),
            "ALT" | "WINDOWS866" => "WIN866".to_string(),
            "ISO88591" => "LATIN1".to_string(),
            "ISO885915" => "LATIN9".to_string(),
            "TCVN" | "TCVN5712" | "VSCII" | "ABC" | "WINDOWS1258" => "WIN1258".to_string(),
            "SHIFTJIS" | "MSKANJI" | "WINDOWS932" => "SJIS".to_string(),
            "WINDOWS936" => "GBK".to_string(),
            "WINDOWS949" => "UHC".to_string(),
            "WINDOWS950" => "BIG5".to_string(),
            "KOI8" => "KOI8R".to_string(),
            other => other.to_string(),
        };
        ENCODINGS.iter().copied().find(|e| norm(e.name) == want)
    }

    fn index(self) -> u8 {
        ENCODINGS
            .iter()
            .position(|e| e.name == self.name)
            .unwrap_or(0) as u8
    }

    /// Whether strings need no conversion to be UTF-8 (UTF8 itself).
    pub fn is_utf8(self) -> bool {
        self.kind == Kind::Utf8
    }

    /// Whether every string can be read exactly as the server reads it. SQL_ASCII
    /// (no conversion: the server treats bytes as bytes) and the opaque encodings
    /// cannot; the policy check treats those as text it cannot be sure of.
    pub fn is_exact(self) -> bool {
        !matches!(self.kind, Kind::SqlAscii | Kind::Opaque)
    }

    /// Whether a multibyte character's later bytes can be ASCII (SJIS, BIG5, GBK,
    /// GB18030, UHC, JOHAB): a backslash or quote byte may then be half a character,
    /// so ASCII-minded scanning of the raw bytes is wrong.
    pub fn ascii_trail_bytes(self) -> bool {
        matches!(
            self.name,
            "SJIS" | "SHIFT_JIS_2004" | "BIG5" | "GBK" | "GB18030" | "UHC" | "JOHAB"
        )
    }

    /// The text of `bytes`: exact where the encoding defines it, `\xHH` for each byte
    /// it does not.
    pub fn decode<'a>(self, bytes: &'a [u8]) -> Cow<'a, str> {
        if bytes.is_ascii() {
            // Every PostgreSQL client encoding is ASCII-compatible for ASCII-only
            // input: a lone ASCII byte is that character in all of them.
            return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
        }
        match self.kind {
            Kind::Utf8 | Kind::SqlAscii => match std::str::from_utf8(bytes) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(utf8_marked(bytes)),
            },
            Kind::Latin1 => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
            Kind::IsoOver(base) => {
                let mut out = String::with_capacity(bytes.len() * 2);
                for &b in bytes {
                    if (0x80..0xA0).contains(&b) {
                        out.push(b as char);
                    } else {
                        let (s, _) = base.decode_without_bom_handling(std::slice::from_ref(&b));
                        out.push_str(&s);
                    }
                }
                Cow::Owned(out)
            }
            Kind::Whatwg(e) => match e.decode_without_bom_handling_and_without_replacement(bytes) {
                Some(s) => s,
                None => Cow::Owned(whatwg_marked(e, bytes)),
            },
            Kind::Opaque => Cow::Owned(
                bytes
                    .iter()
                    .map(|&b| {
                        if b.is_ascii() {
                            (b as char).to_string()
                        } else {
                            format!("\\x{b:02X}")
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// The text of `bytes` with, for each character, the byte offset it starts at
    /// (and the total length last): what masking needs to put a rewritten part back
    /// in place. Bytes the encoding does not define count as one U+FFFD each.
    pub fn decode_mapped(self, bytes: &[u8]) -> (String, Vec<usize>) {
        let mut text = String::with_capacity(bytes.len());
        let mut map = Vec::with_capacity(bytes.len() + 1);
        match self.kind {
            Kind::Utf8 | Kind::SqlAscii | Kind::Opaque => {
                for chunk in bytes.utf8_chunks() {
                    let base = chunk.valid().as_ptr() as usize - bytes.as_ptr() as usize;
                    for (i, c) in chunk.valid().char_indices() {
                        map.push(base + i);
                        text.push(c);
                    }
                    let bad = base + chunk.valid().len();
                    for j in 0..chunk.invalid().len() {
                        map.push(bad + j);
                        text.push('\u{FFFD}');
                    }
                }
            }
            Kind::Latin1 | Kind::IsoOver(_) => {
                let s = self.decode(bytes);
                for (i, c) in s.chars().enumerate() {
                    map.push(i);
                    text.push(c);
                }
            }
            Kind::Whatwg(e) => {
                let mut decoder = e.new_decoder_without_bom_handling();
                let mut start = 0;
                let mut buf = [0u8; 16];
                for (i, b) in bytes.iter().enumerate() {
                    let last = i + 1 == bytes.len();
                    let (result, _read, written) = decoder.decode_to_utf8_without_replacement(
                        std::slice::from_ref(b),
                        &mut buf,
                        last,
                    );
                    if let encoding_rs::DecoderResult::Malformed(..) = result {
                        map.push(start);
                        text.push('\u{FFFD}');
                        start = i + 1;
                    }
                    if written > 0 {
                        let s = std::str::from_utf8(&buf[..written]).unwrap_or_default();
                        for c in s.chars() {
                            map.push(start);
                            text.push(c);
                        }
                        start = i + 1;
                    }
                }
            }
        }
        map.push(bytes.len());
        (text, map)
    }

    /// `text` in this encoding. Characters it cannot hold (never the ones it decoded
    /// itself, and masking writes only ASCII and characters it kept) become `?`.
    pub fn encode<'a>(self, text: &'a str) -> Cow<'a, [u8]> {
        if text.is_ascii() || matches!(self.kind, Kind::Utf8 | Kind::SqlAscii) {
            return Cow::Borrowed(text.as_bytes());
        }
        match self.kind {
            Kind::Latin1 => Cow::Owned(
                text.chars()
                    .map(|c| u8::try_from(c as u32).unwrap_or(b'?'))
                    .collect(),
            ),
            Kind::IsoOver(base) | Kind::Whatwg(base) => {
                let mut out = Vec::with_capacity(text.len());
                let mut encoder = base.new_encoder();
                for c in text.chars() {
                    if matches!(self.kind, Kind::IsoOver(_)) && (0x80..0xA0).contains(&(c as u32)) {
                        out.push(c as u32 as u8);
                        continue;
                    }
                    let mut tmp = [0u8; 8];
                    let mut cbuf = [0u8; 4];
                    let (result, _, written) = encoder.encode_from_utf8_without_replacement(
                        c.encode_utf8(&mut cbuf),
                        &mut tmp,
                        false,
                    );
                    match result {
                        encoding_rs::EncoderResult::InputEmpty => {
                            out.extend_from_slice(&tmp[..written])
                        }
                        _ => out.push(b'?'),
                    }
                }
                Cow::Owned(out)
            }
            Kind::Opaque | Kind::Utf8 | Kind::SqlAscii => Cow::Borrowed(text.as_bytes()),
        }
    }

    /// The bytes of a value whose decoded text `masked` replaces: the parts masking
    /// left alone keep their original bytes (so a client sees exactly what the server
    /// sent around what was masked), and only what changed is encoded.
    pub fn splice(self, original: &[u8], masked: &str) -> Vec<u8> {
        if self.is_utf8() {
            return masked.as_bytes().to_vec();
        }
        let (decoded, map) = self.decode_mapped(original);
        let old: Vec<char> = decoded.chars().collect();
        let new: Vec<char> = masked.chars().collect();
        let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
        let max_suffix = old.len().min(new.len()) - prefix;
        let suffix = old
            .iter()
            .rev()
            .zip(new.iter().rev())
            .take(max_suffix)
            .take_while(|(a, b)| a == b)
            .count();
        let middle: String = new[prefix..new.len() - suffix].iter().collect();
        let mut out = Vec::with_capacity(original.len() + middle.len());
        out.extend_from_slice(&original[..map[prefix]]);
        out.extend_from_slice(&self.encode(&middle));
        out.extend_from_slice(&original[map[old.len() - suffix]..]);
        out
    }
}

/// UTF-8 runs as they are, every other byte as `\xHH`.
fn utf8_marked(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// A WHATWG decode where every malformed byte run is shown as `\xHH`.
fn whatwg_marked(e: &'static encoding_rs::Encoding, bytes: &[u8]) -> String {
    let mut decoder = e.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(bytes.len() * 2);
    let mut input = bytes;
    loop {
        out.reserve(input.len() * 3 + 16);
        let (result, read) = decoder.decode_to_string_without_replacement(input, &mut out, true);
        match result {
            encoding_rs::DecoderResult::InputEmpty => return out,
            encoding_rs::DecoderResult::OutputFull => {}
            encoding_rs::DecoderResult::Malformed(bad, unread) => {
                let end = read - unread as usize;
                let start = end.saturating_sub(bad as usize);
                for b in &input[start..end] {
                    out.push_str(&format!("\\x{b:02X}"));
                }
            }
        }
        input = &input[read..];
        if input.is_empty() {
            return out;
        }
    }
}

/// The client encoding of one session, shared by its two pumps: the backend pump sets
/// it from ParameterStatus, the frontend pump reads it for every client message.
#[derive(Debug)]
pub struct SessionEncoding {
    client: AtomicU8,
}

impl Default for SessionEncoding {
    fn default() -> Self {
        SessionEncoding {
            client: AtomicU8::new(UTF8.index()),
        }
    }
}

impl SessionEncoding {
    /// The encoding the client speaks now.
    pub fn client(&self) -> PgEncoding {
        ENCODINGS
            .get(self.client.load(Ordering::Acquire) as usize)
            .copied()
            .unwrap_or(UTF8)
    }

    /// Takes the encoding a ParameterStatus reported (an unknown name is logged and
    /// read as opaque bytes rather than guessed).
    pub fn set_client(&self, name: &str) {
        let e = PgEncoding::by_name(name).unwrap_or_else(|| {
            tracing::warn!(
                encoding = name,
                "the server reports a client encoding tapline does not know; its non-ASCII bytes are recorded as \\xHH"
            );
            enc("JOHAB", Kind::Opaque)
        });
        self.client.store(e.index(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str) -> PgEncoding {
        PgEncoding::by_name(name).unwrap()
    }

    #[test]
    fn every_postgres_encoding_name_is_known_by_its_canonical_name_and_aliases() {
        for name in [
            "UTF8",
            "SQL_ASCII",
            "LATIN1",
            "LATIN9",
            "WIN1252",
            "EUC_JP",
            "SJIS",
            "GB18030",
            "BIG5",
            "UHC",
            "EUC_TW",
            "JOHAB",
            "KOI8R",
            "ISO_8859_5",
        ] {
            assert_eq!(e(name).name, name);
        }
        assert_eq!(e("unicode").name, "UTF8");
        assert_eq!(e("latin-1").name, "LATIN1");
        assert_eq!(e("Shift_JIS").name, "SJIS");
        assert!(PgEncoding::by_name("EBCDIC").is_none());
    }

    #[test]
    fn text_reads_as_the_server_reads_it() {
        assert_eq!(e("LATIN1").decode(b"caf\xe9"), "café");
        assert_eq!(e("LATIN9").decode(b"\xa4 5"), "€ 5");
        assert_eq!(e("WIN1252").decode(b"\x80 5"), "€ 5");
        assert_eq!(e("LATIN1").decode(b"\x80"), "\u{80}", "a C1 control, not €");
        assert_eq!(e("EUC_JP").decode(b"\xc6\xfc\xcb\xdc"), "日本");
        assert_eq!(e("SJIS").decode(b"\x93\xfa\x96\x7b"), "日本");
        assert_eq!(e("UTF8").decode("日本".as_bytes()), "日本");
    }

    #[test]
    fn bytes_an_encoding_does_not_define_are_shown_not_replaced() {
        assert_eq!(e("SQL_ASCII").decode(b"caf\xe9 ok"), "caf\\xE9 ok");
        assert_eq!(e("SQL_ASCII").decode("café".as_bytes()), "café");
        assert_eq!(e("EUC_JP").decode(b"a\xff b"), "a\\xFF b");
        assert_eq!(e("EUC_TW").decode(b"x\xa1\xa2"), "x\\xA1\\xA2");
    }

    #[test]
    fn a_masked_value_keeps_the_original_bytes_around_what_changed() {
        for (name, original) in [
            (
                "LATIN1",
                b"name \xe9\xe8 card 4111111111111111 end".to_vec(),
            ),
            (
                "SJIS",
                b"\x93\xfa\x96\x7b 4111111111111111 \x93\xfa".to_vec(),
            ),
            ("EUC_JP", b"\xc6\xfc 4111111111111111".to_vec()),
            ("SQL_ASCII", b"\xff\xfe 4111111111111111 \xfd".to_vec()),
        ] {
            let enc = e(name);
            let (text, map) = enc.decode_mapped(&original);
            assert_eq!(map.len(), text.chars().count() + 1, "{name}");
            let masked = text.replace("4111111111111111", "[redacted]");
            let out = enc.splice(&original, &masked);
            let at = original
                .windows(16)
                .position(|w| w == b"4111111111111111")
                .unwrap();
            let mut want = original[..at].to_vec();
            want.extend_from_slice(b"[redacted]");
            want.extend_from_slice(&original[at + 16..]);
            assert_eq!(out, want, "{name}");
        }
    }

    #[test]
    fn the_session_encoding_follows_parameter_status() {
        let s = SessionEncoding::default();
        assert!(s.client().is_utf8());
        s.set_client("LATIN1");
        assert_eq!(s.client().name, "LATIN1");
        s.set_client("SJIS");
        assert!(s.client().ascii_trail_bytes());
        s.set_client("NOT_AN_ENCODING");
        assert!(!s.client().is_exact());
    }
}
