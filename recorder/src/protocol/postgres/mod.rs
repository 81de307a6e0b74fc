//! The PostgreSQL v3 tap.
//!
//! A session goes through three stages: the startup packet (SSL and GSS requests are
//! declined, cancel requests are mapped to the upstream), client authentication
//! against the gateway, and the login upstream with the credential the gateway holds.
//! Then two pumps run side by side, one per direction, recording as they forward.

pub mod auth;
pub mod backend;
pub mod backend_pump;
pub mod cancel;
pub mod channel_binding;
pub mod client_auth;
pub mod client_encodings;
pub mod config;
pub mod copy_rows;
pub mod described;
pub mod encoding;
pub mod error_response;
pub mod fast_path;
pub mod frame;
pub mod frontend;
pub mod frontend_pump;
pub mod hold;
pub mod idle_query;
pub mod io;
pub mod masking;
pub mod parameter_status;
pub mod pipeline;
#[cfg(test)]
pub mod pump_harness;
#[cfg(test)]
mod pump_tests;
pub mod refusal;
pub mod row;
pub mod scram;
pub mod session_state;
pub mod startup;
pub mod upstream;
pub mod wire;

use super::{Tap, TapContext};
use crate::session::lifecycle::{self, Opening};
use crate::session::{
    Admission, EndReason, PeerStream, PeerWriter, SessionRules, Side, TlsMode, gate,
};
use crate::shutdown::Phase;
use auth::{AuthRequest, backend_key_data, ready_for_query};
use backend_pump::BackendEnd;
use bytes::BytesMut;
use client_auth::AuthOutcome;
use error_response::gateway_error;
use frontend_pump::FrontendEnd;
use futures::future::BoxFuture;
use io::{TapError, read_startup};
use session_state::{SessionPolicy, SessionState};
use startup::{StartupPacket, param};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// The PostgreSQL tap, and what its sessions share across every listener.
#[derive(Debug, Default)]
pub struct PostgresTap {
    pub cancel_keys: cancel::CancelRegistry,
}

impl Tap for PostgresTap {
    fn serve(
        self: Arc<Self>,
        ctx: Arc<TapContext>,
        client: PeerStream,
        peer: SocketAddr,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move { serve(&self, ctx, client, peer).await })
    }
}

/// How long a client may take to send its startup packet and authenticate.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// After the client leaves, how long the upstream gets to close its side.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Serves one client connection to the end.
async fn serve(tap: &PostgresTap, ctx: Arc<TapContext>, mut client: PeerStream, peer: SocketAddr) {
    if let Some(socket) = client.tcp() {
        let _ = socket.set_nodelay(true);
    }
    let mut buf = BytesMut::with_capacity(8192);
    let startup =
        tokio::time::timeout(STARTUP_TIMEOUT, startup(tap, &ctx, &mut client, &mut buf)).await;
    let Started {
        packet,
        params,
        served_cert,
    } = match startup {
        Ok(Ok(Some(p))) => p,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::warn!(connection = %ctx.connection.name, %peer, error = %e, "startup failed");
            let _ = client
                .write_all(&gateway_error(
                    "FATAL",
                    "08P01",
                    format!("tapline: {e}"),
                    None,
                ))
                .await;
            return;
        }
        Err(_) => {
            tracing::warn!(connection = %ctx.connection.name, %peer, "client sent no startup packet in time");
            return;
        }
    };
    let user = param(&params, "user").unwrap_or_default().to_string();
    if user.is_empty() {
        let _ = client
            .write_all(&gateway_error(
                "FATAL",
                "28000",
                "no PostgreSQL user name specified in the startup packet",
                None,
            ))
            .await;
        return;
    }
    let conn = &ctx.connection;
    let Some(pg) = conn.postgres() else {
        tracing::error!(connection = %conn.name, "the PostgreSQL tap was given a connection of another protocol");
        return;
    };
    let chosen = upstream::chosen_database(&conn.name, pg, param(&params, "database"));
    let database = chosen
        .clone()
        .unwrap_or_else(|_| param(&params, "database").map(str::to_string));
    // Channel binding for SCRAM-SHA-256-PLUS: the hash of the certificate this
    // client's handshake was served, whatever a reload has put in place since.
    let binding = served_cert
        .as_ref()
        .and_then(|cert| channel_binding::server_end_point(cert));
    let client_cert = client
        .tls()
        .and_then(|t| t.peer_certificates.into_iter().next());
    // Client authentication comes first: the session is recorded under the identity
    // the client proves, not the user name it typed.
    let outcome = tokio::time::timeout(
        STARTUP_TIMEOUT,
        client_auth::authenticate(
            &conn.client_auth,
            &mut client,
            &mut buf,
            &user,
            client_auth::Channel {
                binding: binding.as_deref(),
                client_cert: client_cert.as_ref().map(|c| c.as_ref()),
            },
        ),
    )
    .await;
    let admission = match outcome {
        Ok(Ok(AuthOutcome::Accepted { method, identity })) => {
            let admission = gate::admit(method, identity, &conn.allowed_groups);
            if let Admission::Refused { why, .. } = &admission {
                let _ = client_auth::refuse(&mut client, why).await;
            }
            admission
        }
        Ok(Ok(AuthOutcome::Refused(why))) => Admission::refused(&user, why, EndReason::AuthFailed),
        Ok(Err(e)) => Admission::refused(
            &user,
            format!("client authentication failed: {e}"),
            EndReason::AuthFailed,
        ),
        Err(_) => Admission::refused(
            &user,
            "the client did not authenticate in time".to_string(),
            EndReason::AuthTimeout,
        ),
    };
    let opening = Opening {
        peer,
        login_name: user.clone(),
        database,
        application_name: param(&params, "application_name").map(str::to_string),
        first_bytes: packet,
        tls: client.tls(),
    };
    let recording = match lifecycle::open(&ctx, opening, admission) {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(connection = %conn.name, %user, %peer, error = %e, "cannot record; refusing the session");
            let _ = client
                .write_all(&gateway_error(
                    "FATAL",
                    "53100",
                    format!("tapline cannot record this session: {e}"),
                    Some(
                        "nothing is forwarded unrecorded; try again once the archive has caught up"
                            .into(),
                    ),
                ))
                .await;
            return;
        }
    };
    let who = recording.who();
    let identity = recording.identity;
    let recorder = recording.recorder;
    let session_id = recording.meta.session_id.clone();
    if let Err(why) = chosen {
        // As PostgreSQL answers a database it does not have: FATAL 3D000.
        let msg = gateway_error("FATAL", "3D000", why.clone(), None);
        let _ = client.write_all(&msg).await;
        lifecycle::refuse_before_start(
            recorder,
            msg,
            format!("3D000 FATAL: {why}"),
            &EndReason::DatabaseRefused,
        );
        return;
    }

    // Upstream login.
    let up = match upstream::connect(&conn.name, pg, &params).await {
        Ok(up) => up,
        Err(e) => {
            let (code, message) = match &e {
                upstream::UpstreamError::Refused(f) => (
                    f.code.clone(),
                    format!(
                        "tapline connection `{}`: the upstream refused the gateway's login: {}",
                        conn.name, f.message
                    ),
                ),
                upstream::UpstreamError::Unreachable { .. } => (
                    "08006".to_string(),
                    format!(
                        "tapline connection `{}` cannot reach its upstream: {e}",
                        conn.name
                    ),
                ),
                _ => (
                    "08006".to_string(),
                    format!("tapline connection `{}`: {e}", conn.name),
                ),
            };
            tracing::warn!(error = %e, "upstream login failed");
            let msg = gateway_error(
                "FATAL",
                &code,
                message.clone(),
                Some("ask the gateway's operator to check the upstream".into()),
            );
            let _ = client.write_all(&msg).await;
            lifecycle::refuse_before_start(
                recorder,
                msg,
                format!("{code} FATAL: {message}"),
                &EndReason::UpstreamUnavailable,
            );
            return;
        }
    };

    // Masking: the rules for this connection and caller, and (for column rules) where
    // the columns they name live, asked on the idle upstream before the client's
    // first command.
    let mut up = up;
    let encoding = parameter_status::client_encoding_in(&up.greeting)
        .and_then(|name| encoding::PgEncoding::by_name(&name))
        .unwrap_or(encoding::UTF8);
    let rules = SessionRules::pick(&ctx, &identity);
    // Fast-path calls: refused under any rule unless allowed by name, resolved now.
    let mut fast_path = fast_path::FastPath {
        guarded: rules.guarded(),
        ..Default::default()
    };
    let client_encodings = client_encodings::ClientEncodings {
        allowed: ctx.deny.client_encodings.clone(),
        guarded: fast_path.guarded,
    };
    if let Some(why) = client_encodings.refuses(encoding.name) {
        tracing::info!(session = %session_id, encoding = encoding.name, "client encoding refused");
        let _ = client
            .write_all(&gateway_error("FATAL", "22023", why, None))
            .await;
        lifecycle::end(recorder, &EndReason::ClientEncodingRefused);
        return;
    }
    if fast_path.guarded && !ctx.deny.allow_fast_path.is_empty() {
        match fast_path::lookup(
            &mut up.stream,
            &mut up.leftover,
            &ctx.deny.allow_fast_path,
            ctx.limits.max_message_bytes,
            encoding,
        )
        .await
        {
            Ok(allowed) => fast_path.allowed = allowed,
            Err(e) => {
                tracing::warn!(session = %session_id, error = %e, "allow_fast_path lookup failed; every fast-path call is refused in this session")
            }
        }
    }
    let SessionRules {
        guard,
        approvals,
        masking: picked,
    } = rules;
    let masking = {
        let wants_catalog = [&picked.client, &picked.record]
            .into_iter()
            .flatten()
            .any(|m| m.has_column_rules());
        let catalog = if wants_catalog {
            let patterns: Vec<_> = [&picked.client, &picked.record]
                .into_iter()
                .flatten()
                .flat_map(|m| m.column_patterns().cloned().collect::<Vec<_>>())
                .collect();
            match masking::catalog::load(
                &mut up.stream,
                &mut up.leftover,
                patterns.iter(),
                ctx.limits.max_message_bytes,
                encoding,
            )
            .await
            {
                Ok(c) => c,
                Err(e) => {
                    // Masking then errs on the safe side: qualified rules match any
                    // column of their name.
                    tracing::warn!(session = %session_id, error = %e, "column lookup for masking failed; masking by column name alone");
                    masking::catalog::Catalog::default()
                }
            }
        } else {
            masking::catalog::Catalog::default()
        };
        masking::PgMasking::new(picked, catalog)
    };

    // Greet the client as if it had logged in to the upstream itself, but with the
    // gateway's cancel key.
    let key = up.key.map(|(pid, secret)| {
        tap.cancel_keys.register(cancel::UpstreamKey {
            host: pg.upstream.host.clone(),
            port: pg.upstream.port,
            tls: pg.tls.clone(),
            pid,
            secret,
            session_id: session_id.to_string(),
        })
    });
    let mut greeting = BytesMut::new();
    greeting.extend_from_slice(&AuthRequest::Ok.to_message());
    for m in &up.greeting {
        greeting.extend_from_slice(m);
    }
    if let Some((pid, secret)) = key {
        greeting.extend_from_slice(&backend_key_data(pid, secret));
    }
    greeting.extend_from_slice(&ready_for_query(b'I'));
    if let Err(e) = client.write_all(&greeting).await {
        tracing::info!(error = %e, "client left during login");
        if let Some(k) = key {
            tap.cancel_keys.remove(k);
        }
        lifecycle::end(recorder, &EndReason::ClientClosed);
        return;
    }

    let (client_rd, client_wr) = client.into_split();
    let (server_rd, server_wr) = up.stream.into_split();
    let policy = SessionPolicy {
        guard,
        masking,
        approvals,
        holds: ctx.holds.clone(),
        fast_path,
        client_encodings,
    };
    let state = Arc::new(SessionState::new(
        recorder,
        Box::new(client_wr),
        ctx.limits,
        who,
        policy,
    ));
    state.encoding.set_client(encoding.name);
    for (name, value) in parameter_status::all_in(&up.greeting) {
        state.sql_settings.report(&name, &value);
    }
    let front = tokio::spawn(frontend_pump::run(
        state.clone(),
        client_rd,
        server_wr,
        ctx.shutdown.clone(),
    ));
    let back = tokio::spawn(backend_pump::run(
        state.clone(),
        server_rd,
        up.leftover,
        ctx.shutdown.clone(),
    ));
    let reason = pump(&state, front, back).await;
    if let Some(k) = key {
        tap.cancel_keys.remove(k);
    }
    if reason.is_abnormal() {
        tracing::warn!(session = %session_id, %reason, "session closed");
    } else {
        tracing::info!(session = %session_id, %reason, "session closed");
    }
    let _ = state.client_writer.lock().await.shutdown().await;
    state.end(&reason);
}

/// What the startup stage hands on: the StartupMessage, its parameters, and the
/// certificate the client's TLS handshake was served (none in clear text).
struct Started {
    packet: bytes::Bytes,
    params: Vec<(String, String)>,
    served_cert: Option<CertificateDer<'static>>,
}

/// Reads startup packets until the real StartupMessage, answering SSL/GSS requests
/// and serving cancel requests along the way.
///
/// TLS starts in one of two ways: PostgreSQL's SSLRequest answered `S`, or (libpq 17,
/// `sslnegotiation=direct`) a TLS handshake as the very first bytes, which must agree
/// on the ALPN protocol `postgresql`. A listener that requires TLS refuses a
/// StartupMessage sent in clear, before the client sends any secret.
async fn startup(
    tap: &PostgresTap,
    ctx: &TapContext,
    client: &mut PeerStream,
    buf: &mut BytesMut,
) -> Result<Option<Started>, TapError> {
    let mut served_cert = None;
    let tls = ctx
        .tls
        .as_ref()
        .filter(|_| ctx.connection.tls != TlsMode::Off);
    if let (Some(tls), Some(socket)) = (tls, client.tcp()) {
        let mut first = [0u8; 1];
        if socket.peek(&mut first).await? == 1 && first[0] == TLS_HANDSHAKE {
            let handshake = tls.handshake();
            client.start_tls_server(&handshake.acceptor).await?;
            served_cert = handshake.leaf;
            let alpn = client.tls().and_then(|t| t.alpn);
            if alpn.as_deref() != Some("postgresql") {
                return Err(TapError::Protocol(
                    "direct TLS connections must agree on the ALPN protocol \"postgresql\"".into(),
                ));
            }
        }
    }
    loop {
        let Some(packet) = read_startup(client, buf).await? else {
            return Ok(None);
        };
        match StartupPacket::parse(&packet)? {
            StartupPacket::SslRequest => match tls {
                Some(tls) if client.tls().is_none() => {
                    // Bytes after the request, before the handshake, would be read as
                    // if they had come over TLS (CVE-2021-23214).
                    if !buf.is_empty() {
                        return Err(TapError::Protocol(
                            "the client sent data after SSLRequest before TLS was set up".into(),
                        ));
                    }
                    client.write_all(b"S").await?;
                    let handshake = tls.handshake();
                    client.start_tls_server(&handshake.acceptor).await?;
                    served_cert = handshake.leaf;
                }
                _ => client.write_all(b"N").await?,
            },
            StartupPacket::GssEncRequest => client.write_all(b"N").await?,
            StartupPacket::CancelRequest { pid, secret } => {
                tap.cancel_keys.cancel(pid, secret, &ctx.holds).await;
                return Ok(None);
            }
            StartupPacket::Startup { params, .. } => {
                if ctx.shutdown.phase() != Phase::Running {
                    client
                        .write_all(&gateway_error(
                            "FATAL",
                            "57P03",
                            "the tapline gateway is shutting down",
                            None,
                        ))
                        .await?;
                    return Ok(None);
                }
                if ctx.connection.tls == TlsMode::Required && client.tls().is_none() {
                    tracing::info!(connection = %ctx.connection.name, "client without TLS refused");
                    client
                        .write_all(&gateway_error(
                            "FATAL",
                            "28000",
                            format!(
                                "tapline connection \"{}\" accepts TLS connections only; connect with sslmode=verify-full",
                                ctx.connection.name
                            ),
                            Some("give the gateway's CA as sslrootcert; sslmode=require also works but does not check the gateway's name".into()),
                        ))
                        .await?;
                    return Ok(None);
                }
                return Ok(Some(Started {
                    packet,
                    params,
                    served_cert,
                }));
            }
        }
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Waits for the pumps and names how the session ended.
async fn pump(
    state: &SessionState,
    mut front: tokio::task::JoinHandle<(Result<FrontendEnd, TapError>, PeerWriter)>,
    mut back: tokio::task::JoinHandle<Result<BackendEnd, TapError>>,
) -> EndReason {
    tokio::select! {
        r = &mut front => {
            // Close the upstream half only now that the cause is known.
            let r = r.map(|(result, upstream)| {
                drop(upstream);
                result
            });
            let reason = match r {
                Ok(Ok(FrontendEnd::Terminated | FrontendEnd::Closed)) => EndReason::ClientClosed,
                Ok(Ok(FrontendEnd::Shutdown)) => EndReason::Shutdown,
                Ok(Err(e)) => {
                    // The frontend pump has already told the client.
                    back.abort();
                    return EndReason::ProtocolError { side: Side::Client, message: e.to_string() };
                }
                Err(e) => {
                    back.abort();
                    return internal_error(state, e.is_panic(), Side::Client).await;
                }
            };
            // Let the upstream finish and close its side, so late results are recorded.
            match tokio::time::timeout(CLOSE_WAIT, &mut back).await {
                Ok(_) => {}
                Err(_) => back.abort(),
            }
            reason
        }
        r = &mut back => {
            front.abort();
            match r {
                Ok(Ok(BackendEnd::Closed)) => EndReason::UpstreamClosed,
                Ok(Ok(BackendEnd::Shutdown)) => EndReason::Shutdown,
                Ok(Err(e)) => {
                    let _ = state.client_writer.lock().await.write_all(&e.to_fatal()).await;
                    EndReason::ProtocolError { side: Side::Upstream, message: e.to_string() }
                }
                Err(e) => internal_error(state, e.is_panic(), Side::Upstream).await,
            }
        }
    }
}

/// A pump task failed inside the gateway (a bug): this session alone ends, its client
/// is told with FATAL XX000, and the end is recorded without the failure's message,
/// which may quote a value the session carried (the gateway's panic hook logs where it
/// happened, not what it said).
async fn internal_error(state: &SessionState, panicked: bool, side: Side) -> EndReason {
    tracing::error!(
        session = %state.who.session_id,
        side = side.as_str(),
        panicked,
        "a session task failed inside the gateway; ending this session only"
    );
    let msg = gateway_error(
        "FATAL",
        "XX000",
        "tapline closed the session after an internal error",
        Some(
            "the session up to here is recorded; the gateway's log says where it failed. Other sessions are not affected".into(),
        ),
    );
    let _ = state.client_writer.lock().await.write_all(&msg).await;
    EndReason::Internal { side }
}
