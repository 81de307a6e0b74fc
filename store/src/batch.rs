//! Conversions between in-memory rows and Arrow record batches of the archive schemas.

use crate::canonical::CanonicalFields;
use crate::error::StoreError;
use crate::event::Event;
use crate::schema::{events_schema, sessions_schema};
use crate::session::SessionSummary;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, FixedSizeBinaryBuilder, ListBuilder, RecordBatch,
    StringBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{TimestampNanosecondType, UInt64Type};
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

/// Builds an `events` batch; rows keep the order given.
pub fn events_to_batch(events: &[Event]) -> Result<RecordBatch, StoreError> {
    let n = events.len();
    let mut payload = BinaryBuilder::with_capacity(n, events.iter().map(|e| e.payload.len()).sum());
    for e in events {
        payload.append_value(&e.payload);
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
        opt_texts(events.iter().map(|e| e.text.as_deref())),
        fixed(32, events.iter().map(|e| e.prev_hash), n),
        fixed(32, events.iter().map(|e| e.hash), n),
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
    ];
    RecordBatch::try_new(sessions_schema(), columns)
        .map_err(|e| StoreError::segment("sessions batch", e))
}

/// Typed, borrowed access to the columns of an `events` batch, so the verifier can
/// re-encode rows canonically without copying payloads.
pub struct EventColumns<'a> {
    batch: &'a RecordBatch,
    masked_items: Vec<Vec<&'a str>>,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, StoreError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| StoreError::segment("events batch", format!("column `{name}` is missing")))
}

impl<'a> EventColumns<'a> {
    /// Checks that the batch has the events columns; the schema types are trusted.
    pub fn new(batch: &'a RecordBatch) -> Result<Self, StoreError> {
        for f in events_schema().fields() {
            column(batch, f.name())?;
        }
        let masked = column(batch, "masked")?.as_list::<i32>();
        let mut masked_items = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            if masked.is_null(i) {
                masked_items.push(Vec::new());
                continue;
            }
            // Borrow from the batch's own buffers: the list's child is part of `batch`.
            let child = masked.values().as_string::<i32>();
            let offsets = masked.value_offsets();
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            masked_items.push((start..end).map(|j| child.value(j)).collect());
        }
        Ok(EventColumns {
            batch,
            masked_items,
        })
    }

    /// Rows in this batch.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.batch.num_rows() == 0
    }

    fn text(&self, name: &str, i: usize) -> &'a str {
        self.batch
            .column_by_name(name)
            .expect("checked")
            .as_string::<i32>()
            .value(i)
    }

    fn opt_text(&self, name: &str, i: usize) -> Option<&'a str> {
        let a = self
            .batch
            .column_by_name(name)
            .expect("checked")
            .as_string::<i32>();
        (!a.is_null(i)).then(|| a.value(i))
    }

    fn opt_u64(&self, name: &str, i: usize) -> Option<u64> {
        let a = self
            .batch
            .column_by_name(name)
            .expect("checked")
            .as_primitive::<UInt64Type>();
        (!a.is_null(i)).then(|| a.value(i))
    }

    fn hash32(&self, name: &str, i: usize) -> [u8; 32] {
        let a = self
            .batch
            .column_by_name(name)
            .expect("checked")
            .as_fixed_size_binary();
        let mut out = [0; 32];
        if a.value_length() == 32 {
            out.copy_from_slice(a.value(i));
        }
        out
    }

    /// The session of row `i`.
    pub fn session_id(&self, i: usize) -> &'a str {
        self.text("session_id", i)
    }

    /// The seq of row `i`.
    pub fn seq(&self, i: usize) -> u64 {
        self.opt_u64("seq", i).unwrap_or(0)
    }

    /// The stored prev_hash of row `i`.
    pub fn prev_hash(&self, i: usize) -> [u8; 32] {
        self.hash32("prev_hash", i)
    }

    /// The stored hash of row `i`.
    pub fn hash(&self, i: usize) -> [u8; 32] {
        self.hash32("hash", i)
    }

    /// The hashed columns of row `i`, borrowed from the batch.
    pub fn canonical(&self, i: usize) -> CanonicalFields<'_> {
        let ts = self.batch.column_by_name("ts").expect("checked");
        let ts_ns = ts.as_primitive::<TimestampNanosecondType>().value(i);
        let payload = self
            .batch
            .column_by_name("payload")
            .expect("checked")
            .as_binary::<i32>()
            .value(i);
        CanonicalFields {
            session_id: self.session_id(i),
            seq: self.seq(i),
            ts_ns,
            gateway_id: self.text("gateway_id", i),
            connection: self.text("connection", i),
            protocol: self.text("protocol", i),
            user: self.text("user", i),
            direction: self.text("direction", i),
            kind: self.text("kind", i),
            command: self.opt_text("command", i),
            status: self.text("status", i),
            row_count: self.opt_u64("row_count", i),
            duration_us: self.opt_u64("duration_us", i),
            masked: &self.masked_items[i],
            payload,
            text: self.opt_text("text", i),
        }
    }
}
