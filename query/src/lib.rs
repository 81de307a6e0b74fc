//! SQL over the tapline archive.
//!
//! The archive's Parquet folders are registered with DataFusion as tables
//! (`event_segments`, `session_checkpoints`) and views (`events`, `sessions`,
//! `commands`); everything users see, from `tapline sessions` to the replay viewer's
//! integrity badge, is a query over those.

pub mod context;
pub mod error;
pub mod export;
pub mod format;
pub mod functions;
pub mod session_link;
pub mod sessions;
pub mod shell;
pub mod verify;

pub use context::open_context;
pub use error::QueryError;
pub use format::OutputFormat;
