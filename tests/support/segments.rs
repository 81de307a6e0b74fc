//! Reading and rewriting an archive's Parquet segments the way an attacker with write
//! access to the folder would.

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use tapline_store::segment::Table;

/// Every `.parquet` file under `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(parquet_files(&p));
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// A segment's rows as one batch.
pub fn read(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// Writes rows back as a segment of `table`, encoded as a gateway would.
pub fn write(path: &Path, batch: &RecordBatch, table: Table) {
    std::fs::write(path, tapline_store::segment::encode(batch, table).unwrap()).unwrap();
}

/// The rows at `rows`, in that order.
pub fn reorder(batch: &RecordBatch, rows: &[u32]) -> RecordBatch {
    let idx = UInt32Array::from(rows.to_vec());
    let cols: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &idx, None).unwrap())
        .collect();
    RecordBatch::try_new(batch.schema(), cols).unwrap()
}

/// The batch with one column replaced.
pub fn replace(batch: &RecordBatch, name: &str, column: ArrayRef) -> RecordBatch {
    let i = batch.schema().index_of(name).unwrap();
    let mut cols = batch.columns().to_vec();
    cols[i] = column;
    RecordBatch::try_new(batch.schema(), cols).unwrap()
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Re-signs every checkpoint seal of a `sessions` segment with `forger`'s key, keeping
/// the key id the gateway's: what someone who rewrote a session would have to do.
pub fn resign_seals(path: &Path, forger: &tapline_store::GatewayKey) {
    use datafusion::arrow::array::{AsArray, FixedSizeBinaryArray};
    use datafusion::arrow::datatypes::UInt64Type;
    let b = read(path);
    let ids = b.column_by_name("session_id").unwrap().as_string::<i32>();
    let last = b
        .column_by_name("last_seq")
        .unwrap()
        .as_primitive::<UInt64Type>();
    let heads = b
        .column_by_name("head_hash")
        .unwrap()
        .as_fixed_size_binary();
    let sigs: Vec<[u8; 64]> = (0..b.num_rows())
        .map(|i| {
            let head: [u8; 32] = heads.value(i).try_into().unwrap();
            forger.seal(ids.value(i), last.value(i), head).signature
        })
        .collect();
    let col = FixedSizeBinaryArray::try_from_iter(sigs.iter()).unwrap();
    write(
        path,
        &replace(&b, "seal_signature", std::sync::Arc::new(col)),
        Table::Sessions,
    );
}
