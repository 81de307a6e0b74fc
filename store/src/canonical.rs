//! The canonical encoding of an event, the exact bytes the hash chain covers.
//!
//! Every column of `events` but `prev_hash` and `hash` is encoded, in schema order,
//! as follows, so that no two different events can encode to the same bytes:
//!
//! | column        | encoding                                                 |
//! |---------------|----------------------------------------------------------|
//! | text columns  | `u64` little-endian byte length, then the UTF-8 bytes    |
//! | nullable text | one byte `0` for null, or `1` then the text encoding     |
//! | `seq`         | `u64` little-endian                                      |
//! | `ts`          | `i64` little-endian nanoseconds since the Unix epoch     |
//! | nullable u64  | one byte `0` for null, or `1` then `u64` little-endian   |
//! | `masked`      | `u64` little-endian count, then each entry as text       |
//! | `payload`     | `u64` little-endian byte length, then the bytes          |
//!
//! The order is: session_id, seq, ts, gateway_id, connection, protocol, user,
//! direction, kind, command, status, row_count, duration_us, masked, payload, text.
//! Changing this encoding changes every hash: bump the chain domain
//! (`tapline/chain/v1`) if it ever must change.

/// A borrowed view of the hashed columns of one event, so that the gateway (from an
/// [`crate::Event`]) and the verifier (from an Arrow row) encode through one function.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalFields<'a> {
    pub session_id: &'a str,
    pub seq: u64,
    pub ts_ns: i64,
    pub gateway_id: &'a str,
    pub connection: &'a str,
    pub protocol: &'a str,
    pub user: &'a str,
    pub direction: &'a str,
    pub kind: &'a str,
    pub command: Option<&'a str>,
    pub status: &'a str,
    pub row_count: Option<u64>,
    pub duration_us: Option<u64>,
    pub masked: &'a [&'a str],
    pub payload: &'a [u8],
    pub text: Option<&'a str>,
}

/// Feeds the canonical encoding of `fields` into `hasher` without building a buffer:
/// results can be megabytes and the gateway hashes every one of them.
pub fn feed(hasher: &mut blake3::Hasher, fields: &CanonicalFields<'_>) {
    fn bytes(h: &mut blake3::Hasher, b: &[u8]) {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    }
    fn opt_text(h: &mut blake3::Hasher, s: Option<&str>) {
        match s {
            None => {
                h.update(&[0]);
            }
            Some(s) => {
                h.update(&[1]);
                bytes(h, s.as_bytes());
            }
        }
    }
    fn opt_u64(h: &mut blake3::Hasher, v: Option<u64>) {
        match v {
            None => {
                h.update(&[0]);
            }
            Some(v) => {
                h.update(&[1]);
                h.update(&v.to_le_bytes());
            }
        }
    }
    bytes(hasher, fields.session_id.as_bytes());
    hasher.update(&fields.seq.to_le_bytes());
    hasher.update(&fields.ts_ns.to_le_bytes());
    bytes(hasher, fields.gateway_id.as_bytes());
    bytes(hasher, fields.connection.as_bytes());
    bytes(hasher, fields.protocol.as_bytes());
    bytes(hasher, fields.user.as_bytes());
    bytes(hasher, fields.direction.as_bytes());
    bytes(hasher, fields.kind.as_bytes());
    opt_text(hasher, fields.command);
    bytes(hasher, fields.status.as_bytes());
    opt_u64(hasher, fields.row_count);
    opt_u64(hasher, fields.duration_us);
    hasher.update(&(fields.masked.len() as u64).to_le_bytes());
    for m in fields.masked {
        bytes(hasher, m.as_bytes());
    }
    bytes(hasher, fields.payload);
    opt_text(hasher, fields.text);
}
