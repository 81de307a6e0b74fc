//! Checking what one ledger entry recorded: its segments' bytes against their recorded
//! size and blake3, and each session's piece of chain in them, from the head the
//! session had before this entry to the head the entry (and its checkpoint seal) says
//! it has after.
//!
//! The start heads come from earlier entries of the signed ledger, so every entry can
//! be checked on its own, several at once, holding only its own segments in memory.

use super::report::ArchiveProblem;
use super::retired::Retirement;
use super::segment_read::{decode, seals_of};
use super::session_check::{StoredSeal, seal_problem};
use super::verdict::{Break, BreakKind};
use super::walk::ChainWalk;
use crate::archive::Archive;
use crate::batch::EventColumns;
use crate::error::StoreError;
use crate::ledger::entry::hex_array;
use crate::ledger::{SegmentRecord, SessionHead};
use crate::seal::TrustedKeys;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a session's chain stood before an entry: its last seq and full head.
pub type ChainPoint = (u64, [u8; 32]);

/// One ledger entry's checks, with the start state of each session it touched.
#[derive(Debug, Clone)]
pub struct ChunkTask {
    pub gateway: String,
    pub entry: u64,
    pub segments: Vec<SegmentRecord>,
    /// Each session's head after this entry, and its (last seq, head) before it.
    pub sessions: Vec<(SessionHead, Option<ChainPoint>)>,
    /// The entry's segments that a signed retention removed on purpose.
    pub retired: HashMap<String, Arc<Retirement>>,
}

/// What one session's piece of this entry came to.
#[derive(Debug, Clone)]
pub struct PieceOutcome {
    pub session_id: String,
    pub events: u64,
    pub broken: Option<Break>,
    /// The seq the entry's seal vouches for, when it checked out.
    pub sealed: Option<u64>,
    pub ended: bool,
    pub end_reason: Option<String>,
    /// This many of the piece's events were removed on purpose, by this retention.
    pub retired: Option<(u64, Arc<Retirement>)>,
}

/// What one entry's checks came to.
#[derive(Debug, Default)]
pub struct ChunkOutcome {
    pub problems: Vec<ArchiveProblem>,
    pub pieces: Vec<PieceOutcome>,
    pub events: u64,
    pub bytes: u64,
    pub segments: u64,
    /// Segments gone because a signed retention removed them.
    pub retired_segments: u64,
}

/// Fetches the entry's segments and checks them.
pub async fn run(
    archive: &Archive,
    keys: &TrustedKeys,
    task: ChunkTask,
) -> Result<ChunkOutcome, StoreError> {
    let fetches = task.segments.iter().map(|r| async move {
        match archive.get(&r.path).await {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::ObjectStore {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    });
    let fetched: Vec<Option<Bytes>> = futures::future::try_join_all(fetches).await?;
    let keys = keys.clone();
    tokio::task::spawn_blocking(move || check(task, fetched, &keys))
        .await
        .map_err(|e| StoreError::segment("verify task", e))
}

fn check(task: ChunkTask, fetched: Vec<Option<Bytes>>, keys: &TrustedKeys) -> ChunkOutcome {
    let mut out = ChunkOutcome::default();
    let mut event_batches = Vec::new();
    let mut seals: HashMap<String, Vec<StoredSeal>> = HashMap::new();
    // The retention that removed some of this entry's segments, if one did.
    let mut retired_by: Option<Arc<Retirement>> = None;
    for (record, bytes) in task.segments.iter().zip(fetched) {
        let Some(bytes) = bytes else {
            if let Some(by) = task.retired.get(&record.path) {
                out.retired_segments += 1;
                retired_by.get_or_insert_with(|| by.clone());
                continue;
            }
            out.problems.push(ArchiveProblem::SegmentMissing {
                path: record.path.clone(),
                gateway: task.gateway.clone(),
                entry: task.entry,
            });
            continue;
        };
        out.segments += 1;
        out.bytes += bytes.len() as u64;
        let digest = blake3::hash(&bytes).to_hex().to_string();
        if bytes.len() as u64 != record.bytes || digest != record.blake3 {
            out.problems.push(ArchiveProblem::SegmentAltered {
                path: record.path.clone(),
                detail: format!(
                    "it holds {} bytes (blake3 {}), but ledger `{}` entry {} recorded {} bytes (blake3 {})",
                    bytes.len(),
                    short(&digest),
                    task.gateway,
                    task.entry,
                    record.bytes,
                    short(&record.blake3)
                ),
            });
        }
        let decoded = match decode(bytes) {
            Ok(d) => d,
            Err(e) => {
                out.problems.push(ArchiveProblem::SegmentAltered {
                    path: record.path.clone(),
                    detail: format!("it cannot be read ({e})"),
                });
                continue;
            }
        };
        match record.table.as_str() {
            "events" => event_batches.extend(decoded.batches),
            _ => {
                for b in &decoded.batches {
                    match seals_of(b) {
                        Ok(list) => {
                            for s in list {
                                seals.entry(s.seal.session_id.clone()).or_default().push(s);
                            }
                        }
                        Err(e) => out.problems.push(ArchiveProblem::SegmentAltered {
                            path: record.path.clone(),
                            detail: format!("its checkpoint rows cannot be read ({e})"),
                        }),
                    }
                }
            }
        }
    }

    // Rows of each session: (batch, row), in seq order.
    let mut columns = Vec::with_capacity(event_batches.len());
    for b in &event_batches {
        match EventColumns::new(b) {
            Ok(c) => columns.push(Some(c)),
            Err(e) => {
                out.problems.push(ArchiveProblem::SegmentAltered {
                    path: task
                        .segments
                        .iter()
                        .find(|s| s.table == "events")
                        .map(|s| s.path.clone())
                        .unwrap_or_default(),
                    detail: format!("its event rows cannot be read ({e})"),
                });
                columns.push(None);
            }
        }
    }
    let mut groups: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (bi, c) in columns.iter().enumerate() {
        let Some(c) = c else { continue };
        out.events += c.len() as u64;
        for r in 0..c.len() {
            groups.entry(c.session_id(r)).or_default().push((bi, r));
        }
    }

    for (head, start) in &task.sessions {
        let rows = groups.remove(head.session_id.as_str()).unwrap_or_default();
        let mut piece = walk_piece(&columns, rows, head, *start);
        if piece.broken.is_none() {
            check_seal(&mut piece, head, seals.remove(&head.session_id), keys);
        }
        if let Some(by) = &retired_by {
            excuse_retired(&mut piece, head, *start, by);
        }
        out.pieces.push(piece);
    }
    let mut strays: Vec<(&str, Vec<(usize, usize)>)> = groups.into_iter().collect();
    strays.sort();
    for (session_id, rows) in strays {
        let first = rows
            .iter()
            .filter_map(|&(b, r)| columns[b].as_ref().map(|c| c.seq(r)))
            .min()
            .unwrap_or(0);
        out.pieces.push(PieceOutcome {
            session_id: session_id.to_string(),
            events: rows.len() as u64,
            broken: Some(Break::new(
                first,
                BreakKind::Inserted,
                format!(
                    "its events are in a segment of ledger `{}` entry {}, which does not record this session",
                    task.gateway, task.entry
                ),
            )),
            sealed: None,
            ended: false,
            end_reason: None,
            retired: None,
        });
    }
    out
}

/// In an entry some of whose segments a signed retention removed, a piece that is
/// short of events or of its seal lost them to that removal: the segments still there
/// matched the ledger byte for byte, so what is gone is exactly what was removed.
/// Anything else (an event changed, inserted or re-chained) is still a break.
fn excuse_retired(
    piece: &mut PieceOutcome,
    head: &SessionHead,
    start: Option<ChainPoint>,
    by: &Arc<Retirement>,
) {
    let short = piece
        .broken
        .as_ref()
        .is_some_and(|b| matches!(b.kind, BreakKind::Missing | BreakKind::Truncated));
    if short {
        piece.broken = None;
        piece.sealed = None;
        piece.ended = head.ended;
        piece.end_reason = None;
        let first = start.map_or(0, |(seq, _)| seq + 1);
        let recorded = (head.last_seq + 1).saturating_sub(first);
        piece.retired = Some((recorded.saturating_sub(piece.events), by.clone()));
    }
}

/// Walks one session's rows of this entry from its start state, and holds the end
/// against the head the ledger recorded.
fn walk_piece(
    columns: &[Option<EventColumns<'_>>],
    mut rows: Vec<(usize, usize)>,
    head: &SessionHead,
    start: Option<ChainPoint>,
) -> PieceOutcome {
    let mut piece = PieceOutcome {
        session_id: head.session_id.clone(),
        events: rows.len() as u64,
        broken: None,
        sealed: None,
        ended: false,
        end_reason: None,
        retired: None,
    };
    let seq_of = |&(b, r): &(usize, usize)| columns[b].as_ref().map_or(0, |c| c.seq(r));
    rows.sort_by_key(|x| (seq_of(x), x.0, x.1));
    let mut walk = match start {
        Some((seq, h)) => ChainWalk::after(seq, h),
        None => ChainWalk::new(),
    };
    let first_expected = walk.next_seq();
    // Consecutive rows of one batch are walked together.
    for run in rows.chunk_by(|a, b| a.0 == b.0) {
        let indices: Vec<usize> = run.iter().map(|x| x.1).collect();
        if let Some(cols) = &columns[run[0].0]
            && let Err(e) = walk.walk(cols, &indices)
        {
            piece.broken = Some(e);
            return piece;
        }
    }
    let recorded: Option<[u8; 32]> = hex_array(&head.head);
    let at = walk.position();
    let reached = at.map(|p| p.0);
    match reached {
        Some(seq) if seq > head.last_seq => {
            piece.broken = Some(Break::new(
                head.last_seq + 1,
                BreakKind::Inserted,
                format!(
                    "events follow seq {}, the last the gateway recorded in this part of the session",
                    head.last_seq
                ),
            ));
        }
        Some(seq) if seq == head.last_seq => {
            if at.map(|p| p.1) != recorded {
                piece.broken = Some(Break::new(
                    head.first_seq.unwrap_or(first_expected),
                    BreakKind::Rewritten,
                    format!(
                        "the chain was recomputed: the head at seq {seq} does not match the ledger and the seal"
                    ),
                ));
            }
        }
        _ => {
            let from = walk.next_seq();
            let (kind, detail) = if rows.is_empty() {
                (
                    BreakKind::Missing,
                    format!(
                        "events {from}..={} are not in the archive (the ledger records them)",
                        head.last_seq
                    ),
                )
            } else {
                (
                    BreakKind::Truncated,
                    format!(
                        "the gateway sealed the session through seq {}, but the archive ends at seq {}",
                        head.last_seq,
                        from.saturating_sub(1)
                    ),
                )
            };
            piece.broken = Some(Break::new(from, kind, detail));
        }
    }
    piece
}

/// The entry's checkpoint seal for the session must be there, signed, and vouch for
/// the same head as the ledger.
fn check_seal(
    piece: &mut PieceOutcome,
    head: &SessionHead,
    seals: Option<Vec<StoredSeal>>,
    keys: &TrustedKeys,
) {
    let seal = seals
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.seal.last_seq == head.last_seq);
    let Some(seal) = seal else {
        piece.broken = Some(Break::new(
            head.last_seq,
            BreakKind::Missing,
            format!(
                "its checkpoint seal through seq {} is not in the archive",
                head.last_seq
            ),
        ));
        return;
    };
    if let Some(b) = seal_problem(&seal, keys) {
        piece.broken = Some(b);
        return;
    }
    if Some(seal.seal.head_hash) != hex_array::<32>(&head.head) || seal.is_end != head.ended {
        piece.broken = Some(Break::new(
            head.last_seq,
            BreakKind::BadSignature,
            "its checkpoint seal and the ledger entry disagree",
        ));
        return;
    }
    piece.sealed = Some(head.last_seq);
    piece.ended = seal.is_end;
    piece.end_reason = seal.end_reason;
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(16)]
}
