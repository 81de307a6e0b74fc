//! The running state of every session the spool holds: facts, totals and chain head.
//!
//! The journal keeps one book as records are written, and recovery rebuilds the same
//! book by replaying spool files, so a chunk cut from a live spool and one read back
//! after a crash carry the same checkpoints.

use super::record::{SessionState, SpoolRecord, SpooledEvent};
use crate::event::{Event, Kind, Status};
use crate::session::{SessionCounts, SessionMeta};
use crate::writer::TrafficCounters;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a checkpoint seals: a session's state at the end of a chunk, not yet signed.
#[derive(Debug, Clone)]
pub struct CheckpointDraft {
    pub meta: SessionMeta,
    pub counts: SessionCounts,
    pub last_seq: u64,
    pub head: [u8; 32],
    pub end: Option<(i64, String)>,
}

struct Entry {
    meta: SessionMeta,
    counts: SessionCounts,
    last: Option<(u64, [u8; 32])>,
    end: Option<(i64, String)>,
    /// Touched since the last checkpoint was cut.
    dirty: bool,
    /// Live byte counters, while the session runs in this process.
    traffic: Option<Arc<TrafficCounters>>,
}

impl Entry {
    fn counts_now(&self) -> SessionCounts {
        let mut c = self.counts.clone();
        if let Some(t) = &self.traffic {
            c.bytes_from_client = c
                .bytes_from_client
                .max(t.from_client.load(Ordering::Relaxed));
            c.bytes_from_server = c
                .bytes_from_server
                .max(t.from_server.load(Ordering::Relaxed));
        }
        c
    }
}

/// Sessions by id.
#[derive(Default)]
pub struct SessionBook {
    sessions: HashMap<Arc<str>, Entry>,
}

impl SessionBook {
    /// Registers a session opened in this process.
    pub fn opened(&mut self, meta: SessionMeta, traffic: Option<Arc<TrafficCounters>>) {
        self.sessions.insert(
            meta.session_id.clone(),
            Entry {
                meta,
                counts: SessionCounts::default(),
                last: None,
                end: None,
                dirty: true,
                traffic,
            },
        );
    }

    /// Counts an event and moves the session's head.
    pub fn event(&mut self, e: &Event) {
        if let Some(s) = self.sessions.get_mut(&e.session_id) {
            count(&mut s.counts, e.kind, e.status, &e.masked);
            s.last = Some((e.seq, e.hash));
            s.dirty = true;
        }
    }

    /// Marks a session ended.
    pub fn ended(&mut self, session_id: &str, end_ns: i64, reason: String) {
        if let Some(s) = self.sessions.get_mut(session_id) {
            s.end = Some((end_ns, reason));
            s.dirty = true;
        }
    }

    /// The facts of a session, if the book holds it.
    pub fn meta(&self, session_id: &str) -> Option<&SessionMeta> {
        self.sessions.get(session_id).map(|s| &s.meta)
    }

    /// Applies a record read back from a spool file; events come back as archive rows.
    pub fn replay(&mut self, record: SpoolRecord) -> Option<Event> {
        match record {
            SpoolRecord::State(s) => {
                let SessionState { meta, counts, last } = *s;
                self.sessions.insert(
                    meta.session_id.clone(),
                    Entry {
                        meta,
                        counts,
                        last,
                        end: None,
                        dirty: false,
                        traffic: None,
                    },
                );
                None
            }
            SpoolRecord::Opened(meta) => {
                self.opened(*meta, None);
                None
            }
            SpoolRecord::Event(e) => self.replay_event(*e),
            SpoolRecord::Ended {
                session_id,
                end_ns,
                reason,
            } => {
                self.ended(&session_id, end_ns, reason);
                None
            }
        }
    }

    fn replay_event(&mut self, e: SpooledEvent) -> Option<Event> {
        let meta = self.meta(&e.session_id)?.clone();
        let event = e.into_event(&meta);
        self.event(&event);
        Some(event)
    }

    /// The checkpoints of every session touched since the last call, and forgets the
    /// sessions whose end they carry.
    pub fn cut_checkpoints(&mut self) -> Vec<CheckpointDraft> {
        let mut out = Vec::new();
        for s in self.sessions.values_mut().filter(|s| s.dirty) {
            s.dirty = false;
            let Some((last_seq, head)) = s.last else {
                continue;
            };
            out.push(CheckpointDraft {
                meta: s.meta.clone(),
                counts: s.counts_now(),
                last_seq,
                head,
                end: s.end.clone(),
            });
        }
        self.sessions.retain(|_, s| s.end.is_none());
        out.sort_by(|a, b| a.meta.session_id.cmp(&b.meta.session_id));
        out
    }

    /// The state of every live session, to open a new spool file with.
    pub fn live_states(&self) -> Vec<SessionState> {
        let mut out: Vec<SessionState> = self
            .sessions
            .values()
            .filter(|s| s.end.is_none())
            .map(|s| SessionState {
                meta: s.meta.clone(),
                counts: s.counts_now(),
                last: s.last,
            })
            .collect();
        out.sort_by(|a, b| a.meta.session_id.cmp(&b.meta.session_id));
        out
    }

    /// Whether any session was touched since the last checkpoint.
    pub fn any_dirty(&self) -> bool {
        self.sessions.values().any(|s| s.dirty)
    }
}

/// Masked entries read `what=count` (e.g. `detector:email=3`); a bare name counts once.
fn count(counts: &mut SessionCounts, kind: Kind, status: Status, masked: &[String]) {
    counts.events += 1;
    if kind == Kind::Query {
        counts.commands += 1;
    }
    if kind == Kind::Error && status == Status::Error {
        counts.errors += 1;
    }
    // A refused command counts once (its query event), not again for the error the
    // client was given in its place.
    if status == Status::Blocked && kind == Kind::Query {
        counts.blocked += 1;
    }
    counts.masked_values += crate::text_format::masked_count(masked);
}
