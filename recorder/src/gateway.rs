//! The gateway: binds every connection's listener, hands sockets to protocol taps, and
//! shuts down without losing a recorded event.
//!
//! Shutdown runs in three steps: stop accepting (new connections are refused by the
//! closed listener), let live sessions finish for `shutdown_grace`, then tell the rest
//! to close; finally the writer rolls its last segment and seals every session.

use crate::approvals::admin_api;
use crate::approvals::registry::Holds;
use crate::config::GatewayConfig;
use crate::error::RecorderError;
use crate::policy::mask::rules::MaskRules;
use crate::protocol::{self, Limits, TapContext};
use crate::session::ServerTls;
use crate::shutdown::{self, Phase};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tapline_store::upload::WriterStats;
use tapline_store::{Archive, ArchiveWriter, GatewayKey, WriterConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What a finished gateway run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub stats: WriterStats,
    /// Sessions still live when the grace period ran out.
    pub sessions_cut: usize,
}

/// One connection's bound listener and its TLS identity.
struct Listener {
    conn: Arc<crate::config::ConnectionConfig>,
    socket: TcpListener,
    tls: Option<Arc<ServerTls>>,
}

/// A gateway whose listeners are bound and ready.
pub struct Gateway {
    config: GatewayConfig,
    listeners: Vec<Listener>,
    /// The admin API's listener and TLS, when approvals are configured.
    admin: Option<(TcpListener, Option<tokio_rustls::TlsAcceptor>)>,
    writer: ArchiveWriter,
}

impl Gateway {
    /// Binds every listener and starts the archive writer. Fails before serving
    /// anything if a port is taken or the archive cannot be written.
    pub async fn bind(
        mut config: GatewayConfig,
        archive: Archive,
        key: GatewayKey,
    ) -> Result<Self, RecorderError> {
        if !config.masking.has_hash_key() {
            // No key configured: hash tokens stay stable for as long as this gateway
            // keeps its signing key.
            let rules = config.masking.rules.clone();
            config.masking = Arc::new(MaskRules::new(
                rules,
                key.derive_key("tapline mask hash key v1"),
            ));
        }
        let mut listeners = Vec::new();
        for (i, c) in config.connections.iter().enumerate() {
            let tls = match &c.tls_files {
                None => None,
                Some(files) => Some(Arc::new(ServerTls::load(files, c.protocol.alpn()).map_err(
                    |problem| {
                        crate::config::ConfigError::at(
                            format!("connections[{i}].tls_cert"),
                            problem,
                            "point tls_cert and tls_key at a PEM certificate chain (leaf first) and its private key",
                        )
                        .in_source("configuration")
                    },
                )?)),
            };
            let listener =
                TcpListener::bind(c.listen)
                    .await
                    .map_err(|source| RecorderError::Bind {
                        connection: c.name.clone(),
                        addr: c.listen,
                        source,
                    })?;
            listeners.push(Listener {
                conn: Arc::new(c.clone()),
                socket: listener,
                tls,
            });
        }
        let admin = match &config.approvals.admin {
            None => None,
            Some(a) => {
                let tls = match &a.tls {
                    None => None,
                    Some((cert, key)) => Some(admin_api::tls_acceptor(cert, key).map_err(|problem| {
                        crate::config::ConfigError {
                            source_name: "configuration".into(),
                            key: "approvals.tls_cert".into(),
                            problem,
                            fix: "point tls_cert and tls_key at a PEM certificate chain and its private key".into(),
                        }
                    })?),
                };
                let listener =
                    TcpListener::bind(a.listen)
                        .await
                        .map_err(|source| RecorderError::Bind {
                            connection: "approvals admin API".into(),
                            addr: a.listen,
                            source,
                        })?;
                Some((listener, tls))
            }
        };
        let writer = ArchiveWriter::start(
            archive,
            key,
            WriterConfig {
                flush_interval: config.flush_interval,
                segment_max_bytes: config.segment_max_bytes,
                spool_max_bytes: config.spool_max_bytes,
                drain_timeout: config.drain_timeout,
                ..WriterConfig::new(config.id.clone(), config.spool.clone())
            },
        )?;
        Ok(Gateway {
            config,
            listeners,
            admin,
            writer,
        })
    }

    /// The bound addresses, by connection name (useful with port 0).
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .filter_map(|l| l.socket.local_addr().ok().map(|a| (l.conn.name.clone(), a)))
            .collect()
    }

    /// Serves until `stop` resolves, then shuts down gracefully.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<RunSummary, RecorderError> {
        let (trigger, shutdown) = shutdown::channel();
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let taps = protocol::Taps::default();
        let limits = Limits {
            max_message_bytes: self.config.max_message_bytes,
            max_recorded_result_bytes: self.config.max_recorded_result_bytes,
        };
        for Listener { conn, .. } in &self.listeners {
            if let crate::config::ClientAuth::Oidc(v) = &conn.client_auth {
                match v.preload().await {
                    Ok(n) => {
                        tracing::info!(connection = %conn.name, jwks = %v.settings().jwks, keys = n, "issuer keys loaded")
                    }
                    Err(e) if matches!(v.settings().jwks, crate::identity::JwksSource::File(_)) => {
                        return Err(crate::config::ConfigError {
                            source_name: "configuration".into(),
                            key: format!("connections.{}.oidc.jwks", conn.name),
                            problem: e,
                            fix: "point jwks at the issuer's key set (a JSON file or an https URL)"
                                .into(),
                        }
                        .into());
                    }
                    // The issuer may be briefly unreachable; keys load on the first token.
                    Err(e) => {
                        tracing::warn!(connection = %conn.name, error = %e, "issuer keys not loaded yet")
                    }
                }
            }
        }
        let holds = Holds::default();
        let admin_task = match (self.admin, &self.config.approvals.admin) {
            (Some((listener, tls)), Some(cfg)) => {
                tracing::info!(listen = %cfg.listen, tls = tls.is_some(), "approvals admin API listening");
                let api = admin_api::AdminApi {
                    holds: holds.clone(),
                    auth: cfg.auth.clone(),
                };
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                let task = tokio::spawn(admin_api::serve(api, listener, tls, async move {
                    let _ = stop_rx.await;
                }));
                Some((stop_tx, task))
            }
            _ => None,
        };
        let reload_task = tls_reload_on_sighup(
            self.listeners
                .iter()
                .filter_map(|l| l.tls.clone().map(|t| (l.conn.name.clone(), t)))
                .collect(),
        );
        let mut accept_tasks = Vec::new();
        for Listener {
            conn,
            socket: listener,
            tls,
        } in self.listeners
        {
            let ctx = Arc::new(TapContext {
                connection: conn.clone(),
                tls,
                tap: taps.for_protocol(conn.protocol),
                writer: self.writer.handle(),
                limits,
                shutdown: shutdown.clone(),
                deny: self.config.deny.clone(),
                masking: self.config.masking.clone(),
                approvals: self.config.approvals.rules.clone(),
                holds: holds.clone(),
            });
            let alive = alive_tx.clone();
            let live = live.clone();
            let mut stop_accepting = shutdown.clone();
            tracing::info!(
                connection = %conn.name,
                listen = %conn.listen,
                upstream = %conn.upstream_label(),
                client_auth = conn.client_auth.describe(),
                tls = conn.tls.as_str(),
                "listening"
            );
            accept_tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((socket, peer)) => {
                                let ctx = ctx.clone();
                                let alive = alive.clone();
                                let live = live.clone();
                                live.fetch_add(1, Ordering::SeqCst);
                                tokio::spawn(async move {
                                    protocol::serve(ctx, socket, peer).await;
                                    live.fetch_sub(1, Ordering::SeqCst);
                                    drop(alive);
                                });
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            }
                        },
                        _ = stop_accepting.reached(Phase::Draining) => break,
                    }
                }
                // Dropping the listener here refuses further connections.
            }));
        }
        drop(alive_tx);

        stop.await;
        tracing::info!(grace = ?self.config.shutdown_grace, "shutting down: no new connections; live sessions may finish");
        trigger.set(Phase::Draining);
        for t in accept_tasks {
            let _ = t.await;
        }
        let mut sessions_cut = 0;
        if tokio::time::timeout(self.config.shutdown_grace, alive_rx.recv())
            .await
            .is_err()
        {
            sessions_cut = live.load(Ordering::SeqCst);
            tracing::info!("grace period over: closing the remaining sessions");
            // Held statements are refused, so their sessions can end.
            holds.cancel_all();
            trigger.set(Phase::Terminating);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), alive_rx.recv()).await;
        }
        if let Some(task) = reload_task {
            task.abort();
        }
        if let Some((stop_tx, task)) = admin_task {
            let _ = stop_tx.send(());
            let _ = task.await;
        }
        let stats = self.writer.shutdown().await?;
        tracing::info!(
            events = stats.events_written,
            segments = stats.segments_written,
            seals = stats.seals_written,
            "archive flushed and sealed"
        );
        Ok(RunSummary {
            stats,
            sessions_cut,
        })
    }
}

/// Reloads every listener's certificate and key on SIGHUP, so a renewed certificate
/// is served without a restart; live sessions keep the TLS they began with. A reload
/// that fails keeps the identity in use and says why in the log.
fn tls_reload_on_sighup(
    identities: Vec<(String, Arc<ServerTls>)>,
) -> Option<tokio::task::JoinHandle<()>> {
    if identities.is_empty() {
        return None;
    }
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; TLS certificates reload only on restart");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            for (connection, tls) in &identities {
                match tls.reload() {
                    Ok(()) => {
                        tracing::info!(%connection, cert = %tls.files().cert.display(), "TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(%connection, error = %e, "TLS certificate reload failed; still serving the previous one")
                    }
                }
            }
        }
    }))
}
