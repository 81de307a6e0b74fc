//! The uploader: turns each spool chunk into Parquet segments in the archive, in spool
//! order, retrying with exponential backoff and jitter until the archive confirms, and
//! only then reclaims the spool file.
//!
//! Chunks go strictly one after another: a chunk's checkpoint seals vouch for every
//! earlier event of their sessions, and its ledger entry links to the one before, so
//! each may only be stored once the earlier ones are.
//!
//! For each chunk: plan it (encode the segments, sign the ledger entry), stage the
//! plan in the spool folder, put every segment create-only, then the ledger entry,
//! then delete the spool file and the staged plan. Every object is create-only: one
//! already there with the same bytes is a retry after a crash and fine; one with other
//! bytes stops uploading (loudly, with the name and why) while recording goes on into
//! the spool.
//!
//! - `plan`: a chunk's segments and its ledger entry;
//! - `staged`: the plan written down, so a retry offers the same bytes.

pub mod plan;
pub mod staged;

use crate::archive::{Archive, PutOutcome};
use crate::error::StoreError;
use crate::failpoint;
use crate::ledger::reader::last_entry;
use crate::ledger::{LedgerHead, entry_path};
use crate::seal::GatewayKey;
use crate::spool::journal::Chunk;
use crate::spool::recover::read_events;
use crate::spool::{Backlog, SpoolDir};
use plan::{PlanContext, plan};
use staged::{ChunkUpload, staged_files, staged_path};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The first retry waits about this long; each further one doubles it.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Retries never wait longer than this, so a returning archive is noticed quickly.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// While uploads are stopped by a conflict, the reason is logged this often.
const HALTED_REMINDER: Duration = Duration::from_secs(60);

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

/// Why uploading stopped for good (until the gateway is restarted).
struct Halt(StoreError);

impl Uploader {
    pub(crate) async fn run(self, mut chunks: mpsc::UnboundedReceiver<Chunk>) {
        let started = async {
            self.retry("publish the gateway key", || {
                self.archive.publish_key(&self.key)
            })
            .await?;
            self.retry("read the ledger head", || self.initial_head())
                .await
        };
        let mut head = match started.await {
            Ok(head) => head,
            Err(halt) => return self.halted(halt, chunks).await,
        };
        if let Some(h) = &head {
            self.backlog.set_ledger_head(h.seq, &h.hash);
        }
        self.remove_orphan_stages();
        while let Some(chunk) = chunks.recv().await {
            if let Err(halt) = self.upload(chunk, &mut head).await {
                return self.halted(halt, chunks).await;
            }
        }
    }

    /// Where this gateway's ledger stands: the head kept in the spool, or a newer
    /// staged entry, or (for a spool without either) the archive's last entry.
    async fn initial_head(&self) -> Result<Option<LedgerHead>, StoreError> {
        let mut best =
            LedgerHead::load(self.spool.path())?.filter(|h| h.gateway_id == self.gateway_id);
        for (no, _) in staged_files(self.spool.path()) {
            if let Ok(Some(u)) = ChunkUpload::load(self.spool.path(), no)
                && u.entry.body.gateway_id == self.gateway_id
                && best.as_ref().is_none_or(|b| u.entry.body.seq > b.seq)
            {
                best = Some(LedgerHead {
                    gateway_id: self.gateway_id.clone(),
                    seq: u.entry.body.seq,
                    hash: u.entry.hash_hex(),
                });
            }
        }
        if best.is_some() {
            return Ok(best);
        }
        Ok(last_entry(&self.archive, &self.gateway_id)
            .await?
            .map(|e| LedgerHead {
                gateway_id: self.gateway_id.clone(),
                seq: e.body.seq,
                hash: e.hash_hex(),
            }))
    }

    /// Staged plans whose spool file is gone were uploaded in full (the spool file is
    /// deleted only after the last object is confirmed); a crash left them behind.
    fn remove_orphan_stages(&self) {
        let files: std::collections::HashSet<u64> = self
            .spool
            .files()
            .map(|f| f.into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default();
        for (no, path) in staged_files(self.spool.path()) {
            if !files.contains(&no) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    async fn upload(&self, mut chunk: Chunk, head: &mut Option<LedgerHead>) -> Result<(), Halt> {
        let spool_path = self.spool.path().to_path_buf();
        let staged = match ChunkUpload::load(&spool_path, chunk.file_no) {
            Ok(s) => s,
            Err(e) => {
                // Written with fsync and rename, so this is damage on disk. Keep it for
                // investigation; nothing of a plan is uploaded before it is staged,
                // and a re-plan that meets objects it cannot match stops loudly.
                let aside =
                    staged_path(&spool_path, chunk.file_no).with_extension("staged.damaged");
                tracing::error!(error = %e, moved_to = %aside.display(), "a staged upload is damaged; planning the chunk again");
                let _ = std::fs::rename(staged_path(&spool_path, chunk.file_no), &aside);
                None
            }
        };
        let n_events = chunk.event_count;
        let upload = match staged {
            Some(u) => Some(u),
            None => self.plan_and_stage(&mut chunk, head).await?,
        };
        let mut segments = 0;
        let mut seals = 0;
        if let Some(upload) = &upload {
            let mut paused = false;
            for (path, bytes) in &upload.segments {
                if !paused && path.starts_with("sessions/") {
                    failpoint::pause("mid_upload").await;
                    paused = true;
                }
                let outcome = self
                    .retry(&format!("upload {path}"), || {
                        self.archive.put_segment(path, bytes.clone())
                    })
                    .await?;
                if outcome == PutOutcome::AlreadyThere {
                    tracing::info!(
                        segment = %path,
                        "already in the archive with the same bytes (an upload retried after a restart)"
                    );
                }
                segments += 1;
            }
            let entry = entry_path(&upload.entry.body.gateway_id, upload.entry.body.seq);
            let object = upload.entry.to_object();
            self.retry(&format!("upload {entry}"), || {
                self.archive.put(&entry, object.clone())
            })
            .await?;
            self.backlog
                .set_ledger_head(upload.entry.body.seq, &upload.entry.hash_hex());
            seals = match &upload.entry.body.action {
                crate::ledger::LedgerAction::Chunk { sessions, .. } => sessions.len() as u64,
                crate::ledger::LedgerAction::Retained { .. } => 0,
            };
        }
        failpoint::pause("before_reclaim").await;

        // The spool file goes first: a staged plan left without its spool file is
        // known to be uploaded in full, and removed at the next start.
        match tokio::fs::remove_file(&chunk.path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(
                spool = %chunk.path.display(),
                error = %e,
                "cannot delete an uploaded spool file; it will be uploaded again (finding the same objects) at the next start"
            ),
        }
        let _ = self.spool.sync();
        if let Err(e) = ChunkUpload::unstage(&spool_path, chunk.file_no) {
            tracing::warn!(error = %e, "cannot remove a staged upload; it is removed at the next start");
        }
        self.queued.fetch_sub(chunk.queued_bytes, Ordering::Relaxed);
        self.backlog
            .reclaimed(chunk.file_no, chunk.event_count, chunk.file_bytes, segments);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.events_written += n_events;
        stats.segments_written += segments;
        stats.seals_written += seals;
        Ok(())
    }

    /// Encodes the chunk, signs its ledger entry after `head`, writes the plan down and
    /// moves the head on. `None` when the chunk holds nothing to store.
    async fn plan_and_stage(
        &self,
        chunk: &mut Chunk,
        head: &mut Option<LedgerHead>,
    ) -> Result<Option<ChunkUpload>, Halt> {
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
                .await?
            }
        };
        let events = Arc::new(events);
        let checkpoints = Arc::new(std::mem::take(&mut chunk.checkpoints));
        let key = self.key.clone();
        let gateway_id = self.gateway_id.clone();
        let spool_id = self.spool.id().to_string();
        let (ledger_seq, ledger_prev) = match head {
            Some(h) => (h.seq + 1, Some(h.hash.clone())),
            None => (0, None),
        };
        let file_no = chunk.file_no;
        let spool_path = self.spool.path().to_path_buf();
        let planned = self
            .retry("encode and stage a chunk", || {
                let (events, checkpoints, key, gateway_id, spool_id, ledger_prev, spool_path) = (
                    events.clone(),
                    checkpoints.clone(),
                    key.clone(),
                    gateway_id.clone(),
                    spool_id.clone(),
                    ledger_prev.clone(),
                    spool_path.clone(),
                );
                async move {
                    tokio::task::spawn_blocking(move || {
                        let ctx = PlanContext {
                            key: &key,
                            gateway_id: &gateway_id,
                            spool_id: &spool_id,
                            ledger_seq,
                            ledger_prev,
                        };
                        let planned = plan(&ctx, file_no, &events, &checkpoints)?;
                        if let Some(u) = &planned {
                            u.stage(&spool_path)?;
                            LedgerHead {
                                gateway_id: gateway_id.clone(),
                                seq: u.entry.body.seq,
                                hash: u.entry.hash_hex(),
                            }
                            .store(&spool_path)?;
                        }
                        Ok(planned)
                    })
                    .await
                    .map_err(|e| StoreError::segment("encode task", e))?
                }
            })
            .await?;
        if let Some(u) = &planned {
            *head = Some(LedgerHead {
                gateway_id: self.gateway_id.clone(),
                seq: u.entry.body.seq,
                hash: u.entry.hash_hex(),
            });
        }
        Ok(planned)
    }

    /// Uploads have stopped for good: say so (now and every minute), and keep taking
    /// chunks so their memory is released; their spool files stay for the next start.
    async fn halted(&self, halt: Halt, mut chunks: mpsc::UnboundedReceiver<Chunk>) {
        let why = halt.0.to_string();
        let message = format!(
            "uploads stopped: {why}. Recording goes on into the spool, which keeps everything; find out what wrote that object (another gateway with the same id? a restored spool?), fix it, then restart this gateway"
        );
        self.backlog.upload_failed(message.clone());
        tracing::error!("{message}");
        let mut reminder = tokio::time::interval(HALTED_REMINDER);
        reminder.tick().await;
        loop {
            tokio::select! {
                chunk = chunks.recv() => match chunk {
                    Some(c) => {
                        self.queued.fetch_sub(c.queued_bytes, Ordering::Relaxed);
                    }
                    None => return,
                },
                _ = reminder.tick() => {
                    self.backlog.upload_failed(message.clone());
                    tracing::error!(events_waiting = self.backlog.events(), "{message}");
                }
            }
        }
    }

    /// Runs `op` until it succeeds, waiting with exponential backoff and full jitter
    /// between attempts. Objects are create-only and a retry offers the same bytes, so
    /// retrying is safe; a conflict is not retried, it halts uploading.
    async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, Halt>
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
                    return Ok(v);
                }
                Err(e @ StoreError::Conflict { .. }) => return Err(Halt(e)),
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
