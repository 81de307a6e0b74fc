//! Every value of every Parquet file under an archive folder, decompressed and
//! decoded, as bytes: what a search of "the whole decompressed archive" searches.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            parquet_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
}

/// All values of all files, each followed by a newline; panics if there is no file.
pub fn decompressed_archive(dir: &Path) -> Vec<u8> {
    let mut files = Vec::new();
    parquet_files(dir, &mut files);
    assert!(!files.is_empty(), "no Parquet file under {}", dir.display());
    let mut out = Vec::new();
    for f in files {
        let file = std::fs::File::open(&f).expect("open a Parquet file");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("a Parquet file")
            .build()
            .expect("a Parquet reader");
        for batch in reader {
            let batch = batch.expect("a record batch");
            for col in batch.columns() {
                for row in 0..col.len() {
                    if col.is_null(row) {
                        continue;
                    }
                    match col.data_type() {
                        DataType::Binary => {
                            out.extend_from_slice(col.as_binary::<i32>().value(row))
                        }
                        DataType::LargeBinary => {
                            out.extend_from_slice(col.as_binary::<i64>().value(row))
                        }
                        _ => out.extend_from_slice(
                            array_value_to_string(col, row)
                                .expect("a printable value")
                                .as_bytes(),
                        ),
                    }
                    out.push(b'\n');
                }
            }
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
