//! Connecting to the upstream and logging in with the credential the gateway holds.
//!
//! The password is read from the configured source, used here and nowhere else: it is
//! never sent to the client and never passed to the recorder.

use super::auth::{
    AuthRequest, md5_password, parse_backend_key_data, password_message, sasl_initial_response,
    sasl_response,
};
use super::config::PostgresConfig;
use super::error_response::ErrorFields;
use super::io::{TapError, read_message};
use super::scram::{MECHANISM, ScramClient};
use super::startup::{param, ssl_request, startup_message};
use crate::session::tls_client::explain;
use crate::session::{PeerStream, SslMode, UpstreamTls};
use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// How long connecting and logging in upstream may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(15);

/// Of that, how long getting the gateway's own credential (its Entra token) may take.
const CREDENTIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// A logged-in upstream connection, ready for queries.
pub struct UpstreamConnection {
    pub stream: PeerStream,
    /// Bytes already read past ReadyForQuery (normally none).
    pub leftover: BytesMut,
    /// ParameterStatus and NoticeResponse messages to replay to the client.
    pub greeting: Vec<Bytes>,
    /// The upstream's cancel key.
    pub key: Option<(i32, i32)>,
    /// The database actually opened.
    pub database: String,
}

/// Why the upstream could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("the upstream refused the gateway's login: {}", .0.message)]
    Refused(ErrorFields),
    #[error("the upstream asked for {0}, which the gateway cannot answer")]
    Unsupported(String),
    #[error(
        "the upstream asked for a password but connection has no upstream_password_env or upstream_password_file"
    )]
    NoPassword,
    #[error("upstream login failed: {0}")]
    Protocol(String),
    #[error("{0}")]
    Tls(String),
    /// The gateway's own credential could not be had (its Entra token).
    #[error("{0}")]
    Credential(String),
}

impl From<TapError> for UpstreamError {
    fn from(e: TapError) -> Self {
        UpstreamError::Protocol(e.to_string())
    }
}

/// The database a client may open through `conn`: the one it asks for if the
/// connection serves it (any, when it names none), else the connection's first when it
/// asks for none. The error says what to connect to instead.
pub fn chosen_database(
    name: &str,
    pg: &PostgresConfig,
    asked: Option<&str>,
) -> Result<Option<String>, String> {
    match (asked.filter(|a| !a.is_empty()), pg.databases.as_slice()) {
        (asked, []) => Ok(asked.map(str::to_string)),
        (None, served) => Ok(Some(served[0].clone())),
        (Some(a), served) if served.iter().any(|d| d == a) => Ok(Some(a.to_string())),
        (Some(a), served) => Err(format!(
            "database \"{a}\" is not served by tapline connection \"{}\" (it serves {}); connect with dbname={}",
            name,
            served
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", "),
            served[0]
        )),
    }
}

/// The startup parameters sent upstream: the client's, with the user replaced by the
/// gateway's upstream user and the database the one chosen for the session.
pub fn upstream_params(
    name: &str,
    pg: &PostgresConfig,
    client: &[(String, String)],
) -> Vec<(String, String)> {
    let database = chosen_database(name, pg, param(client, "database"))
        .ok()
        .flatten()
        .unwrap_or_else(|| pg.upstream.user.clone());
    let mut out = vec![
        ("user".to_string(), pg.upstream.user.clone()),
        ("database".to_string(), database),
    ];
    out.extend(
        client
            .iter()
            .filter(|(k, _)| k != "user" && k != "database")
            .cloned(),
    );
    out
}

/// Connects and logs in.
pub async fn connect(
    name: &str,
    pg: &PostgresConfig,
    client_params: &[(String, String)],
) -> Result<UpstreamConnection, UpstreamError> {
    let addr = format!("{}:{}", pg.upstream.host, pg.upstream.port);
    tokio::time::timeout(UPSTREAM_TIMEOUT, login(name, pg, client_params, &addr))
        .await
        .map_err(|_| UpstreamError::Unreachable {
            addr: addr.clone(),
            reason: format!("no answer within {} s", UPSTREAM_TIMEOUT.as_secs()),
        })?
}

/// Asks the upstream `host` for TLS as `tls.mode` (sslmode) says, and sets it up:
/// for a session's login, and for a cancel request, whose keys are as secret as the
/// session.
pub async fn start_tls(
    stream: &mut PeerStream,
    host: &str,
    tls: &UpstreamTls,
) -> Result<(), UpstreamError> {
    let mode = tls.mode;
    if mode == SslMode::Disable {
        return Ok(());
    }
    let io = |e: std::io::Error| UpstreamError::Protocol(e.to_string());
    stream.write_all(&ssl_request()).await.map_err(io)?;
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).await.map_err(io)?;
    match answer[0] {
        b'S' => {
            let name = ServerName::try_from(host.to_string()).map_err(|_| {
                UpstreamError::Tls(format!("`{host}` is not a host name TLS can check"))
            })?;
            stream
                .start_tls_client(tls.connector(), name)
                .await
                .map_err(|e| UpstreamError::Tls(explain(&e, host, mode)))
        }
        b'N' if mode == SslMode::Prefer => Ok(()),
        b'N' => Err(UpstreamError::Tls(format!(
            "the upstream does not offer TLS, and the connection's sslmode is {}",
            mode.as_str()
        ))),
        other => Err(UpstreamError::Protocol(format!(
            "the upstream answered the SSLRequest with '{}'",
            other as char
        ))),
    }
}

async fn login(
    name: &str,
    pg: &PostgresConfig,
    client_params: &[(String, String)],
    addr: &str,
) -> Result<UpstreamConnection, UpstreamError> {
    let tcp = TcpStream::connect((pg.upstream.host.as_str(), pg.upstream.port))
        .await
        .map_err(|e| UpstreamError::Unreachable {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);
    let mut stream = PeerStream::from(tcp);
    start_tls(&mut stream, &pg.upstream.host, &pg.tls).await?;
    let params = upstream_params(name, pg, client_params);
    let database = param(&params, "database").unwrap_or_default().to_string();
    stream
        .write_all(&startup_message(&params))
        .await
        .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(8192);
    let mut scram: Option<ScramClient> = None;
    let mut greeting = Vec::new();
    let mut key = None;
    let held = tokio::time::timeout(CREDENTIAL_TIMEOUT, pg.credential.password())
        .await
        .map_err(|_| {
            UpstreamError::Credential(format!(
                "the gateway could not get its Entra ID token within {} s; is the authority reachable?",
                CREDENTIAL_TIMEOUT.as_secs()
            ))
        })?
        .map_err(UpstreamError::Credential)?;
    let password = || held.as_ref().ok_or(UpstreamError::NoPassword);
    loop {
        let Some(msg) = read_message(&mut stream, &mut buf, 1 << 20).await? else {
            return Err(UpstreamError::Protocol(
                "the upstream closed the connection during login".into(),
            ));
        };
        match msg.tag {
            b'R' => {
                let reply = match AuthRequest::parse(msg.body()).map_err(TapError::from)? {
                    AuthRequest::Ok => None,
                    AuthRequest::Cleartext => Some(password_message(password()?.expose())),
                    AuthRequest::Md5 { salt } => Some(password_message(&md5_password(
                        &pg.upstream.user,
                        password()?.expose(),
                        &salt,
                    ))),
                    AuthRequest::Sasl { mechanisms } => {
                        if !mechanisms.iter().any(|m| m == MECHANISM) {
                            return Err(UpstreamError::Unsupported(format!(
                                "SASL mechanisms {mechanisms:?}"
                            )));
                        }
                        let client = ScramClient::new(password()?.expose());
                        let first = sasl_initial_response(MECHANISM, &client.client_first());
                        scram = Some(client);
                        Some(first)
                    }
                    AuthRequest::SaslContinue { data } => {
                        let client = scram.as_mut().ok_or_else(|| {
                            UpstreamError::Protocol("SASL continue before SASL start".into())
                        })?;
                        let fin = client
                            .client_final(&data)
                            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
                        Some(sasl_response(&fin))
                    }
                    AuthRequest::SaslFinal { data } => {
                        let client = scram.as_ref().ok_or_else(|| {
                            UpstreamError::Protocol("SASL final before SASL start".into())
                        })?;
                        client
                            .verify_server_final(&data)
                            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
                        None
                    }
                    AuthRequest::Unsupported(code) => {
                        return Err(UpstreamError::Unsupported(format!(
                            "authentication method {code} (Kerberos/GSSAPI/SSPI)"
                        )));
                    }
                };
                if let Some(reply) = reply {
                    stream
                        .write_all(&reply)
                        .await
                        .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
                }
            }
            b'S' | b'N' => greeting.push(msg.bytes),
            b'K' => key = Some(parse_backend_key_data(msg.body()).map_err(TapError::from)?),
            b'E' => {
                // Login errors come before any client_encoding is in effect.
                let fields = ErrorFields::parse(b'E', msg.body(), super::encoding::UTF8)
                    .map_err(TapError::from)?;
                return Err(UpstreamError::Refused(fields));
            }
            b'Z' => {
                return Ok(UpstreamConnection {
                    stream,
                    leftover: buf,
                    greeting,
                    key,
                    database,
                });
            }
            b'v' => {
                // NegotiateProtocolVersion: the server speaks an older minor version;
                // nothing to do, the session continues.
            }
            other => {
                return Err(UpstreamError::Protocol(format!(
                    "unexpected message '{}' during login",
                    other as char
                )));
            }
        }
    }
}
