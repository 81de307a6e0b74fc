//! The recording pipeline: session recorders chain events and hand them to the spool
//! journal; the uploader rolls each spool chunk into Parquet segments and seals every
//! session it touched.
//!
//! Hashing and record encoding happen in each session's own task (so they spread over
//! cores); the journal thread only appends and fsyncs, and the uploader encodes and
//! uploads. A chunk is cut every `flush_interval`, shortly after a session ends, and at
//! `segment_max_bytes`. Each chunk's events are stored before its checkpoint seals, so
//! a seal never vouches for events that are not stored.

use crate::archive::Archive;
use crate::canonical::CanonicalFields;
use crate::chain::Chain;
use crate::error::StoreError;
use crate::event::{Direction, Event, EventDraft, Kind, now_ns};
use crate::seal::GatewayKey;
use crate::session::SessionMeta;
use crate::spool::SpoolDir;
use crate::spool::backlog::{Backlog, write_status};
use crate::spool::journal::{
    self, Durable, JournalConfig, JournalMsg, JournalSender, spooled_size,
};
use crate::spool::record::{SessionState, encode_ended, encode_event, encode_opened};
use crate::spool::recover::recover;
use crate::upload::Uploader;
pub use crate::upload::WriterStats;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// When a result may reach the client, relative to its event reaching the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A result is forwarded only after its event is fsync'd in the spool: a gateway
    /// killed at any moment loses nothing a client saw. Costs one group-committed
    /// fsync wait per command.
    Sync,
    /// A result is forwarded as soon as its event is handed to the journal, which
    /// fsyncs within a few milliseconds: a killed gateway can lose those last
    /// milliseconds of events, never more, and never anything already fsync'd.
    #[default]
    Async,
}

impl Durability {
    /// Parses `sync` or `async`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sync" => Some(Durability::Sync),
            "async" => Some(Durability::Async),
            _ => None,
        }
    }

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Sync => "sync",
            Durability::Async => "async",
        }
    }
}

/// How the writer spools and rolls segments.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Names this gateway in file names and the `gateway_id` column.
    pub gateway_id: String,
    /// A live session becomes visible to queries within this interval.
    pub flush_interval: Duration,
    /// Cut a segment early when its spool file reaches this size.
    pub segment_max_bytes: u64,
    /// The local spool folder.
    pub spool_dir: PathBuf,
    /// The most bytes the spool may hold while the archive is unreachable.
    pub spool_max_bytes: u64,
    /// At shutdown, how long to keep trying to upload what is spooled; whatever is
    /// left stays in the spool for the next start.
    pub drain_timeout: Duration,
}

impl WriterConfig {
    /// Defaults: a 5 s interval, 64 MiB segments, an 8 GiB spool, a 10 s drain.
    pub fn new(gateway_id: impl Into<String>, spool_dir: impl Into<PathBuf>) -> Self {
        WriterConfig {
            gateway_id: gateway_id.into(),
            flush_interval: Duration::from_secs(5),
            segment_max_bytes: 64 << 20,
            spool_dir: spool_dir.into(),
            spool_max_bytes: 8 << 30,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Byte counters a protocol tap bumps as traffic flows, read at each checkpoint.
#[derive(Debug, Default)]
pub struct TrafficCounters {
    pub from_client: AtomicU64,
    pub from_server: AtomicU64,
}

/// A cheap, cloneable way for listeners to open session recorders.
#[derive(Clone)]
pub struct WriterHandle {
    sender: Arc<JournalSender>,
    durable: watch::Receiver<Durable>,
    backlog: Arc<Backlog>,
    gateway_id: Arc<str>,
}

impl WriterHandle {
    /// The gateway id events are stamped with.
    pub fn gateway_id(&self) -> &Arc<str> {
        &self.gateway_id
    }

    /// What is waiting for the archive.
    pub fn backlog(&self) -> &Arc<Backlog> {
        &self.backlog
    }

    /// Starts recording a session, unless the spool is too full or broken to take
    /// one: then the error says why, for the tap to tell its client.
    pub fn open_session(
        &self,
        meta: SessionMeta,
        durability: Durability,
    ) -> Result<SessionRecorder, StoreError> {
        if self.backlog.spool_failed() {
            return Err(StoreError::SpoolFailed);
        }
        if !self.backlog.admits_sessions() {
            return Err(StoreError::SpoolFull {
                bytes: self.backlog.bytes(),
                max_bytes: self.backlog.max_bytes,
                last_error: self.backlog.last_error(),
            });
        }
        let counters = Arc::new(TrafficCounters::default());
        let body = encode_opened(&meta);
        let lsn = self.sender.send(JournalMsg::Opened {
            meta: Box::new(meta.clone()),
            traffic: counters.clone(),
            body,
        })?;
        Ok(SessionRecorder {
            meta: Arc::new(meta),
            chain: Chain::new(),
            handle: self.clone(),
            counters,
            durability,
            last_lsn: lsn,
            ended: false,
        })
    }
}

/// A point in the spool a sync session waits for before forwarding a result.
pub struct DurablePoint {
    lsn: u64,
    rx: watch::Receiver<Durable>,
}

impl DurablePoint {
    /// Resolves once the spool is fsync'd up to this point.
    pub async fn wait(mut self) -> Result<(), StoreError> {
        let lsn = self.lsn;
        let d = *self
            .rx
            .wait_for(|d| d.lsn >= lsn || d.failed)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        if d.lsn >= lsn {
            Ok(())
        } else {
            Err(StoreError::SpoolFailed)
        }
    }
}

/// Records one session: numbers, stamps and chains each event, then hands it to the
/// spool. Dropping a recorder that was not ended ends the session as `aborted`, so even
/// a tap that fails unexpectedly leaves a sealed session behind.
pub struct SessionRecorder {
    meta: Arc<SessionMeta>,
    chain: Chain,
    handle: WriterHandle,
    counters: Arc<TrafficCounters>,
    durability: Durability,
    last_lsn: u64,
    ended: bool,
}

impl SessionRecorder {
    /// The session's id.
    pub fn session_id(&self) -> &Arc<str> {
        &self.meta.session_id
    }

    /// The facts the session was opened with.
    pub fn meta(&self) -> &SessionMeta {
        &self.meta
    }

    /// The session's durability.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Counts bytes that crossed from the client.
    pub fn add_bytes_from_client(&self, n: usize) {
        self.counters
            .from_client
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts bytes that crossed from the server.
    pub fn add_bytes_from_server(&self, n: usize) {
        self.counters
            .from_server
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// For a sync session, the spool point its last event must reach before a result
    /// goes to the client; `None` for async sessions.
    pub fn durable_point(&self) -> Option<DurablePoint> {
        (self.durability == Durability::Sync).then(|| DurablePoint {
            lsn: self.last_lsn,
            rx: self.handle.durable.clone(),
        })
    }

    /// Appends one event to the session chain and the spool; returns its seq. Fails
    /// when the spool is full (the tap then ends the session, telling its client why);
    /// the session's end is always accepted.
    pub fn record(&mut self, draft: EventDraft) -> Result<u64, StoreError> {
        let m = &self.meta;
        let seq = self.chain.next_seq();
        let ts_ns = draft.ts_ns.unwrap_or_else(now_ns);
        let masked: Vec<&str> = draft.masked.iter().map(String::as_str).collect();
        let fields = CanonicalFields {
            session_id: &m.session_id,
            seq,
            ts_ns,
            gateway_id: &m.gateway_id,
            connection: &m.connection,
            protocol: &m.protocol,
            user: &m.user,
            direction: draft.direction.as_str(),
            kind: draft.kind.as_str(),
            command: draft.command.as_deref(),
            status: draft.status.as_str(),
            row_count: draft.row_count,
            duration_us: draft.duration_us,
            masked: &masked,
            payload: draft.payload[..].into(),
            text: draft.text.as_deref(),
        };
        let mut trial = self.chain.clone();
        let (prev_hash, hash) = trial.append(&fields);
        let event = Event {
            session_id: m.session_id.clone(),
            seq,
            ts_ns,
            gateway_id: m.gateway_id.clone(),
            connection: m.connection.clone(),
            protocol: m.protocol.clone(),
            user: m.user.clone(),
            direction: draft.direction,
            kind: draft.kind,
            command: draft.command,
            status: draft.status,
            row_count: draft.row_count,
            duration_us: draft.duration_us,
            masked: draft.masked,
            payload: draft.payload,
            text: draft.text,
            prev_hash,
            hash,
        };
        let body = encode_event(&event);
        let backlog = &self.handle.backlog;
        if event.kind != Kind::SessionEnd {
            if backlog.spool_failed() {
                return Err(StoreError::SpoolFailed);
            }
            if !backlog.has_room_for(spooled_size(body.len())) {
                return Err(StoreError::SpoolFull {
                    bytes: backlog.bytes(),
                    max_bytes: backlog.max_bytes,
                    last_error: backlog.last_error(),
                });
            }
        }
        // Only what goes back to the client asks for an immediate fsync: a sync tap
        // waits before forwarding server bytes, and a command's event always precedes
        // its result's, so one fsync per command covers both.
        let sync = self.durability == Durability::Sync && event.direction != Direction::Client;
        self.last_lsn = self.handle.sender.send(JournalMsg::Event {
            event: Box::new(event),
            body,
            sync,
            prompt: self.durability == Durability::Sync,
        })?;
        self.chain = trial;
        Ok(seq)
    }

    /// Records `session_end` with a reason (`client_closed`, `upstream_closed`,
    /// `shutdown`, `error: …`) and asks the writer to seal the session.
    pub fn end(mut self, reason: &str) -> Result<(), StoreError> {
        self.finish(reason, now_ns())
    }

    /// Like [`SessionRecorder::end`], for a recorder that knows when the session
    /// ended (events recorded with their own `ts_ns`, e.g. an archive's history
    /// rebuilt for a retention drill).
    pub fn end_at(mut self, reason: &str, end_ns: i64) -> Result<(), StoreError> {
        self.finish(reason, end_ns)
    }

    fn finish(&mut self, reason: &str, end_ns: i64) -> Result<(), StoreError> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        let draft = EventDraft::new(Direction::Gateway, Kind::SessionEnd)
            .text(format!("session ended: {reason}"))
            .duration_us(u64::try_from((end_ns - self.meta.start_ns) / 1000).unwrap_or(0))
            .at(end_ns);
        self.record(draft)?;
        self.last_lsn = self.handle.sender.send(JournalMsg::Ended {
            session_id: self.meta.session_id.clone(),
            end_ns,
            reason: reason.to_string(),
            body: encode_ended(&self.meta.session_id, end_ns, reason),
        })?;
        Ok(())
    }
}

impl Drop for SessionRecorder {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.finish("aborted", now_ns());
        }
    }
}

/// The spool journal, the uploader and a handle to them.
pub struct ArchiveWriter {
    handle: WriterHandle,
    journal: std::thread::JoinHandle<()>,
    uploader: tokio::task::JoinHandle<()>,
    status: tokio::task::JoinHandle<()>,
    stats: Arc<Mutex<WriterStats>>,
    config: WriterConfig,
    archive_name: String,
}

/// The end reason given to sessions that were live when a gateway died.
pub const CRASH_REASON: &str = "gateway_crash";

impl ArchiveWriter {
    /// Opens the spool, recovers what a previous run left (uploading it first and
    /// ending its interrupted sessions as `gateway_crash`), and starts the journal and
    /// the uploader on the current tokio runtime.
    pub fn start(
        archive: Archive,
        key: GatewayKey,
        config: WriterConfig,
    ) -> Result<Self, StoreError> {
        let spool = Arc::new(SpoolDir::open(&config.spool_dir)?);
        let backlog = Arc::new(Backlog::new(config.spool_max_bytes));
        let recovered = recover(&spool, &backlog)?;
        let recovered_events: u64 = recovered.chunks.iter().map(|c| c.event_count).sum();
        if !recovered.chunks.is_empty() {
            tracing::info!(
                spool = %spool.path().display(),
                files = recovered.chunks.len(),
                events = recovered_events,
                interrupted_sessions = recovered.interrupted.len(),
                "recovered the spool of a previous run; uploading it before anything new"
            );
        }
        let (chunk_tx, chunk_rx) = tokio::sync::mpsc::unbounded_channel();
        for chunk in recovered.chunks {
            let _ = chunk_tx.send(chunk);
        }
        let queued = Arc::new(AtomicU64::new(0));
        let journal = journal::start(
            spool.clone(),
            JournalConfig {
                flush_interval: config.flush_interval,
                segment_max_bytes: config.segment_max_bytes,
            },
            backlog.clone(),
            recovered.book,
            recovered.next_file_no,
            chunk_tx,
            queued.clone(),
        )?;
        let handle = WriterHandle {
            sender: journal.sender,
            durable: journal.durable,
            backlog: backlog.clone(),
            gateway_id: Arc::from(config.gateway_id.as_str()),
        };
        for state in recovered.interrupted {
            end_interrupted(&handle, state)?;
        }
        let stats = Arc::new(Mutex::new(WriterStats::default()));
        let archive_name = archive.location().to_string();
        let uploader = tokio::spawn(
            Uploader {
                archive,
                key,
                gateway_id: config.gateway_id.clone(),
                spool: spool.clone(),
                backlog: backlog.clone(),
                queued,
                stats: stats.clone(),
            }
            .run(chunk_rx),
        );
        let status = tokio::spawn(report_backlog(
            backlog,
            config.gateway_id.clone(),
            archive_name.clone(),
            spool.path().to_path_buf(),
        ));
        Ok(ArchiveWriter {
            handle,
            journal: journal.thread,
            uploader,
            status,
            stats,
            config,
            archive_name,
        })
    }

    /// A handle for opening sessions.
    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Cuts the last chunk, then keeps uploading for up to `drain_timeout`. Whatever
    /// the archive has not confirmed by then stays in the spool and is uploaded at the
    /// next start; the log says how much.
    pub async fn shutdown(self) -> Result<WriterStats, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.handle.sender.send(JournalMsg::Shutdown(tx))?;
        let _ = rx.await;
        let journal = self.journal;
        let _ = tokio::task::spawn_blocking(move || journal.join()).await;
        drop(self.handle.sender);
        let mut uploader = self.uploader;
        let drained = tokio::time::timeout(self.config.drain_timeout, &mut uploader)
            .await
            .is_ok();
        let backlog = &self.handle.backlog;
        if !drained {
            uploader.abort();
            tracing::warn!(
                events_waiting = backlog.events(),
                bytes_waiting = backlog.bytes(),
                last_error = backlog.last_error().unwrap_or_default(),
                spool = %self.config.spool_dir.display(),
                "the archive did not confirm everything before the drain timeout; the rest stays in the spool and is uploaded when the gateway next starts"
            );
        }
        self.status.abort();
        let _ = write_status(
            &self.config.spool_dir,
            &backlog.status(
                &self.config.gateway_id,
                &self.archive_name,
                &self.config.spool_dir,
            ),
        );
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(stats)
    }
}

/// Ends a session a crash interrupted: one `session_end` event chained onto the last
/// event the spool holds, then the end, so the uploader seals it.
fn end_interrupted(handle: &WriterHandle, state: SessionState) -> Result<(), StoreError> {
    let SessionState { meta, last, .. } = state;
    tracing::warn!(session = %meta.session_id, user = %meta.user, "ending a session the previous run left live as {CRASH_REASON}");
    let mut recorder = SessionRecorder {
        meta: Arc::new(meta),
        chain: Chain::resume(last),
        handle: handle.clone(),
        counters: Arc::new(TrafficCounters::default()),
        durability: Durability::Async,
        last_lsn: 0,
        ended: false,
    };
    recorder.finish(CRASH_REASON, now_ns())
}

/// Rewrites `status.json` every second and logs the backlog every 30 s while anything
/// is waiting.
async fn report_backlog(
    backlog: Arc<Backlog>,
    gateway_id: String,
    archive: String,
    spool: PathBuf,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let status = backlog.status(&gateway_id, &archive, &spool);
        if let Err(e) = write_status(&spool, &status) {
            tracing::debug!(error = %e, "cannot write status.json");
        }
        n += 1;
        if n.is_multiple_of(30) && status.events_waiting > 0 {
            let age = status
                .oldest_waiting_ns
                .map(|ts| Duration::from_nanos((now_ns() - ts).max(0) as u64).as_secs())
                .unwrap_or(0);
            match &status.last_upload_error {
                Some(err) => tracing::warn!(
                    events_waiting = status.events_waiting,
                    bytes_waiting = status.bytes_waiting,
                    oldest_age_s = age,
                    last_error = %err,
                    "archive backlog growing: uploads are failing"
                ),
                None => tracing::info!(
                    events_waiting = status.events_waiting,
                    bytes_waiting = status.bytes_waiting,
                    oldest_age_s = age,
                    "archive backlog"
                ),
            }
        }
    }
}
