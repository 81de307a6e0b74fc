//! The admin API: a small HTTP/1.1 JSON API on loopback (or with TLS elsewhere) over
//! which approvers list holds and decide them. `tapline approvals`, `approve` and
//! `deny` are its client.
//!
//! - `GET  /v1/holds`: the pending holds, oldest first.
//! - `POST /v1/holds/{id}/approve` with `{"reason": "…", "scope": "onetime"|"session"}`.
//! - `POST /v1/holds/{id}/deny` with `{"reason": "…"}`.
//!
//! Every request carries `Authorization: Bearer TOKEN`. Errors are JSON
//! `{"error": "…"}` with 401 (who are you), 403 (not allowed), 404 (no such hold),
//! 400 (bad request).

use super::admin_auth::AdminAuth;
use super::registry::{DecisionError, Holds};
use super::rules::Scope;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What a decision request may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
    scope: Option<String>,
}

/// The largest request body read.
const MAX_BODY: usize = 64 * 1024;

/// The API's shared state.
#[derive(Clone)]
pub struct AdminApi {
    pub holds: Holds,
    pub auth: Arc<AdminAuth>,
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "error": message.into() }))
}

impl AdminApi {
    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let header = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let approver = match self.auth.authenticate(header.as_deref()).await {
            Ok(a) => a,
            Err(e) => return error(StatusCode::UNAUTHORIZED, e),
        };
        let path: Vec<String> = req
            .uri()
            .path()
            .trim_matches('/')
            .split('/')
            .map(str::to_string)
            .collect();
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        match (req.method().clone(), path.as_slice()) {
            (Method::GET, ["v1", "holds"]) => json(
                StatusCode::OK,
                serde_json::to_value(self.holds.list()).unwrap_or_default(),
            ),
            (Method::POST, ["v1", "holds", id, verb @ ("approve" | "deny")]) => {
                let approve = *verb == "approve";
                let id = id.to_string();
                let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(e) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            format!("cannot read the body: {e}"),
                        );
                    }
                };
                let body: DecisionBody = if body.is_empty() {
                    DecisionBody::default()
                } else {
                    match serde_json::from_slice(&body) {
                        Ok(b) => b,
                        Err(e) => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                format!("the body is not {{\"reason\": …, \"scope\": …}}: {e}"),
                            );
                        }
                    }
                };
                let scope = match body.scope.as_deref() {
                    None => None,
                    Some(s) => match Scope::parse(s) {
                        Some(s) => Some(s),
                        None => {
                            return error(
                                StatusCode::BAD_REQUEST,
                                format!("`{s}` is not a scope; use onetime or session"),
                            );
                        }
                    },
                };
                match self
                    .holds
                    .decide(&id, approve, scope, approver.clone(), body.reason.clone())
                {
                    Ok(info) => {
                        tracing::info!(hold = %id, user = %info.user, approver = %approver.user, approve, "hold decided");
                        json(
                            StatusCode::OK,
                            serde_json::json!({
                                "id": id,
                                "decision": if approve { "approved" } else { "denied" },
                                "by": approver.user,
                                "statement": info.statement,
                            }),
                        )
                    }
                    Err(e @ DecisionError::Unknown(_)) => {
                        error(StatusCode::NOT_FOUND, e.to_string())
                    }
                    Err(e) => error(StatusCode::FORBIDDEN, e.to_string()),
                }
            }
            _ => error(
                StatusCode::NOT_FOUND,
                "no such endpoint; use GET /v1/holds or POST /v1/holds/ID/approve|deny",
            ),
        }
    }
}

/// Loads a PEM certificate chain and key into a TLS acceptor.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = crate::session::pem::read_certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the key {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("the certificate and key do not make a TLS identity: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves the API on `listener` until `stop` resolves.
pub async fn serve(
    api: AdminApi,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "admin API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let api = api.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(socket).await {
                    Ok(stream) => serve_connection(api, stream, peer).await,
                    Err(e) => tracing::info!(%peer, error = %e, "admin API TLS handshake failed"),
                },
                None => serve_connection(api, socket, peer).await,
            }
        });
    }
}

async fn serve_connection<S>(api: AdminApi, stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let api = api.clone();
        async move { Ok::<_, std::convert::Infallible>(api.handle(req).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "admin API connection ended");
    }
}
