//! Verifying one session from its rows in seq order and the seals stored with its
//! checkpoints: the chain is walked once, and at each sealed seq the recomputed head
//! must be the head the gateway signed.
//!
//! This is how a single session is checked (the replay badge, `verify --session`):
//! rows arrive batch by batch, so memory holds one batch, not the session.

use super::verdict::{Break, BreakKind, SessionVerdict};
use super::walk::ChainWalk;
use crate::batch::EventColumns;
use crate::seal::{Seal, SealProblem, TrustedKeys};

/// A seal as stored with a session checkpoint.
#[derive(Debug, Clone)]
pub struct StoredSeal {
    pub seal: Seal,
    pub is_end: bool,
    pub end_reason: Option<String>,
}

/// Why a stored seal does not vouch for anything.
pub fn seal_problem(s: &StoredSeal, keys: &TrustedKeys) -> Option<Break> {
    let seq = s.seal.last_seq;
    keys.check(&s.seal).err().map(|problem| {
        let detail = match problem {
            SealProblem::UnknownKey(id) => format!(
                "the seal through seq {seq} is signed with key {id}, which is not trusted; pass the gateway's key with --pubkey"
            ),
            SealProblem::BadSignature(id) => {
                format!("the seal through seq {seq} does not match the signature of key {id}")
            }
        };
        Break::new(seq, BreakKind::BadSignature, detail)
    })
}

/// One session being verified.
pub struct SessionCheck<'k> {
    verdict: SessionVerdict,
    walk: ChainWalk,
    /// Seals by last seq, oldest first; `next` is the first not yet reached.
    seals: Vec<StoredSeal>,
    next: usize,
    keys: &'k TrustedKeys,
    /// A break was found: the rest of the session is not walked.
    stopped: bool,
}

impl<'k> SessionCheck<'k> {
    /// Starts a session with its seals (any order).
    pub fn new(session_id: &str, mut seals: Vec<StoredSeal>, keys: &'k TrustedKeys) -> Self {
        seals.sort_by_key(|s| (s.seal.last_seq, s.is_end));
        SessionCheck {
            verdict: SessionVerdict::new(session_id),
            walk: ChainWalk::new(),
            seals,
            next: 0,
            keys,
            stopped: false,
        }
    }

    /// Walks the next rows of the session (indices into `cols`, in seq order).
    pub fn feed(&mut self, cols: &EventColumns<'_>, rows: &[usize]) {
        self.verdict.events += rows.len() as u64;
        let mut rest = rows;
        while !self.stopped && !rest.is_empty() {
            // Walk up to the next sealed seq, then hold the head against the seal.
            let upto = match self.seals.get(self.next) {
                Some(s) => {
                    let last = s.seal.last_seq;
                    rest.iter()
                        .position(|&r| cols.seq(r) > last)
                        .unwrap_or(rest.len())
                }
                None => rest.len(),
            };
            let (now, later) = rest.split_at(upto);
            if let Err(b) = self.walk.walk(cols, now) {
                self.stop(b);
                return;
            }
            rest = later;
            self.check_reached_seals();
        }
    }

    /// Checks every seal whose seq the walk has passed.
    fn check_reached_seals(&mut self) {
        while let Some(s) = self.seals.get(self.next) {
            let seq = s.seal.last_seq;
            let Some((at, head)) = self.walk.position() else {
                return;
            };
            if seq > at {
                return;
            }
            let s = s.clone();
            self.next += 1;
            if let Some(b) = seal_problem(&s, self.keys) {
                self.stop(b);
                return;
            }
            if seq == at && head != s.seal.head_hash {
                let from = self.verdict.sealed_through.map_or(0, |g| g + 1);
                self.stop(Break::new(
                    from,
                    BreakKind::Rewritten,
                    format!(
                        "the chain was recomputed: the head at seq {seq} does not match its seal"
                    ),
                ));
                return;
            }
            if seq < at {
                // The walk went past a sealed seq without stopping at it: only possible
                // when the seal came in out of order, which sort prevents.
                continue;
            }
            self.verdict.sealed_through = Some(seq);
            if s.is_end {
                self.verdict.ended = true;
                self.verdict.end_reason = s.end_reason.clone();
            }
        }
    }

    fn stop(&mut self, b: Break) {
        self.verdict.break_at(b);
        self.stopped = true;
    }

    /// The verdict, once every row has been fed.
    pub fn finish(mut self) -> SessionVerdict {
        if self.stopped {
            return self.verdict;
        }
        let walked_to = self.walk.position().map(|p| p.0);
        if let Some(s) = self.seals.get(self.next).cloned() {
            if let Some(b) = seal_problem(&s, self.keys) {
                self.verdict.break_at(b);
                return self.verdict;
            }
            let first_missing = self.walk.next_seq();
            self.verdict.break_at(Break::new(
                first_missing,
                BreakKind::Truncated,
                format!(
                    "the gateway sealed the session through seq {}, but the archive ends at {}",
                    s.seal.last_seq,
                    match walked_to {
                        Some(seq) => format!("seq {seq}"),
                        None => "no event".to_string(),
                    }
                ),
            ));
            return self.verdict;
        }
        if self.verdict.ended
            && let (Some(sealed), Some(at)) = (self.verdict.sealed_through, walked_to)
            && at > sealed
        {
            self.verdict.break_at(Break::new(
                sealed + 1,
                BreakKind::Inserted,
                "events follow the session's end seal",
            ));
        }
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::GatewayKey;
    use crate::verify::walk::tests::{rows_of, session};

    fn head_at(b: &datafusion::arrow::array::RecordBatch, seq: usize) -> [u8; 32] {
        let cols = EventColumns::new(b).unwrap();
        let mut w = ChainWalk::new();
        w.walk(&cols, &(0..=seq).collect::<Vec<_>>()).unwrap();
        w.position().unwrap().1
    }

    fn check(
        b: &datafusion::arrow::array::RecordBatch,
        seals: Vec<StoredSeal>,
        keys: &TrustedKeys,
    ) -> SessionVerdict {
        let cols = EventColumns::new(b).unwrap();
        let mut c = SessionCheck::new("S", seals, keys);
        // Fed in two batches, as a stream would.
        let all: Vec<usize> = (0..cols.len()).collect();
        let (a, rest) = all.split_at(cols.len() / 2);
        c.feed(&cols, a);
        c.feed(&cols, rest);
        c.finish()
    }

    fn seal(key: &GatewayKey, seq: u64, head: [u8; 32], end: bool) -> StoredSeal {
        StoredSeal {
            seal: key.seal("S", seq, head),
            is_end: end,
            end_reason: end.then(|| "client_closed".to_string()),
        }
    }

    #[test]
    fn seals_pin_the_chain_and_catch_truncation_and_rewrites() {
        let b = session(8);
        let key = GatewayKey::generate();
        let mut keys = TrustedKeys::default();
        keys.add(key.verifying_key());
        let seals = vec![
            seal(&key, 3, head_at(&b, 3), false),
            seal(&key, 7, head_at(&b, 7), true),
        ];
        let v = check(&b, seals.clone(), &keys);
        assert!(v.is_ok(), "{:?}", v.broken);
        assert!(v.ended);
        assert_eq!(v.events, 8);

        let cut = rows_of(&b, &[0, 1, 2, 3, 4, 5]);
        let v = check(&cut, seals.clone(), &keys);
        let br = v.broken.unwrap();
        assert_eq!((br.seq, br.kind), (6, BreakKind::Truncated));

        let rewritten = vec![
            seal(&key, 3, head_at(&b, 3), false),
            seal(&key, 7, [1; 32], true),
        ];
        let br = check(&b, rewritten, &keys).broken.unwrap();
        assert_eq!((br.seq, br.kind), (4, BreakKind::Rewritten));

        let forger = GatewayKey::generate();
        let mut forged = seal(&forger, 7, head_at(&b, 7), true);
        forged.seal.key_id = key.id().clone();
        let br = check(&b, vec![forged], &keys).broken.unwrap();
        assert_eq!((br.seq, br.kind), (7, BreakKind::BadSignature));
    }
}
