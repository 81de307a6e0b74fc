//! `tapline query --format parquet --output FILE`: a query's result as a zstd Parquet
//! file, with binary columns kept binary (no hex), for another tool to pick up.
//!
//! The file is written under a temporary name beside the target and renamed into
//! place once complete, so a failed or interrupted export never leaves a file that
//! looks whole.

use crate::error::QueryError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// A file written under a temporary name beside its target and moved into place by
/// [`AtomicOutput::commit`]; dropped before that, the temporary file is removed.
pub struct AtomicOutput {
    path: PathBuf,
    tmp: NamedTempFile,
}

impl AtomicOutput {
    /// Starts writing what will become `path`.
    pub fn create(path: &Path) -> Result<Self, QueryError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".tapline-export-")
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(|e| io_error(e, "cannot create a file beside", path))?;
        Ok(AtomicOutput {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// The file to write into.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Flushes the file to disk and moves it to its name.
    pub fn commit(self) -> Result<(), QueryError> {
        let path = self.path;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| io_error(e, "cannot write", &path))?;
        self.tmp
            .persist(&path)
            .map_err(|e| io_error(e.error, "cannot move the export to", &path))?;
        Ok(())
    }
}

fn io_error(e: std::io::Error, what: &str, path: &Path) -> QueryError {
    QueryError::Io(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    ))
}

/// Streams the result into `path` and returns the number of rows written.
pub async fn write_parquet(
    path: &Path,
    mut stream: SendableRecordBatchStream,
) -> Result<u64, QueryError> {
    let mut out = AtomicOutput::create(path)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let mut writer = ArrowWriter::try_new(out.file(), stream.schema(), Some(props))?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        writer.write(&batch)?;
    }
    writer.close()?;
    out.commit()?;
    Ok(rows)
}
