//! Registers the archive with DataFusion.
//!
//! `event_segments` and `session_checkpoints` are listing tables over the
//! hive-partitioned Parquet folders (the `date` partition becomes a column, so
//! `WHERE date >= …` prunes whole days). Files declare their (session_id, seq) order,
//! and page indexes, statistics and bloom filters are used on read, so one session is
//! read without scanning the rest. `events`, `sessions` and `commands` are views
//! defined in SQL below; `events` shows each payload whole, whatever the segment
//! format stored.

use crate::error::QueryError;
use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext, col};
use std::sync::Arc;
use tapline_store::Archive;
use tapline_store::schema::{events_table_schema, sessions_schema};

/// The `events` view: one row per event of every segment format, with each payload
/// put back together (format 2 stores a query's SQL once, in `command`).
pub const EVENTS_VIEW: &str = r#"
CREATE VIEW events AS
SELECT session_id, seq, ts, gateway_id, connection, protocol, "user", direction, kind,
       command, status, row_count, duration_us, masked,
       CASE WHEN payload_splice IS NULL THEN payload
            ELSE tapline_payload(payload, payload_splice, command) END AS payload,
       text, tag, prev_hash, hash, date
FROM event_segments
"#;

/// The `sessions` view: the latest checkpoint of every session, i.e. one row per
/// session with its newest counts and seal.
pub const SESSIONS_VIEW: &str = r#"
CREATE VIEW sessions AS
SELECT session_id, gateway_id, connection, protocol, "user", groups, client_addr, database,
       application_name, upstream, start_ts, end_ts,
       CASE WHEN end_ts IS NULL THEN 'live' ELSE 'ended' END AS state,
       last_seq, events, commands, errors, blocked, masked_values,
       bytes_from_client, bytes_from_server, end_reason, head_hash, seal_signature,
       signing_key_id, sealed_at, issuer, token_id, tls_version, tls_cipher,
       tls_client_cert, date
FROM (
  SELECT *, row_number() OVER (
    PARTITION BY session_id
    ORDER BY last_seq DESC, CASE WHEN seal_kind = 'end' THEN 0 ELSE 1 END, sealed_at DESC
  ) AS checkpoint_rank
  FROM session_checkpoints
) latest
WHERE checkpoint_rank = 1
"#;

/// The `commands` view: each command paired with the result or error it returned.
/// The n-th `query` event of a session pairs with its n-th command completion (a
/// `result` or `error` event with a command), which is how the PostgreSQL tap
/// records them: responses arrive strictly in request order.
pub fn commands_view() -> String {
    use tapline_store::text_format::{ERROR_PREFIX_PATTERN, SQLSTATE_PATTERN};
    COMMANDS_VIEW
        .replace("{SQLSTATE}", SQLSTATE_PATTERN)
        .replace("{ERROR_PREFIX}", ERROR_PREFIX_PATTERN)
}

/// The view's SQL, with the archive's text patterns (`tapline_store::text_format`)
/// still to fill in.
const COMMANDS_VIEW: &str = r#"
CREATE VIEW commands AS
WITH q AS (
  SELECT session_id, seq, ts, gateway_id, connection, protocol, "user", command, date,
         row_number() OVER (PARTITION BY session_id ORDER BY seq) AS n
  FROM events WHERE kind = 'query'
), r AS (
  SELECT session_id, seq AS result_seq, ts AS result_ts, kind AS result_kind, status,
         row_count, duration_us, text AS result_text, masked,
         row_number() OVER (PARTITION BY session_id ORDER BY seq) AS n
  FROM events WHERE kind IN ('result', 'error') AND command IS NOT NULL
)
SELECT q.session_id, q.seq, q.ts, q.gateway_id, q.connection, q.protocol, q."user", q.command,
       COALESCE(r.status, 'pending') AS status,
       r.row_count, r.duration_us, r.result_text,
       CASE WHEN r.result_kind = 'error' AND regexp_like(r.result_text, '{SQLSTATE}')
            THEN substr(r.result_text, 1, 5) END AS sqlstate,
       CASE WHEN r.result_kind = 'error'
            THEN regexp_replace(split_part(r.result_text, chr(10), 1), '{ERROR_PREFIX}', '')
            END AS error_message,
       r.result_seq, r.result_ts, r.masked, q.date
FROM q LEFT JOIN r ON q.session_id = r.session_id AND q.n = r.n
"#;

async fn register_table(
    ctx: &SessionContext,
    name: &str,
    url: &str,
    schema: datafusion::arrow::datatypes::SchemaRef,
    sort: Vec<&str>,
) -> Result<(), QueryError> {
    let table_url = ListingTableUrl::parse(url)?;
    let order = vec![sort.into_iter().map(|c| col(c).sort(true, false)).collect()];
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![("date".to_string(), DataType::Utf8)])
        .with_file_sort_order(order);
    let config = ListingTableConfig::new(table_url)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// A DataFusion session with the archive's tables and views registered.
pub async fn open_context(archive: &Archive) -> Result<SessionContext, QueryError> {
    let mut config = SessionConfig::new().with_information_schema(true);
    let opts = config.options_mut();
    opts.execution.parquet.pushdown_filters = true;
    opts.execution.parquet.reorder_filters = true;
    opts.execution.parquet.bloom_filter_on_read = true;
    opts.execution.parquet.enable_page_index = true;
    // The archive only grows, and a gateway adds segments every flush interval: every
    // query lists the table folders afresh (DataFusion would otherwise cache the file
    // list for the life of the context, hiding new segments from a shell, a follower or
    // a browser reload).
    let runtime = RuntimeEnvBuilder::new()
        .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
        .build_arc()?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    ctx.register_object_store(archive.root_url(), archive.store_for_datafusion());
    crate::functions::register_all(&ctx, archive.root_url().as_str());
    register_table(
        &ctx,
        "event_segments",
        &archive.table_url("events"),
        events_table_schema(),
        vec!["session_id", "seq"],
    )
    .await?;
    register_table(
        &ctx,
        "session_checkpoints",
        &archive.table_url("sessions"),
        sessions_schema(),
        vec!["session_id", "last_seq"],
    )
    .await?;
    ctx.sql(EVENTS_VIEW).await?;
    ctx.sql(SESSIONS_VIEW).await?;
    ctx.sql(&commands_view()).await?;
    Ok(ctx)
}
