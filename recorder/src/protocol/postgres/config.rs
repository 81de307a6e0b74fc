//! A PostgreSQL connection's own settings (`protocol = "postgres"`): the upstream it
//! fronts, the credential the gateway logs in with, and the databases clients may
//! open; and their validation.

use crate::config::{ConfigError, KeyPrefix, Secret};
use crate::session::entra::{EntraSection, EntraToken};
use crate::session::{SslMode, TrustRoots, UpstreamTls};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// The PostgreSQL keys of a `[[connections]]` table.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    /// `postgres://USER@HOST:PORT/DATABASE`; never a password.
    pub upstream: Option<String>,
    pub upstream_password_env: Option<String>,
    pub upstream_password_file: Option<PathBuf>,
    /// The databases clients may open through this connection (empty: the upstream
    /// URL's database alone, or any when the URL names none).
    #[serde(default)]
    pub databases: Vec<String>,
    /// TLS to the upstream, as libpq's sslmode [default: "prefer"].
    pub sslmode: Option<String>,
    /// The roots `verify-ca` and `verify-full` trust: a PEM bundle, or "system".
    pub sslrootcert: Option<String>,
    /// How the gateway logs in upstream: "password" (default: upstream_password_env
    /// or _file, if the upstream asks) or "entra" (its own Entra ID token).
    pub upstream_auth: Option<String>,
    /// `[connections.entra]`: where the gateway's Entra token comes from.
    pub entra: Option<EntraSection>,
}

/// Where the upstream is and who the gateway is there.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The database every session uses; `None` passes the client's choice through.
    pub database: Option<String>,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "postgres://{}@{}:{}", self.user, self.host, self.port)?;
        if let Some(db) = &self.database {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

/// What the gateway logs in upstream with.
#[derive(Debug, Clone)]
pub enum UpstreamCredential {
    /// Nothing: the upstream must not ask (trust, or a peer it knows).
    None,
    /// A password the gateway holds.
    Password(Secret),
    /// The gateway's Entra ID token, fetched and refreshed as logins need it.
    Entra(Arc<EntraToken>),
}

impl UpstreamCredential {
    /// The password for one login (an Entra token valid for at least five minutes).
    pub async fn password(&self) -> Result<Option<Secret>, String> {
        match self {
            UpstreamCredential::None => Ok(None),
            UpstreamCredential::Password(p) => Ok(Some(p.clone())),
            UpstreamCredential::Entra(t) => t.token().await.map(Some),
        }
    }
}

/// A validated PostgreSQL connection.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub upstream: Upstream,
    /// What the gateway answers when the upstream asks for a password.
    pub credential: UpstreamCredential,
    /// The databases clients may open (empty: any); a client that names none gets the
    /// first.
    pub databases: Vec<String>,
    /// How the gateway speaks TLS to the upstream.
    pub tls: UpstreamTls,
}

impl PostgresSection {
    /// Validates the section, its keys reported under `at` (`connections[0]`).
    pub fn validate(&self, at: KeyPrefix<'_>) -> Result<PostgresConfig, ConfigError> {
        let upstream_text = self.upstream.as_deref().ok_or_else(|| {
            at.err(
                "upstream",
                "is missing",
                "set it to a URL such as \"postgres://app@db.internal:5432/app\"",
            )
        })?;
        let upstream = parse_upstream(upstream_text).map_err(|problem| {
            at.err("upstream", problem, "write postgres://USER@HOST:PORT/DATABASE (the password goes in upstream_password_env or upstream_password_file, never in the URL)")
        })?;
        let upstream_password = Secret::from_env_or_file(
            at,
            (
                "upstream_password_env",
                self.upstream_password_env.as_deref(),
            ),
            (
                "upstream_password_file",
                self.upstream_password_file.as_deref(),
            ),
        )?;
        let credential = match (self.upstream_auth.as_deref(), &self.entra) {
            (Some("entra"), entra) => {
                if upstream_password.is_some() {
                    return Err(at.err(
                        "upstream_auth",
                        "is \"entra\", but an upstream password is set too",
                        "remove upstream_password_env and upstream_password_file; the gateway logs in with its Entra token",
                    ));
                }
                let section = entra.clone().unwrap_or_default();
                UpstreamCredential::Entra(Arc::new(EntraToken::from_section(
                    &section,
                    KeyPrefix(&at.key("entra")),
                )?))
            }
            (None | Some("password"), None) => match upstream_password {
                Some(p) => UpstreamCredential::Password(p),
                None => UpstreamCredential::None,
            },
            (None | Some("password"), Some(_)) => {
                return Err(at.err(
                    "entra",
                    "is set but upstream_auth is not \"entra\"",
                    "set upstream_auth = \"entra\", or remove [connections.entra]",
                ));
            }
            (Some(other), _) => {
                return Err(at.err(
                    "upstream_auth",
                    format!("`{other}` is not an upstream login method"),
                    "use \"password\" or \"entra\"",
                ));
            }
        };
        let mut databases: Vec<String> = Vec::new();
        if let Some(db) = &upstream.database {
            databases.push(db.clone());
        }
        for db in &self.databases {
            if db.is_empty() || db.contains('\0') {
                return Err(at.err(
                    "databases",
                    format!("holds `{db}`, which is not a database name"),
                    "list database names, e.g. databases = [\"orders\", \"orders_ro\"]",
                ));
            }
            if !databases.contains(db) {
                databases.push(db.clone());
            }
        }
        let sslmode = match self.sslmode.as_deref() {
            None => SslMode::Prefer,
            Some(m) => SslMode::parse(m).ok_or_else(|| {
                at.err(
                    "sslmode",
                    format!("`{m}` is not an sslmode"),
                    "use disable, prefer, require, verify-ca or verify-full (as libpq)",
                )
            })?,
        };
        let roots = match self.sslrootcert.as_deref() {
            None => None,
            Some("system") => Some(TrustRoots::System),
            Some(path) => Some(TrustRoots::File(PathBuf::from(path))),
        };
        if sslmode.verifies() && roots.is_none() {
            return Err(at.err(
                "sslrootcert",
                format!("is missing but sslmode is {}", sslmode.as_str()),
                "set sslrootcert to the PEM bundle of the CAs that sign the upstream's certificate, or \"system\" for the system's roots",
            ));
        }
        let tls = UpstreamTls::new(sslmode, roots.as_ref()).map_err(|problem| {
            at.err(
                "sslrootcert",
                problem,
                "point it at a readable PEM bundle of CA certificates",
            )
        })?;
        Ok(PostgresConfig {
            upstream,
            credential,
            databases,
            tls,
        })
    }
}

/// Parses `postgres://USER@HOST:PORT/DB`; refuses a password in the URL, which would
/// end up in shell history and process listings.
pub fn parse_upstream(text: &str) -> Result<Upstream, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!("the scheme `{}` is not postgres://", url.scheme()));
    }
    if url.password().is_some() {
        return Err("it contains a password".into());
    }
    let host = url
        .host_str()
        .ok_or("it has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let user = url.username();
    if user.is_empty() {
        return Err("it has no user name".into());
    }
    let database = url.path().trim_start_matches('/');
    Ok(Upstream {
        host,
        port: url.port().unwrap_or(5432),
        user: percent_decode(user),
        database: (!database.is_empty()).then(|| percent_decode(database)),
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}
