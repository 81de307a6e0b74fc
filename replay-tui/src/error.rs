//! What can stop the viewer, said before any screen is drawn where possible.

/// Errors of the replay viewer.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Query(#[from] tapline_query::QueryError),
    #[error(transparent)]
    Store(#[from] tapline_store::StoreError),
    #[error("query failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(
        "no session `{0}` in this archive; list them with `tapline sessions` or open `tapline replay` without an id"
    )]
    NoSuchSession(String),
    #[error(
        "tapline replay draws on a terminal, and standard output is not one; read the archive from a script with `tapline sessions` or `tapline query`"
    )]
    NotATerminal,
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}
