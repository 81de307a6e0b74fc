//! The tapline gateway.
//!
//! It listens for callers, authenticates them, logs in upstream with a credential the
//! caller never sees, forwards every message and records the session through the
//! archive writer of `tapline-store`. Protocol taps live under [`protocol`]; nothing
//! outside that folder knows a wire format.

pub mod approvals;
pub mod config;
pub mod error;
pub mod gateway;
pub mod identity;
pub mod policy;
pub mod protocol;
pub mod session;
pub mod shutdown;

pub use config::GatewayConfig;
pub use error::RecorderError;
pub use gateway::Gateway;
/// The text forms other tools read back, owned by the archive (see `tapline_store`).
pub use tapline_store::text_format;
