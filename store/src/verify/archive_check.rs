//! `tapline verify` over a whole archive, led by the ledgers.
//!
//! Each gateway's ledger is read in order: every entry must hash to what it stores,
//! carry a trusted signature, and link to the entry before it without a gap. Each
//! entry then becomes a check of its own segments ([`super::chunk_check`]), run a few
//! at a time; their outcomes are folded back in ledger order into one verdict per
//! session, reported as soon as the session's end is checked. Memory holds the
//! entries in flight and the sessions still open, not the archive.
//!
//! Afterwards every segment in the archive that no ledger lists is named: copied in,
//! or left by something other than a gateway. Format 1 segments, written before
//! ledgers existed, are checked the old way: by their chains and seals alone.

use super::chunk_check::{ChunkOutcome, ChunkTask, run};
use super::ledger_links::{CheckedEntry, LedgerLinks};
use super::legacy;
use super::report::{ArchiveProblem, ArchiveSummary, LedgerSummary};
use super::retired::{RetiredPaths, read_maintenance};
use super::verdict::SessionVerdict;
use crate::archive::Archive;
use crate::error::StoreError;
use crate::ledger::LEDGER_ROOT;
use crate::ledger::LedgerAction;
use crate::ledger::entry::hex_array;
use crate::ledger::reader::{list_ledgers, read_entries};
use crate::seal::TrustedKeys;
use crate::segment::format_version;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// What the caller can pin and tune.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// (gateway id, hash hex or a prefix of at least 16 hex digits): each ledger must
    /// hold that entry, or it was cut short.
    pub expect_heads: Vec<(String, String)>,
    /// Ledger entries checked at once.
    pub concurrency: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            expect_heads: Vec::new(),
            concurrency: std::thread::available_parallelism()
                .map(|n| n.get() * 2)
                .unwrap_or(4),
        }
    }
}

/// Counters a terminal progress line reads while verification runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub segments_total: AtomicU64,
    pub segments_done: AtomicU64,
    pub events: AtomicU64,
    pub bytes: AtomicU64,
}

/// Verifies the whole archive, calling `report` with each session's verdict as soon
/// as it is known.
pub async fn verify_archive(
    archive: &Archive,
    keys: &TrustedKeys,
    opts: &VerifyOptions,
    progress: &Progress,
    mut report: impl FnMut(&SessionVerdict),
) -> Result<ArchiveSummary, StoreError> {
    let mut summary = ArchiveSummary::default();
    let mut files: BTreeMap<String, u64> = BTreeMap::new();
    for table in ["events", "sessions"] {
        files.extend(archive.list_sized(table).await?);
    }
    progress
        .segments_total
        .store(files.len() as u64, Ordering::Relaxed);
    // What was removed on purpose must be known before any segment is missed.
    let maintenance = read_maintenance(archive, keys, &opts.expect_heads).await?;
    summary.problems.extend(maintenance.problems);
    summary.retentions = maintenance.retentions;
    let mut present: HashMap<(&str, u64), u64> = HashMap::new();
    for (path, by) in &maintenance.retired {
        if files.contains_key(path) {
            *present.entry((by.ledger.as_str(), by.entry)).or_default() += 1;
        }
    }
    for r in &mut summary.retentions {
        r.still_present = present
            .get(&(r.ledger.as_str(), r.entry))
            .copied()
            .unwrap_or(0);
    }
    let retired = Arc::new(maintenance.retired);
    let listing = list_ledgers(archive).await?;
    for stray in &listing.strays {
        summary.problems.push(ArchiveProblem::LedgerStray {
            path: stray.clone(),
        });
    }
    let mut recorded: HashSet<String> = HashSet::new();
    let mut checked_through: HashMap<String, u64> = HashMap::new();
    for (gateway, entries) in &listing.gateways {
        let pinned: Vec<String> = opts
            .expect_heads
            .iter()
            .filter(|(g, _)| g == gateway)
            .map(|(_, h)| h.to_ascii_lowercase())
            .collect();
        let ledger = check_ledger(
            archive,
            keys,
            opts,
            progress,
            gateway,
            entries.clone(),
            &pinned,
            &retired,
            &mut recorded,
            &mut summary,
            &mut report,
        )
        .await?;
        if let Some((seq, _)) = &ledger.head {
            checked_through.insert(gateway.clone(), *seq);
        }
        summary.ledgers.push(ledger);
    }
    summary.ledgers.extend(maintenance.ledgers);
    for (gateway, hash) in &opts.expect_heads {
        if !summary.ledgers.iter().any(|l| &l.gateway == gateway) {
            summary.problems.push(ArchiveProblem::LedgerTruncated {
                gateway: gateway.clone(),
                pinned: hash.clone(),
                ends_at: None,
            });
        }
    }

    // Segments no ledger lists. A gateway uploading right now writes its segments
    // before the entry that lists them, so look at the ledgers once more first.
    let unlisted: Vec<String> = files
        .keys()
        .filter(|p| !recorded.contains(*p))
        .cloned()
        .collect();
    let pending = if unlisted.is_empty() {
        HashSet::new()
    } else {
        listed_since(archive, &checked_through).await?
    };
    let mut legacy_files = Vec::new();
    for path in unlisted {
        if pending.contains(&path) {
            continue;
        }
        if !path.ends_with(".parquet") {
            summary.problems.push(ArchiveProblem::SegmentExtra {
                path,
                detail: "not a segment, and no ledger lists it".into(),
            });
            continue;
        }
        let bytes = match archive.get(&path).await {
            Ok(b) => b,
            Err(StoreError::ObjectStore {
                source: object_store::Error::NotFound { .. },
                ..
            }) => continue,
            Err(e) => return Err(e),
        };
        let format =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes.clone(),
            )
            .map(|b| format_version(b.metadata()))
            .ok();
        match format {
            Some(1) => legacy_files.push((path, bytes)),
            Some(_) => summary.problems.push(ArchiveProblem::SegmentExtra {
                path,
                detail: "no ledger lists it: it was copied in from elsewhere, or written by something other than a gateway".into(),
            }),
            None => summary.problems.push(ArchiveProblem::SegmentExtra {
                path,
                detail: "no ledger lists it, and it is not a readable Parquet file".into(),
            }),
        }
    }
    if !legacy_files.is_empty() {
        summary.legacy_segments = legacy_files.len() as u64;
        let checked = legacy::verify_segments(legacy_files, keys, &mut report)?;
        summary.events_checked += checked.events;
        summary.segments_checked += checked.segments;
        summary.segment_bytes += checked.bytes;
        summary.problems.extend(checked.problems);
        progress
            .segments_done
            .fetch_add(checked.segments, Ordering::Relaxed);
    }
    Ok(summary)
}

/// Reads one gateway's ledger in order, checks each entry, runs its segment checks a
/// few at a time, and folds them into session verdicts.
#[allow(clippy::too_many_arguments)]
async fn check_ledger(
    archive: &Archive,
    keys: &TrustedKeys,
    opts: &VerifyOptions,
    progress: &Progress,
    gateway: &str,
    entries: Vec<(u64, String)>,
    pinned: &[String],
    retired: &Arc<RetiredPaths>,
    recorded: &mut HashSet<String>,
    summary: &mut ArchiveSummary,
    report: &mut impl FnMut(&SessionVerdict),
) -> Result<LedgerSummary, StoreError> {
    let (tx, rx) = mpsc::channel::<ChunkTask>(opts.concurrency.max(1) * 4);
    let producer = {
        let archive = archive.clone();
        let keys = keys.clone();
        let gateway = gateway.to_string();
        let pinned = pinned.to_vec();
        let retired = retired.clone();
        tokio::spawn(async move {
            read_ledger(&archive, &keys, &gateway, entries, &pinned, &retired, tx).await
        })
    };
    let keys = Arc::new(keys.clone());
    let mut outcomes = tokio_stream_from(rx)
        .map(|task| {
            let keys = keys.clone();
            async move {
                let segments = task.segments.len() as u64;
                let out = run(archive, &keys, task).await;
                progress
                    .segments_done
                    .fetch_add(segments, Ordering::Relaxed);
                out
            }
        })
        .buffered(opts.concurrency.max(1));
    let mut open: HashMap<String, SessionVerdict> = HashMap::new();
    while let Some(outcome) = outcomes.next().await {
        let ChunkOutcome {
            problems,
            pieces,
            events,
            bytes,
            segments,
            retired_segments,
        } = outcome?;
        summary.retired_segments += retired_segments;
        progress.events.fetch_add(events, Ordering::Relaxed);
        progress.bytes.fetch_add(bytes, Ordering::Relaxed);
        summary.events_checked += events;
        summary.segment_bytes += bytes;
        summary.segments_checked += segments;
        summary.problems.extend(problems);
        for p in pieces {
            let v = open
                .entry(p.session_id.clone())
                .or_insert_with(|| SessionVerdict::new(p.session_id.clone()));
            v.events += p.events;
            if let Some(b) = p.broken {
                v.break_at(b);
            }
            if let Some(s) = p.sealed {
                v.sealed_through = Some(v.sealed_through.map_or(s, |t| t.max(s)));
            }
            if let Some((removed, by)) = &p.retired {
                v.retire(*removed, by.describe());
            }
            if p.ended {
                v.ended = true;
                v.end_reason = p.end_reason;
                if let Some(done) = open.remove(&p.session_id) {
                    report(&done);
                }
            }
        }
    }
    drop(outcomes);
    let mut rest: Vec<SessionVerdict> = open.into_values().collect();
    rest.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    for v in &rest {
        report(v);
    }
    let produced = producer
        .await
        .map_err(|e| StoreError::segment("ledger reader task", e))??;
    recorded.extend(produced.recorded);
    let ok = produced.problems.is_empty();
    summary.problems.extend(produced.problems);
    Ok(LedgerSummary {
        gateway: gateway.to_string(),
        entries: produced.entries,
        head: produced.head,
        ok,
    })
}

/// What reading one ledger found.
struct LedgerRead {
    entries: u64,
    head: Option<(u64, String)>,
    problems: Vec<ArchiveProblem>,
    recorded: Vec<String>,
}

/// Reads a gateway's entries in order, checking each on its own and against the one
/// before, and hands each entry's segment checks on.
async fn read_ledger(
    archive: &Archive,
    keys: &TrustedKeys,
    gateway: &str,
    entries: Vec<(u64, String)>,
    pinned: &[String],
    retired: &RetiredPaths,
    tx: mpsc::Sender<ChunkTask>,
) -> Result<LedgerRead, StoreError> {
    let mut read = LedgerRead {
        entries: 0,
        head: None,
        problems: Vec::new(),
        recorded: Vec::new(),
    };
    let mut links =
        LedgerLinks::new(LEDGER_ROOT, gateway, gateway).with_pins(pinned.iter().cloned());
    let mut mentions: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    let mut stream = std::pin::pin!(read_entries(archive, entries));
    while let Some(item) = stream.next().await {
        let item = item?;
        let seq = item.seq;
        let checked = links.check(item, keys, &mut read.problems);
        read.entries = links.entries;
        read.head = links.head.clone();
        let Some(CheckedEntry { entry, .. }) = checked else {
            continue;
        };
        let LedgerAction::Chunk {
            segments, sessions, ..
        } = entry.body.action
        else {
            read.problems.push(ArchiveProblem::LedgerEntry {
                gateway: gateway.to_string(),
                seq,
                detail: "a gateway ledger holds a maintenance entry; maintenance is recorded under maintenance/, so this entry is ignored".into(),
            });
            continue;
        };
        read.recorded
            .extend(segments.iter().map(|s| s.path.clone()));
        let mut with_start = Vec::with_capacity(sessions.len());
        for h in sessions {
            let start = mentions.get(&h.session_id).copied();
            if h.ended {
                mentions.remove(&h.session_id);
            } else if let Some(head) = hex_array::<32>(&h.head) {
                mentions.insert(h.session_id.clone(), (h.last_seq, head));
            }
            with_start.push((h, start));
        }
        let retired = segments
            .iter()
            .filter_map(|r| retired.get(&r.path).map(|by| (r.path.clone(), by.clone())))
            .collect();
        let task = ChunkTask {
            gateway: gateway.to_string(),
            entry: seq,
            segments,
            sessions: with_start,
            retired,
        };
        if tx.send(task).await.is_err() {
            break;
        }
    }
    read.problems.extend(links.unreached_pins());
    Ok(read)
}

/// The segments named by ledger entries written after the ones already checked: a
/// gateway's upload in progress, not something out of place.
async fn listed_since(
    archive: &Archive,
    checked_through: &HashMap<String, u64>,
) -> Result<HashSet<String>, StoreError> {
    let listing = list_ledgers(archive).await?;
    let mut out = HashSet::new();
    for (gateway, entries) in listing.gateways {
        let after = checked_through.get(&gateway).copied();
        let newer: Vec<(u64, String)> = entries
            .into_iter()
            .filter(|(seq, _)| after.is_none_or(|a| *seq > a))
            .collect();
        let mut stream = std::pin::pin!(read_entries(archive, newer));
        while let Some(item) = stream.next().await {
            if let Ok(e) = item?.entry
                && let LedgerAction::Chunk { segments, .. } = e.body.action
            {
                out.extend(segments.into_iter().map(|s| s.path));
            }
        }
    }
    Ok(out)
}

/// A stream over a bounded channel's receiver.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
