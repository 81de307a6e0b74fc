//! Authenticating the caller to the gateway.
//!
//! Per-user secrets are checked with SCRAM-SHA-256 against stored verifiers, so the
//! gateway holds no client secret in clear and none crosses the wire. An unknown user
//! runs the same exchange against a throw-away verifier, so a failure does not reveal
//! which user names exist.
//!
//! OIDC tokens arrive as the password message (libpq's `PGPASSWORD`), and are checked
//! by [`crate::identity`]; the token never leaves this function.

use super::auth::{AuthRequest, parse_sasl_initial};
use super::error_response::gateway_error;
use super::io::{TapError, read_message};
use super::scram::{MECHANISM, MECHANISM_PLUS, ScramServer, ScramVerifier};
use crate::config::ClientAuth;
use crate::identity::{Identity, OidcValidator};
use crate::session::cert_identity::{CertField, identity_of};
use bytes::BytesMut;
use std::sync::LazyLock;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// The verifier unknown users are checked against; no secret matches it.
static DECOY: LazyLock<ScramVerifier> = LazyLock::new(|| {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    ScramVerifier::derive(&hex::encode(secret), 4096)
});

/// The outcome, as recorded in the session's auth event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The caller may proceed as `identity`; the method is recorded.
    Accepted {
        method: &'static str,
        identity: Identity,
    },
    /// The caller was refused; the reason is recorded (never a secret).
    Refused(String),
}

/// What the client's TLS connection brings to authentication.
#[derive(Debug, Clone, Copy, Default)]
pub struct Channel<'a> {
    /// The `tls-server-end-point` data, when the client came over TLS:
    /// SCRAM-SHA-256-PLUS is then offered first.
    pub binding: Option<&'a [u8]>,
    /// The client certificate the listener verified (DER), if the client sent one.
    pub client_cert: Option<&'a [u8]>,
}

/// Runs client authentication. On refusal the client has already been told why.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    auth: &ClientAuth,
    client: &mut S,
    buf: &mut BytesMut,
    user: &str,
    channel: Channel<'_>,
) -> Result<AuthOutcome, TapError> {
    let binding = channel.binding;
    let local = |method| AuthOutcome::Accepted {
        method,
        identity: Identity {
            user: user.to_string(),
            ..Default::default()
        },
    };
    let verifiers = match auth {
        ClientAuth::Trust => return Ok(local("trust")),
        ClientAuth::Secrets(v) => v,
        ClientAuth::Oidc(v) => return oidc(v, client, buf).await,
        ClientAuth::Cert { field, groups } => {
            return certificate(client, user, channel.client_cert, *field, groups).await;
        }
    };
    let known = verifiers.get(user);
    let verifier = known.cloned().unwrap_or_else(|| DECOY.clone());
    client
        .write_all(
            &AuthRequest::Sasl {
                mechanisms: match binding {
                    Some(_) => vec![MECHANISM_PLUS.into(), MECHANISM.into()],
                    None => vec![MECHANISM.into()],
                },
            }
            .to_message(),
        )
        .await?;
    let refuse = |why: String| AuthOutcome::Refused(why);
    let Some(first) = read_message(client, buf, 64 * 1024).await? else {
        return Ok(refuse(
            "the client closed the connection during authentication".into(),
        ));
    };
    if first.tag != b'p' {
        return Err(TapError::Protocol(format!(
            "expected a SASL response during authentication, got message '{}'",
            first.tag as char
        )));
    }
    let (mechanism, data) = parse_sasl_initial(first.body())?;
    let plus = mechanism == MECHANISM_PLUS && binding.is_some();
    if mechanism != MECHANISM && !plus {
        fail(client, user).await?;
        return Ok(refuse(format!(
            "the client asked for SASL mechanism {mechanism}"
        )));
    }
    let (server, server_first) = match ScramServer::start(verifier, &mechanism, &data, binding) {
        Ok(x) => x,
        Err(e) => {
            fail(client, user).await?;
            return Ok(refuse(e.to_string()));
        }
    };
    client
        .write_all(&AuthRequest::SaslContinue { data: server_first }.to_message())
        .await?;
    let Some(fin) = read_message(client, buf, 64 * 1024).await? else {
        return Ok(refuse(
            "the client closed the connection during authentication".into(),
        ));
    };
    if fin.tag != b'p' {
        return Err(TapError::Protocol(
            "expected the SASL final response".into(),
        ));
    }
    match server.finish(fin.body()) {
        Ok(server_final) if known.is_some() => {
            client
                .write_all(&AuthRequest::SaslFinal { data: server_final }.to_message())
                .await?;
            Ok(local(if plus {
                "scram-sha-256-plus"
            } else {
                "scram-sha-256"
            }))
        }
        Ok(_) => {
            fail(client, user).await?;
            Ok(refuse(format!("no secret is configured for user `{user}`")))
        }
        Err(_) => {
            fail(client, user).await?;
            Ok(refuse("wrong secret".into()))
        }
    }
}

/// The caller a verified client certificate names: its user must be the login name,
/// as with PostgreSQL's `cert` method, so a certificate is never used as another user.
async fn certificate<S: AsyncWrite + Unpin>(
    client: &mut S,
    user: &str,
    cert: Option<&[u8]>,
    field: CertField,
    groups: &std::collections::HashMap<String, Vec<String>>,
) -> Result<AuthOutcome, TapError> {
    let named = match cert {
        None => Err("the client sent no certificate".to_string()),
        Some(der) => identity_of(der, field),
    };
    let why = match named {
        Ok(mut identity) if identity.user == user => {
            identity.groups = groups.get(user).cloned().unwrap_or_default();
            return Ok(AuthOutcome::Accepted {
                method: "cert",
                identity,
            });
        }
        Ok(identity) => format!(
            "the client certificate names `{}` ({}), not the login name `{user}`; log in as `{}`",
            identity.user,
            field.as_str(),
            identity.user
        ),
        Err(why) => why,
    };
    refuse(client, &why).await?;
    Ok(AuthOutcome::Refused(why))
}

/// Asks for the password (the token) in clear: a token is a bearer credential the
/// client already holds, and SCRAM cannot carry it.
async fn oidc<S: AsyncRead + AsyncWrite + Unpin>(
    validator: &OidcValidator,
    client: &mut S,
    buf: &mut BytesMut,
) -> Result<AuthOutcome, TapError> {
    client
        .write_all(&AuthRequest::Cleartext.to_message())
        .await?;
    let Some(msg) = read_message(client, buf, 64 * 1024).await? else {
        return Ok(AuthOutcome::Refused(
            "the client closed the connection during authentication".into(),
        ));
    };
    if msg.tag != b'p' {
        return Err(TapError::Protocol(format!(
            "expected a password message carrying the token, got message '{}'",
            msg.tag as char
        )));
    }
    let body = msg.body();
    let token = std::str::from_utf8(body.strip_suffix(&[0]).unwrap_or(body)).unwrap_or("");
    match validator.validate(token).await {
        Ok(identity) => Ok(AuthOutcome::Accepted {
            method: "oidc",
            identity,
        }),
        Err(why) => {
            refuse(client, &why.to_string()).await?;
            Ok(AuthOutcome::Refused(format!("token refused: {why}")))
        }
    }
}

/// Tells the client why it may not in, in terms it can act on.
pub async fn refuse<S: AsyncWrite + Unpin>(client: &mut S, why: &str) -> Result<(), TapError> {
    client
        .write_all(&gateway_error(
            "FATAL",
            "28000",
            format!("tapline refused the login: {why}"),
            None,
        ))
        .await?;
    Ok(())
}

async fn fail<S: AsyncWrite + Unpin>(client: &mut S, user: &str) -> Result<(), TapError> {
    client
        .write_all(&gateway_error(
            "FATAL",
            "28P01",
            format!("password authentication failed for user \"{user}\""),
            Some("tapline checks the secret configured for this user on this connection".into()),
        ))
        .await?;
    Ok(())
}
