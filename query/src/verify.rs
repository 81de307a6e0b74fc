//! Verifying one session through DataFusion: its rows read in seq order (pruned to the
//! row groups that hold it) and walked through the chain, its checkpoint seals held
//! against the heads. The replay badge and `tapline verify --session` use this; the
//! whole archive is verified against the ledgers by `tapline_store::verify`.

use crate::error::QueryError;
use crate::sessions::literal;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use tapline_store::batch::EventColumns;
use tapline_store::schema::events_table_schema;
use tapline_store::seal::TrustedKeys;
use tapline_store::verify::segment_read::seals_of;
use tapline_store::verify::{SessionCheck, SessionVerdict};

/// Recomputes one session's chain and checks its seals.
pub async fn verify_session(
    ctx: &SessionContext,
    session_id: &str,
    keys: &TrustedKeys,
) -> Result<SessionVerdict, QueryError> {
    let id = literal(session_id);
    let seal_sql = format!(
        "SELECT session_id, last_seq, head_hash, seal_signature, signing_key_id, seal_kind, end_reason \
         FROM session_checkpoints WHERE session_id = {id}"
    );
    let mut seals = Vec::new();
    for b in ctx.sql(&seal_sql).await?.collect().await? {
        seals.extend(seals_of(&b)?);
    }
    let columns: Vec<String> = events_table_schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let sql = format!(
        "SELECT {} FROM event_segments WHERE session_id = {id} ORDER BY seq",
        columns.join(", ")
    );
    let had_seals = !seals.is_empty();
    let mut check = SessionCheck::new(session_id, seals, keys);
    let mut rows_seen = 0usize;
    let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let cols = EventColumns::new(&batch)?;
        rows_seen += cols.len();
        let rows: Vec<usize> = (0..cols.len()).collect();
        check.feed(&cols, &rows);
    }
    if rows_seen == 0 && !had_seals {
        return Err(QueryError::BadArgument {
            flag: "--session",
            problem: format!(
                "no session `{session_id}` in this archive; list them with `tapline sessions`"
            ),
        });
    }
    Ok(check.finish())
}
