//! Conversions between in-memory rows and Arrow record batches of the archive schemas.

use crate::canonical::{CanonicalFields, Payload};
use crate::error::StoreError;
use crate::event::Event;
use crate::schema::TAG_BYTES;
use crate::schema::{events_schema, sessions_schema};
use crate::session::SessionSummary;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, FixedSizeBinaryArray,
    FixedSizeBinaryBuilder, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampNanosecondArray, TimestampNanosecondBuilder, UInt32Array, UInt32Builder, UInt64Array,
    UInt64Builder,
};
use std::sync::Arc;

fn fixed(size: i32, values: impl Iterator<Item = impl AsRef<[u8]>>, cap: usize) -> ArrayRef {
    let mut b = FixedSizeBinaryBuilder::with_capacity(cap, size);
    for v in values {
        // Sizes are fixed by construction ([u8; 32] and [u8; 64]).
        b.append_value(v)
            .expect("fixed-size value of the declared size");
    }
    Arc::new(b.finish())
}

fn text_list<'a>(lists: impl Iterator<Item = &'a [String]>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(
        datafusion::arrow::datatypes::Field::new(
            "item",
            datafusion::arrow::datatypes::DataType::Utf8,
            true,
        ),
    ));
    for list in lists {
        for item in list {
            b.values().append_value(item);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn texts<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_value(v);
    }
    Arc::new(b.finish())
}

fn opt_texts<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn u64s(values: impl Iterator<Item = Option<u64>>) -> ArrayRef {
    let mut b = UInt64Builder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn timestamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    let mut b = TimestampNanosecondBuilder::new().with_timezone("UTC");
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

/// Commands shorter than this are not cut out of their payload: the offset would cost
/// about what it saves.
const MIN_SPLICE: usize = 8;

/// Where `command`'s text sits in `payload`, if it does (a query message carries its
/// SQL): format 2 stores those bytes once, in `command`.
pub fn splice_point(payload: &[u8], command: Option<&str>) -> Option<usize> {
    let c = command?.as_bytes();
    if c.len() < MIN_SPLICE || payload.len() > u32::MAX as usize {
        return None;
    }
    memchr::memmem::find(payload, c)
}

/// Builds an `events` batch of the current format; rows keep the order given.
pub fn events_to_batch(events: &[&Event]) -> Result<RecordBatch, StoreError> {
    let n = events.len();
    let mut payload = BinaryBuilder::with_capacity(n, events.iter().map(|e| e.payload.len()).sum());
    let mut splice = UInt32Builder::with_capacity(n);
    for e in events {
        match splice_point(&e.payload, e.command.as_deref()) {
            Some(at) => {
                let cut = e.command.as_ref().map_or(0, String::len);
                payload.append_value([&e.payload[..at], &e.payload[at + cut..]].concat());
                splice.append_value(at as u32);
            }
            None => {
                payload.append_value(&e.payload);
                splice.append_null();
            }
        }
    }
    let columns: Vec<ArrayRef> = vec![
        texts(events.iter().map(|e| &*e.session_id)),
        u64s(events.iter().map(|e| Some(e.seq))),
        timestamps(events.iter().map(|e| Some(e.ts_ns))),
        texts(events.iter().map(|e| &*e.gateway_id)),
        texts(events.iter().map(|e| &*e.connection)),
        texts(events.iter().map(|e| &*e.protocol)),
        texts(events.iter().map(|e| &*e.user)),
        texts(events.iter().map(|e| e.direction.as_str())),
        texts(events.iter().map(|e| e.kind.as_str())),
        opt_texts(events.iter().map(|e| e.command.as_deref())),
        texts(events.iter().map(|e| e.status.as_str())),
        u64s(events.iter().map(|e| e.row_count)),
        u64s(events.iter().map(|e| e.duration_us)),
        text_list(events.iter().map(|e| e.masked.as_slice())),
        Arc::new(payload.finish()),
        Arc::new(splice.finish()),
        opt_texts(events.iter().map(|e| e.text.as_deref())),
        fixed(
            TAG_BYTES as i32,
            events.iter().map(|e| chain_tag(&e.hash)),
            n,
        ),
    ];
    RecordBatch::try_new(events_schema(), columns)
        .map_err(|e| StoreError::segment("events batch", e))
}

/// Builds a sessions checkpoint batch.
pub fn sessions_to_batch(rows: &[SessionSummary]) -> Result<RecordBatch, StoreError> {
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        texts(rows.iter().map(|r| &*r.meta.session_id)),
        texts(rows.iter().map(|r| &*r.meta.gateway_id)),
        texts(rows.iter().map(|r| &*r.meta.connection)),
        texts(rows.iter().map(|r| &*r.meta.protocol)),
        texts(rows.iter().map(|r| &*r.meta.user)),
        text_list(rows.iter().map(|r| r.meta.groups.as_slice())),
        texts(rows.iter().map(|r| r.meta.client_addr.as_str())),
        opt_texts(rows.iter().map(|r| r.meta.database.as_deref())),
        opt_texts(rows.iter().map(|r| r.meta.application_name.as_deref())),
        texts(rows.iter().map(|r| r.meta.upstream.as_str())),
        timestamps(rows.iter().map(|r| Some(r.meta.start_ns))),
        timestamps(rows.iter().map(|r| r.end_ns)),
        u64s(rows.iter().map(|r| Some(r.seal.last_seq))),
        u64s(rows.iter().map(|r| Some(r.counts.events))),
        u64s(rows.iter().map(|r| Some(r.counts.commands))),
        u64s(rows.iter().map(|r| Some(r.counts.errors))),
        u64s(rows.iter().map(|r| Some(r.counts.blocked))),
        u64s(rows.iter().map(|r| Some(r.counts.masked_values))),
        u64s(rows.iter().map(|r| Some(r.counts.bytes_from_client))),
        u64s(rows.iter().map(|r| Some(r.counts.bytes_from_server))),
        opt_texts(rows.iter().map(|r| r.end_reason.as_deref())),
        fixed(32, rows.iter().map(|r| r.seal.head_hash), n),
        fixed(64, rows.iter().map(|r| r.seal.signature), n),
        texts(rows.iter().map(|r| r.seal.key_id.0.as_str())),
        timestamps(rows.iter().map(|r| Some(r.sealed_at_ns))),
        texts(rows.iter().map(|r| r.seal_kind.as_str())),
        opt_texts(rows.iter().map(|r| r.meta.issuer.as_deref())),
        opt_texts(rows.iter().map(|r| r.meta.token_id.as_deref())),
        opt_texts(
            rows.iter()
                .map(|r| r.meta.tls.as_ref().map(|t| t.version.as_str())),
        ),
        opt_texts(
            rows.iter()
                .map(|r| r.meta.tls.as_ref().map(|t| t.cipher.as_str())),
        ),
        opt_texts(
            rows.iter()
                .map(|r| r.meta.tls.as_ref().and_then(|t| t.client_cert.as_deref())),
        ),
    ];
    RecordBatch::try_new(sessions_schema(), columns)
        .map_err(|e| StoreError::segment("sessions batch", e))
}

/// Typed, borrowed access to the columns of an `events` batch of either format, so
/// the verifier can re-encode rows canonically without copying payloads.
pub struct EventColumns<'a> {
    session_id: &'a StringArray,
    seq: &'a UInt64Array,
    ts: &'a TimestampNanosecondArray,
    gateway_id: &'a StringArray,
    connection: &'a StringArray,
    protocol: &'a StringArray,
    user: &'a StringArray,
    direction: &'a StringArray,
    kind: &'a StringArray,
    command: &'a StringArray,
    status: &'a StringArray,
    row_count: &'a UInt64Array,
    duration_us: &'a UInt64Array,
    payload: &'a BinaryArray,
    payload_splice: Option<&'a UInt32Array>,
    text: &'a StringArray,
    tag: Option<&'a FixedSizeBinaryArray>,
    prev_hash: Option<&'a FixedSizeBinaryArray>,
    hash: Option<&'a FixedSizeBinaryArray>,
    masked_items: Vec<Vec<&'a str>>,
    rows: usize,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, StoreError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| StoreError::segment("events batch", format!("column `{name}` is missing")))
}

fn typed<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, StoreError> {
    column(batch, name)?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| {
            StoreError::segment("events batch", format!("column `{name}` has another type"))
        })
}

/// An optional fixed-size binary column: present (with the expected width) or absent.
fn opt_fixed<'a>(
    batch: &'a RecordBatch,
    name: &str,
    width: i32,
) -> Result<Option<&'a FixedSizeBinaryArray>, StoreError> {
    let Some(c) = batch.column_by_name(name) else {
        return Ok(None);
    };
    if c.null_count() == c.len() && !c.is_empty() {
        return Ok(None);
    }
    let a = c
        .as_any()
        .downcast_ref::<FixedSizeBinaryArray>()
        .filter(|a| a.value_length() == width)
        .ok_or_else(|| {
            StoreError::segment(
                "events batch",
                format!("column `{name}` is not {width}-byte binary"),
            )
        })?;
    Ok(Some(a))
}

impl<'a> EventColumns<'a> {
    /// Checks that the batch has the events columns of format 2 (`tag`) or format 1
    /// (`prev_hash`, `hash`), with their types.
    pub fn new(batch: &'a RecordBatch) -> Result<Self, StoreError> {
        let masked = column(batch, "masked")?
            .as_list_opt::<i32>()
            .ok_or_else(|| StoreError::segment("events batch", "column `masked` is not a list"))?;
        let mut masked_items = Vec::with_capacity(batch.num_rows());
        let child = masked.values().as_string_opt::<i32>().ok_or_else(|| {
            StoreError::segment("events batch", "column `masked` is not a list of text")
        })?;
        let offsets = masked.value_offsets();
        for i in 0..batch.num_rows() {
            if masked.is_null(i) {
                masked_items.push(Vec::new());
                continue;
            }
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            masked_items.push((start..end).map(|j| child.value(j)).collect());
        }
        let tag = opt_fixed(batch, "tag", TAG_BYTES as i32)?;
        let prev_hash = opt_fixed(batch, "prev_hash", 32)?;
        let hash = opt_fixed(batch, "hash", 32)?;
        if tag.is_none() && (prev_hash.is_none() || hash.is_none()) && batch.num_rows() > 0 {
            return Err(StoreError::segment(
                "events batch",
                "it has neither a `tag` column (format 2) nor `prev_hash` and `hash` (format 1)",
            ));
        }
        Ok(EventColumns {
            session_id: typed(batch, "session_id")?,
            seq: typed(batch, "seq")?,
            ts: typed(batch, "ts")?,
            gateway_id: typed(batch, "gateway_id")?,
            connection: typed(batch, "connection")?,
            protocol: typed(batch, "protocol")?,
            user: typed(batch, "user")?,
            direction: typed(batch, "direction")?,
            kind: typed(batch, "kind")?,
            command: typed(batch, "command")?,
            status: typed(batch, "status")?,
            row_count: typed(batch, "row_count")?,
            duration_us: typed(batch, "duration_us")?,
            payload: typed(batch, "payload")?,
            payload_splice: match batch.column_by_name("payload_splice") {
                Some(_) => Some(typed(batch, "payload_splice")?),
                None => None,
            },
            text: typed(batch, "text")?,
            tag,
            prev_hash,
            hash,
            masked_items,
            rows: batch.num_rows(),
        })
    }

    /// Rows in this batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn opt_text(a: &'a StringArray, i: usize) -> Option<&'a str> {
        (!a.is_null(i)).then(|| a.value(i))
    }

    fn opt_u64(a: &UInt64Array, i: usize) -> Option<u64> {
        (!a.is_null(i)).then(|| a.value(i))
    }

    /// The session of row `i`.
    pub fn session_id(&self, i: usize) -> &'a str {
        self.session_id.value(i)
    }

    /// The seq of row `i`.
    pub fn seq(&self, i: usize) -> u64 {
        self.seq.value(i)
    }

    /// The stored chain tag of row `i` (format 2 rows).
    pub fn tag(&self, i: usize) -> Option<[u8; TAG_BYTES]> {
        let a = self.tag?;
        if a.is_null(i) {
            return None;
        }
        a.value(i).try_into().ok()
    }

    /// The stored prev_hash of row `i` (format 1 rows).
    pub fn prev_hash(&self, i: usize) -> Option<[u8; 32]> {
        let a = self.prev_hash?;
        (!a.is_null(i))
            .then(|| a.value(i).try_into().ok())
            .flatten()
    }

    /// The stored hash of row `i` (format 1 rows).
    pub fn hash(&self, i: usize) -> Option<[u8; 32]> {
        let a = self.hash?;
        (!a.is_null(i))
            .then(|| a.value(i).try_into().ok())
            .flatten()
    }

    /// Row `i`'s payload, put back together where format 2 cut its command out.
    pub fn payload(&self, i: usize) -> Payload<'a> {
        let stored = self.payload.value(i);
        let splice = self
            .payload_splice
            .filter(|a| !a.is_null(i))
            .map(|a| a.value(i) as usize);
        match (splice, Self::opt_text(self.command, i)) {
            (Some(at), Some(command)) => Payload::Spliced {
                stored,
                at,
                insert: command.as_bytes(),
            },
            // A cut without a command to put back: hash the stored bytes as they are,
            // so the row fails its check instead of passing as something else.
            _ => Payload::Whole(stored),
        }
    }

    /// The hashed columns of row `i`, borrowed from the batch.
    pub fn canonical(&self, i: usize) -> CanonicalFields<'_> {
        CanonicalFields {
            session_id: self.session_id.value(i),
            seq: self.seq.value(i),
            ts_ns: self.ts.value(i),
            gateway_id: self.gateway_id.value(i),
            connection: self.connection.value(i),
            protocol: self.protocol.value(i),
            user: self.user.value(i),
            direction: self.direction.value(i),
            kind: self.kind.value(i),
            command: Self::opt_text(self.command, i),
            status: self.status.value(i),
            row_count: Self::opt_u64(self.row_count, i),
            duration_us: Self::opt_u64(self.duration_us, i),
            masked: &self.masked_items[i],
            payload: self.payload(i),
            text: Self::opt_text(self.text, i),
        }
    }
}

/// The tag format 2 stores for an event: the first bytes of its link hash.
pub fn chain_tag(hash: &[u8; 32]) -> [u8; TAG_BYTES] {
    let mut t = [0u8; TAG_BYTES];
    t.copy_from_slice(&hash[..TAG_BYTES]);
    t
}
