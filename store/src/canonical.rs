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

/// An event's payload as the canonical encoding sees it: the bytes that crossed the
/// gateway. A format 2 segment may store a payload with its command's text cut out
/// (the text is in `command` already); the verifier then hands the stored bytes and
/// the cut, and the encoding is of the whole payload, without building it.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The payload as it is.
    Whole(&'a [u8]),
    /// `stored` with `insert` put back at byte `at`.
    Spliced {
        stored: &'a [u8],
        at: usize,
        insert: &'a [u8],
    },
}

impl<'a> Payload<'a> {
    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Whole(b) => b.len(),
            Payload::Spliced { stored, insert, .. } => stored.len() + insert.len(),
        }
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload's pieces in order (one for a whole payload, three for a spliced
    /// one). A cut past the end of the stored bytes is taken as the end, so a damaged
    /// offset changes the hash instead of failing.
    pub fn parts(&self) -> [&'a [u8]; 3] {
        match *self {
            Payload::Whole(b) => [b, &[], &[]],
            Payload::Spliced { stored, at, insert } => {
                let at = at.min(stored.len());
                [&stored[..at], insert, &stored[at..]]
            }
        }
    }

    /// The whole payload, copied.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for p in self.parts() {
            v.extend_from_slice(p);
        }
        v
    }
}

impl<'a> From<&'a [u8]> for Payload<'a> {
    fn from(b: &'a [u8]) -> Self {
        Payload::Whole(b)
    }
}

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
    pub payload: Payload<'a>,
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
    hasher.update(&(fields.payload.len() as u64).to_le_bytes());
    for part in fields.payload.parts() {
        hasher.update(part);
    }
    opt_text(hasher, fields.text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::link;

    /// One event of every kind of column, fixed forever: the known answers below pin
    /// the canonical encoding and the chain definition (they were computed once by an
    /// independent implementation of the table above). If this test fails, every hash
    /// in every archive has changed meaning; the encoding must not change (bump the
    /// chain domain instead).
    fn golden() -> CanonicalFields<'static> {
        CanonicalFields {
            session_id: "01JDB0000000000000000000AB",
            seq: 7,
            ts_ns: 1_795_305_600_123_456_789,
            gateway_id: "gw-eu-1",
            connection: "orders-prod",
            protocol: "postgres",
            user: "alice",
            direction: "server",
            kind: "result",
            command: Some("SELECT * FROM accounts"),
            status: "ok",
            row_count: Some(2),
            duration_us: None,
            masked: &["cards/column:accounts.card=2", "pii/detector:email=1"],
            payload: Payload::Whole(b"T\x00\x00\x00\x06\x00\x00D\x00\x00\x00\x04"),
            text: None,
        }
    }

    fn encoded(fields: &CanonicalFields<'_>) -> Vec<u8> {
        // Feed into a hasher that records the bytes: blake3 of the recorded bytes must
        // equal the streamed hash, which also checks `feed` against itself.
        let mut h = blake3::Hasher::new();
        feed(&mut h, fields);
        let mut out = Vec::new();
        let push_bytes = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(b);
        };
        push_bytes(&mut out, fields.session_id.as_bytes());
        out.extend_from_slice(&fields.seq.to_le_bytes());
        out.extend_from_slice(&fields.ts_ns.to_le_bytes());
        for t in [
            fields.gateway_id,
            fields.connection,
            fields.protocol,
            fields.user,
            fields.direction,
            fields.kind,
        ] {
            push_bytes(&mut out, t.as_bytes());
        }
        match fields.command {
            None => out.push(0),
            Some(c) => {
                out.push(1);
                push_bytes(&mut out, c.as_bytes());
            }
        }
        push_bytes(&mut out, fields.status.as_bytes());
        for v in [fields.row_count, fields.duration_us] {
            match v {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        out.extend_from_slice(&(fields.masked.len() as u64).to_le_bytes());
        for m in fields.masked {
            push_bytes(&mut out, m.as_bytes());
        }
        push_bytes(&mut out, &fields.payload.to_vec());
        match fields.text {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                push_bytes(&mut out, t.as_bytes());
            }
        }
        assert_eq!(*h.finalize().as_bytes(), *blake3::hash(&out).as_bytes());
        out
    }

    #[test]
    fn the_canonical_encoding_and_chain_match_their_known_answers() {
        let f = golden();
        let bytes = encoded(&f);
        assert_eq!(bytes.len(), 285);
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            "3c0f23d1c42e9d0c889d1ab8d84ed72f295f8ef4facb4ec8548995783de65184",
            "the canonical encoding changed"
        );
        let genesis = link(None, &f);
        assert_eq!(
            hex::encode(genesis),
            "eefcf89d3ba29d58b800c5820a51dd43fc3468febee0dd8dd0056f671b75ada6",
            "the first link of a chain changed"
        );
        assert_eq!(
            hex::encode(link(Some(&[0xab; 32]), &f)),
            "6e4584826e248b36af982e6eec0683ca6755851c3140ce8658fdc9dc00af9481",
            "a later link of a chain changed"
        );
    }

    #[test]
    fn a_spliced_payload_encodes_as_the_whole_payload() {
        let whole = golden();
        let full = whole.payload.to_vec();
        let stored: Vec<u8> = [&full[..2], &full[9..]].concat();
        let spliced = CanonicalFields {
            payload: Payload::Spliced {
                stored: &stored,
                at: 2,
                insert: &full[2..9],
            },
            ..whole
        };
        assert_eq!(spliced.payload.to_vec(), full);
        assert_eq!(link(None, &whole), link(None, &spliced));
        // Put back at another place, it is another payload and another hash.
        let moved = CanonicalFields {
            payload: Payload::Spliced {
                stored: &stored,
                at: 3,
                insert: &full[2..9],
            },
            ..whole
        };
        assert_ne!(link(None, &whole), link(None, &moved));
        // A cut past the end is taken as the end, never a panic.
        let past = Payload::Spliced {
            stored: &stored,
            at: 10_000,
            insert: b"x",
        };
        assert_eq!(past.len(), stored.len() + 1);
        assert_eq!(past.to_vec().last(), Some(&b'x'));
    }
}
