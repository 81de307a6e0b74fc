//! Protocol taps. The gateway hands each accepted socket to the tap of its
//! connection's protocol; everything protocol-specific lives below this folder.

pub mod postgres;

use crate::config::{ConnectionConfig, Protocol};
use crate::shutdown::Shutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use tapline_store::WriterHandle;

/// Limits every tap enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest single message accepted from a client.
    pub max_message_bytes: usize,
    /// The most bytes of one result recorded; the client still receives everything.
    pub max_recorded_result_bytes: usize,
}

/// What a tap needs to serve one connection.
pub struct TapContext {
    pub connection: Arc<ConnectionConfig>,
    pub writer: WriterHandle,
    pub limits: Limits,
    pub shutdown: Shutdown,
    pub postgres: Arc<postgres::Shared>,
    /// The gateway's deny rules; each session picks those that apply to it.
    pub deny: Arc<crate::policy::guard::DenyRules>,
    /// The gateway's masking rules; each session picks those that apply to it.
    pub masking: Arc<crate::policy::mask::rules::MaskRules>,
    /// The gateway's approval rules; each session picks those that apply to it.
    pub approvals: Arc<crate::approvals::rules::ApprovalRules>,
    /// The pending holds, shared with the admin API.
    pub holds: crate::approvals::registry::Holds,
}

/// Serves one accepted socket with the tap of the connection's protocol.
pub async fn serve(ctx: Arc<TapContext>, socket: tokio::net::TcpStream, peer: SocketAddr) {
    match ctx.connection.protocol {
        Protocol::Postgres => postgres::serve(ctx, socket, peer).await,
    }
}
