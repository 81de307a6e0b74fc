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
use std::path::Path;

/// Streams the result into `path` and returns the number of rows written.
pub async fn write_parquet(
    path: &Path,
    mut stream: SendableRecordBatchStream,
) -> Result<u64, QueryError> {
    let io = |e: std::io::Error, what: &str| {
        QueryError::Io(std::io::Error::new(
            e.kind(),
            format!("{what} {}: {e}", path.display()),
        ))
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let partial = tempfile_in(&dir).map_err(|e| io(e, "cannot create a file beside"))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let file = partial.1.try_clone().map_err(|e| io(e, "cannot write"))?;
    let mut writer = ArrowWriter::try_new(file, stream.schema(), Some(props))?;
    let mut rows = 0u64;
    let result: Result<(), QueryError> = async {
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            writer.write(&batch)?;
        }
        writer.close()?;
        partial.1.sync_all().map_err(|e| io(e, "cannot write"))?;
        std::fs::rename(&partial.0, path).map_err(|e| io(e, "cannot move the export to"))?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial.0);
    }
    result.map(|()| rows)
}

/// A new, empty file in `dir` with a name no one else uses.
fn tempfile_in(dir: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    for attempt in 0u32..100 {
        let name = format!(
            ".tapline-export-{}-{}-{attempt}.partial",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let p = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}
