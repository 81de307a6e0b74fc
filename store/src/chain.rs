//! The per-session blake3 hash chain.
//!
//! hash_0 = blake3("tapline/chain/v1" ‖ session_id ‖ canonical(event_0)) and
//! hash_n = blake3(hash_{n-1} ‖ canonical(event_n)). Each event also stores the hash it
//! was chained onto (`prev_hash`, all zeroes for event 0), which lets the verifier tell
//! a modified event from a missing or reordered one.

use crate::canonical::{self, CanonicalFields};

/// The domain separator of the first link, so a chain can never be mistaken for
/// another use of blake3 and a future encoding can change it.
pub const CHAIN_DOMAIN: &[u8] = b"tapline/chain/v1";

/// The `prev_hash` stored for event 0.
pub const GENESIS_PREV: [u8; 32] = [0; 32];

/// Computes the hash of one event given the hash it follows (`None` for event 0).
pub fn link(prev: Option<&[u8; 32]>, fields: &CanonicalFields<'_>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    match prev {
        None => {
            hasher.update(CHAIN_DOMAIN);
            hasher.update(fields.session_id.as_bytes());
        }
        Some(prev) => {
            hasher.update(prev);
        }
    }
    canonical::feed(&mut hasher, fields);
    *hasher.finalize().as_bytes()
}

/// The running state of one session's chain: the next seq and the head hash.
#[derive(Debug, Clone)]
pub struct Chain {
    next_seq: u64,
    head: Option<[u8; 32]>,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// A chain with no events yet.
    pub fn new() -> Self {
        Chain {
            next_seq: 0,
            head: None,
        }
    }

    /// A chain that carries on after `last` = (seq, hash), as rebuilt from the spool.
    pub fn resume(last: Option<(u64, [u8; 32])>) -> Self {
        match last {
            Some((seq, hash)) => Chain {
                next_seq: seq + 1,
                head: Some(hash),
            },
            None => Chain::new(),
        }
    }

    /// The seq the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The hash of the last event, if any.
    pub fn head(&self) -> Option<[u8; 32]> {
        self.head
    }

    /// Appends an event whose seq must be [`Chain::next_seq`]; returns (prev_hash, hash).
    pub fn append(&mut self, fields: &CanonicalFields<'_>) -> ([u8; 32], [u8; 32]) {
        debug_assert_eq!(fields.seq, self.next_seq);
        let prev = self.head.unwrap_or(GENESIS_PREV);
        let hash = link(self.head.as_ref(), fields);
        self.head = Some(hash);
        self.next_seq += 1;
        (prev, hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(seq: u64, payload: &[u8]) -> CanonicalFields<'_> {
        CanonicalFields {
            session_id: "01J00000000000000000000000",
            seq,
            ts_ns: 1,
            gateway_id: "gw",
            connection: "pg",
            protocol: "postgres",
            user: "alice",
            direction: "client",
            kind: "query",
            command: Some("select 1"),
            status: "ok",
            row_count: None,
            duration_us: None,
            masked: &[],
            payload: payload.into(),
            text: None,
        }
    }

    #[test]
    fn chain_links_each_event_to_the_previous_hash() {
        let mut chain = Chain::new();
        let (p0, h0) = chain.append(&fields(0, b"a"));
        let (p1, h1) = chain.append(&fields(1, b"b"));
        assert_eq!(p0, GENESIS_PREV);
        assert_eq!(p1, h0);
        assert_eq!(h1, link(Some(&h0), &fields(1, b"b")));
        assert_ne!(h0, h1);
    }

    #[test]
    fn a_changed_byte_changes_the_hash() {
        assert_ne!(link(None, &fields(0, b"a")), link(None, &fields(0, b"b")));
    }

    #[test]
    fn null_and_empty_text_hash_differently() {
        let mut a = fields(0, b"");
        a.command = None;
        let mut b = fields(0, b"");
        b.command = Some("");
        assert_ne!(link(None, &a), link(None, &b));
    }
}
