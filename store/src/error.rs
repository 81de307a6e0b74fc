//! One error type for the archive, so callers can tell a bad key file from an
//! unreachable store without parsing strings.

use std::path::PathBuf;

/// Everything that can go wrong while writing, reading or verifying the archive.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The archive location could not be understood.
    #[error("archive location `{location}` is not usable: {reason}")]
    BadLocation { location: String, reason: String },

    /// The object store refused or failed an operation.
    #[error("archive {operation} failed at `{path}`: {source}")]
    ObjectStore {
        operation: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },

    /// A key file could not be read or parsed.
    #[error("key file {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },

    /// Arrow or Parquet could not encode or decode a segment.
    #[error("segment {context}: {reason}")]
    Segment { context: String, reason: String },

    /// Local file-system trouble outside the object store.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The writer task has stopped, so nothing more can be recorded.
    #[error("the archive writer has stopped; the event could not be recorded")]
    WriterStopped,
}

impl StoreError {
    pub(crate) fn segment(context: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        StoreError::Segment {
            context: context.into(),
            reason: reason.to_string(),
        }
    }
}
