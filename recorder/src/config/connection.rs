//! `[[connections]]`: one listener in front of one upstream. What every protocol's
//! connection has (a name, a listen address, client authentication, allowed groups,
//! durability) is read here; the rest of the table belongs to the protocol its
//! `protocol` key names (`protocol = "postgres"` when it names none), and is read by
//! that protocol's own section, which refuses keys it does not know.

use super::client_auth::{ClientAuth, client_auth};
use super::{ConfigError, KeyPrefix};
use crate::identity::config::OidcSection;
use crate::protocol::postgres::config::{PostgresConfig, PostgresSection};
use crate::session::{TlsFiles, TlsMode};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use tapline_store::Durability;

/// One `[[connections]]` table: the keys every protocol shares, then its protocol's.
#[derive(Debug, Clone)]
pub struct ConnectionSection {
    pub listener: ListenerSection,
    pub protocol: ProtocolSection,
}

/// The keys every connection has, whatever its protocol.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    pub name: Option<String>,
    pub listen: Option<String>,
    /// `trust` (loopback only), `secret` (per-user SCRAM verifiers in `users`) or
    /// `oidc`.
    pub client_auth: Option<String>,
    /// user name → SCRAM-SHA-256 verifier (`tapline hash-secret` makes one).
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// "sync" or "async" for this connection (default: the gateway's).
    pub durability: Option<String>,
    /// `[connections.oidc]`: accept OIDC tokens (JWTs) as passwords.
    pub oidc: Option<OidcSection>,
    /// Only callers in one of these groups may use the connection (empty: anyone the
    /// client authentication accepts).
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// TLS towards clients: "required", "optional" or "off" [default: "required"
    /// when tls_cert is set, else "off"].
    pub tls: Option<String>,
    /// The listener's certificate chain (PEM, leaf first) and its private key (PEM).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// CAs whose client certificates the listener accepts (PEM): mutual TLS.
    pub tls_client_ca: Option<PathBuf>,
    /// "required" (default with tls_client_ca) or "optional".
    pub tls_client_cert: Option<String>,
    /// With client_auth = "cert": the part of the certificate that names the user:
    /// "cn" (default), "san_email", "san_dns" or "san_uri".
    pub tls_client_identity: Option<String>,
    /// With client_auth = "cert": user → groups, for allowed_groups and rules.
    #[serde(default)]
    pub cert_groups: BTreeMap<String, Vec<String>>,
}

impl ListenerSection {
    /// The keys of this section, which the protocol's section never sees.
    pub const KEYS: &'static [&'static str] = &[
        "name",
        "listen",
        "client_auth",
        "users",
        "durability",
        "oidc",
        "allowed_groups",
        "tls",
        "tls_cert",
        "tls_key",
        "tls_client_ca",
        "tls_client_cert",
        "tls_client_identity",
        "cert_groups",
    ];
}

/// The protocol's own keys of a connection, chosen by its `protocol` key.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "protocol")]
pub enum ProtocolSection {
    #[serde(rename = "postgres", alias = "postgresql")]
    Postgres(PostgresSection),
}

/// The protocols a connection can speak, by the names `protocol` accepts.
const PROTOCOLS: &[&str] = &["postgres", "postgresql"];

impl<'de> Deserialize<'de> for ConnectionSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let mut shared = toml::Table::new();
        for key in ListenerSection::KEYS {
            if let Some(v) = table.remove(*key) {
                shared.insert(key.to_string(), v);
            }
        }
        let protocol = table
            .entry("protocol")
            .or_insert_with(|| toml::Value::String("postgres".into()));
        match protocol.as_str() {
            Some(p) if PROTOCOLS.contains(&p) => {}
            other => {
                return Err(D::Error::custom(format!(
                    "`protocol = {}` is not a supported protocol; use \"postgres\"",
                    other.map_or_else(|| protocol.to_string(), |p| format!("\"{p}\""))
                )));
            }
        }
        let listener = toml::Value::Table(shared)
            .try_into()
            .map_err(|e: toml::de::Error| D::Error::custom(e.message()))?;
        let protocol = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| {
                D::Error::custom(format!(
                    "{} (or one every connection has: {})",
                    e.message().trim_end(),
                    ListenerSection::KEYS.join(", ")
                ))
            })?;
        Ok(ConnectionSection { listener, protocol })
    }
}

/// The protocols a connection can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Postgres,
}

impl Protocol {
    /// The name used in config and in the `protocol` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Postgres => "postgres",
        }
    }

    /// The ALPN protocol ids a TLS listener of this protocol agrees to.
    pub fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            // PostgreSQL 17's direct TLS requires it; libpq sends it on SSLRequest too.
            Protocol::Postgres => &[b"postgresql"],
        }
    }
}

/// A validated connection's protocol settings.
#[derive(Debug, Clone)]
pub enum ProtocolConfig {
    Postgres(PostgresConfig),
}

/// One validated connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub name: String,
    pub protocol: Protocol,
    pub listen: SocketAddr,
    pub client_auth: ClientAuth,
    /// Groups allowed on this connection; empty allows every authenticated caller.
    pub allowed_groups: Vec<String>,
    /// Whether a result waits for its event's fsync before reaching the client.
    pub durability: Durability,
    /// Whether clients speak TLS to the listener.
    pub tls: TlsMode,
    /// The listener's TLS identity, when `tls` is not off.
    pub tls_files: Option<TlsFiles>,
    /// What the connection's protocol needs (its upstream, the credential the
    /// gateway holds there).
    pub settings: ProtocolConfig,
}

impl ConnectionConfig {
    /// The PostgreSQL settings, when the connection speaks PostgreSQL.
    pub fn postgres(&self) -> Option<&PostgresConfig> {
        match &self.settings {
            ProtocolConfig::Postgres(p) => Some(p),
        }
    }

    /// The upstream as the archive's `sessions.upstream` names it.
    pub fn upstream_label(&self) -> String {
        match &self.settings {
            ProtocolConfig::Postgres(p) => p.upstream.to_string(),
        }
    }
}

impl ConnectionSection {
    /// Validates the `i`th connection; `default_durability` is the gateway's.
    pub fn validate(
        &self,
        i: usize,
        default_durability: Durability,
    ) -> Result<ConnectionConfig, ConfigError> {
        let prefix = format!("connections[{i}]");
        let at = KeyPrefix(&prefix);
        let c = &self.listener;
        let name = c.name.clone().unwrap_or_else(|| "default".to_string());
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err(at.err(
                "name",
                format!("`{name}` is not a valid connection name"),
                "use letters, digits, `-` and `_` only",
            ));
        }
        let listen_text = c.listen.as_deref().ok_or_else(|| {
            at.err(
                "listen",
                "is missing",
                "set it to an address such as \"127.0.0.1:6432\"",
            )
        })?;
        let listen = listen_text
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                at.err(
                    "listen",
                    format!("`{listen_text}` is not an address"),
                    "write HOST:PORT, e.g. \"127.0.0.1:6432\"",
                )
            })?;
        let (protocol, settings) = match &self.protocol {
            ProtocolSection::Postgres(p) => (
                Protocol::Postgres,
                ProtocolConfig::Postgres(p.validate(at)?),
            ),
        };
        let client_auth = client_auth(at, c, listen)?;
        let durability = match c.durability.as_deref() {
            None => default_durability,
            Some(d) => Durability::parse(d).ok_or_else(|| {
                at.err(
                    "durability",
                    format!("`{d}` is not a durability"),
                    "use \"sync\" (results wait for the spool fsync) or \"async\"",
                )
            })?,
        };
        let (tls, tls_files) = tls_settings(at, c, listen, &client_auth)?;
        Ok(ConnectionConfig {
            name,
            protocol,
            listen,
            client_auth,
            allowed_groups: c.allowed_groups.clone(),
            durability,
            tls,
            tls_files,
            settings,
        })
    }
}

/// Validates a listener's TLS keys. A listener off loopback where clients send a
/// secret (a SCRAM exchange, a password, an OIDC token) must require TLS: in clear
/// text the token is readable, and replayable, by anyone on the path.
fn tls_settings(
    at: KeyPrefix<'_>,
    c: &ListenerSection,
    listen: SocketAddr,
    client_auth: &ClientAuth,
) -> Result<(TlsMode, Option<TlsFiles>), ConfigError> {
    let client_cert_required = match c.tls_client_cert.as_deref() {
        None | Some("required") => true,
        Some("optional") => false,
        Some(other) => {
            return Err(at.err(
                "tls_client_cert",
                format!("`{other}` is not a choice"),
                "use \"required\" or \"optional\"",
            ));
        }
    };
    if c.tls_client_ca.is_some() && c.tls_cert.is_none() {
        return Err(at.err(
            "tls_client_ca",
            "is set but the listener has no tls_cert",
            "client certificates need TLS: set tls_cert and tls_key too",
        ));
    }
    let files = match (&c.tls_cert, &c.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: c.tls_client_ca.clone(),
            client_cert_required,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(at.err(
                "tls_key",
                "is missing but tls_cert is set",
                "set tls_key to the PEM file holding the certificate's private key",
            ));
        }
        (None, Some(_)) => {
            return Err(at.err(
                "tls_cert",
                "is missing but tls_key is set",
                "set tls_cert to the PEM file holding the certificate chain, leaf first",
            ));
        }
    };
    let mode = match c.tls.as_deref() {
        None if files.is_some() => TlsMode::Required,
        None => TlsMode::Off,
        Some(t) => TlsMode::parse(t).ok_or_else(|| {
            at.err(
                "tls",
                format!("`{t}` is not a TLS mode"),
                "use \"required\", \"optional\" or \"off\"",
            )
        })?,
    };
    if mode != TlsMode::Off && files.is_none() {
        return Err(at.err(
            "tls_cert",
            format!("is missing but tls is \"{}\"", mode.as_str()),
            "set tls_cert and tls_key to the listener's PEM certificate chain and private key",
        ));
    }
    if matches!(client_auth, ClientAuth::Cert { .. }) {
        if c.tls_client_ca.is_none() {
            return Err(at.err(
                "tls_client_ca",
                "is missing but client_auth is \"cert\"",
                "set it to the PEM bundle of the CAs that issue your clients' certificates",
            ));
        }
        if mode != TlsMode::Required || !client_cert_required {
            return Err(at.err(
                "tls",
                "must be \"required\", with tls_client_cert \"required\", when client_auth is \"cert\"",
                "a client without a certificate has nothing else to prove who it is",
            ));
        }
    }
    let sends_secrets = !matches!(client_auth, ClientAuth::Trust | ClientAuth::Cert { .. });
    if !listen.ip().is_loopback() && sends_secrets && mode != TlsMode::Required {
        return Err(at.err(
            "tls",
            format!(
                "is \"{}\", but {listen} is not a loopback address and clients send their secrets or tokens to it",
                mode.as_str()
            ),
            "set tls = \"required\" with tls_cert and tls_key (PEM files), or listen on 127.0.0.1",
        ));
    }
    Ok((mode, files.filter(|_| mode != TlsMode::Off)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConnectionSection, String> {
        toml::from_str::<ConnectionSection>(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn a_table_splits_into_shared_and_protocol_keys() {
        let c = parse(
            "name = \"pg\"\nlisten = \"127.0.0.1:1\"\nclient_auth = \"trust\"\nusers = {}\n\
             durability = \"sync\"\nallowed_groups = [\"a\"]\nupstream = \"postgres://u@h/db\"\n\
             databases = [\"db\"]\n[oidc]\nissuer = \"x\"\n",
        )
        .unwrap();
        assert_eq!(c.listener.name.as_deref(), Some("pg"));
        assert!(c.listener.oidc.is_some());
        let ProtocolSection::Postgres(p) = &c.protocol;
        assert_eq!(p.upstream.as_deref(), Some("postgres://u@h/db"));
        assert_eq!(p.databases, ["db"]);
        // `protocol` may be spelled out, or PostgreSQL's other name.
        assert!(parse("listen = \"127.0.0.1:1\"\nprotocol = \"postgresql\"\n").is_ok());
    }

    #[test]
    fn an_unknown_key_or_protocol_is_named() {
        let e = parse("listen = \"127.0.0.1:1\"\nupstrem = \"x\"\n").unwrap_err();
        assert!(e.contains("upstrem") && e.contains("allowed_groups"), "{e}");
        let e = parse("protocol = \"mysql\"\n").unwrap_err();
        assert!(e.contains("\"mysql\"") && e.contains("postgres"), "{e}");
    }
}
