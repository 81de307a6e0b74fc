//! ErrorResponse and NoticeResponse: the server quotes values in its messages (a
//! unique violation's detail names the duplicate key, a cast error the bad input),
//! so the human-readable fields are scanned with the value detectors. The fields a
//! client branches on (severity, SQLSTATE, source position) are left alone. A
//! NotificationResponse's payload is scanned the same way.

use crate::policy::mask::session_masker::{Outcome, SessionMasker};
use crate::policy::mask::strategy::REDACTED;
use crate::policy::mask::tally::Tally;
use crate::protocol::postgres::encoding::PgEncoding;
use crate::protocol::postgres::wire::{Builder, DecodeError, Reader};
use bytes::Bytes;

/// Field codes that carry text a value may be quoted in: message, detail, hint,
/// context (where), and the names of the schema objects involved.
const SCANNED: &[u8] = b"MDHW";

/// Masks an 'E' or 'N' message (`raw`, tag and length included); `None` when it is
/// unchanged.
pub fn mask_notice(
    masker: &SessionMasker,
    raw: &[u8],
    tally: &mut Tally,
    enc: PgEncoding,
) -> Result<Option<Bytes>, DecodeError> {
    if !masker.scans() {
        return Ok(None);
    }
    let tag = raw[0];
    let mut r = Reader::in_encoding(tag, &raw[5..], enc);
    let mut fields: Vec<(u8, std::borrow::Cow<'_, [u8]>)> = Vec::new();
    let mut changed = false;
    loop {
        let code = r.u8()?;
        if code == 0 {
            break;
        }
        let bytes = r.cstr_bytes()?;
        if SCANNED.contains(&code) {
            let value = enc.decode(bytes);
            let masked = match masker.scan(&value, tally) {
                Outcome::Clean => None,
                Outcome::Text(t) => Some(t),
                Outcome::Null => Some(REDACTED.to_string()),
            };
            match masked {
                None => fields.push((code, bytes.into())),
                Some(t) => {
                    changed = true;
                    fields.push((code, enc.splice(bytes, &t).into()));
                }
            }
        } else {
            fields.push((code, bytes.into()));
        }
    }
    if !changed {
        return Ok(None);
    }
    // A masked value never holds NUL: the replacement texts are printable.
    let message = fields
        .iter()
        .fold(
            Builder::with_capacity(Some(tag), raw.len() + 16),
            |b, (code, value)| b.u8(*code).cstr_bytes(value),
        )
        .u8(0)
        .finish();
    Ok(Some(message))
}

/// Masks a NotificationResponse's payload (`raw`, tag and length included): NOTIFY
/// payloads are free text an application may fill with anything. `None` when it is
/// unchanged.
pub fn mask_notification(
    masker: &SessionMasker,
    raw: &[u8],
    tally: &mut Tally,
    enc: PgEncoding,
) -> Result<Option<Bytes>, DecodeError> {
    if !masker.scans() {
        return Ok(None);
    }
    let mut r = Reader::in_encoding(b'A', &raw[5..], enc);
    let pid = r.i32()?;
    let channel = r.cstr_bytes()?;
    let payload = r.cstr_bytes()?;
    let masked = match masker.scan(&enc.decode(payload), tally) {
        Outcome::Clean => return Ok(None),
        Outcome::Text(t) => t,
        Outcome::Null => REDACTED.to_string(),
    };
    Ok(Some(
        Builder::new(Some(b'A'))
            .i32(pid)
            .cstr_bytes(channel)
            .cstr_bytes(&enc.splice(payload, &masked))
            .finish(),
    ))
}
