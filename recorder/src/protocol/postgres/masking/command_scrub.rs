//! What the client sent, scrubbed before it is recorded: a card number in an INSERT
//! literal, a bind parameter or a COPY row is masked in the event's `command`, `text`
//! and `payload` by the detectors of the masking rules that apply (unless a rule says
//! `scrub_commands = false`), and the event's `masked` column says what was masked.
//! The upstream still gets every byte as the client sent it; PCI DSS does not allow
//! the archive to keep full card numbers.
//!
//! The payload stays a valid run of protocol messages: each Query, Parse, Bind and
//! CopyData message with a masked value is rebuilt with its lengths fixed; the others
//! are kept as they came.

use crate::policy::mask::session_masker::{Outcome, SessionMasker};
use crate::policy::mask::tally::Tally;
use crate::protocol::postgres::copy_rows;
use crate::protocol::postgres::encoding::PgEncoding;
use crate::protocol::postgres::frame::peek_message_len;
use crate::protocol::postgres::wire::{Builder, Reader};
use bytes::{Bytes, BytesMut};
use tapline_store::EventDraft;

/// What a whole masked value becomes when a strategy nulls it (free text has no NULL).
const NULLED: &str = "[redacted]";

fn scan(m: &SessionMasker, text: &str, tally: &mut Tally) -> Option<String> {
    match m.scan(text, tally) {
        Outcome::Clean => None,
        Outcome::Text(t) => Some(t),
        Outcome::Null => Some(NULLED.to_string()),
    }
}

/// Scrubs `draft` in place: the command it carries (a result event repeats the
/// command it answers), and for what the client sent, its text and payload too.
pub fn scrub(m: &SessionMasker, draft: &mut EventDraft, enc: PgEncoding) {
    if !m.scans() {
        return;
    }
    let mut tally = Tally::default();
    if let Some(c) = &draft.command
        && let Some(masked) = scan(m, c, &mut Tally::default())
    {
        draft.command = Some(masked);
    }
    if draft.direction != tapline_store::Direction::Client {
        return;
    }
    if let Some(t) = &draft.text
        && let Some(masked) = scan(m, t, &mut Tally::default())
    {
        draft.text = Some(masked);
    }
    if let Some(p) = messages(m, &draft.payload, enc, &mut tally) {
        draft.payload = p;
    }
    draft.masked.extend(tally.into_entries());
}

/// The payload with every client message that held a detected value rebuilt, or
/// `None` if nothing in it was masked.
fn messages(
    m: &SessionMasker,
    payload: &[u8],
    enc: PgEncoding,
    tally: &mut Tally,
) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(payload.len());
    let mut changed = false;
    let mut rest = payload;
    while let Ok(Some(len)) = peek_message_len(rest, usize::MAX) {
        let (msg, tail) = rest.split_at(len);
        if msg[0] == b'd' {
            // A run of CopyData: a value may be split between messages, so the run is
            // scanned as one stream (and, when masked, recorded as one message).
            let (run, after) = copy_data_run(rest);
            match copy_data(m, run, enc, tally) {
                Some(rebuilt) => {
                    changed = true;
                    out.extend_from_slice(&rebuilt);
                }
                None => out.extend_from_slice(run),
            }
            rest = after;
            continue;
        }
        match message(m, msg, enc, tally) {
            Some(rebuilt) => {
                changed = true;
                out.extend_from_slice(&rebuilt);
            }
            None => out.extend_from_slice(msg),
        }
        rest = tail;
    }
    if !rest.is_empty() {
        // Not whole messages (a payload cut at the recording limit): scan it as text.
        let text = enc.decode(rest);
        match scan(m, &text, tally) {
            Some(masked) => {
                changed = true;
                out.extend_from_slice(&enc.splice(rest, &masked));
            }
            None => out.extend_from_slice(rest),
        }
    }
    changed.then(|| out.freeze())
}

/// One message rebuilt with its values scrubbed, if any was.
/// The leading run of CopyData messages of `bytes`, and what follows it.
fn copy_data_run(bytes: &[u8]) -> (&[u8], &[u8]) {
    let mut end = 0;
    while let Ok(Some(len)) = peek_message_len(&bytes[end..], usize::MAX) {
        if bytes[end] != b'd' {
            break;
        }
        end += len;
    }
    bytes.split_at(end)
}

/// Scans a run of CopyData messages as one stream; the masked stream as one message.
fn copy_data(m: &SessionMasker, run: &[u8], enc: PgEncoding, tally: &mut Tally) -> Option<Bytes> {
    let mut data = Vec::with_capacity(run.len());
    let mut rest = run;
    while let Ok(Some(len)) = peek_message_len(rest, usize::MAX) {
        data.extend_from_slice(&rest[5..len]);
        rest = &rest[len..];
    }
    let masked = enc.splice(&data, &scan(m, &enc.decode(&data), tally)?);
    Some(copy_rows::copy_data(&masked))
}

fn message(m: &SessionMasker, msg: &[u8], enc: PgEncoding, tally: &mut Tally) -> Option<Bytes> {
    let tag = msg[0];
    let body = &msg[5..];
    let mut text = |bytes: &[u8], tally: &mut Tally| -> Option<Vec<u8>> {
        let decoded = enc.decode(bytes);
        scan(m, &decoded, tally).map(|masked| enc.splice(bytes, &masked))
    };
    match tag {
        b'Q' => {
            let sql = body.strip_suffix(&[0])?;
            let masked = text(sql, tally)?;
            Some(Builder::new(Some(b'Q')).cstr_bytes(&masked).finish())
        }
        b'P' => {
            let mut r = Reader::new(tag, body);
            let name = r.cstr_bytes().ok()?;
            let sql = r.cstr_bytes().ok()?;
            let masked = text(sql, tally)?;
            // The parameter types follow unchanged.
            let types = r.remaining();
            Some(
                Builder::new(Some(b'P'))
                    .cstr_bytes(name)
                    .cstr_bytes(&masked)
                    .raw(types)
                    .finish(),
            )
        }
        b'B' => bind(body, &mut text, tally),
        _ => None,
    }
}

/// A Bind with its text-format parameters scrubbed.
fn bind(
    body: &[u8],
    text: &mut impl FnMut(&[u8], &mut Tally) -> Option<Vec<u8>>,
    tally: &mut Tally,
) -> Option<Bytes> {
    let mut r = Reader::new(b'B', body);
    let portal = r.cstr_bytes().ok()?.to_vec();
    let statement = r.cstr_bytes().ok()?.to_vec();
    let nformats = r.i16().ok()?;
    let mut formats = Vec::new();
    for _ in 0..nformats.max(0) {
        formats.push(r.i16().ok()?);
    }
    let nparams = r.i16().ok()?;
    let mut params: Vec<Option<Vec<u8>>> = Vec::new();
    let mut changed = false;
    for i in 0..nparams.max(0) as usize {
        let value = r.value().ok()?;
        let binary = match formats.len() {
            0 => false,
            1 => formats[0] == 1,
            _ => formats.get(i).copied().unwrap_or(0) == 1,
        };
        // A binary parameter of a text type is its text; scan anything that reads
        // as text (a false match only masks the archive's copy).
        let readable = !binary || std::str::from_utf8(value.unwrap_or_default()).is_ok();
        match value {
            Some(v) if readable => match text(v, tally) {
                Some(masked) => {
                    changed = true;
                    params.push(Some(masked));
                }
                None => params.push(Some(v.to_vec())),
            },
            Some(v) => params.push(Some(v.to_vec())),
            None => params.push(None),
        }
    }
    if !changed {
        return None;
    }
    let rest = r.remaining();
    let mut b = Builder::new(Some(b'B'))
        .cstr_bytes(&portal)
        .cstr_bytes(&statement)
        .i16(nformats);
    for f in &formats {
        b = b.i16(*f);
    }
    b = b.i16(nparams);
    for p in &params {
        b = match p {
            Some(v) => b.i32(v.len() as i32).raw(v),
            None => b.i32(-1),
        };
    }
    Some(b.raw(rest).finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::mask::detectors::Detector;
    use crate::policy::mask::rules::MaskRule;
    use crate::policy::mask::strategy::Strategy;
    use crate::protocol::postgres::encoding::UTF8;

    fn copy_data(body: &[u8]) -> Vec<u8> {
        copy_rows::copy_data(body).to_vec()
    }

    #[test]
    fn a_card_split_between_copy_data_messages_is_still_scrubbed() {
        let rule = MaskRule {
            name: "pci".into(),
            columns: vec![],
            detectors: vec![Detector::CreditCard],
            strategy: Strategy::Redact,
            connections: vec![],
            groups: vec![],
            exempt_groups: vec![],
            record_raw: false,
            scrub_commands: true,
        };
        let m = SessionMasker::compile(&[&rule], [0; 32]).unwrap();
        let mut payload = copy_data(b"1\t41111111");
        payload.extend(copy_data(b"11111111\n2\tplain\n"));
        payload.extend_from_slice(b"c\0\0\0\x04");
        let mut draft =
            EventDraft::new(tapline_store::Direction::Client, tapline_store::Kind::Input)
                .payload(Bytes::from(payload));
        scrub(&m, &mut draft, UTF8);
        let p = &draft.payload[..];
        assert!(!p.windows(8).any(|w| w == b"41111111"), "{p:?}");
        assert_eq!(
            p,
            &[
                copy_data(b"1\t[redacted]\n2\tplain\n"),
                b"c\0\0\0\x04".to_vec()
            ]
            .concat()[..]
        );
        assert_eq!(draft.masked, ["pci/detector:credit_card=1"]);
    }
}
