//! The recording pipeline: session recorders chain events, one writer task rolls them
//! into Parquet segments and seals every session it wrote.
//!
//! Hashing happens in each session's own task (so it spreads over cores); the writer
//! only buffers, encodes and uploads. A segment rolls every `flush_interval`, shortly
//! after a session ends, and when the buffer grows past `max_buffer_bytes`. Each roll
//! writes the events first and then one checkpoint row per touched session carrying
//! the seal of its head, so a seal never vouches for events that are not stored.

use crate::archive::Archive;
use crate::batch::{events_to_batch, sessions_to_batch};
use crate::canonical::CanonicalFields;
use crate::chain::Chain;
use crate::error::StoreError;
use crate::event::{Direction, Event, EventDraft, Kind, Status, now_ns};
use crate::seal::GatewayKey;
use crate::segment::{encode, segment_path};
use crate::session::{SealKind, SessionCounts, SessionMeta, SessionSummary};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How the writer rolls segments.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Names this gateway in file names and the `gateway_id` column.
    pub gateway_id: String,
    /// A live session becomes visible to queries within this interval.
    pub flush_interval: Duration,
    /// Roll early when this many bytes of events are buffered.
    pub max_buffer_bytes: usize,
}

impl WriterConfig {
    /// Defaults: a 5 s interval and a 64 MiB buffer.
    pub fn new(gateway_id: impl Into<String>) -> Self {
        WriterConfig {
            gateway_id: gateway_id.into(),
            flush_interval: Duration::from_secs(5),
            max_buffer_bytes: 64 << 20,
        }
    }
}

/// Byte counters a protocol tap bumps as traffic flows, read at each checkpoint.
#[derive(Debug, Default)]
pub struct TrafficCounters {
    pub from_client: AtomicU64,
    pub from_server: AtomicU64,
}

enum Msg {
    Open(Box<SessionMeta>, Arc<TrafficCounters>),
    Event(Box<Event>),
    End {
        session_id: Arc<str>,
        end_ns: i64,
        reason: String,
    },
    Shutdown(oneshot::Sender<Result<WriterStats, StoreError>>),
}

/// What the writer did over its life; reported at shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub events_written: u64,
    pub segments_written: u64,
    pub seals_written: u64,
}

/// A cheap, cloneable way for listeners to open session recorders.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::UnboundedSender<Msg>,
    gateway_id: Arc<str>,
}

impl WriterHandle {
    /// The gateway id events are stamped with.
    pub fn gateway_id(&self) -> &Arc<str> {
        &self.gateway_id
    }

    /// Starts recording a session: registers it with the writer and returns the
    /// recorder the protocol tap records through.
    pub fn open_session(&self, meta: SessionMeta) -> Result<SessionRecorder, StoreError> {
        let counters = Arc::new(TrafficCounters::default());
        self.tx
            .send(Msg::Open(Box::new(meta.clone()), counters.clone()))
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(SessionRecorder {
            meta: Arc::new(meta),
            chain: Chain::new(),
            tx: self.tx.clone(),
            counters,
            ended: false,
        })
    }
}

/// Records one session: numbers, stamps and chains each event, then hands it to the
/// writer. Dropping a recorder that was not ended ends the session as `aborted`, so
/// even a tap that fails unexpectedly leaves a sealed session behind.
pub struct SessionRecorder {
    meta: Arc<SessionMeta>,
    chain: Chain,
    tx: mpsc::UnboundedSender<Msg>,
    counters: Arc<TrafficCounters>,
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

    /// Appends one event to the session chain; returns its seq.
    pub fn record(&mut self, draft: EventDraft) -> Result<u64, StoreError> {
        let m = &self.meta;
        let seq = self.chain.next_seq();
        let ts_ns = draft.ts_ns.unwrap_or_else(now_ns);
        let masked: Vec<&str> = draft.masked.iter().map(String::as_str).collect();
        let (prev_hash, hash) = self.chain.append(&CanonicalFields {
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
            payload: &draft.payload,
            text: draft.text.as_deref(),
        });
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
        self.tx
            .send(Msg::Event(Box::new(event)))
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(seq)
    }

    /// Records `session_end` with a reason (`client_closed`, `upstream_closed`,
    /// `shutdown`, `error: …`) and asks the writer to seal the session.
    pub fn end(mut self, reason: &str) -> Result<(), StoreError> {
        self.finish(reason)
    }

    fn finish(&mut self, reason: &str) -> Result<(), StoreError> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        let end_ns = now_ns();
        let draft = EventDraft::new(Direction::Gateway, Kind::SessionEnd)
            .text(format!("session ended: {reason}"))
            .duration_us(u64::try_from((end_ns - self.meta.start_ns) / 1000).unwrap_or(0))
            .at(end_ns);
        self.record(draft)?;
        self.tx
            .send(Msg::End {
                session_id: self.meta.session_id.clone(),
                end_ns,
                reason: reason.to_string(),
            })
            .map_err(|_| StoreError::WriterStopped)
    }
}

impl Drop for SessionRecorder {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.finish("aborted");
        }
    }
}

struct LiveSession {
    meta: SessionMeta,
    traffic: Arc<TrafficCounters>,
    counts: SessionCounts,
    last: Option<(u64, [u8; 32])>,
    end: Option<(i64, String)>,
    dirty: bool,
}

/// The writer task and a handle to it.
pub struct ArchiveWriter {
    handle: WriterHandle,
    task: tokio::task::JoinHandle<()>,
}

impl ArchiveWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(archive: Archive, key: GatewayKey, config: WriterConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = WriterHandle {
            tx,
            gateway_id: Arc::from(config.gateway_id.as_str()),
        };
        let task = tokio::spawn(
            WriterTask {
                archive,
                key,
                config,
                sessions: HashMap::new(),
                buffer: Vec::new(),
                buffered_bytes: 0,
                stats: WriterStats::default(),
            }
            .run(rx),
        );
        ArchiveWriter { handle, task }
    }

    /// A handle for opening sessions.
    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Writes everything still buffered, seals every session and stops. Sessions that
    /// are still open are sealed with a checkpoint seal.
    pub async fn shutdown(self) -> Result<WriterStats, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.handle
            .tx
            .send(Msg::Shutdown(tx))
            .map_err(|_| StoreError::WriterStopped)?;
        let result = rx.await.map_err(|_| StoreError::WriterStopped)?;
        let _ = self.task.await;
        result
    }
}

struct WriterTask {
    archive: Archive,
    key: GatewayKey,
    config: WriterConfig,
    sessions: HashMap<Arc<str>, LiveSession>,
    buffer: Vec<Event>,
    buffered_bytes: usize,
    stats: WriterStats,
}

/// After a session ends, its segment rolls within this delay, so that many sessions
/// ending together share one segment.
const END_ROLL_DELAY: Duration = Duration::from_millis(200);

impl WriterTask {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut next_roll = Instant::now() + self.config.flush_interval;
        loop {
            let msg = tokio::select! {
                msg = rx.recv() => msg,
                _ = tokio::time::sleep_until(next_roll) => {
                    if let Err(e) = self.roll().await {
                        tracing::error!(error = %e, "segment roll failed; events stay buffered and are retried");
                    }
                    next_roll = Instant::now() + self.config.flush_interval;
                    continue;
                }
            };
            match msg {
                Some(Msg::Open(meta, traffic)) => {
                    self.sessions.insert(
                        meta.session_id.clone(),
                        LiveSession {
                            meta: *meta,
                            traffic,
                            counts: SessionCounts::default(),
                            last: None,
                            end: None,
                            dirty: true,
                        },
                    );
                }
                Some(Msg::Event(event)) => {
                    if let Some(s) = self.sessions.get_mut(&event.session_id) {
                        count(&mut s.counts, &event);
                        s.last = Some((event.seq, event.hash));
                        s.dirty = true;
                    }
                    self.buffered_bytes += event.approx_size();
                    self.buffer.push(*event);
                    if self.buffered_bytes >= self.config.max_buffer_bytes
                        && let Err(e) = self.roll().await
                    {
                        tracing::error!(error = %e, "segment roll failed; events stay buffered and are retried");
                    }
                }
                Some(Msg::End {
                    session_id,
                    end_ns,
                    reason,
                }) => {
                    if let Some(s) = self.sessions.get_mut(&session_id) {
                        s.end = Some((end_ns, reason));
                        s.dirty = true;
                    }
                    next_roll = next_roll.min(Instant::now() + END_ROLL_DELAY);
                }
                Some(Msg::Shutdown(reply)) => {
                    let result = self.roll().await.map(|_| self.stats.clone());
                    let _ = reply.send(result);
                    return;
                }
                None => {
                    if let Err(e) = self.roll().await {
                        tracing::error!(error = %e, "final segment roll failed");
                    }
                    return;
                }
            }
        }
    }

    /// Writes buffered events and the checkpoint seals of every touched session.
    /// Seals are written only once all buffered events are stored.
    async fn roll(&mut self) -> Result<(), StoreError> {
        if !self.buffer.is_empty() {
            let events = std::mem::take(&mut self.buffer);
            self.buffered_bytes = 0;
            let n = events.len() as u64;
            if let Err((e, unwritten)) = self.write_events(events).await {
                self.buffered_bytes = unwritten.iter().map(Event::approx_size).sum();
                self.buffer = unwritten;
                return Err(e);
            }
            self.stats.events_written += n;
        }
        self.write_seals().await
    }

    /// Writes one segment per UTC day the events fall on. On failure, returns the
    /// events of the days that were not stored, so they can be retried.
    async fn write_events(
        &mut self,
        mut events: Vec<Event>,
    ) -> Result<(), (StoreError, Vec<Event>)> {
        // Stable sort: each session's events already arrive in seq order.
        events.sort_by(|a, b| a.session_id.cmp(&b.session_id).then(a.seq.cmp(&b.seq)));
        let mut by_day: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for e in events {
            by_day
                .entry(crate::segment::date_partition(e.ts_ns))
                .or_default()
                .push(e);
        }
        let mut days = by_day.into_values();
        while let Some(day) = days.next() {
            let path = segment_path(
                "events",
                day[0].ts_ns,
                &self.config.gateway_id,
                ulid::Ulid::new(),
            );
            let (day, encoded) = tokio::task::spawn_blocking(move || {
                let encoded = events_to_batch(&day).and_then(|batch| encode(&batch, &[0, 1]));
                (day, encoded)
            })
            .await
            .map_err(|e| (StoreError::segment("encode task", e), Vec::new()))?;
            let stored = match encoded {
                Ok(bytes) => self.archive.put(&path, bytes).await,
                Err(e) => Err(e),
            };
            if let Err(e) = stored {
                let mut unwritten = day;
                unwritten.extend(days.flatten());
                return Err((e, unwritten));
            }
            self.stats.segments_written += 1;
        }
        Ok(())
    }

    async fn write_seals(&mut self) -> Result<(), StoreError> {
        let now = now_ns();
        let mut rows = Vec::new();
        for s in self.sessions.values_mut().filter(|s| s.dirty) {
            let Some((last_seq, head)) = s.last else {
                continue;
            };
            let mut counts = s.counts.clone();
            counts.bytes_from_client = s.traffic.from_client.load(Ordering::Relaxed);
            counts.bytes_from_server = s.traffic.from_server.load(Ordering::Relaxed);
            let ended = s.end.is_some();
            rows.push(SessionSummary {
                meta: s.meta.clone(),
                end_ns: s.end.as_ref().map(|e| e.0),
                counts,
                end_reason: s.end.as_ref().map(|e| e.1.clone()),
                seal: self.key.seal(&s.meta.session_id, last_seq, head),
                sealed_at_ns: now,
                seal_kind: if ended {
                    SealKind::End
                } else {
                    SealKind::Checkpoint
                },
            });
        }
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort_by(|a, b| a.meta.session_id.cmp(&b.meta.session_id));
        let mut by_day: BTreeMap<String, Vec<SessionSummary>> = BTreeMap::new();
        for r in rows {
            by_day
                .entry(crate::segment::date_partition(r.meta.start_ns))
                .or_default()
                .push(r);
        }
        for day in by_day.into_values() {
            let path = segment_path(
                "sessions",
                day[0].meta.start_ns,
                &self.config.gateway_id,
                ulid::Ulid::new(),
            );
            let bytes = sessions_to_batch(&day).and_then(|b| encode(&b, &[0, 12]))?;
            self.archive.put(&path, bytes).await?;
            self.stats.seals_written += day.len() as u64;
            for r in &day {
                if let Some(s) = self.sessions.get_mut(&r.meta.session_id) {
                    s.dirty = false;
                }
            }
        }
        self.sessions.retain(|_, s| s.end.is_none() || s.dirty);
        Ok(())
    }
}

/// Masked entries read `what=count` (e.g. `detector:email=3`); a bare name counts once.
fn count(counts: &mut SessionCounts, e: &Event) {
    counts.events += 1;
    if e.kind == Kind::Query {
        counts.commands += 1;
    }
    if e.kind == Kind::Error && e.status == Status::Error {
        counts.errors += 1;
    }
    if e.status == Status::Blocked {
        counts.blocked += 1;
    }
    counts.masked_values += e
        .masked
        .iter()
        .map(|m| {
            m.rsplit_once('=')
                .and_then(|(_, n)| n.parse::<u64>().ok())
                .unwrap_or(1)
        })
        .sum::<u64>();
}
