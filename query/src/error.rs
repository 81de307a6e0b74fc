//! The query crate's error type.

/// What can go wrong while querying or verifying the archive.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// DataFusion refused or failed the SQL; its message is kept as is.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),

    /// Arrow could not format the output.
    #[error("cannot format the output: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    /// The archive itself could not be opened or read.
    #[error(transparent)]
    Store(#[from] tapline_store::StoreError),

    /// A command-line value is not usable.
    #[error("{flag}: {problem}")]
    BadArgument { flag: &'static str, problem: String },

    /// The Parquet writer refused a batch or could not finish the file.
    #[error("cannot write Parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),

    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
}
