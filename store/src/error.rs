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

    /// An object is already at a name this gateway writes, with other bytes: nothing
    /// is overwritten, and the upload stops so that an operator can look.
    #[error("refusing to overwrite archive object `{path}`: {reason}")]
    Conflict { path: String, reason: String },

    /// A maintenance step (retention, compaction) refused what it was asked to do.
    #[error("{what}: {reason}")]
    Maintenance { what: String, reason: String },

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

    /// A spool file is damaged somewhere other than its tail.
    #[error("spool file {} is damaged at byte {offset}: {reason}. Nothing was dropped; move the file aside (keep it for investigation) and restart the gateway", path.display())]
    SpoolDamaged {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// Another gateway process holds the spool folder.
    #[error("spool folder {} is in use by another gateway ({holder}); give each gateway its own --spool folder", path.display())]
    SpoolInUse { path: PathBuf, holder: String },

    /// The spool is full because the archive has not confirmed uploads.
    #[error("the spool is full ({bytes} of {max_bytes} bytes waiting) because the archive is not confirming uploads{}; no new sessions until it drains", last_error.as_ref().map(|e| format!(" (last upload error: {e})")).unwrap_or_default())]
    SpoolFull {
        bytes: u64,
        max_bytes: u64,
        last_error: Option<String>,
    },

    /// The spool could not be written (full disk, I/O error).
    #[error(
        "the spool cannot be written (see the gateway log); recording has stopped until the gateway is restarted"
    )]
    SpoolFailed,

    /// `archive init` could not create the container.
    #[error("cannot initialise archive {location}: {reason}")]
    ArchiveInit { location: String, reason: String },

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
