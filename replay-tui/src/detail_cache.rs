//! Events read ahead of the cursor. Stepping through a session shows each command's
//! result at once because the results of the next steps were read together with the
//! current one; the cache is bounded in entries and bytes, so a long session never
//! accumulates in memory.

use crate::model::EventDetail;
use std::collections::{HashMap, VecDeque};

/// Steps read ahead of the cursor on a miss (and a few behind, for stepping back).
pub const READ_AHEAD: usize = 32;
/// Steps read behind the cursor on a miss.
pub const READ_BEHIND: usize = 4;
/// A result larger than this is read only when the cursor reaches it.
pub const PREFETCH_PAYLOAD_LIMIT: usize = 256 * 1024;

const MAX_ENTRIES: usize = 512;
const MAX_BYTES: usize = 32 * 1024 * 1024;

/// The cache of one session's events, oldest evicted first.
#[derive(Debug, Default)]
pub struct DetailCache {
    session: String,
    entries: HashMap<u64, EventDetail>,
    order: VecDeque<u64>,
    bytes: usize,
}

fn weight(d: &EventDetail) -> usize {
    d.payload.len() + d.text.as_ref().map_or(0, String::len) + 256
}

impl DetailCache {
    /// The cached event, if any (the cache empties itself when the session changes).
    pub fn get(&mut self, session: &str, seq: u64) -> Option<EventDetail> {
        if self.session != session {
            *self = DetailCache {
                session: session.to_string(),
                ..Default::default()
            };
        }
        self.entries.get(&seq).cloned()
    }

    /// Whether the event is cached.
    pub fn contains(&self, session: &str, seq: u64) -> bool {
        self.session == session && self.entries.contains_key(&seq)
    }

    /// Adds events read for `session`.
    pub fn insert(&mut self, session: &str, details: Vec<EventDetail>) {
        if self.session != session {
            *self = DetailCache {
                session: session.to_string(),
                ..Default::default()
            };
        }
        for d in details {
            let seq = d.seq;
            self.bytes += weight(&d);
            if let Some(old) = self.entries.insert(seq, d) {
                self.bytes -= weight(&old);
            } else {
                self.order.push_back(seq);
            }
        }
        while self.order.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            let Some(seq) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.entries.remove(&seq) {
                self.bytes -= weight(&old);
            }
        }
    }

    /// Events held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(seq: u64, bytes: usize) -> EventDetail {
        EventDetail {
            seq,
            payload: vec![0; bytes],
            ..Default::default()
        }
    }

    #[test]
    fn holds_what_was_read_and_stays_bounded() {
        let mut c = DetailCache::default();
        assert!(c.get("S", 1).is_none());
        c.insert("S", (0..600).map(|s| detail(s, 10)).collect());
        assert_eq!(c.len(), MAX_ENTRIES);
        assert!(c.get("S", 599).is_some() && c.get("S", 0).is_none());
        c.insert(
            "S",
            (0..3).map(|s| detail(1000 + s, 16 * 1024 * 1024)).collect(),
        );
        assert!(c.bytes <= MAX_BYTES, "{}", c.bytes);
        assert!(c.get("S", 1002).is_some());
        assert!(c.get("T", 1002).is_none(), "another session starts afresh");
        assert!(c.is_empty());
    }
}
