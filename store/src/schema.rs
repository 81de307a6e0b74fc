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

/// The columns every events segment has, in every format version.
fn event_content_fields() -> Vec<Field> {
    vec![
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
    ]
}

/// Bytes of the per-event chain tag: the first bytes of the event's link hash.
///
/// The tag only says *where* a chain breaks; *whether* it breaks rests on the full
/// 32-byte heads, signed in every checkpoint and in the ledger. Four bytes place an
/// accidental or naive change at its exact seq (a false match is 1 in 4 billion); a
/// forger who spends about 2^32 hashes on one event can make the break show at the
/// next seq instead, never hide it. Random bytes do not compress, so this is most of
/// what integrity costs per event (README: archive format).
pub const TAG_BYTES: usize = 4;

/// The byte offset at which a format 2 row's payload had its `command` text cut out
/// (null: stored whole).
fn payload_splice_field() -> Field {
    Field::new("payload_splice", DataType::UInt32, true)
}

fn tag_field(nullable: bool) -> Field {
    Field::new("tag", DataType::FixedSizeBinary(TAG_BYTES as i32), nullable)
}

/// The index of `payload` in the content columns, where `payload_splice` follows it.
fn after_payload(fields: &[Field]) -> usize {
    fields
        .iter()
        .position(|f| f.name() == "payload")
        .map_or(fields.len(), |i| i + 1)
}

static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = event_content_fields();
    let at = after_payload(&fields);
    fields.insert(at, payload_splice_field());
    fields.push(tag_field(false));
    Arc::new(Schema::new(fields))
});

/// `events` as format 2 writes it: one row per event, sorted by (session_id, seq), with
/// a short chain tag per event (the full chain heads live in the checkpoints and the
/// ledger, so the archive does not carry two random 32-byte hashes per event), and a
/// query's text stored once: in `command`, cut out of `payload` (`payload_splice`).
pub fn events_schema() -> SchemaRef {
    EVENTS.clone()
}

static EVENTS_V1: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = event_content_fields();
    fields.push(Field::new(
        "prev_hash",
        DataType::FixedSizeBinary(32),
        false,
    ));
    fields.push(Field::new("hash", DataType::FixedSizeBinary(32), false));
    Arc::new(Schema::new(fields))
});

/// `events` as format 1 wrote it (full `prev_hash` and `hash` per event); still read
/// and verified.
pub fn events_v1_schema() -> SchemaRef {
    EVENTS_V1.clone()
}

static EVENTS_TABLE: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = event_content_fields();
    let at = after_payload(&fields);
    fields.insert(at, payload_splice_field());
    fields.push(tag_field(true));
    fields.push(Field::new("prev_hash", DataType::FixedSizeBinary(32), true));
    fields.push(Field::new("hash", DataType::FixedSizeBinary(32), true));
    Arc::new(Schema::new(fields))
});

/// The stored columns of `events` segments of any format, as one table: format 2 rows
/// have a `tag` and no hashes, format 1 rows the reverse. `payload` here is as stored;
/// the query layer puts each payload back together (`payload_splice`).
pub fn events_table_schema() -> SchemaRef {
    EVENTS_TABLE.clone()
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
        Field::new("tls_version", DataType::Utf8, true),
        Field::new("tls_cipher", DataType::Utf8, true),
        Field::new("tls_client_cert", DataType::Utf8, true),
    ]))
});

/// Session checkpoints: one row per session per segment checkpoint, each carrying the
/// seal of the session head at that point. The `sessions` table that users query is
/// the latest checkpoint of each session (see the query crate); the full history is
/// what `tapline verify` checks every seal against.
pub fn sessions_schema() -> SchemaRef {
    SESSIONS.clone()
}
