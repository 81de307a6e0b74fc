//! Protocol taps. The gateway hands each accepted socket to the tap of its
//! connection's protocol; everything protocol-specific lives below this folder, and
//! what every protocol shares (identity gate, lifecycle, holds, policy selection,
//! streams) lives in [`crate::session`].

pub mod postgres;

use crate::config::{ConnectionConfig, Protocol};
use crate::session::PeerStream;
use crate::shutdown::Shutdown;
use futures::future::BoxFuture;
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

/// One protocol's tap: serves a connection's clients to the end. A tap keeps what
/// its sessions share across every listener of its protocol (PostgreSQL's cancel
/// keys, say); the gateway makes one per protocol.
pub trait Tap: Send + Sync {
    /// Serves one accepted client to the end of its session.
    fn serve(
        self: Arc<Self>,
        ctx: Arc<TapContext>,
        client: PeerStream,
        peer: SocketAddr,
    ) -> BoxFuture<'static, ()>;
}

/// The gateway's taps, one per protocol, made on first use.
#[derive(Default)]
pub struct Taps {
    postgres: std::sync::OnceLock<Arc<postgres::PostgresTap>>,
}

impl Taps {
    /// The tap that serves `protocol`.
    pub fn for_protocol(&self, protocol: Protocol) -> Arc<dyn Tap> {
        match protocol {
            Protocol::Postgres => self.postgres.get_or_init(Default::default).clone(),
        }
    }
}

/// What a tap needs to serve one connection.
pub struct TapContext {
    pub connection: Arc<ConnectionConfig>,
    /// The tap of the connection's protocol.
    pub tap: Arc<dyn Tap>,
    /// The listener's TLS identity, when its clients may speak TLS.
    pub tls: Option<Arc<crate::session::ServerTls>>,
    pub writer: WriterHandle,
    pub limits: Limits,
    pub shutdown: Shutdown,
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
    let tap = ctx.tap.clone();
    tap.serve(ctx, PeerStream::from(socket), peer).await
}
