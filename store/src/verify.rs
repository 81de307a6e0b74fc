//! Recomputes session chains and checks seals, and says where and how a session breaks.
//!
//! The verifier never trusts the stored hashes: each row is re-encoded canonically and
//! re-hashed onto its stored predecessor (`self_ok`), and each row's predecessor must be
//! the row before it (linkage). A row that passes both for every seq is exactly the
//! chain the gateway computed. Seals then pin the chain to what the gateway signed:
//! a recomputed (forged) chain, a truncated tail or a re-signed seal fails there.

use crate::batch::EventColumns;
use crate::chain::{GENESIS_PREV, link};
use crate::seal::{Seal, SealProblem, TrustedKeys};
use std::collections::HashMap;

/// What the verifier keeps of each event: enough to place it and judge it.
#[derive(Debug, Clone, Copy)]
pub struct RowCheck {
    pub seq: u64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
    /// The stored hash equals the hash recomputed from the row and its stored prev_hash.
    pub self_ok: bool,
}

impl RowCheck {
    /// Re-hashes row `i` of a batch.
    pub fn of(columns: &EventColumns<'_>, i: usize) -> Self {
        let fields = columns.canonical(i);
        let prev_hash = columns.prev_hash(i);
        let hash = columns.hash(i);
        let recomputed = if fields.seq == 0 && prev_hash == GENESIS_PREV {
            link(None, &fields)
        } else {
            link(Some(&prev_hash), &fields)
        };
        RowCheck {
            seq: fields.seq,
            prev_hash,
            hash,
            self_ok: recomputed == hash,
        }
    }
}

/// A seal as stored with a session checkpoint.
#[derive(Debug, Clone)]
pub struct StoredSeal {
    pub seal: Seal,
    pub is_end: bool,
    pub end_reason: Option<String>,
}

/// How a session's record is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The event's content no longer matches its hash.
    Modified,
    /// An event is missing at this seq.
    Missing,
    /// The event at this seq was recorded at another position.
    Reordered,
    /// An event that the gateway never recorded sits at this seq.
    Inserted,
    /// Events the gateway sealed are gone from the end of the session.
    Truncated,
    /// A seal does not check out against the trusted keys.
    BadSignature,
    /// The chain was recomputed: it is self-consistent but does not match a seal.
    Rewritten,
}

impl BreakKind {
    /// One word for reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakKind::Modified => "modified",
            BreakKind::Missing => "missing",
            BreakKind::Reordered => "reordered",
            BreakKind::Inserted => "inserted",
            BreakKind::Truncated => "truncated",
            BreakKind::BadSignature => "bad signature",
            BreakKind::Rewritten => "rewritten",
        }
    }
}

/// The first place a session breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: u64,
    pub kind: BreakKind,
    pub detail: String,
}

/// The verdict on one session.
#[derive(Debug, Clone)]
pub struct SessionVerdict {
    pub session_id: String,
    pub events: u64,
    /// The highest seq covered by a valid seal.
    pub sealed_through: Option<u64>,
    /// The session carries a valid end seal.
    pub ended: bool,
    pub end_reason: Option<String>,
    pub broken: Option<Break>,
}

impl SessionVerdict {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.broken.is_none()
    }

    /// A short status line: `ok`, `ok (live, …)` or `BROKEN at seq N: …`.
    pub fn status_line(&self) -> String {
        match &self.broken {
            Some(b) => format!(
                "BROKEN at seq {}: {} ({})",
                b.seq,
                b.kind.as_str(),
                b.detail
            ),
            None if self.ended => format!(
                "ok: {} events, sealed at end ({})",
                self.events,
                self.end_reason.as_deref().unwrap_or("ended")
            ),
            None => {
                let unsealed = match self.sealed_through {
                    Some(s) => self.events.saturating_sub(s + 1),
                    None => self.events,
                };
                format!(
                    "ok: {} events, live or interrupted; {} after the last checkpoint seal",
                    self.events, unsealed
                )
            }
        }
    }
}

/// Judges one session from its rows (sorted by seq) and its stored seals.
pub fn verify_session(
    session_id: &str,
    rows: &[RowCheck],
    seals: &[StoredSeal],
    keys: &TrustedKeys,
) -> SessionVerdict {
    let mut verdict = SessionVerdict {
        session_id: session_id.to_string(),
        events: rows.len() as u64,
        sealed_through: None,
        ended: false,
        end_reason: None,
        broken: None,
    };
    let fail = |seq, kind, detail: String| Some(Break { seq, kind, detail });

    // 1. The chain itself.
    let known: HashMap<[u8; 32], usize> =
        rows.iter().enumerate().map(|(i, r)| (r.hash, i)).collect();
    let mut head = GENESIS_PREV;
    for (i, row) in rows.iter().enumerate() {
        let expected = i as u64;
        if row.seq < expected {
            verdict.broken = fail(
                row.seq,
                BreakKind::Inserted,
                format!("a second event claims seq {}", row.seq),
            );
            break;
        }
        if row.seq > expected {
            let gap = row.seq - expected;
            verdict.broken = fail(
                expected,
                BreakKind::Missing,
                format!("{gap} event(s) missing before seq {}", row.seq),
            );
            break;
        }
        let linked = row.prev_hash == head;
        if linked && row.self_ok {
            head = row.hash;
            continue;
        }
        if linked {
            verdict.broken = fail(
                expected,
                BreakKind::Modified,
                "its content does not match its hash".into(),
            );
            break;
        }
        // Not linked to the event before it: work out why.
        if i >= 2 && row.prev_hash == rows[i - 2].hash && rows[i - 1].prev_hash == rows[i - 2].hash
        {
            verdict.broken = fail(
                expected - 1,
                BreakKind::Inserted,
                format!(
                    "the gateway chained seq {} directly after seq {}",
                    expected,
                    expected - 2
                ),
            );
        } else if known.contains_key(&row.prev_hash) {
            verdict.broken = fail(
                expected,
                BreakKind::Reordered,
                "it was recorded at another position in the session".into(),
            );
        } else if row.self_ok {
            verdict.broken = fail(
                expected,
                BreakKind::Inserted,
                "it chains onto an event that is not in this session".into(),
            );
        } else {
            verdict.broken = fail(
                expected,
                BreakKind::Modified,
                "its content and its link to the previous event do not match".into(),
            );
        }
        break;
    }
    if verdict.broken.is_some() {
        return verdict;
    }

    // 2. Seals, oldest first.
    let mut seals: Vec<&StoredSeal> = seals.iter().collect();
    seals.sort_by_key(|s| (s.seal.last_seq, s.is_end));
    let mut last_good: Option<u64> = None;
    for s in seals {
        let seq = s.seal.last_seq;
        if let Err(problem) = keys.check(&s.seal) {
            let detail = match problem {
                SealProblem::UnknownKey(id) => format!(
                    "the seal through seq {seq} is signed with key {id}, which is not trusted; pass the gateway's key with --pubkey"
                ),
                SealProblem::BadSignature(id) => {
                    format!("the seal through seq {seq} does not match the signature of key {id}")
                }
            };
            verdict.broken = fail(seq, BreakKind::BadSignature, detail);
            return verdict;
        }
        match rows.get(seq as usize) {
            None => {
                let first_missing = rows.len() as u64;
                verdict.broken = fail(
                    first_missing,
                    BreakKind::Truncated,
                    format!(
                        "the gateway sealed the session through seq {seq}, but the archive ends at {}",
                        if rows.is_empty() {
                            "no event".to_string()
                        } else {
                            format!("seq {}", first_missing - 1)
                        }
                    ),
                );
                return verdict;
            }
            Some(row) if row.hash != s.seal.head_hash => {
                let from = last_good.map_or(0, |g| g + 1);
                verdict.broken = fail(
                    from,
                    BreakKind::Rewritten,
                    format!(
                        "the chain was recomputed: the head at seq {seq} does not match its seal"
                    ),
                );
                return verdict;
            }
            Some(_) => {
                last_good = Some(seq);
                if s.is_end {
                    verdict.ended = true;
                    verdict.end_reason = s.end_reason.clone();
                }
            }
        }
    }
    verdict.sealed_through = last_good;
    if verdict.ended && last_good.is_some_and(|g| g + 1 < rows.len() as u64) {
        let seq = last_good.unwrap_or(0) + 1;
        verdict.broken = fail(
            seq,
            BreakKind::Inserted,
            "events follow the session's end seal".into(),
        );
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::CanonicalFields;
    use crate::chain::Chain;
    use crate::seal::GatewayKey;

    fn rows(n: u64) -> Vec<RowCheck> {
        let mut chain = Chain::new();
        (0..n)
            .map(|seq| {
                let payload = seq.to_le_bytes();
                let (prev_hash, hash) = chain.append(&CanonicalFields {
                    session_id: "s",
                    seq,
                    ts_ns: 0,
                    gateway_id: "g",
                    connection: "c",
                    protocol: "p",
                    user: "u",
                    direction: "client",
                    kind: "query",
                    command: None,
                    status: "ok",
                    row_count: None,
                    duration_us: None,
                    masked: &[],
                    payload: &payload,
                    text: None,
                });
                RowCheck {
                    seq,
                    prev_hash,
                    hash,
                    self_ok: true,
                }
            })
            .collect()
    }

    fn sealed(rows: &[RowCheck], key: &GatewayKey) -> Vec<StoredSeal> {
        let last = rows.last().unwrap();
        vec![StoredSeal {
            seal: key.seal("s", last.seq, last.hash),
            is_end: true,
            end_reason: Some("client_closed".into()),
        }]
    }

    fn setup() -> (Vec<RowCheck>, GatewayKey, TrustedKeys, Vec<StoredSeal>) {
        let r = rows(6);
        let key = GatewayKey::generate();
        let mut keys = TrustedKeys::default();
        keys.add(key.verifying_key());
        let seals = sealed(&r, &key);
        (r, key, keys, seals)
    }

    fn broken(v: SessionVerdict) -> (u64, BreakKind) {
        let b = v.broken.expect("must be broken");
        (b.seq, b.kind)
    }

    #[test]
    fn an_intact_session_verifies() {
        let (r, _, keys, seals) = setup();
        let v = verify_session("s", &r, &seals, &keys);
        assert!(v.is_ok(), "{:?}", v.broken);
        assert!(v.ended);
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_its_seq() {
        let (r, _, keys, seals) = setup();

        let mut modified = r.clone();
        modified[3].self_ok = false;
        assert_eq!(
            broken(verify_session("s", &modified, &seals, &keys)),
            (3, BreakKind::Modified)
        );

        let mut missing = r.clone();
        missing.remove(2);
        assert_eq!(
            broken(verify_session("s", &missing, &seals, &keys)),
            (2, BreakKind::Missing)
        );

        let mut swapped = r.clone();
        swapped.swap(2, 3);
        swapped[2].seq = 2;
        swapped[3].seq = 3;
        swapped[2].self_ok = false;
        swapped[3].self_ok = false;
        assert_eq!(
            broken(verify_session("s", &swapped, &seals, &keys)),
            (2, BreakKind::Reordered)
        );

        let truncated = r[..4].to_vec();
        assert_eq!(
            broken(verify_session("s", &truncated, &seals, &keys)),
            (4, BreakKind::Truncated)
        );

        let mut dup = r.clone();
        dup.insert(3, r[3]);
        assert_eq!(
            broken(verify_session("s", &dup, &seals, &keys)),
            (3, BreakKind::Inserted)
        );
    }

    #[test]
    fn a_seal_made_with_another_key_is_refused() {
        let (r, key, keys, _) = setup();
        let other = GatewayKey::generate();
        let mut forged = sealed(&r, &other);
        forged[0].seal.key_id = key.id().clone();
        assert_eq!(
            broken(verify_session("s", &r, &forged, &keys)),
            (5, BreakKind::BadSignature)
        );
        let unknown = sealed(&r, &other);
        assert_eq!(
            broken(verify_session("s", &r, &unknown, &keys)).1,
            BreakKind::BadSignature
        );
    }

    #[test]
    fn a_recomputed_chain_does_not_match_the_seal() {
        let (r, key, keys, _) = setup();
        let seals = vec![
            StoredSeal {
                seal: key.seal("s", 2, r[2].hash),
                is_end: false,
                end_reason: None,
            },
            StoredSeal {
                seal: key.seal("s", 5, [9; 32]),
                is_end: true,
                end_reason: None,
            },
        ];
        assert_eq!(
            broken(verify_session("s", &r, &seals, &keys)),
            (3, BreakKind::Rewritten)
        );
    }
}
