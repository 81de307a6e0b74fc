//! One segment as the verifier reads it: the object's bytes (so their blake3 can be held
//! against the ledger), and the rows they decode to.

use super::session_check::StoredSeal;
use crate::error::StoreError;
use crate::seal::{KeyId, Seal};
use crate::segment::format_version;
use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The rows of a segment read from its bytes.
pub struct DecodedSegment {
    pub format: u32,
    pub batches: Vec<RecordBatch>,
}

/// Rows per batch when decoding: big enough to amortise, small enough that a reorder
/// search stays inside one batch for most sessions.
const BATCH_ROWS: usize = 16 * 1024;

/// Decodes a segment's bytes.
pub fn decode(bytes: Bytes) -> Result<DecodedSegment, StoreError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| StoreError::segment("not a readable Parquet file", e))?;
    let format = format_version(builder.metadata());
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| StoreError::segment("parquet reader", e))?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|e| StoreError::segment("parquet read", e))?);
    }
    Ok(DecodedSegment { format, batches })
}

/// The seals of a `sessions` batch, with each row's session id.
pub fn seals_of(batch: &RecordBatch) -> Result<Vec<StoredSeal>, StoreError> {
    let col = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| {
            StoreError::segment("sessions batch", format!("column `{name}` is missing"))
        })
    };
    let bad = |name: &str| {
        StoreError::segment(
            "sessions batch",
            format!("column `{name}` has another type"),
        )
    };
    let id = col("session_id")?
        .as_string_opt::<i32>()
        .ok_or_else(|| bad("session_id"))?;
    let last = col("last_seq")?
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| bad("last_seq"))?;
    let head = col("head_hash")?
        .as_fixed_size_binary_opt()
        .ok_or_else(|| bad("head_hash"))?;
    let sig = col("seal_signature")?
        .as_fixed_size_binary_opt()
        .ok_or_else(|| bad("seal_signature"))?;
    let key = col("signing_key_id")?
        .as_string_opt::<i32>()
        .ok_or_else(|| bad("signing_key_id"))?;
    let kind = col("seal_kind")?
        .as_string_opt::<i32>()
        .ok_or_else(|| bad("seal_kind"))?;
    let reason = col("end_reason")?
        .as_string_opt::<i32>()
        .ok_or_else(|| bad("end_reason"))?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let head_hash: [u8; 32] = head.value(i).try_into().unwrap_or([0; 32]);
        let signature: [u8; 64] = sig.value(i).try_into().unwrap_or([0; 64]);
        out.push(StoredSeal {
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
    Ok(out)
}
