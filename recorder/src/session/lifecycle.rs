//! A session's recorded life: its metadata, the `session_start` and `auth` events
//! every protocol writes the same way, and its end. A tap says what it learned of the
//! caller; the wording of these events, which auditors search, lives here alone.

use super::end_reason::EndReason;
use super::gate::Admission;
use super::stream::TlsInfo;
use super::who::SessionWho;
use crate::identity::Identity;
use crate::protocol::TapContext;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tapline_store::{
    Direction, EventDraft, Kind, SessionMeta, SessionRecorder, Status, StoreError,
};

/// What a tap knows of the caller when the recording starts.
#[derive(Debug, Clone)]
pub struct Opening {
    pub peer: SocketAddr,
    /// The user name the client gave, which may differ from the identity it proved.
    pub login_name: String,
    /// The database (or other upstream namespace) the session uses, if any.
    pub database: Option<String>,
    pub application_name: Option<String>,
    /// The client bytes that opened the session (a PostgreSQL startup packet).
    pub first_bytes: Bytes,
    /// The TLS the client connected with, if any.
    pub tls: Option<TlsInfo>,
}

/// A session whose recording has started and whose caller was admitted.
pub struct Recording {
    pub recorder: SessionRecorder,
    pub meta: SessionMeta,
    pub identity: Identity,
    /// How the caller authenticated (`trust`, `scram-sha-256`, `oidc`, …).
    pub method: &'static str,
}

impl Recording {
    /// Who the session belongs to, as holds and the admin API name it.
    pub fn who(&self) -> SessionWho {
        SessionWho {
            session_id: self.meta.session_id.to_string(),
            user: self.identity.user.clone(),
            groups: self.identity.groups.clone(),
            connection: self.meta.connection.to_string(),
        }
    }
}

/// Starts recording a session: its metadata, then `session_start` and `auth`.
///
/// A refused caller's session is recorded and ended here (`Ok(None)`); the tap has
/// already told the client. An error means nothing can be recorded, so the tap must
/// refuse the session: nothing is forwarded unrecorded.
pub fn open(
    ctx: &TapContext,
    opening: Opening,
    admission: Admission,
) -> Result<Option<Recording>, StoreError> {
    let conn = &ctx.connection;
    let identity = admission.identity().clone();
    let meta = SessionMeta {
        session_id: Arc::from(ulid::Ulid::new().to_string()),
        gateway_id: ctx.writer.gateway_id().clone(),
        connection: Arc::from(conn.name.as_str()),
        protocol: Arc::from(conn.protocol.as_str()),
        user: Arc::from(identity.user.as_str()),
        groups: identity.groups.clone(),
        client_addr: opening.peer.to_string(),
        database: opening.database.clone(),
        application_name: opening.application_name.clone(),
        upstream: conn.upstream_label(),
        start_ns: tapline_store::event::now_ns(),
        issuer: identity.issuer.clone(),
        token_id: identity.token_id.clone(),
        tls: opening.tls.as_ref().map(TlsInfo::recorded),
    };
    let mut recorder = ctx.writer.open_session(meta.clone(), conn.durability)?;
    tracing::info!(session = %meta.session_id, connection = %conn.name, user = %identity.user, peer = %opening.peer, "session started");
    let mut start_text = format!(
        "client {} user {} database {} application_name {}",
        opening.peer,
        identity.user,
        opening.database.as_deref().unwrap_or("-"),
        opening.application_name.as_deref().unwrap_or("-")
    );
    start_text.push_str(&match &opening.tls {
        None => " tls off".to_string(),
        Some(tls) => format!(" tls {}", tls.describe()),
    });
    // A failure to record from here on ends the session at its next event.
    let _ = recorder.record(
        EventDraft::new(Direction::Client, Kind::SessionStart)
            .payload(opening.first_bytes)
            .text(start_text),
    );
    match admission {
        Admission::Admitted { method, identity } => {
            let _ = recorder.record(
                EventDraft::new(Direction::Gateway, Kind::Auth).text(format!(
                    "client authenticated: {method}; {}",
                    describe(&identity, &opening.login_name)
                )),
            );
            tracing::debug!(method, "client authenticated");
            Ok(Some(Recording {
                recorder,
                meta,
                identity,
                method,
            }))
        }
        Admission::Refused { why, reason, .. } => {
            tracing::warn!(%why, "client authentication refused");
            let _ = recorder.record(
                EventDraft::new(Direction::Gateway, Kind::Auth)
                    .status(Status::Denied)
                    .text(format!("client authentication refused: {why}")),
            );
            end(recorder, &reason);
            Ok(None)
        }
    }
}

/// Records the session's end (its `session_end` event and final seal).
pub fn end(recorder: SessionRecorder, reason: &EndReason) {
    if let Err(e) = recorder.end(&reason.to_string()) {
        tracing::error!(error = %e, "could not record the end of a session");
    }
}

/// Records an error the gateway sent the client before the session could start, then
/// ends the session with `reason`.
pub fn refuse_before_start(
    mut recorder: SessionRecorder,
    payload: Bytes,
    text: String,
    reason: &EndReason,
) {
    let _ = recorder.record(
        EventDraft::new(Direction::Gateway, Kind::Error)
            .status(Status::Error)
            .payload(payload)
            .text(text),
    );
    end(recorder, reason);
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
