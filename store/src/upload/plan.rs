//! Turning one spool chunk into what goes up: an events segment per UTC day of its
//! events, a sessions segment per day of its checkpoint seals, and the ledger entry
//! that names them all and the session heads they leave.

use super::staged::ChunkUpload;
use crate::batch::{events_to_batch, sessions_to_batch};
use crate::error::StoreError;
use crate::event::{Event, now_ns};
use crate::ledger::entry::LEDGER_FORMAT;
use crate::ledger::{LedgerAction, LedgerBody, LedgerEntry, SegmentRecord, SessionHead};
use crate::seal::GatewayKey;
use crate::segment::{FORMAT_VERSION, Table, date_partition, encode, segment_path};
use crate::session::{SealKind, SessionSummary};
use crate::spool::book::CheckpointDraft;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

/// Who is writing, and where its ledger stands.
pub struct PlanContext<'a> {
    pub key: &'a GatewayKey,
    pub gateway_id: &'a str,
    pub spool_id: &'a str,
    /// The seq the new entry gets, and the hash of the entry before it.
    pub ledger_seq: u64,
    pub ledger_prev: Option<String>,
}

/// Encodes a chunk's events and checkpoints and signs the ledger entry for them.
/// `None` when the chunk holds nothing to store (a spool file with only carried-over
/// session states).
pub fn plan(
    ctx: &PlanContext<'_>,
    file_no: u64,
    events: &[Event],
    checkpoints: &[CheckpointDraft],
) -> Result<Option<ChunkUpload>, StoreError> {
    let mut first_seq: HashMap<&str, u64> = HashMap::new();
    for e in events {
        let f = first_seq.entry(&*e.session_id).or_insert(e.seq);
        *f = (*f).min(e.seq);
    }
    let first_seq: HashMap<String, u64> = first_seq
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();

    let mut segments = Vec::new();
    let mut records = Vec::new();
    for day in split_by_day(events) {
        let path = segment_path(
            Table::Events.as_str(),
            day[0].ts_ns,
            ctx.gateway_id,
            ctx.spool_id,
            file_no,
        );
        let bytes = Bytes::from(encode(&events_to_batch(&day)?, Table::Events)?);
        records.push(record(&path, Table::Events, &bytes, day.len()));
        segments.push((path, bytes));
    }

    let sealed_at = now_ns();
    let mut rows: Vec<SessionSummary> = checkpoints
        .iter()
        .map(|c| SessionSummary {
            meta: c.meta.clone(),
            end_ns: c.end.as_ref().map(|e| e.0),
            counts: c.counts.clone(),
            end_reason: c.end.as_ref().map(|e| e.1.clone()),
            seal: ctx.key.seal(&c.meta.session_id, c.last_seq, c.head),
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
    for day in by_day.into_values() {
        let path = segment_path(
            Table::Sessions.as_str(),
            day[0].meta.start_ns,
            ctx.gateway_id,
            ctx.spool_id,
            file_no,
        );
        let bytes = Bytes::from(encode(&sessions_to_batch(&day)?, Table::Sessions)?);
        records.push(record(&path, Table::Sessions, &bytes, day.len()));
        segments.push((path, bytes));
    }
    if segments.is_empty() {
        return Ok(None);
    }

    let mut sessions: Vec<SessionHead> = checkpoints
        .iter()
        .map(|c| SessionHead {
            session_id: c.meta.session_id.to_string(),
            first_seq: first_seq.get(&*c.meta.session_id).copied(),
            last_seq: c.last_seq,
            head: hex::encode(c.head),
            ended: c.end.is_some(),
        })
        .collect();
    sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    let body = LedgerBody {
        format: LEDGER_FORMAT.to_string(),
        gateway_id: ctx.gateway_id.to_string(),
        seq: ctx.ledger_seq,
        prev: ctx.ledger_prev.clone(),
        written_ns: sealed_at,
        key_id: ctx.key.id().0.clone(),
        action: LedgerAction::Chunk {
            spool_id: ctx.spool_id.to_string(),
            chunk: file_no,
            segments: records,
            sessions,
        },
    };
    Ok(Some(ChunkUpload {
        file_no,
        segments,
        entry: LedgerEntry::sign(body, ctx.key),
    }))
}

fn record(path: &str, table: Table, bytes: &[u8], rows: usize) -> SegmentRecord {
    SegmentRecord {
        path: path.to_string(),
        table: table.as_str().to_string(),
        bytes: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
        rows: rows as u64,
        format: FORMAT_VERSION,
    }
}

/// Splits events into one run per UTC day, each sorted by (session_id, seq).
fn split_by_day(events: &[Event]) -> Vec<Vec<&Event>> {
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by(|a, b| a.session_id.cmp(&b.session_id).then(a.seq.cmp(&b.seq)));
    let mut by_day: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events {
        by_day.entry(date_partition(e.ts_ns)).or_default().push(e);
    }
    by_day.into_values().collect()
}
