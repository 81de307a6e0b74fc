//! SQL over the tapline archive.
//!
//! The archive's Parquet folders are registered with DataFusion as tables (`events`,
//! `session_checkpoints`) and views (`sessions`, `commands`); everything users see,
//! from `tapline sessions` to `tapline verify`, is a query over those.

pub mod context;
pub mod error;
pub mod format;
pub mod sessions;
pub mod shell;
pub mod verify;

pub use context::open_context;
pub use error::QueryError;
pub use format::OutputFormat;
