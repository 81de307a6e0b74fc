//! `tapline verify`: every chain recomputed, every seal checked, over the archive.
//!
//! Events are streamed in (session_id, seq) order, so memory holds one session's
//! row checks (80 bytes an event), never the archive.

use crate::error::QueryError;
use crate::sessions::literal;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::collections::BTreeMap;
use tapline_store::batch::EventColumns;
use tapline_store::schema::events_schema;
use tapline_store::seal::{KeyId, Seal, TrustedKeys};
use tapline_store::verify::{RowCheck, SessionVerdict, StoredSeal, verify_session};

/// Verifies every session (or one), calling `report` for each verdict as soon as it
/// is known.
pub async fn verify_archive(
    ctx: &SessionContext,
    session: Option<&str>,
    keys: &TrustedKeys,
    mut report: impl FnMut(&SessionVerdict),
) -> Result<Vec<SessionVerdict>, QueryError> {
    let filter = session
        .map(|s| format!("WHERE session_id = {}", literal(s)))
        .unwrap_or_default();
    let mut seals = load_seals(ctx, &filter).await?;

    let columns: Vec<String> = events_schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let sql = format!(
        "SELECT {} FROM events {filter} ORDER BY session_id, seq",
        columns.join(", ")
    );
    let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
    let mut verdicts = Vec::new();
    let mut current: Option<(String, Vec<RowCheck>)> = None;
    let mut finish =
        |id: String, rows: Vec<RowCheck>, seals: &mut BTreeMap<String, Vec<StoredSeal>>| {
            let s = seals.remove(&id).unwrap_or_default();
            let v = verify_session(&id, &rows, &s, keys);
            report(&v);
            verdicts.push(v);
        };
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let cols = EventColumns::new(&batch)?;
        for i in 0..cols.len() {
            let id = cols.session_id(i);
            if current.as_ref().is_none_or(|(cur, _)| cur != id) {
                if let Some((done, rows)) = current.take() {
                    finish(done, rows, &mut seals);
                }
                current = Some((id.to_string(), Vec::new()));
            }
            if let Some((_, rows)) = current.as_mut() {
                rows.push(RowCheck::of(&cols, i));
            }
        }
    }
    if let Some((done, rows)) = current.take() {
        finish(done, rows, &mut seals);
    }
    // Sealed sessions with no events left at all.
    let orphans: Vec<String> = seals.keys().cloned().collect();
    for id in orphans {
        finish(id, Vec::new(), &mut seals);
    }
    if let Some(s) = session
        && verdicts.is_empty()
    {
        return Err(QueryError::BadArgument {
            flag: "--session",
            problem: format!("no session `{s}` in this archive; list them with `tapline sessions`"),
        });
    }
    Ok(verdicts)
}

async fn load_seals(
    ctx: &SessionContext,
    filter: &str,
) -> Result<BTreeMap<String, Vec<StoredSeal>>, QueryError> {
    let sql = format!(
        "SELECT session_id, last_seq, head_hash, seal_signature, signing_key_id, seal_kind, end_reason \
         FROM session_checkpoints {filter}"
    );
    let batches: Vec<RecordBatch> = ctx.sql(&sql).await?.collect().await?;
    let mut out: BTreeMap<String, Vec<StoredSeal>> = BTreeMap::new();
    for b in &batches {
        let id = b.column(0).as_string::<i32>();
        let last = b.column(1).as_primitive::<UInt64Type>();
        let head = b.column(2).as_fixed_size_binary();
        let sig = b.column(3).as_fixed_size_binary();
        let key = b.column(4).as_string::<i32>();
        let kind = b.column(5).as_string::<i32>();
        let reason = b.column(6).as_string::<i32>();
        for i in 0..b.num_rows() {
            let mut head_hash = [0u8; 32];
            if head.value(i).len() == 32 {
                head_hash.copy_from_slice(head.value(i));
            }
            let mut signature = [0u8; 64];
            if sig.value(i).len() == 64 {
                signature.copy_from_slice(sig.value(i));
            }
            out.entry(id.value(i).to_string())
                .or_default()
                .push(StoredSeal {
                    seal: Seal {
                        session_id: id.value(i).to_string(),
                        last_seq: last.value(i),
                        head_hash,
                        signature,
                        key_id: KeyId(key.value(i).to_string()),
                    },
                    is_end: kind.value(i) == "end",
                    end_reason: (!reason.is_null(i)).then(|| reason.value(i).to_string()),
                });
        }
    }
    Ok(out)
}
