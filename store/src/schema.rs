//! The Arrow schemas of the archive, defined here and nowhere else.
//!
//! The writer, the query tables and the viewer all take their columns from these two
//! functions, so a column cannot drift between what is written and what is read.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, LazyLock};

/// Timestamps are nanoseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("session_id", DataType::Utf8, false),
        Field::new("seq", DataType::UInt64, false),
        Field::new("ts", timestamp_type(), false),
        Field::new("gateway_id", DataType::Utf8, false),
        Field::new("connection", DataType::Utf8, false),
        Field::new("protocol", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, false),
        Field::new("direction", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("command", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("row_count", DataType::UInt64, true),
        Field::new("duration_us", DataType::UInt64, true),
        Field::new("masked", text_list(), false),
        Field::new("payload", DataType::Binary, false),
        Field::new("text", DataType::Utf8, true),
        Field::new("prev_hash", DataType::FixedSizeBinary(32), false),
        Field::new("hash", DataType::FixedSizeBinary(32), false),
    ]))
});

/// `events`: one row per event, sorted by (session_id, seq).
pub fn events_schema() -> SchemaRef {
    EVENTS.clone()
}

static SESSIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("session_id", DataType::Utf8, false),
        Field::new("gateway_id", DataType::Utf8, false),
        Field::new("connection", DataType::Utf8, false),
        Field::new("protocol", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, false),
        Field::new("groups", text_list(), false),
        Field::new("client_addr", DataType::Utf8, false),
        Field::new("database", DataType::Utf8, true),
        Field::new("application_name", DataType::Utf8, true),
        Field::new("upstream", DataType::Utf8, false),
        Field::new("start_ts", timestamp_type(), false),
        Field::new("end_ts", timestamp_type(), true),
        Field::new("last_seq", DataType::UInt64, false),
        Field::new("events", DataType::UInt64, false),
        Field::new("commands", DataType::UInt64, false),
        Field::new("errors", DataType::UInt64, false),
        Field::new("blocked", DataType::UInt64, false),
        Field::new("masked_values", DataType::UInt64, false),
        Field::new("bytes_from_client", DataType::UInt64, false),
        Field::new("bytes_from_server", DataType::UInt64, false),
        Field::new("end_reason", DataType::Utf8, true),
        Field::new("head_hash", DataType::FixedSizeBinary(32), false),
        Field::new("seal_signature", DataType::FixedSizeBinary(64), false),
        Field::new("signing_key_id", DataType::Utf8, false),
        Field::new("sealed_at", timestamp_type(), false),
        Field::new("seal_kind", DataType::Utf8, false),
        Field::new("issuer", DataType::Utf8, true),
        Field::new("token_id", DataType::Utf8, true),
    ]))
});

/// Session checkpoints: one row per session per segment checkpoint, each carrying the
/// seal of the session head at that point. The `sessions` table that users query is
/// the latest checkpoint of each session (see the query crate); the full history is
/// what `tapline verify` checks every seal against.
pub fn sessions_schema() -> SchemaRef {
    SESSIONS.clone()
}
