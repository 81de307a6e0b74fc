//! What is waiting in the spool for the archive, shared by the journal (which adds),
//! the uploader (which reclaims), the listeners (which refuse sessions when the spool
//! is nearly full) and `tapline gateway status` (which reads `status.json`).

use crate::event::now_ns;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The status file the gateway rewrites every second in its spool folder.
pub const STATUS_FILE: &str = "status.json";

/// New sessions are refused once the spool holds this share of `spool_max_bytes`, so
/// sessions already running keep the rest.
pub const ADMISSION_SHARE: f64 = 0.9;

/// Live counters of the backlog.
#[derive(Debug)]
pub struct Backlog {
    /// The configured bound on spool bytes.
    pub max_bytes: u64,
    events: AtomicU64,
    bytes: AtomicU64,
    uploaded_segments: AtomicU64,
    uploaded_events: AtomicU64,
    /// (spool file number, ts of its first event), oldest first.
    oldest: Mutex<VecDeque<(u64, i64)>>,
    last_error: Mutex<Option<(String, i64)>>,
    last_upload_ns: AtomicU64,
    spool_failed: AtomicBool,
    /// The seq and hash (hex) of the newest ledger entry the archive confirmed.
    ledger_head: Mutex<Option<(u64, String)>>,
}

/// A point-in-time copy of the backlog, as written to `status.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BacklogStatus {
    pub gateway_id: String,
    pub pid: u32,
    pub archive: String,
    pub spool: String,
    /// When this status was written (ns since the epoch).
    pub updated_ns: i64,
    pub events_waiting: u64,
    pub bytes_waiting: u64,
    pub spool_max_bytes: u64,
    /// Timestamp of the oldest event not yet confirmed by the archive.
    pub oldest_waiting_ns: Option<i64>,
    pub segments_uploaded: u64,
    pub events_uploaded: u64,
    pub last_upload_ns: Option<i64>,
    pub last_upload_error: Option<String>,
    pub last_upload_error_ns: Option<i64>,
    pub accepting_sessions: bool,
    /// The seq of the gateway's newest ledger entry in the archive.
    #[serde(default)]
    pub ledger_head_seq: Option<u64>,
    /// Its hash, hex: hand it to a second system, and `tapline verify --expect-head`
    /// proves the ledger has not been cut short since.
    #[serde(default)]
    pub ledger_head: Option<String>,
}

impl Backlog {
    /// An empty backlog bounded by `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Backlog {
            max_bytes,
            events: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            uploaded_segments: AtomicU64::new(0),
            uploaded_events: AtomicU64::new(0),
            oldest: Mutex::new(VecDeque::new()),
            last_error: Mutex::new(None),
            last_upload_ns: AtomicU64::new(0),
            spool_failed: AtomicBool::new(false),
            ledger_head: Mutex::new(None),
        }
    }

    /// Bytes held in the spool.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Events not yet confirmed by the archive.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Whether a new session may start.
    pub fn admits_sessions(&self) -> bool {
        !self.spool_failed() && (self.bytes() as f64) < self.max_bytes as f64 * ADMISSION_SHARE
    }

    /// Whether a live session may record one more event of `n` bytes.
    pub fn has_room_for(&self, n: u64) -> bool {
        self.bytes() + n <= self.max_bytes
    }

    pub(crate) fn spooled(&self, events: u64, bytes: u64) {
        self.events.fetch_add(events, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn file_started(&self, file_no: u64, first_ts_ns: i64) {
        let mut q = self.oldest.lock().unwrap_or_else(|e| e.into_inner());
        if q.back().is_none_or(|(n, _)| *n < file_no) {
            q.push_back((file_no, first_ts_ns));
        }
    }

    pub(crate) fn reclaimed(&self, file_no: u64, events: u64, bytes: u64, segments: u64) {
        self.events
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(events))
            })
            .ok();
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(bytes))
            })
            .ok();
        self.uploaded_segments
            .fetch_add(segments, Ordering::Relaxed);
        self.uploaded_events.fetch_add(events, Ordering::Relaxed);
        self.last_upload_ns
            .store(now_ns() as u64, Ordering::Relaxed);
        let mut q = self.oldest.lock().unwrap_or_else(|e| e.into_inner());
        while q.front().is_some_and(|(n, _)| *n <= file_no) {
            q.pop_front();
        }
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub(crate) fn upload_failed(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some((error, now_ns()));
    }

    pub(crate) fn set_ledger_head(&self, seq: u64, hash: &str) {
        *self.ledger_head.lock().unwrap_or_else(|e| e.into_inner()) = Some((seq, hash.to_string()));
    }

    pub(crate) fn set_spool_failed(&self) {
        self.spool_failed.store(true, Ordering::Relaxed);
    }

    /// Whether writing the spool itself has failed (a full or broken disk).
    pub fn spool_failed(&self) -> bool {
        self.spool_failed.load(Ordering::Relaxed)
    }

    /// The last upload error, if uploads are failing now.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(e, _)| e.clone())
    }

    /// The timestamp of the oldest waiting event.
    pub fn oldest_waiting_ns(&self) -> Option<i64> {
        let q = self.oldest.lock().unwrap_or_else(|e| e.into_inner());
        q.front().map(|(_, ts)| *ts)
    }

    /// A copy for `status.json`.
    pub fn status(&self, gateway_id: &str, archive: &str, spool: &Path) -> BacklogStatus {
        let err = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let last_upload = self.last_upload_ns.load(Ordering::Relaxed);
        let head = self
            .ledger_head
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        BacklogStatus {
            gateway_id: gateway_id.to_string(),
            pid: std::process::id(),
            archive: archive.to_string(),
            spool: spool.display().to_string(),
            updated_ns: now_ns(),
            events_waiting: self.events(),
            bytes_waiting: self.bytes(),
            spool_max_bytes: self.max_bytes,
            oldest_waiting_ns: if self.events() > 0 {
                self.oldest_waiting_ns()
            } else {
                None
            },
            segments_uploaded: self.uploaded_segments.load(Ordering::Relaxed),
            events_uploaded: self.uploaded_events.load(Ordering::Relaxed),
            last_upload_ns: (last_upload > 0).then_some(last_upload as i64),
            last_upload_error: err.as_ref().map(|e| e.0.clone()),
            last_upload_error_ns: err.map(|e| e.1),
            accepting_sessions: self.admits_sessions(),
            ledger_head_seq: head.as_ref().map(|h| h.0),
            ledger_head: head.map(|h| h.1),
        }
    }
}

/// Writes `status.json` atomically (write, then rename).
pub fn write_status(spool: &Path, status: &BacklogStatus) -> std::io::Result<()> {
    let tmp = spool.join(format!("{STATUS_FILE}.tmp"));
    let body = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, spool.join(STATUS_FILE))
}

/// Reads the status a gateway last wrote into its spool folder.
pub fn read_status(spool: &Path) -> std::io::Result<BacklogStatus> {
    let body = std::fs::read(spool.join(STATUS_FILE))?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_refused_before_the_spool_is_full_and_reclaim_frees_room() {
        let b = Backlog::new(1000);
        b.file_started(1, 10);
        b.spooled(5, 850);
        assert!(b.admits_sessions());
        assert!(b.has_room_for(100));
        b.file_started(2, 20);
        b.spooled(1, 60);
        assert!(!b.admits_sessions(), "910 of 1000 bytes is past 90%");
        assert!(b.has_room_for(90));
        assert!(!b.has_room_for(91));
        assert_eq!(b.oldest_waiting_ns(), Some(10));
        b.upload_failed("503".into());
        assert_eq!(b.last_error().as_deref(), Some("503"));
        b.reclaimed(1, 5, 850, 2);
        assert!(b.admits_sessions());
        assert_eq!(b.oldest_waiting_ns(), Some(20));
        assert_eq!(b.last_error(), None);
        let s = b.status("gw", "az://c/p", Path::new("/tmp/s"));
        assert_eq!((s.events_waiting, s.bytes_waiting), (1, 60));
        assert_eq!(s.segments_uploaded, 2);
    }
}
