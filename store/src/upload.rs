//! The uploader: turns each spool chunk into Parquet segments in the archive, in spool
//! order, retrying with exponential backoff and jitter until the archive confirms, and
//! only then reclaims the spool file.
//!
//! Chunks go strictly one after another: a chunk's checkpoint seals vouch for every
//! earlier event of their sessions, so they may only be stored once those are.

use crate::archive::Archive;
use crate::batch::{events_to_batch, sessions_to_batch};
use crate::error::StoreError;
use crate::event::{Event, now_ns};
use crate::failpoint;
use crate::seal::GatewayKey;
use crate::segment::{date_partition, encode, segment_path};
use crate::session::{SealKind, SessionSummary};
use crate::spool::journal::Chunk;
use crate::spool::recover::read_events;
use crate::spool::{Backlog, SpoolDir};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The first retry waits about this long; each further one doubles it.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Retries never wait longer than this, so a returning archive is noticed quickly.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// What the uploader did over its life; reported at shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub events_written: u64,
    pub segments_written: u64,
    pub seals_written: u64,
}

pub(crate) struct Uploader {
    pub archive: Archive,
    pub key: GatewayKey,
    pub gateway_id: String,
    pub spool: Arc<SpoolDir>,
    pub backlog: Arc<Backlog>,
    pub queued: Arc<AtomicU64>,
    pub stats: Arc<Mutex<WriterStats>>,
}

impl Uploader {
    pub(crate) async fn run(self, mut chunks: mpsc::UnboundedReceiver<Chunk>) {
        self.retry("publish the gateway key", || {
            self.archive.publish_key(&self.key)
        })
        .await;
        while let Some(chunk) = chunks.recv().await {
            self.upload(chunk).await;
        }
    }

    async fn upload(&self, mut chunk: Chunk) {
        let events = match chunk.events.take() {
            Some(events) => events,
            None => {
                let path = chunk.path.clone();
                self.retry("read a spool file back", || {
                    let path = path.clone();
                    async move {
                        tokio::task::spawn_blocking(move || read_events(&path))
                            .await
                            .map_err(|e| StoreError::segment("spool read task", e))?
                    }
                })
                .await
            }
        };
        let mut segments = 0;
        let n_events = events.len() as u64;
        let name = |table: &str, ts: i64| {
            segment_path(table, ts, &self.gateway_id, self.spool.id(), chunk.file_no)
        };
        for day in split_by_day(events) {
            let path = name("events", day[0].ts_ns);
            let day = Arc::new(day);
            let bytes = self
                .retry("encode a segment", || {
                    let day = day.clone();
                    async move {
                        tokio::task::spawn_blocking(move || {
                            events_to_batch(&day).and_then(|b| encode(&b, &[0, 1]))
                        })
                        .await
                        .map_err(|e| StoreError::segment("encode task", e))?
                        .map(bytes::Bytes::from)
                    }
                })
                .await;
            self.retry(&format!("upload {path}"), || {
                self.archive.put_segment(&path, bytes.clone())
            })
            .await;
            segments += 1;
        }
        failpoint::pause("mid_upload").await;

        let sealed_at = now_ns();
        let mut rows: Vec<SessionSummary> = chunk
            .checkpoints
            .iter()
            .map(|c| SessionSummary {
                meta: c.meta.clone(),
                end_ns: c.end.as_ref().map(|e| e.0),
                counts: c.counts.clone(),
                end_reason: c.end.as_ref().map(|e| e.1.clone()),
                seal: self.key.seal(&c.meta.session_id, c.last_seq, c.head),
                sealed_at_ns: sealed_at,
                seal_kind: if c.end.is_some() {
                    SealKind::End
                } else {
                    SealKind::Checkpoint
                },
            })
            .collect();
        rows.sort_by(|a, b| a.meta.session_id.cmp(&b.meta.session_id));
        let mut by_day: BTreeMap<String, Vec<SessionSummary>> = BTreeMap::new();
        for r in rows {
            by_day
                .entry(date_partition(r.meta.start_ns))
                .or_default()
                .push(r);
        }
        let mut seals = 0;
        for day in by_day.into_values() {
            let path = name("sessions", day[0].meta.start_ns);
            let bytes = match sessions_to_batch(&day).and_then(|b| encode(&b, &[0, 12])) {
                Ok(b) => bytes::Bytes::from(b),
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode checkpoint seals; they are skipped");
                    continue;
                }
            };
            self.retry(&format!("upload {path}"), || {
                self.archive.put_segment(&path, bytes.clone())
            })
            .await;
            segments += 1;
            seals += day.len() as u64;
        }
        failpoint::pause("before_reclaim").await;

        match tokio::fs::remove_file(&chunk.path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(
                spool = %chunk.path.display(),
                error = %e,
                "cannot delete an uploaded spool file; it will be uploaded again (to the same names) at the next start"
            ),
        }
        let _ = self.spool.sync();
        self.queued.fetch_sub(chunk.queued_bytes, Ordering::Relaxed);
        self.backlog
            .reclaimed(chunk.file_no, chunk.event_count, chunk.file_bytes, segments);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.events_written += n_events;
        stats.segments_written += segments;
        stats.seals_written += seals;
    }

    /// Runs `op` until it succeeds, waiting with exponential backoff and full jitter
    /// between attempts. Uploads are idempotent (fixed names), so retrying is safe.
    async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            match op().await {
                Ok(v) => {
                    if attempt > 0 {
                        tracing::info!(attempts = attempt + 1, "{what}: succeeded after retrying");
                    }
                    return v;
                }
                Err(e) => {
                    attempt += 1;
                    let message = explain(&e);
                    self.backlog.upload_failed(format!("{what}: {message}"));
                    let wait = jitter(backoff);
                    if attempt == 1 || attempt.is_power_of_two() {
                        tracing::warn!(
                            attempt,
                            retry_in_ms = wait.as_millis() as u64,
                            events_waiting = self.backlog.events(),
                            bytes_waiting = self.backlog.bytes(),
                            "{what} failed: {message}; retrying (nothing is lost: it stays in the spool)"
                        );
                    }
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Splits events into one sorted run per UTC day.
fn split_by_day(mut events: Vec<Event>) -> Vec<Vec<Event>> {
    events.sort_by(|a, b| a.session_id.cmp(&b.session_id).then(a.seq.cmp(&b.seq)));
    let mut by_day: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for e in events {
        by_day.entry(date_partition(e.ts_ns)).or_default().push(e);
    }
    by_day.into_values().collect()
}

/// A wait between half and all of `backoff`, so gateways that failed together do not
/// retry together.
fn jitter(backoff: Duration) -> Duration {
    use rand::Rng;
    let ms = backoff.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms.max(1)))
}

/// An upload error with a hint where the cause is one an operator can fix.
fn explain(e: &StoreError) -> String {
    match e {
        StoreError::ObjectStore { source, .. } => crate::azure::describe_error(&source.to_string()),
        other => other.to_string(),
    }
}
