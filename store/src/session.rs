//! What the archive knows about a session as a whole.

use crate::seal::Seal;
use std::sync::Arc;

/// Facts fixed when a session starts, handed over by the protocol tap.
#[derive(Debug, Clone)]
pub struct SessionMeta {
    pub session_id: Arc<str>,
    pub gateway_id: Arc<str>,
    pub connection: Arc<str>,
    pub protocol: Arc<str>,
    pub user: Arc<str>,
    pub groups: Vec<String>,
    pub client_addr: String,
    pub database: Option<String>,
    pub application_name: Option<String>,
    pub upstream: String,
    /// The issuer of the OIDC token the caller signed in with (`None` otherwise).
    pub issuer: Option<String>,
    /// The token's id (`jti`, `uti`, or a fingerprint), to match the issuer's
    /// sign-in logs.
    pub token_id: Option<String>,
    pub start_ns: i64,
    /// How the client's connection to the gateway was secured (`None`: clear text),
    /// so an auditor can show which sessions ran encrypted, and with whose
    /// certificate.
    pub tls: Option<SessionTls>,
}

/// The TLS a client connected to the gateway with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTls {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The IANA name of the cipher suite.
    pub cipher: String,
    /// The client certificate, when the client sent one: its subject and the
    /// SHA-256 fingerprint of its DER, such as `CN=alice,O=Example sha256:3f…`.
    pub client_cert: Option<String>,
}

/// The running totals of a session, as stored with each checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionCounts {
    pub events: u64,
    pub commands: u64,
    pub errors: u64,
    pub blocked: u64,
    pub masked_values: u64,
    pub bytes_from_client: u64,
    pub bytes_from_server: u64,
}

/// Whether a checkpoint row is an intermediate seal or the final one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealKind {
    /// The session was live when sealed.
    Checkpoint,
    /// The session had ended.
    End,
}

impl SealKind {
    /// The text stored in the `seal_kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            SealKind::Checkpoint => "checkpoint",
            SealKind::End => "end",
        }
    }
}

/// One row of the sessions checkpoint table.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub meta: SessionMeta,
    pub end_ns: Option<i64>,
    pub counts: SessionCounts,
    pub end_reason: Option<String>,
    pub seal: Seal,
    pub sealed_at_ns: i64,
    pub seal_kind: SealKind,
}
