//! Rewriting one DataRow: each value masked by its column's plan, lengths fixed so
//! every client library keeps reading the stream. A row with nothing to mask is not
//! copied at all.

use super::column_plan::{ColumnMask, Encoding};
use crate::policy::mask::session_masker::{ColumnUse, Outcome, SessionMasker};
use crate::policy::mask::tally::Tally;
use crate::protocol::postgres::encoding::PgEncoding;
use crate::protocol::postgres::wire::{Builder, DecodeError, Reader};
use bytes::{BufMut, Bytes};

/// What masking did to one value.
pub enum ValueOutcome {
    Keep,
    Bytes(Vec<u8>),
    Null,
}

impl ValueOutcome {
    /// Writes the value as it goes out, length first: `original` (length-prefixed, as
    /// it came), NULL, or the masked bytes.
    pub fn put_into(self, out: &mut impl BufMut, original: &[u8]) {
        match self {
            ValueOutcome::Keep => out.put_slice(original),
            ValueOutcome::Null => out.put_i32(-1),
            ValueOutcome::Bytes(b) => {
                out.put_i32(b.len() as i32);
                out.put_slice(&b);
            }
        }
    }
}

/// Masks one value of a column with the given mask (or, for a column the result
/// did not describe, as text).
pub fn mask_value(
    masker: &SessionMasker,
    mask: Option<&ColumnMask>,
    v: &[u8],
    tally: &mut Tally,
    enc: PgEncoding,
) -> ValueOutcome {
    let encoding = mask.map_or(Encoding::Text, |m| m.encoding);
    let rule = mask.and_then(|m| m.rule.as_ref());
    if encoding == Encoding::BinaryOther {
        return match (rule, mask.and_then(|m| m.nulled_label.as_deref())) {
            (Some(_), Some(label)) => {
                tally.add(label, 1);
                ValueOutcome::Null
            }
            _ => ValueOutcome::Keep,
        };
    }
    if rule.is_none() && !masker.scans() {
        return ValueOutcome::Keep;
    }
    let (prefix, text) = match encoding {
        Encoding::BinaryJsonb if v.first() == Some(&1) => (Some(1u8), &v[1..]),
        // An unknown jsonb version: treat the whole value as opaque bytes.
        Encoding::BinaryJsonb => {
            return match rule {
                Some((_, label)) => {
                    tally.add(label, 1);
                    ValueOutcome::Null
                }
                None => ValueOutcome::Keep,
            };
        }
        _ => (None, v),
    };
    let json = matches!(encoding, Encoding::TextJson | Encoding::BinaryJsonb);
    // Values are in the client encoding; detectors read the decoded text, and only
    // what they change is written back in that encoding.
    let s = enc.decode(text);
    let how = mask.map_or_else(ColumnUse::default, |m| ColumnUse {
        transformed: m.transformed,
        context: m.context,
    });
    let out = match rule {
        Some((r, label)) => masker.mask_column_in(*r, label, &s, json, how, tally),
        None => masker.scan_in(&s, how.context, tally),
    };
    match out {
        Outcome::Clean => ValueOutcome::Keep,
        Outcome::Null => ValueOutcome::Null,
        Outcome::Text(t) => {
            let mut b = Vec::with_capacity(t.len() + 1);
            b.extend(prefix);
            if enc.is_utf8() {
                b.extend_from_slice(t.as_bytes());
            } else {
                b.extend_from_slice(&enc.splice(text, &t));
            }
            ValueOutcome::Bytes(b)
        }
    }
}

/// Masks a whole DataRow message (`raw`, tag and length included); `None` when it
/// is unchanged.
pub fn mask_data_row(
    masker: &SessionMasker,
    plan: &[ColumnMask],
    raw: &[u8],
    tally: &mut Tally,
    enc: PgEncoding,
) -> Result<Option<Bytes>, DecodeError> {
    let mut r = Reader::new(b'D', &raw[5..]);
    let n = r.count16()?;
    let mut out: Option<Builder> = None;
    for i in 0..n {
        let start = raw.len() - r.remaining().len();
        let outcome = match r.value()? {
            None => ValueOutcome::Keep,
            Some(v) => mask_value(masker, plan.get(i), v, tally, enc),
        };
        let original = &raw[start..raw.len() - r.remaining().len()];
        match (&mut out, outcome) {
            (None, ValueOutcome::Keep) => {}
            (Some(b), outcome) => outcome.put_into(b.body_mut(), original),
            (None, outcome) => {
                // The first change: the row is copied from here on.
                let mut b = Builder::with_capacity(Some(b'D'), raw.len() + 16).raw(&raw[5..start]);
                outcome.put_into(b.body_mut(), original);
                out = Some(b);
            }
        }
    }
    Ok(out.map(Builder::finish))
}
