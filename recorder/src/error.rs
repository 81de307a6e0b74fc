//! The gateway's error type.

use std::net::SocketAddr;

/// What can stop the gateway or one of its sessions.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// The configuration is invalid; the message names the file, key and fix.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),

    /// A listener could not be bound.
    #[error(
        "connection `{connection}` cannot listen on {addr}: {source}; is another process using that port?"
    )]
    Bind {
        connection: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The archive refused something.
    #[error(transparent)]
    Store(#[from] tapline_store::StoreError),
}
