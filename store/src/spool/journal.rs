//! The journal: one thread that appends every record to the spool, group-commits
//! fsyncs, and cuts the spool into chunks for the uploader.
//!
//! Sessions hand records over a channel; the thread takes everything waiting, writes
//! it with one `write`, and, when any of it came from a sync-durability session or the
//! commit window has passed, makes it durable with one `fdatasync` shared by all of
//! it. The durable position is published on a watch channel that sync sessions wait
//! on before a result goes to their client.
//!
//! A chunk is one spool file: it is cut every `flush_interval`, shortly after a session
//! ends, and at `segment_max_bytes`. The next file opens with the state of every live
//! session, so each file can be read back on its own.

use super::backlog::Backlog;
use super::book::{CheckpointDraft, SessionBook};
use super::dir::SpoolDir;
use super::frame::{FRAME_OVERHEAD, HEADER, frame_into};
use super::record::encode_state;
use crate::error::StoreError;
use crate::event::Event;
use crate::failpoint;
use crate::session::SessionMeta;
use crate::writer::TrafficCounters;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// After a session ends, its chunk is cut within this delay, so that many sessions
/// ending together share one segment.
pub const END_ROLL_DELAY: Duration = Duration::from_millis(200);

/// Unsynced records are made durable at least this often, whatever the durability.
pub const COMMIT_WINDOW: Duration = Duration::from_millis(5);

/// How long the journal lets async-only records gather between batches.
const ASYNC_GATHER: Duration = Duration::from_millis(1);

/// One batch write holds at most this many bytes before it is committed.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// The most bytes of chunks kept in memory for the uploader; beyond it the uploader
/// reads chunks back from their spool files, so an outage costs disk, not memory.
pub const MAX_QUEUED_CHUNK_BYTES: u64 = 256 << 20;

/// How the journal cuts chunks.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    pub flush_interval: Duration,
    pub segment_max_bytes: u64,
}

/// A message from a session to the journal; `body` is the encoded record.
pub(crate) enum JournalMsg {
    Opened {
        meta: Box<SessionMeta>,
        traffic: Arc<TrafficCounters>,
        body: Vec<u8>,
    },
    Event {
        event: Box<Event>,
        body: Vec<u8>,
        /// Make this durable now (a sync session is about to wait for it).
        sync: bool,
        /// From a sync session: never delay the batch it is in.
        prompt: bool,
    },
    Ended {
        session_id: Arc<str>,
        end_ns: i64,
        reason: String,
        body: Vec<u8>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// The durable position: every record numbered up to `lsn` is fsync'd. `failed` means
/// the spool can no longer be written, so waiting is pointless.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durable {
    pub lsn: u64,
    pub failed: bool,
}

/// One spool file, cut and handed to the uploader.
#[derive(Debug)]
pub struct Chunk {
    pub file_no: u64,
    pub path: PathBuf,
    /// The events, or `None` when the uploader must read them back from `path`.
    pub events: Option<Vec<Event>>,
    pub event_count: u64,
    pub checkpoints: Vec<CheckpointDraft>,
    pub file_bytes: u64,
    /// Bytes this chunk holds in memory, released when it is uploaded.
    pub queued_bytes: u64,
}

/// Numbers records and hands them to the journal thread in that order.
pub(crate) struct JournalSender {
    inner: Mutex<(u64, mpsc::Sender<(u64, JournalMsg)>)>,
}

impl JournalSender {
    /// Sends a record; returns its log sequence number.
    pub(crate) fn send(&self, msg: JournalMsg) -> Result<u64, StoreError> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let lsn = guard.0 + 1;
        guard
            .1
            .send((lsn, msg))
            .map_err(|_| StoreError::WriterStopped)?;
        guard.0 = lsn;
        Ok(lsn)
    }
}

/// Handles to a started journal.
pub(crate) struct JournalHandles {
    pub sender: Arc<JournalSender>,
    pub durable: watch::Receiver<Durable>,
    pub thread: std::thread::JoinHandle<()>,
}

struct OpenFile {
    no: u64,
    path: PathBuf,
    file: File,
    bytes: u64,
    events: u64,
    /// Records beyond the carried-over states.
    has_content: bool,
}

struct Journal {
    dir: Arc<SpoolDir>,
    config: JournalConfig,
    backlog: Arc<Backlog>,
    book: SessionBook,
    file: Option<OpenFile>,
    pending: Vec<u8>,
    chunk_events: Vec<Event>,
    chunk_event_bytes: u64,
    written_lsn: u64,
    durable: watch::Sender<Durable>,
    sync_requested: bool,
    /// The last batch held records and none of them asked for an fsync.
    pending_async_burst: bool,
    /// The current batch holds a record of a sync session.
    batch_prompt: bool,
    unsynced: bool,
    last_sync: Instant,
    roll_at: Instant,
    chunks: tokio::sync::mpsc::UnboundedSender<Chunk>,
    queued: Arc<AtomicU64>,
    failed: bool,
}

/// Starts the journal thread, writing files from `first_file_no` on. `book` holds the
/// sessions carried over from a previous run (those still live at a crash).
pub(crate) fn start(
    dir: Arc<SpoolDir>,
    config: JournalConfig,
    backlog: Arc<Backlog>,
    book: SessionBook,
    first_file_no: u64,
    chunks: tokio::sync::mpsc::UnboundedSender<Chunk>,
    queued: Arc<AtomicU64>,
) -> Result<JournalHandles, StoreError> {
    let (tx, rx) = mpsc::channel();
    let (durable_tx, durable_rx) = watch::channel(Durable::default());
    let now = Instant::now();
    let mut journal = Journal {
        dir,
        roll_at: now + config.flush_interval,
        config,
        backlog,
        book,
        file: None,
        pending: Vec::with_capacity(1 << 20),
        chunk_events: Vec::new(),
        chunk_event_bytes: 0,
        written_lsn: 0,
        durable: durable_tx,
        sync_requested: false,
        pending_async_burst: false,
        batch_prompt: false,
        unsynced: false,
        last_sync: now,
        chunks,
        queued,
        failed: false,
    };
    journal.open_file(first_file_no)?;
    let thread = std::thread::Builder::new()
        .name("tapline-journal".into())
        .spawn(move || journal.run(rx))
        .map_err(|e| StoreError::Io {
            context: "cannot start the spool journal thread".into(),
            source: e,
        })?;
    Ok(JournalHandles {
        sender: Arc::new(JournalSender {
            inner: Mutex::new((0, tx)),
        }),
        durable: durable_rx,
        thread,
    })
}

impl Journal {
    fn run(mut self, rx: mpsc::Receiver<(u64, JournalMsg)>) {
        loop {
            let now = Instant::now();
            let mut deadline = self.roll_at;
            if self.unsynced {
                deadline = deadline.min(self.last_sync + COMMIT_WINDOW);
            }
            let mut shutdown = None;
            match rx.recv_timeout(deadline.saturating_duration_since(now)) {
                Ok((lsn, msg)) => {
                    self.pending_async_burst = true;
                    let mut next = Some((lsn, msg));
                    while let Some((lsn, msg)) = next.take() {
                        if let JournalMsg::Shutdown(reply) = msg {
                            shutdown = Some(Some(reply));
                            break;
                        }
                        self.apply(lsn, msg);
                        if self.pending.len() >= MAX_BATCH_BYTES {
                            break;
                        }
                        next = rx.try_recv().ok();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => shutdown = Some(None),
            }
            self.write_pending();
            let batch_had_sync = self.sync_requested || self.batch_prompt;
            self.batch_prompt = false;
            if self.unsynced && (self.sync_requested || self.last_sync.elapsed() >= COMMIT_WINDOW) {
                self.commit();
            }
            let too_big = self
                .file
                .as_ref()
                .is_some_and(|f| f.bytes >= self.config.segment_max_bytes);
            if shutdown.is_none() && !batch_had_sync && self.pending_async_burst {
                // Only async records in this batch: let more gather before the next
                // one, so a busy gateway costs one wake-up per millisecond instead of
                // one per event. Nobody waits on these records.
                std::thread::sleep(ASYNC_GATHER);
            }
            self.pending_async_burst = false;
            if let Some(reply) = shutdown {
                self.cut(None);
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
                return;
            }
            if too_big || Instant::now() >= self.roll_at {
                let next = self.file.as_ref().map_or(1, |f| f.no + 1);
                self.cut(Some(next));
            }
        }
    }

    fn apply(&mut self, lsn: u64, msg: JournalMsg) {
        self.written_lsn = lsn;
        let body = match msg {
            JournalMsg::Opened {
                meta,
                traffic,
                body,
            } => {
                self.book.opened(*meta, Some(traffic));
                body
            }
            JournalMsg::Event {
                event,
                body,
                sync,
                prompt,
            } => {
                self.sync_requested |= sync;
                self.batch_prompt |= prompt;
                self.book.event(&event);
                if let Some(f) = &mut self.file {
                    if f.events == 0 {
                        self.backlog.file_started(f.no, event.ts_ns);
                    }
                    f.events += 1;
                }
                self.backlog.spooled(1, 0);
                self.chunk_event_bytes += event.approx_size() as u64;
                self.chunk_events.push(*event);
                body
            }
            JournalMsg::Ended {
                session_id,
                end_ns,
                reason,
                body,
            } => {
                self.book.ended(&session_id, end_ns, reason);
                self.roll_at = self.roll_at.min(Instant::now() + END_ROLL_DELAY);
                body
            }
            JournalMsg::Shutdown(_) => return,
        };
        frame_into(&mut self.pending, &body);
        if let Some(f) = &mut self.file {
            f.has_content = true;
        }
    }

    fn write_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let n = self.pending.len() as u64;
        if !self.failed
            && let Some(f) = &mut self.file
        {
            match f.file.write_all(&self.pending) {
                Ok(()) => {
                    f.bytes += n;
                    self.backlog.spooled(0, n);
                    self.unsynced = true;
                }
                Err(e) => {
                    let path = f.path.clone();
                    self.fail("cannot append to the spool", &path, e);
                }
            }
        }
        self.pending.clear();
    }

    fn commit(&mut self) {
        if self.failed {
            return;
        }
        let Some(f) = &self.file else { return };
        failpoint::pause_blocking("before_fsync");
        if let Err(e) = f.file.sync_data() {
            let path = f.path.clone();
            self.fail("cannot fsync the spool", &path, e);
            return;
        }
        failpoint::pause_blocking("after_fsync");
        self.unsynced = false;
        self.sync_requested = false;
        self.last_sync = Instant::now();
        self.durable.send_replace(Durable {
            lsn: self.written_lsn,
            failed: false,
        });
    }

    fn fail(&mut self, what: &str, path: &std::path::Path, e: std::io::Error) {
        tracing::error!(
            spool = %path.display(),
            error = %e,
            "{what}; the gateway stops accepting sessions and ends live ones. Free space or fix the disk, then restart the gateway: what is already spooled will be uploaded"
        );
        self.mark_failed();
    }

    /// Stops recording: new sessions are refused and sync waiters are released.
    fn mark_failed(&mut self) {
        self.failed = true;
        self.backlog.set_spool_failed();
        self.durable.send_replace(Durable {
            lsn: self.durable.borrow().lsn,
            failed: true,
        });
    }

    /// Cuts the current file into a chunk and, unless shutting down, opens `next`.
    fn cut(&mut self, next: Option<u64>) {
        let has_content = self.file.as_ref().is_some_and(|f| f.has_content);
        if !has_content && !self.book.any_dirty() {
            self.roll_at = Instant::now() + self.config.flush_interval;
            if next.is_none() {
                self.remove_empty_file();
            }
            return;
        }
        self.write_pending();
        if self.unsynced {
            self.commit();
        }
        let Some(f) = self.file.take() else { return };
        let events = std::mem::take(&mut self.chunk_events);
        let event_bytes = std::mem::take(&mut self.chunk_event_bytes);
        let keep_in_memory =
            self.queued.load(Ordering::Relaxed) + event_bytes <= MAX_QUEUED_CHUNK_BYTES;
        let queued_bytes = if keep_in_memory { event_bytes } else { 0 };
        self.queued.fetch_add(queued_bytes, Ordering::Relaxed);
        let chunk = Chunk {
            file_no: f.no,
            path: f.path.clone(),
            event_count: events.len() as u64,
            events: keep_in_memory.then_some(events),
            checkpoints: self.book.cut_checkpoints(),
            file_bytes: f.bytes,
            queued_bytes,
        };
        drop(f.file);
        if self.chunks.send(chunk).is_err() {
            tracing::error!(
                "the uploader has stopped; spooled events will be uploaded at the next start"
            );
        }
        self.roll_at = Instant::now() + self.config.flush_interval;
        if let Some(n) = next
            && let Err(e) = self.open_file(n)
        {
            tracing::error!(error = %e, "cannot open the next spool file");
            self.mark_failed();
        }
    }

    /// On a clean stop, a file that never got content beyond carried-over states is
    /// removed rather than left for the next start.
    fn remove_empty_file(&mut self) {
        if let Some(f) = self.file.take() {
            drop(f.file);
            if std::fs::remove_file(&f.path).is_ok() {
                self.backlog.reclaimed(f.no, 0, f.bytes, 0);
            }
        }
    }

    /// Opens spool file `no`: header plus the state of every live session, fsync'd
    /// before anything else goes in, so a reclaimed predecessor is never needed.
    fn open_file(&mut self, no: u64) -> Result<(), StoreError> {
        self.dir.claim(no)?;
        let path = self.dir.file_path(no);
        let io = |e| StoreError::Io {
            context: format!("cannot create spool file {}", path.display()),
            source: e,
        };
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut head = HEADER.to_vec();
        for state in self.book.live_states() {
            frame_into(&mut head, &encode_state(&state));
        }
        file.write_all(&head).map_err(io)?;
        file.sync_data().map_err(io)?;
        self.dir.sync()?;
        self.backlog.spooled(0, head.len() as u64);
        self.file = Some(OpenFile {
            no,
            path,
            file,
            bytes: head.len() as u64,
            events: 0,
            has_content: false,
        });
        Ok(())
    }
}

/// Bytes a record of `body_len` bytes takes in the spool.
pub fn spooled_size(body_len: usize) -> u64 {
    (body_len + FRAME_OVERHEAD) as u64
}
