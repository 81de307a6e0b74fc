//! How clients prove who they are to the gateway (`client_auth`, `[connections.users]`,
//! `[connections.oidc]`), and the rule that only a loopback listener may trust a
//! caller's word for its name.

use super::connection::ListenerSection;
use super::{ConfigError, KeyPrefix};
use crate::identity::OidcValidator;
use crate::identity::config::oidc_settings;
use crate::protocol::postgres::scram::ScramVerifier;
use crate::session::cert_identity::CertField;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// How clients prove who they are to the gateway.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// Anyone who can reach the (loopback) listener, under the user name they give.
    Trust,
    /// Per-user SCRAM-SHA-256 verifiers.
    Secrets(HashMap<String, ScramVerifier>),
    /// An OIDC token (a JWT) as the password, checked against the issuer's keys.
    Oidc(Arc<OidcValidator>),
    /// A client certificate the listener verified, naming the user by `field`;
    /// `groups` gives each user's groups.
    Cert {
        field: CertField,
        groups: HashMap<String, Vec<String>>,
    },
}

impl ClientAuth {
    /// The method as the gateway's log describes it at start.
    pub fn describe(&self) -> &'static str {
        match self {
            ClientAuth::Trust => {
                "trust (loopback only: anyone who can reach this port is let in under the user name they give)"
            }
            ClientAuth::Secrets(_) => "per-user secrets (SCRAM-SHA-256)",
            ClientAuth::Oidc(_) => "OIDC tokens as passwords",
            ClientAuth::Cert { .. } => "client certificates (mutual TLS)",
        }
    }
}

/// Validates a connection's client authentication (`client_auth`, `users`, `oidc`,
/// `tls_client_identity`, `cert_groups`); `listen` decides whether trust is allowed.
pub fn client_auth(
    at: KeyPrefix<'_>,
    c: &ListenerSection,
    listen: SocketAddr,
) -> Result<ClientAuth, ConfigError> {
    let (method, oidc) = (c.client_auth.as_deref(), c.oidc.as_ref());
    if method == Some("cert") {
        let field = match c.tls_client_identity.as_deref() {
            None => CertField::CommonName,
            Some(f) => CertField::parse(f).ok_or_else(|| {
                at.err(
                    "tls_client_identity",
                    format!("`{f}` is not a certificate field tapline reads"),
                    "use cn, san_email, san_dns or san_uri",
                )
            })?,
        };
        if oidc.is_some() || !c.users.is_empty() {
            return Err(at.err(
                "client_auth",
                "is \"cert\", but users or oidc are set too",
                "keep one way for clients to prove who they are",
            ));
        }
        return Ok(ClientAuth::Cert {
            field,
            groups: c.cert_groups.clone().into_iter().collect(),
        });
    }
    if c.tls_client_identity.is_some() || !c.cert_groups.is_empty() {
        return Err(at.err(
            "tls_client_identity",
            "and cert_groups apply only to client_auth = \"cert\"",
            "set client_auth = \"cert\", or remove them",
        ));
    }
    let mut verifiers = HashMap::new();
    for (user, text) in &c.users {
        let v = ScramVerifier::parse(text).map_err(|problem| {
            at.err(
                &format!("users.{user}"),
                format!("is not a SCRAM-SHA-256 verifier: {problem}"),
                "generate one with `tapline hash-secret`",
            )
        })?;
        verifiers.insert(user.clone(), v);
    }
    let loopback = listen.ip().is_loopback();
    Ok(match (method, oidc) {
        (Some("oidc") | None, Some(section)) => ClientAuth::Oidc(Arc::new(OidcValidator::new(
            oidc_settings(section, KeyPrefix(&at.key("oidc")))?,
        ))),
        (Some("oidc"), None) => {
            return Err(at.err(
                "oidc",
                "is missing but client_auth is \"oidc\"",
                "add a [connections.oidc] table with issuer, audience and jwks",
            ));
        }
        (Some(other), Some(_)) => {
            return Err(at.err(
                "oidc",
                format!("is set but client_auth is \"{other}\""),
                "set client_auth = \"oidc\" or remove [connections.oidc]",
            ));
        }
        (method, None) => match method {
            Some("trust") if !loopback => {
                return Err(at.err(
                    "client_auth",
                    format!("`trust` is refused because {listen} is not a loopback address"),
                    "listen on 127.0.0.1 or ::1, or use client_auth = \"secret\" with [connections.users]",
                ));
            }
            Some("trust") => ClientAuth::Trust,
            Some("secret") | None if !verifiers.is_empty() => ClientAuth::Secrets(verifiers),
            Some("secret") => {
                return Err(at.err(
                    "users",
                    "is empty but client_auth is \"secret\"",
                    "add `USER = \"SCRAM-SHA-256$…\"` entries made with `tapline hash-secret`",
                ));
            }
            None if loopback => ClientAuth::Trust,
            None => {
                return Err(at.err(
                    "users",
                    format!(
                        "is empty, and {listen} is not a loopback address, so clients cannot be trusted"
                    ),
                    "add per-user secrets made with `tapline hash-secret` ([connections.users] in a --config file), or listen on 127.0.0.1",
                ));
            }
            Some(other) => {
                return Err(at.err(
                    "client_auth",
                    format!("`{other}` is not a client authentication method"),
                    "use \"trust\" (loopback only), \"secret\", \"oidc\" or \"cert\"",
                ));
            }
        },
    })
}
