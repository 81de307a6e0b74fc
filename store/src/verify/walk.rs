//! Walking a session's chain over stored rows: recompute each link from the previous
//! head and compare it with what the row stores, and on the first mismatch work out
//! what happened there.
//!
//! A format 1 row stores its full `prev_hash` and `hash`; a format 2 row stores only a
//! short tag of its hash, so the walk carries the full head itself (from genesis, or
//! from a signed checkpoint head the caller hands it). Either way the verifier never
//! trusts a stored hash: it recomputes every link from the row's content.
//!
//! With tags, a mismatch at seq s is explained by trying the hypotheses an attacker's
//! edits leave behind, cheapest first: a later row that chains at s (the events were
//! reordered, or one was inserted before it), else the row itself was modified.

use super::verdict::{Break, BreakKind};
use crate::batch::{EventColumns, chain_tag};
use crate::chain::{GENESIS_PREV, link};
use std::collections::HashSet;

/// How far ahead a reordered event is looked for.
const REORDER_WINDOW: usize = 4096;

/// The state of one session's chain as the walk goes along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainWalk {
    next_seq: u64,
    head: Option<[u8; 32]>,
    events: u64,
}

impl Default for ChainWalk {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainWalk {
    /// A walk from the session's first event.
    pub fn new() -> Self {
        ChainWalk {
            next_seq: 0,
            head: None,
            events: 0,
        }
    }

    /// A walk that carries on after a head known to be right (a signed checkpoint).
    pub fn after(last_seq: u64, head: [u8; 32]) -> Self {
        ChainWalk {
            next_seq: last_seq + 1,
            head: Some(head),
            events: 0,
        }
    }

    /// The seq the next row must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last seq walked and the head there (`None` before any event).
    pub fn position(&self) -> Option<(u64, [u8; 32])> {
        self.head.map(|h| (self.next_seq - 1, h))
    }

    /// Rows walked so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Walks `rows` (indices into `cols`, one session's, in stored seq order) and stops
    /// at the first row that does not chain.
    pub fn walk(&mut self, cols: &EventColumns<'_>, rows: &[usize]) -> Result<(), Break> {
        for (p, &r) in rows.iter().enumerate() {
            let seq = cols.seq(r);
            if seq < self.next_seq {
                return Err(Break::new(
                    seq,
                    BreakKind::Inserted,
                    format!("a second event claims seq {seq}"),
                ));
            }
            if seq > self.next_seq {
                let gap = seq - self.next_seq;
                return Err(Break::new(
                    self.next_seq,
                    BreakKind::Missing,
                    format!("{gap} event(s) missing before seq {seq}"),
                ));
            }
            let h = link(self.head.as_ref(), &cols.canonical(r));
            let ok = match cols.tag(r) {
                Some(tag) => chain_tag(&h) == tag,
                None => {
                    cols.prev_hash(r) == Some(self.head.unwrap_or(GENESIS_PREV))
                        && cols.hash(r) == Some(h)
                }
            };
            if !ok {
                return Err(self.diagnose(cols, rows, p));
            }
            self.head = Some(h);
            self.next_seq += 1;
            self.events += 1;
        }
        Ok(())
    }

    /// Why row `rows[p]` (at the walk's next seq) does not chain.
    fn diagnose(&self, cols: &EventColumns<'_>, rows: &[usize], p: usize) -> Break {
        let s = self.next_seq;
        let r = rows[p];
        if cols.tag(r).is_none() {
            return self.diagnose_hashed(cols, rows, p);
        }
        let end = rows.len().min(p + 1 + REORDER_WINDOW);
        for (k, &other) in rows.iter().enumerate().take(end).skip(p + 1) {
            let Some(other_tag) = cols.tag(other) else {
                continue;
            };
            let mut fields = cols.canonical(other);
            fields.seq = s;
            let h = link(self.head.as_ref(), &fields);
            if chain_tag(&h) != other_tag {
                continue;
            }
            if k == p + 1 {
                let mut here = cols.canonical(r);
                here.seq = s + 1;
                let swapped = cols.tag(r) == Some(chain_tag(&link(Some(&h), &here)));
                return if swapped {
                    Break::new(
                        s,
                        BreakKind::Reordered,
                        format!("the events recorded at seq {s} and {} trade places", s + 1),
                    )
                } else {
                    Break::new(
                        s,
                        BreakKind::Inserted,
                        format!(
                            "an event the gateway never recorded sits at seq {s}; the gateway's seq {s} follows it"
                        ),
                    )
                };
            }
            return Break::new(
                s,
                BreakKind::Reordered,
                format!(
                    "the event the gateway recorded at seq {s} sits {} rows later",
                    k - p
                ),
            );
        }
        Break::new(
            s,
            BreakKind::Modified,
            "its content does not match its chain tag",
        )
    }

    /// The same question for a format 1 row, which stores its full hashes: a link to a
    /// hash other than the previous row's tells reordering and insertion apart.
    fn diagnose_hashed(&self, cols: &EventColumns<'_>, rows: &[usize], p: usize) -> Break {
        let s = self.next_seq;
        let r = rows[p];
        let head = self.head.unwrap_or(GENESIS_PREV);
        let (Some(prev), Some(hash)) = (cols.prev_hash(r), cols.hash(r)) else {
            return Break::new(
                s,
                BreakKind::Modified,
                "it stores neither a chain tag nor its hashes",
            );
        };
        let fields = cols.canonical(r);
        let self_ok = {
            let recomputed = if fields.seq == 0 && prev == GENESIS_PREV {
                link(None, &fields)
            } else {
                link(Some(&prev), &fields)
            };
            recomputed == hash
        };
        if prev == head {
            return Break::new(
                s,
                BreakKind::Modified,
                "its content does not match its hash",
            );
        }
        let stored = |i: usize| rows.get(i).and_then(|&x| cols.hash(x));
        if p >= 2
            && stored(p - 2) == Some(prev)
            && rows
                .get(p - 1)
                .and_then(|&x| cols.prev_hash(x))
                .is_some_and(|pp| Some(pp) == stored(p - 2))
        {
            return Break::new(
                s - 1,
                BreakKind::Inserted,
                format!(
                    "the gateway chained seq {s} directly after seq {}",
                    s.saturating_sub(2)
                ),
            );
        }
        let known: HashSet<[u8; 32]> = rows.iter().filter_map(|&x| cols.hash(x)).collect();
        if known.contains(&prev) {
            Break::new(
                s,
                BreakKind::Reordered,
                "it was recorded at another position in the session",
            )
        } else if self_ok {
            Break::new(
                s,
                BreakKind::Inserted,
                "it chains onto an event that is not in this session",
            )
        } else {
            Break::new(
                s,
                BreakKind::Modified,
                "its content and its link to the previous event do not match",
            )
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::batch::events_to_batch;
    use crate::chain::Chain;
    use crate::event::{Direction, Event, Kind, Status};
    use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array, UInt64Array};
    use datafusion::arrow::compute::take;
    use std::sync::Arc;

    /// A session of `n` chained events, as a format 2 batch.
    pub(crate) fn session(n: u64) -> RecordBatch {
        let mut chain = Chain::new();
        let events: Vec<Event> = (0..n)
            .map(|seq| {
                let mut e = Event {
                    session_id: "S".into(),
                    seq,
                    ts_ns: 1_000 + seq as i64,
                    gateway_id: "gw".into(),
                    connection: "pg".into(),
                    protocol: "postgres".into(),
                    user: "u".into(),
                    direction: Direction::Client,
                    kind: Kind::Query,
                    command: Some(format!("SELECT {seq} FROM accounts")),
                    status: Status::Ok,
                    row_count: None,
                    duration_us: None,
                    masked: vec![],
                    payload: bytes::Bytes::from(format!("Q....SELECT {seq} FROM accounts\0")),
                    text: None,
                    prev_hash: [0; 32],
                    hash: [0; 32],
                };
                let masked: Vec<&str> = vec![];
                let fields = crate::canonical::CanonicalFields {
                    session_id: &e.session_id,
                    seq,
                    ts_ns: e.ts_ns,
                    gateway_id: &e.gateway_id,
                    connection: &e.connection,
                    protocol: &e.protocol,
                    user: &e.user,
                    direction: e.direction.as_str(),
                    kind: e.kind.as_str(),
                    command: e.command.as_deref(),
                    status: e.status.as_str(),
                    row_count: None,
                    duration_us: None,
                    masked: &masked,
                    payload: e.payload[..].into(),
                    text: None,
                };
                let (prev, hash) = chain.append(&fields);
                e.prev_hash = prev;
                e.hash = hash;
                e
            })
            .collect();
        events_to_batch(&events.iter().collect::<Vec<_>>()).unwrap()
    }

    pub(crate) fn rows_of(b: &RecordBatch, order: &[u32]) -> RecordBatch {
        let idx = UInt32Array::from(order.to_vec());
        let cols: Vec<ArrayRef> = b
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &idx, None).unwrap())
            .collect();
        RecordBatch::try_new(b.schema(), cols).unwrap()
    }

    fn replace(b: &RecordBatch, name: &str, col: ArrayRef) -> RecordBatch {
        let i = b.schema().index_of(name).unwrap();
        let mut cols = b.columns().to_vec();
        cols[i] = col;
        RecordBatch::try_new(b.schema(), cols).unwrap()
    }

    fn walk(b: &RecordBatch) -> Result<ChainWalk, Break> {
        let cols = EventColumns::new(b).unwrap();
        let rows: Vec<usize> = (0..cols.len()).collect();
        let mut w = ChainWalk::new();
        w.walk(&cols, &rows).map(|_| w)
    }

    fn broken(b: &RecordBatch) -> (u64, BreakKind) {
        let e = walk(b).expect_err("must break");
        (e.seq, e.kind)
    }

    #[test]
    fn an_intact_session_walks_to_its_head() {
        let b = session(8);
        let w = walk(&b).unwrap();
        assert_eq!(w.events(), 8);
        assert_eq!(w.position().map(|p| p.0), Some(7));
    }

    #[test]
    fn a_walk_resumes_after_a_known_head() {
        let b = session(8);
        let cols = EventColumns::new(&b).unwrap();
        let mut first = ChainWalk::new();
        first.walk(&cols, &[0, 1, 2]).unwrap();
        let (seq, head) = first.position().unwrap();
        let mut rest = ChainWalk::after(seq, head);
        rest.walk(&cols, &[3, 4, 5, 6, 7]).unwrap();
        let mut wrong = ChainWalk::after(seq, [9; 32]);
        assert_eq!(
            wrong.walk(&cols, &[3]).unwrap_err().kind,
            BreakKind::Modified
        );
    }

    #[test]
    fn tag_walks_name_each_kind_of_tampering_at_its_seq() {
        let b = session(10);
        // One event deleted.
        assert_eq!(
            broken(&rows_of(&b, &[0, 1, 2, 4, 5])),
            (3, BreakKind::Missing)
        );
        // A copy of seq 3 placed again.
        assert_eq!(
            broken(&rows_of(&b, &[0, 1, 2, 3, 3, 4])),
            (3, BreakKind::Inserted)
        );
        // Two events swapped, their seq numbers kept in place.
        let swapped = rows_of(&b, &[0, 1, 2, 4, 3, 5, 6]);
        let swapped = replace(
            &swapped,
            "seq",
            Arc::new(UInt64Array::from((0..7).collect::<Vec<u64>>())),
        );
        assert_eq!(broken(&swapped), (3, BreakKind::Reordered));
        // An event moved further down.
        let moved = rows_of(&b, &[0, 1, 3, 4, 2, 5, 6]);
        let moved = replace(
            &moved,
            "seq",
            Arc::new(UInt64Array::from((0..7).collect::<Vec<u64>>())),
        );
        assert_eq!(broken(&moved), (2, BreakKind::Reordered));
        // A foreign event inserted and the seqs after it renumbered.
        let other = session(10);
        let other_cols = other.slice(6, 1);
        let parts = [b.slice(0, 4), other_cols, b.slice(4, 6)];
        let joined = datafusion::arrow::compute::concat_batches(&b.schema(), parts.iter()).unwrap();
        let joined = replace(
            &joined,
            "seq",
            Arc::new(UInt64Array::from((0..11).collect::<Vec<u64>>())),
        );
        assert_eq!(broken(&joined), (4, BreakKind::Inserted));
        // One byte of a payload changed.
        let payload = b
            .column_by_name("payload")
            .unwrap()
            .as_any()
            .downcast_ref::<datafusion::arrow::array::BinaryArray>()
            .unwrap();
        let changed: Vec<Vec<u8>> = (0..payload.len())
            .map(|i| {
                let mut v = payload.value(i).to_vec();
                if i == 6 {
                    v[0] ^= 1;
                }
                v
            })
            .collect();
        let changed = replace(
            &b,
            "payload",
            Arc::new(datafusion::arrow::array::BinaryArray::from_iter_values(
                changed.iter(),
            )),
        );
        assert_eq!(broken(&changed), (6, BreakKind::Modified));
    }
}
