//! The PostgreSQL v3 tap.
//!
//! A session goes through three stages: the startup packet (SSL and GSS requests are
//! declined, cancel requests are mapped to the upstream), client authentication
//! against the gateway, and the login upstream with the credential the gateway holds.
//! Then two pumps run side by side, one per direction, recording as they forward.

pub mod auth;
pub mod backend_pump;
pub mod cancel;
pub mod client_auth;
pub mod client_encodings;
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
pub mod refusal;
pub mod row;
pub mod session_state;
pub mod startup;
pub mod upstream;
pub mod wire;

use super::TapContext;
use crate::identity::{Identity, TokenRejection};
use crate::shutdown::Phase;
use auth::{AuthRequest, backend_key_data, ready_for_query};
use backend_pump::BackendEnd;
use bytes::BytesMut;
use client_auth::AuthOutcome;
use error_response::gateway_error;
use frontend_pump::FrontendEnd;
use io::{TapError, read_startup};
use session_state::{SessionPolicy, SessionState, SessionWho};
use startup::{StartupPacket, param};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tapline_store::{Direction, EventDraft, Kind, SessionMeta, Status};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// State shared by every PostgreSQL session of the gateway.
#[derive(Debug, Default)]
pub struct Shared {
    pub cancel_keys: cancel::CancelRegistry,
}

/// How long a client may take to send its startup packet and authenticate.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// After the client leaves, how long the upstream gets to close its side.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Serves one client connection to the end.
pub async fn serve(ctx: Arc<TapContext>, mut client: TcpStream, peer: SocketAddr) {
    let _ = client.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(8192);
    let startup = tokio::time::timeout(STARTUP_TIMEOUT, startup(&ctx, &mut client, &mut buf)).await;
    let (packet, params) = match startup {
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
    let chosen = upstream::chosen_database(conn, param(&params, "database"));
    let database = chosen
        .clone()
        .unwrap_or_else(|_| param(&params, "database").map(str::to_string));
    // Client authentication comes first: the session is recorded under the identity
    // the client proves, not the user name it typed.
    let outcome = tokio::time::timeout(
        STARTUP_TIMEOUT,
        client_auth::authenticate(&conn.client_auth, &mut client, &mut buf, &user),
    )
    .await;
    let claimed = || Identity {
        user: user.clone(),
        ..Default::default()
    };
    let (identity, auth) = match outcome {
        Ok(Ok(AuthOutcome::Accepted { method, identity })) => {
            if identity.in_any(&conn.allowed_groups) {
                (identity, Ok(method))
            } else {
                let why = TokenRejection::GroupNotAllowed {
                    user: identity.user.clone(),
                    groups: identity.groups.clone(),
                    allowed: conn.allowed_groups.clone(),
                }
                .to_string();
                let _ = client_auth::refuse(&mut client, &why).await;
                (identity, Err((why, "auth_failed")))
            }
        }
        Ok(Ok(AuthOutcome::Refused(why))) => (claimed(), Err((why, "auth_failed"))),
        Ok(Err(e)) => (
            claimed(),
            Err((format!("client authentication failed: {e}"), "auth_failed")),
        ),
        Err(_) => (
            claimed(),
            Err((
                "the client did not authenticate in time".to_string(),
                "auth_timeout",
            )),
        ),
    };
    let meta = SessionMeta {
        session_id: Arc::from(ulid::Ulid::new().to_string()),
        gateway_id: ctx.writer.gateway_id().clone(),
        connection: Arc::from(conn.name.as_str()),
        protocol: Arc::from(conn.protocol.as_str()),
        user: Arc::from(identity.user.as_str()),
        groups: identity.groups.clone(),
        client_addr: peer.to_string(),
        database: database.clone(),
        application_name: param(&params, "application_name").map(str::to_string),
        upstream: conn.upstream.to_string(),
        start_ns: tapline_store::event::now_ns(),
        issuer: identity.issuer.clone(),
        token_id: identity.token_id.clone(),
    };
    let mut recorder = match ctx.writer.open_session(meta.clone(), conn.durability) {
        Ok(r) => r,
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
    let session_id = meta.session_id.clone();
    tracing::info!(session = %session_id, connection = %conn.name, user = %identity.user, %peer, "session started");
    let start_text = format!(
        "client {peer} user {} database {} application_name {}",
        identity.user,
        database.as_deref().unwrap_or("-"),
        meta.application_name.as_deref().unwrap_or("-")
    );
    let _ = recorder.record(
        EventDraft::new(Direction::Client, Kind::SessionStart)
            .payload(packet)
            .text(start_text),
    );
    let method = match auth {
        Ok(method) => {
            let _ = recorder.record(
                EventDraft::new(Direction::Gateway, Kind::Auth).text(format!(
                    "client authenticated: {method}; {}",
                    describe(&identity, &user)
                )),
            );
            method
        }
        Err((why, reason)) => {
            tracing::warn!(%why, "client authentication refused");
            let _ = recorder.record(
                EventDraft::new(Direction::Gateway, Kind::Auth)
                    .status(Status::Denied)
                    .text(format!("client authentication refused: {why}")),
            );
            let _ = recorder.end(reason);
            return;
        }
    };
    tracing::debug!(method, "client authenticated");
    if let Err(why) = chosen {
        // As PostgreSQL answers a database it does not have: FATAL 3D000.
        let msg = gateway_error("FATAL", "3D000", why.clone(), None);
        let _ = client.write_all(&msg).await;
        let _ = recorder.record(
            EventDraft::new(Direction::Gateway, Kind::Error)
                .status(Status::Error)
                .payload(msg)
                .text(format!("3D000 FATAL: {why}")),
        );
        let _ = recorder.end("database_refused");
        return;
    }

    // Upstream login.
    let up = match upstream::connect(conn, &params).await {
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
            let _ = recorder.record(
                EventDraft::new(Direction::Gateway, Kind::Error)
                    .status(Status::Error)
                    .payload(msg)
                    .text(format!("{code} FATAL: {message}")),
            );
            let _ = recorder.end("upstream_unavailable");
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
    let guard = ctx.deny.for_session(&conn.name, &identity.groups);
    let approvals = ctx.approvals.for_session(&conn.name, &identity.groups);
    // Fast-path calls: refused under any rule unless allowed by name, resolved now.
    let mut fast_path = fast_path::FastPath {
        guarded: !guard.is_empty() || !approvals.is_empty(),
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
        let _ = recorder.end("client_encoding_refused");
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
    let masking = {
        let picked = ctx.masking.for_session(&conn.name, &identity.groups);
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
        ctx.postgres.cancel_keys.register(cancel::UpstreamKey {
            host: conn.upstream.host.clone(),
            port: conn.upstream.port,
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
        let _ = recorder.end("client_closed");
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
    let who = SessionWho {
        session_id: session_id.to_string(),
        user: identity.user.clone(),
        groups: identity.groups.clone(),
        connection: conn.name.clone(),
    };
    let state = Arc::new(SessionState::new(
        recorder, client_wr, ctx.limits, who, policy,
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
        ctx.postgres.cancel_keys.remove(k);
    }
    if reason.starts_with("protocol_error") {
        tracing::warn!(session = %session_id, %reason, "session closed");
    } else {
        tracing::info!(session = %session_id, %reason, "session closed");
    }
    let _ = state.client_writer.lock().await.shutdown().await;
    state.end(&reason);
}

/// The identity as the auth event records it: who, in which groups, vouched for by
/// which issuer with which token id (never the token).
fn describe(identity: &Identity, login_name: &str) -> String {
    let mut out = format!("user {}", identity.user);
    if identity.user != login_name {
        out.push_str(&format!(" (login name {login_name})"));
    }
    if !identity.groups.is_empty() {
        out.push_str(&format!(" groups [{}]", identity.groups.join(", ")));
    }
    if let Some(iss) = &identity.issuer {
        out.push_str(&format!(" issuer {iss}"));
    }
    if let Some(id) = &identity.token_id {
        out.push_str(&format!(" token_id {id}"));
    }
    out
}

/// Reads startup packets until the real StartupMessage, answering SSL/GSS requests
/// and serving cancel requests along the way.
async fn startup(
    ctx: &TapContext,
    client: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<Option<(bytes::Bytes, Vec<(String, String)>)>, TapError> {
    loop {
        let Some(packet) = read_startup(client, buf).await? else {
            return Ok(None);
        };
        match StartupPacket::parse(&packet)? {
            StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                client.write_all(b"N").await?;
            }
            StartupPacket::CancelRequest { pid, secret } => {
                ctx.postgres
                    .cancel_keys
                    .cancel(pid, secret, &ctx.holds)
                    .await;
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
                return Ok(Some((packet, params)));
            }
        }
    }
}

/// Waits for the pumps and names how the session ended.
async fn pump(
    state: &SessionState,
    mut front: tokio::task::JoinHandle<(
        Result<FrontendEnd, TapError>,
        tokio::net::tcp::OwnedWriteHalf,
    )>,
    mut back: tokio::task::JoinHandle<Result<BackendEnd, TapError>>,
) -> String {
    tokio::select! {
        r = &mut front => {
            // Close the upstream half only now that the cause is known.
            let r = r.map(|(result, upstream)| {
                drop(upstream);
                result
            });
            let reason = match r {
                Ok(Ok(FrontendEnd::Terminated | FrontendEnd::Closed)) => "client_closed".to_string(),
                Ok(Ok(FrontendEnd::Shutdown)) => "shutdown".to_string(),
                Ok(Err(e)) => {
                    // The frontend pump has already told the client.
                    back.abort();
                    return format!("protocol_error: client: {e}");
                }
                Err(e) => {
                    back.abort();
                    return internal_error(state, e.is_panic(), "client").await;
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
                Ok(Ok(BackendEnd::Closed)) => "upstream_closed".to_string(),
                Ok(Ok(BackendEnd::Shutdown)) => "shutdown".to_string(),
                Ok(Err(e)) => {
                    let _ = state.client_writer.lock().await.write_all(&e.to_fatal()).await;
                    format!("protocol_error: upstream: {e}")
                }
                Err(e) => internal_error(state, e.is_panic(), "upstream").await,
            }
        }
    }
}

/// A pump task failed inside the gateway (a bug): this session alone ends, its client
/// is told with FATAL XX000, and the end is recorded without the failure's message,
/// which may quote a value the session carried (the gateway's panic hook logs where it
/// happened, not what it said).
async fn internal_error(state: &SessionState, panicked: bool, side: &str) -> String {
    tracing::error!(
        session = %state.who.session_id,
        side,
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
    format!("internal_error: the {side} side of the session failed inside the gateway")
}
