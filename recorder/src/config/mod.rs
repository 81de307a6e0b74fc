//! Gateway configuration: the TOML file and the quick command-line flags, validated
//! once, up front, into one shape.
//!
//! Every problem is reported with where it is (the file and key, or the flag), what is
//! wrong and what to do, before the gateway accepts a single connection.

pub mod deny_rule;

use crate::approvals::config::{ApprovalsConfig, ApprovalsSection, ApproveSection, approvals};
use crate::identity::{JwksSource, OidcSettings, OidcValidator, UserClaim};
use crate::policy::guard::{DenyRules, Unparseable};
use crate::policy::mask::config::{MaskSection, MaskingSection, mask_rules};
use crate::policy::mask::rules::MaskRules;
use crate::scram::ScramVerifier;
use deny_rule::compile_rule;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tapline_store::Durability;

/// A configuration problem, said so a person can fix it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{source_name}: `{key}`: {problem}. {fix}")]
pub struct ConfigError {
    /// The file, or "command line".
    pub source_name: String,
    /// The key or flag at fault.
    pub key: String,
    pub problem: String,
    pub fix: String,
}

/// The raw TOML shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub gateway: GatewaySection,
    #[serde(default)]
    pub connections: Vec<ConnectionSection>,
    /// `[policy]`: settings shared by every rule.
    #[serde(default)]
    pub policy: PolicySection,
    /// `[[deny]]`: statements the gateway refuses.
    #[serde(default)]
    pub deny: Vec<DenySection>,
    /// `[masking]`: the key of the `hash` strategy.
    #[serde(default)]
    pub masking: MaskingSection,
    /// `[[mask]]`: what the gateway masks in results.
    #[serde(default)]
    pub mask: Vec<MaskSection>,
    /// `[approvals]`: the admin API approvers decide holds over.
    #[serde(default)]
    pub approvals: ApprovalsSection,
    /// `[[approve]]`: statements held until a person approves them.
    #[serde(default)]
    pub approve: Vec<ApproveSection>,
}

/// `[policy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// "open" (default) or "closed": what happens to SQL the gateway cannot parse
    /// when a rule applies to the session.
    pub unparseable_sql: Option<String>,
    /// Groups for which unparseable SQL is always refused [default: \["agents"\]].
    pub unparseable_closed_groups: Option<Vec<String>>,
    /// Functions the fast-path FunctionCall may reach where rules apply (by name,
    /// optionally `schema.name`); every other fast-path call is refused there.
    #[serde(default)]
    pub allow_fast_path: Vec<String>,
    /// Client encodings a session under rules may use (empty: any); another one,
    /// at login or after a SET, ends the session with FATAL 22023.
    #[serde(default)]
    pub client_encodings: Vec<String>,
}

/// `[[deny]]`: one deny rule.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DenySection {
    pub name: Option<String>,
    /// Statement kinds (`StatementKind::ALL`): drop, truncate, alter_role,
    /// alter_role_password, create_role, grant, revoke, copy_program,
    /// delete_without_where, update_without_where, catalog_write, create_function,
    /// create_trigger, create_rule, create_extension, do_block, dynamic_sql.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// A regular expression over the statement text.
    pub pattern: Option<String>,
    /// Tables the statement may not touch (`table` or `schema.table`).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Connections the rule applies to (empty: all).
    #[serde(default)]
    pub connections: Vec<String>,
    /// Groups the rule applies to (empty: everyone).
    #[serde(default)]
    pub groups: Vec<String>,
    /// What the client is told.
    pub message: Option<String>,
}

/// `[gateway]`: settings shared by every connection.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Names this gateway in segment file names and the `gateway_id` column.
    pub id: Option<String>,
    /// Archive folder or URL.
    pub archive: Option<String>,
    /// The ed25519 private key that seals sessions.
    pub key: Option<PathBuf>,
    /// How often segments roll, e.g. "5s".
    pub flush_interval: Option<String>,
    /// How long live sessions may run on after SIGTERM, e.g. "10s".
    pub shutdown_grace: Option<String>,
    /// The largest single protocol message accepted from a client, in bytes.
    pub max_message_bytes: Option<usize>,
    /// The most bytes of one result that are recorded (the client still gets all).
    pub max_recorded_result_bytes: Option<usize>,
    /// The local spool folder every event is appended to before it is archived.
    pub spool: Option<PathBuf>,
    /// The most the spool may hold while the archive is unreachable (bytes, or "8GiB").
    pub spool_max_bytes: Option<ByteSize>,
    /// A segment is cut early when its spool file reaches this size.
    pub segment_max_bytes: Option<ByteSize>,
    /// The default durability of every connection: "sync" or "async".
    pub durability: Option<String>,
    /// At shutdown, how long to keep uploading before leaving the rest in the spool.
    pub drain_timeout: Option<String>,
}

/// A byte count written as a number or as text with a unit ("512MiB", "8GiB", "1GB").
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(String),
}

impl ByteSize {
    /// The number of bytes.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            ByteSize::Bytes(n) => Ok(*n),
            ByteSize::Text(t) => parse_byte_size(t),
        }
    }
}

/// Parses "1048576", "512KiB", "64MiB", "8GiB", "1TB" and the like.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024.0_f64.powi(4),
        other => {
            return Err(format!(
                "`{other}` is not a byte unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ));
        }
    };
    Ok((num * mult) as u64)
}

/// `[[connections]]`: one listener in front of one upstream.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSection {
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub upstream_password_env: Option<String>,
    pub upstream_password_file: Option<PathBuf>,
    /// `trust` (loopback only) or `secret` (per-user SCRAM verifiers in `users`).
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
    /// The databases clients may open through this connection (empty: the upstream
    /// URL's database alone, or any when the URL names none).
    #[serde(default)]
    pub databases: Vec<String>,
}

/// `[connections.oidc]`: which issuer's tokens the connection accepts and how a token
/// names its user and groups.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    /// The exact `iss` of accepted tokens.
    pub issuer: Option<String>,
    /// One audience, or a list; a token's `aud` must hold one of them.
    pub audience: Option<OneOrMany>,
    /// The issuer's key set: an https URL or a file.
    pub jwks: Option<String>,
    /// `sub` (default), `preferred_username`, `upn` or `appid`.
    pub user_claim: Option<String>,
    /// The claim listing the caller's groups (default `groups`; Azure app roles: `roles`).
    pub groups_claim: Option<String>,
    /// Tolerance for clock differences on `exp` and `nbf` (default "60s").
    pub clock_skew: Option<String>,
}

/// A TOML value written as one string or a list of strings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values, as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
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

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret itself; call only where it is sent upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// How clients prove who they are to the gateway.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// Anyone who can reach the (loopback) listener, under the user name they give.
    Trust,
    /// Per-user SCRAM-SHA-256 verifiers.
    Secrets(HashMap<String, ScramVerifier>),
    /// An OIDC token (a JWT) as the password, checked against the issuer's keys.
    Oidc(Arc<OidcValidator>),
}

/// One validated connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub name: String,
    pub protocol: Protocol,
    pub listen: SocketAddr,
    pub upstream: Upstream,
    /// The upstream password, if the upstream asks for one.
    pub upstream_password: Option<Secret>,
    pub client_auth: ClientAuth,
    /// Groups allowed on this connection; empty allows every authenticated caller.
    pub allowed_groups: Vec<String>,
    /// The databases clients may open (empty: any); a client that names none gets the
    /// first.
    pub databases: Vec<String>,
    /// Whether a result waits for its event's fsync before reaching the client.
    pub durability: Durability,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub id: String,
    pub archive: Option<String>,
    pub key: Option<PathBuf>,
    pub flush_interval: Duration,
    pub shutdown_grace: Duration,
    pub max_message_bytes: usize,
    pub max_recorded_result_bytes: usize,
    pub spool: PathBuf,
    pub spool_max_bytes: u64,
    pub segment_max_bytes: u64,
    pub drain_timeout: Duration,
    pub connections: Vec<ConnectionConfig>,
    /// Every deny rule, with the unparseable-SQL setting.
    pub deny: Arc<DenyRules>,
    /// Every masking rule, with the key of the `hash` strategy.
    pub masking: Arc<MaskRules>,
    /// Approval rules and the admin API.
    pub approvals: ApprovalsConfig,
}

/// The spool folder used when neither `--spool` nor the config names one.
pub const DEFAULT_SPOOL: &str = "./tapline-spool";

/// Where values came from, so errors can name the key or the flag.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A TOML file.
    File(PathBuf),
    /// The quick command-line flags.
    Flags,
}

impl Origin {
    fn name(&self) -> String {
        match self {
            Origin::File(p) => p.display().to_string(),
            Origin::Flags => "command line".into(),
        }
    }

    fn key(&self, index: Option<usize>, field: &str) -> String {
        match (self, index) {
            (Origin::File(_), Some(i)) => format!("connections[{i}].{field}"),
            (Origin::File(_), None) => format!("gateway.{field}"),
            // Client secrets have no quick flag: they live in a config file, and what
            // decides whether they are needed is the listen address.
            (Origin::Flags, _) if field.starts_with("users") || field == "client_auth" => {
                "--listen".to_string()
            }
            (Origin::Flags, _) => format!("--{}", field.replace('_', "-")),
        }
    }

    fn err(
        &self,
        index: Option<usize>,
        field: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            source_name: self.name(),
            key: self.key(index, field),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Parses "5s", "250ms", "1m".
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| e.to_string())
}

impl ConfigFile {
    /// Reads and parses a TOML file, reporting syntax errors and unknown keys with
    /// their line.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: path.display().to_string(),
            key: "(file)".into(),
            problem: format!("cannot be read ({e})"),
            fix: "check the path given to --config".into(),
        })?;
        toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(0);
            ConfigError {
                source_name: path.display().to_string(),
                key: format!("line {line}"),
                problem: e.message().to_string(),
                fix: "see the README's configuration reference for the accepted keys".into(),
            }
        })
    }
}

impl GatewayConfig {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::validate(ConfigFile::read(path)?, &Origin::File(path.to_path_buf()))
    }

    /// Validates a parsed configuration.
    pub fn validate(file: ConfigFile, origin: &Origin) -> Result<Self, ConfigError> {
        let g = &file.gateway;
        let id = match &g.id {
            Some(id) => {
                if id.is_empty()
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(origin.err(
                        None,
                        "id",
                        format!("`{id}` is not a valid gateway id"),
                        "use letters, digits, `-` and `_` only",
                    ));
                }
                id.clone()
            }
            None => default_gateway_id(),
        };
        let duration = |field: &str,
                        value: &Option<String>,
                        default: Duration|
         -> Result<Duration, ConfigError> {
            match value {
                None => Ok(default),
                Some(v) => parse_duration(v)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        origin.err(
                            None,
                            field,
                            format!("`{v}` is not a positive duration"),
                            "write it like \"5s\" or \"500ms\"",
                        )
                    }),
            }
        };
        let flush_interval = duration("flush_interval", &g.flush_interval, Duration::from_secs(5))?;
        let shutdown_grace =
            duration("shutdown_grace", &g.shutdown_grace, Duration::from_secs(10))?;
        let max_message_bytes = g.max_message_bytes.unwrap_or(64 << 20);
        if max_message_bytes < 1024 {
            return Err(origin.err(
                None,
                "max_message_bytes",
                "is below 1024 bytes",
                "raise it; the default is 67108864 (64 MiB)",
            ));
        }
        let max_recorded_result_bytes = g.max_recorded_result_bytes.unwrap_or(16 << 20);
        let size = |field: &str, value: &Option<ByteSize>, default: u64, min: u64| {
            let n = match value {
                None => return Ok(default),
                Some(v) => v.bytes().map_err(|problem| {
                    origin.err(
                        None,
                        field,
                        problem,
                        "write a byte count such as 8589934592 or \"8GiB\"",
                    )
                })?,
            };
            if n < min {
                return Err(origin.err(
                    None,
                    field,
                    format!("{n} bytes is below the minimum of {min}"),
                    format!("raise it; the default is {default}"),
                ));
            }
            Ok(n)
        };
        let spool_max_bytes = size("spool_max_bytes", &g.spool_max_bytes, 8 << 30, 64 << 10)?;
        let segment_max_bytes = size(
            "segment_max_bytes",
            &g.segment_max_bytes,
            64 << 20,
            64 << 10,
        )?;
        if segment_max_bytes > spool_max_bytes {
            return Err(origin.err(
                None,
                "segment_max_bytes",
                format!("{segment_max_bytes} is larger than spool_max_bytes ({spool_max_bytes})"),
                "a segment must fit in the spool; lower segment_max_bytes or raise spool_max_bytes",
            ));
        }
        let drain_timeout = duration("drain_timeout", &g.drain_timeout, Duration::from_secs(10))?;
        let default_durability = match &g.durability {
            None => Durability::default(),
            Some(d) => Durability::parse(d).ok_or_else(|| {
                origin.err(
                    None,
                    "durability",
                    format!("`{d}` is not a durability"),
                    "use \"sync\" (results wait for the spool fsync) or \"async\"",
                )
            })?,
        };
        if file.connections.is_empty() {
            return Err(origin.err(
                None,
                "connections",
                "no connection is declared",
                "add a [[connections]] table with name, protocol, listen and upstream",
            ));
        }
        let mut connections = Vec::new();
        let mut names = std::collections::HashSet::new();
        let mut listens = std::collections::HashSet::new();
        for (i, c) in file.connections.iter().enumerate() {
            let conn = validate_connection(c, i, origin, default_durability)?;
            if !names.insert(conn.name.clone()) {
                return Err(origin.err(
                    Some(i),
                    "name",
                    format!("`{}` is declared twice", conn.name),
                    "give every connection its own name",
                ));
            }
            if !listens.insert(conn.listen) {
                return Err(origin.err(
                    Some(i),
                    "listen",
                    format!("{} is used by another connection", conn.listen),
                    "give every connection its own port",
                ));
            }
            connections.push(conn);
        }
        Ok(GatewayConfig {
            id,
            archive: g.archive.clone(),
            key: g.key.clone(),
            flush_interval,
            shutdown_grace,
            max_message_bytes,
            max_recorded_result_bytes,
            spool: g
                .spool
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL)),
            spool_max_bytes,
            segment_max_bytes,
            drain_timeout,
            deny: Arc::new(deny_rules(&file, origin, &names)?),
            approvals: approvals(&file.approvals, &file.approve, &names, |o| {
                let at = |key: &str, problem: String, fix: &str| ConfigError {
                    source_name: origin.name(),
                    key: format!("approvals.{key}"),
                    problem,
                    fix: fix.to_string(),
                };
                oidc_settings(o, &at).map_err(|e| (e.key, e.problem, e.fix))
            })
            .map_err(|(key, problem, fix)| ConfigError {
                source_name: origin.name(),
                key,
                problem,
                fix,
            })?,
            masking: Arc::new(mask_rules(&file.masking, &file.mask, &names).map_err(
                |(key, problem, fix)| ConfigError {
                    source_name: origin.name(),
                    key,
                    problem,
                    fix,
                },
            )?),
            connections,
        })
    }
}

/// Validates `[policy]` and every `[[deny]]`.
fn deny_rules(
    file: &ConfigFile,
    origin: &Origin,
    connections: &std::collections::HashSet<String>,
) -> Result<DenyRules, ConfigError> {
    let at = |key: String, problem: String, fix: &str| ConfigError {
        source_name: origin.name(),
        key,
        problem,
        fix: fix.to_string(),
    };
    let mut out = DenyRules::default();
    match file.policy.unparseable_sql.as_deref() {
        None | Some("open") => {}
        Some("closed") => out.unparseable = Unparseable::Closed,
        Some(other) => {
            return Err(at(
                "policy.unparseable_sql".into(),
                format!("`{other}` is not a choice"),
                "use \"open\" or \"closed\"",
            ));
        }
    }
    if let Some(groups) = &file.policy.unparseable_closed_groups {
        out.unparseable_closed_groups = groups.clone();
    }
    for (i, f) in file.policy.allow_fast_path.iter().enumerate() {
        if f.is_empty() || f.contains('\0') || f.contains('(') {
            return Err(at(
                format!("policy.allow_fast_path[{i}]"),
                format!("`{f}` is not a function name"),
                "list function names without arguments, e.g. allow_fast_path = [\"lo_open\", \"loread\"]",
            ));
        }
    }
    out.allow_fast_path = file.policy.allow_fast_path.clone();
    for (i, e) in file.policy.client_encodings.iter().enumerate() {
        match crate::protocol::postgres::encoding::PgEncoding::by_name(e) {
            Some(enc) => out.client_encodings.push(enc.name.to_string()),
            None => {
                return Err(at(
                    format!("policy.client_encodings[{i}]"),
                    format!("`{e}` is not a PostgreSQL encoding"),
                    "use names as PostgreSQL spells them, e.g. client_encodings = [\"UTF8\", \"LATIN1\"]",
                ));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, d) in file.deny.iter().enumerate() {
        let rule = compile_rule(d, &format!("deny[{i}]"), connections).map_err(
            |(key, problem, fix)| ConfigError {
                source_name: origin.name(),
                key,
                problem,
                fix,
            },
        )?;
        if !seen.insert(rule.name.clone()) {
            return Err(at(
                format!("deny[{i}].name"),
                format!("`{}` is used twice", rule.name),
                "give every rule its own name",
            ));
        }
        out.rules.push(Arc::new(rule));
    }
    Ok(out)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn validate_connection(
    c: &ConnectionSection,
    i: usize,
    origin: &Origin,
    default_durability: Durability,
) -> Result<ConnectionConfig, ConfigError> {
    let at = |field: &str, problem: String, fix: &str| origin.err(Some(i), field, problem, fix);
    let name = c.name.clone().unwrap_or_else(|| "default".to_string());
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Err(at(
            "name",
            format!("`{name}` is not a valid connection name"),
            "use letters, digits, `-` and `_` only",
        ));
    }
    let protocol = match c.protocol.as_deref().unwrap_or("postgres") {
        "postgres" | "postgresql" => Protocol::Postgres,
        other => {
            return Err(at(
                "protocol",
                format!("`{other}` is not a supported protocol"),
                "use \"postgres\"",
            ));
        }
    };
    let listen_text = c.listen.as_deref().ok_or_else(|| {
        at(
            "listen",
            "is missing".into(),
            "set it to an address such as \"127.0.0.1:6432\"",
        )
    })?;
    let listen = listen_text
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            at(
                "listen",
                format!("`{listen_text}` is not an address"),
                "write HOST:PORT, e.g. \"127.0.0.1:6432\"",
            )
        })?;
    let upstream_text = c.upstream.as_deref().ok_or_else(|| {
        at(
            "upstream",
            "is missing".into(),
            "set it to a URL such as \"postgres://app@db.internal:5432/app\"",
        )
    })?;
    let upstream = parse_upstream(upstream_text).map_err(|problem| {
        at("upstream", problem, "write postgres://USER@HOST:PORT/DATABASE (the password goes in upstream_password_env or upstream_password_file, never in the URL)")
    })?;
    let upstream_password = match (&c.upstream_password_env, &c.upstream_password_file) {
        (Some(_), Some(_)) => {
            return Err(at(
                "upstream_password_env",
                "and upstream_password_file are both set".into(),
                "keep only one",
            ));
        }
        (Some(var), None) => Some(Secret(std::env::var(var).map_err(|_| {
            at(
                "upstream_password_env",
                format!("names ${var}, which is not set"),
                "export the variable before starting the gateway",
            )
        })?)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                at(
                    "upstream_password_file",
                    format!("{} cannot be read ({e})", path.display()),
                    "check the path and its permissions",
                )
            })?;
            Some(Secret(text.trim_end_matches(['\r', '\n']).to_string()))
        }
        (None, None) => None,
    };
    let mut verifiers = HashMap::new();
    for (user, text) in &c.users {
        let v = ScramVerifier::parse(text).map_err(|problem| {
            at(
                &format!("users.{user}"),
                format!("is not a SCRAM-SHA-256 verifier: {problem}"),
                "generate one with `tapline hash-secret`",
            )
        })?;
        verifiers.insert(user.clone(), v);
    }
    let loopback = listen.ip().is_loopback();
    let client_auth = match (c.client_auth.as_deref(), &c.oidc) {
        (Some("oidc") | None, Some(section)) => {
            ClientAuth::Oidc(Arc::new(OidcValidator::new(oidc_settings(section, &at)?)))
        }
        (Some("oidc"), None) => {
            return Err(at(
                "oidc",
                "is missing but client_auth is \"oidc\"".into(),
                "add a [connections.oidc] table with issuer, audience and jwks",
            ));
        }
        (Some(other), Some(_)) => {
            return Err(at(
                "oidc",
                format!("is set but client_auth is \"{other}\""),
                "set client_auth = \"oidc\" or remove [connections.oidc]",
            ));
        }
        (method, None) => match method {
            Some("trust") if !loopback => {
                return Err(at(
                    "client_auth",
                    format!("`trust` is refused because {listen} is not a loopback address"),
                    "listen on 127.0.0.1 or ::1, or use client_auth = \"secret\" with [connections.users]",
                ));
            }
            Some("trust") => ClientAuth::Trust,
            Some("secret") | None if !verifiers.is_empty() => ClientAuth::Secrets(verifiers),
            Some("secret") => {
                return Err(at(
                    "users",
                    "is empty but client_auth is \"secret\"".into(),
                    "add `USER = \"SCRAM-SHA-256$…\"` entries made with `tapline hash-secret`",
                ));
            }
            None if loopback => ClientAuth::Trust,
            None => {
                return Err(at(
                    "users",
                    format!(
                        "is empty, and {listen} is not a loopback address, so clients cannot be trusted"
                    ),
                    "add per-user secrets made with `tapline hash-secret` ([connections.users] in a --config file), or listen on 127.0.0.1",
                ));
            }
            Some(other) => {
                return Err(at(
                    "client_auth",
                    format!("`{other}` is not a client authentication method"),
                    "use \"trust\" (loopback only), \"secret\" or \"oidc\"",
                ));
            }
        },
    };
    let durability = match c.durability.as_deref() {
        None => default_durability,
        Some(d) => Durability::parse(d).ok_or_else(|| {
            at(
                "durability",
                format!("`{d}` is not a durability"),
                "use \"sync\" (results wait for the spool fsync) or \"async\"",
            )
        })?,
    };
    let mut databases: Vec<String> = Vec::new();
    if let Some(db) = &upstream.database {
        databases.push(db.clone());
    }
    for db in &c.databases {
        if db.is_empty() || db.contains('\0') {
            return Err(at(
                "databases",
                format!("holds `{db}`, which is not a database name"),
                "list database names, e.g. databases = [\"orders\", \"orders_ro\"]",
            ));
        }
        if !databases.contains(db) {
            databases.push(db.clone());
        }
    }
    Ok(ConnectionConfig {
        name,
        protocol,
        listen,
        upstream,
        upstream_password,
        client_auth,
        allowed_groups: c.allowed_groups.clone(),
        databases,
        durability,
    })
}

/// Validates `[connections.oidc]`.
fn oidc_settings(
    s: &OidcSection,
    at: &dyn Fn(&str, String, &str) -> ConfigError,
) -> Result<OidcSettings, ConfigError> {
    let issuer = s.issuer.clone().filter(|i| !i.is_empty()).ok_or_else(|| {
        at(
            "oidc.issuer",
            "is missing".into(),
            "set it to the exact `iss` of your identity provider's tokens",
        )
    })?;
    let audiences = s
        .audience
        .clone()
        .map(OneOrMany::into_vec)
        .unwrap_or_default();
    if audiences.is_empty() {
        return Err(at(
            "oidc.audience",
            "is missing".into(),
            "set it to the audience (client id or API URI) your tokens are issued for",
        ));
    }
    let jwks_text = s.jwks.as_deref().ok_or_else(|| {
        at(
            "oidc.jwks",
            "is missing".into(),
            "set it to the issuer's JWKS URL (https://…) or a file holding it",
        )
    })?;
    let jwks = JwksSource::parse(jwks_text)
        .map_err(|problem| at("oidc.jwks", problem, "use an https URL or a file path"))?;
    let user_claim = match s.user_claim.as_deref() {
        None => UserClaim::Sub,
        Some(c) => UserClaim::parse(c).ok_or_else(|| {
            at(
                "oidc.user_claim",
                format!("`{c}` is not a user claim tapline reads"),
                "use sub, preferred_username, upn or appid",
            )
        })?,
    };
    let clock_skew = match s.clock_skew.as_deref() {
        None => crate::identity::oidc::DEFAULT_CLOCK_SKEW,
        Some(t) => parse_duration(t).map_err(|e| {
            at(
                "oidc.clock_skew",
                format!("`{t}` is not a duration ({e})"),
                "write it like \"60s\"",
            )
        })?,
    };
    Ok(OidcSettings {
        issuer,
        audiences,
        jwks,
        user_claim,
        groups_claim: s.groups_claim.clone().unwrap_or_else(|| "groups".into()),
        clock_skew,
    })
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

/// The machine's host name, made safe for file names; "gateway" if unknown.
pub fn default_gateway_id() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let id: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() { "gateway".into() } else { id }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(listen: &str) -> ConnectionSection {
        ConnectionSection {
            name: Some("pg".into()),
            listen: Some(listen.into()),
            upstream: Some("postgres://app@127.0.0.1:5432/appdb".into()),
            ..Default::default()
        }
    }

    fn validate(c: ConnectionSection) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::validate(
            ConfigFile {
                gateway: GatewaySection::default(),
                connections: vec![c],
                ..Default::default()
            },
            &Origin::File("t.toml".into()),
        )
    }

    #[test]
    fn deny_rules_are_checked_up_front() {
        let parse = |body: &str| {
            let text = format!(
                "[[connections]]\nname = \"orders\"\nlisten = \"127.0.0.1:6432\"\nupstream = \"postgres://u@127.0.0.1:5432/db\"\n{body}"
            );
            let file: ConfigFile = toml::from_str(&text).unwrap();
            GatewayConfig::validate(file, &Origin::File("t.toml".into()))
        };
        let ok =
            parse("[[deny]]\nname = \"no-drop\"\nkinds = [\"drop\"]\nconnections = [\"orders\"]\n")
                .unwrap();
        assert_eq!(ok.deny.rules.len(), 1);
        assert!(ok.deny.rules[0].message.contains("no-drop"));
        let err = parse("[[deny]]\nname = \"x\"\nkinds = [\"dorp\"]\n").unwrap_err();
        assert_eq!(err.key, "deny[0].kinds");
        assert!(err.problem.contains("`dorp`"), "{err}");
        let err = parse("[[deny]]\nname = \"x\"\n").unwrap_err();
        assert!(err.problem.contains("matches nothing"), "{err}");
        let err = parse("[[deny]]\nname = \"x\"\npattern = \"(\"\n").unwrap_err();
        assert_eq!(err.key, "deny[0].pattern");
        let err = parse("[[deny]]\nname = \"x\"\nkinds = [\"drop\"]\nconnections = [\"nope\"]\n")
            .unwrap_err();
        assert!(err.problem.contains("`nope`"), "{err}");
        let err = parse("[policy]\nunparseable_sql = \"maybe\"\n").unwrap_err();
        assert_eq!(err.key, "policy.unparseable_sql");
    }

    #[test]
    fn loopback_without_secrets_is_trusted() {
        let cfg = validate(conn("127.0.0.1:6432")).unwrap();
        assert!(matches!(cfg.connections[0].client_auth, ClientAuth::Trust));
        assert_eq!(
            cfg.connections[0].upstream.database.as_deref(),
            Some("appdb")
        );
    }

    #[test]
    fn a_public_listener_without_secrets_is_refused_with_a_fix() {
        let err = validate(conn("0.0.0.0:6432")).unwrap_err().to_string();
        assert!(err.contains("t.toml"), "{err}");
        assert!(err.contains("connections[0].users"), "{err}");
        assert!(err.contains("hash-secret"), "{err}");
        let mut c = conn("0.0.0.0:6432");
        c.client_auth = Some("trust".into());
        assert!(validate(c).unwrap_err().to_string().contains("loopback"));
    }

    #[test]
    fn passwords_in_upstream_urls_and_bad_verifiers_are_refused() {
        let mut c = conn("127.0.0.1:6432");
        c.upstream = Some("postgres://app:pw@127.0.0.1/db".into());
        assert!(validate(c).unwrap_err().to_string().contains("password"));
        let mut c = conn("127.0.0.1:6432");
        c.users.insert("alice".into(), "plain".into());
        assert!(validate(c).unwrap_err().to_string().contains("users.alice"));
        let mut c = conn("127.0.0.1:6432");
        c.upstream_password_env = Some("TAPLINE_TEST_SURELY_UNSET".into());
        assert!(validate(c).unwrap_err().to_string().contains("not set"));
    }

    #[test]
    fn spool_sizes_and_durability_are_validated_with_the_key_named() {
        assert_eq!(parse_byte_size("512KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_byte_size("8GiB").unwrap(), 8 << 30);
        assert_eq!(parse_byte_size("1.5MB").unwrap(), 1_500_000);
        assert!(parse_byte_size("lots").is_err());
        assert!(parse_byte_size("3 parsecs").is_err());

        let with = |gateway: GatewaySection, durability: Option<&str>| {
            let mut c = conn("127.0.0.1:6432");
            c.durability = durability.map(str::to_string);
            GatewayConfig::validate(
                ConfigFile {
                    gateway,
                    connections: vec![c],
                    ..Default::default()
                },
                &Origin::File("t.toml".into()),
            )
        };
        let ok = with(
            GatewaySection {
                durability: Some("sync".into()),
                spool_max_bytes: Some(ByteSize::Text("1GiB".into())),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(ok.connections[0].durability, Durability::Sync);
        assert_eq!(ok.spool_max_bytes, 1 << 30);
        let own = with(
            GatewaySection {
                durability: Some("sync".into()),
                ..Default::default()
            },
            Some("async"),
        )
        .unwrap();
        assert_eq!(own.connections[0].durability, Durability::Async);

        let err = with(GatewaySection::default(), Some("eventually")).unwrap_err();
        assert_eq!(err.key, "connections[0].durability");
        let err = with(
            GatewaySection {
                spool_max_bytes: Some(ByteSize::Bytes(1000)),
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert_eq!(err.key, "gateway.spool_max_bytes");
        let err = with(
            GatewaySection {
                spool_max_bytes: Some(ByteSize::Text("1MiB".into())),
                segment_max_bytes: Some(ByteSize::Text("2MiB".into())),
                ..Default::default()
            },
            None,
        )
        .unwrap_err();
        assert_eq!(err.key, "gateway.segment_max_bytes");
    }

    #[test]
    fn quick_flags_name_the_flag_at_fault() {
        let err = GatewayConfig::validate(
            ConfigFile {
                gateway: GatewaySection::default(),
                connections: vec![conn("0.0.0.0:6432")],
                ..Default::default()
            },
            &Origin::Flags,
        )
        .unwrap_err();
        assert_eq!(err.source_name, "command line");
        assert_eq!(err.key, "--listen");
        assert!(err.fix.contains("--config"), "{err}");
    }

    #[test]
    fn unknown_keys_are_reported_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.toml");
        std::fs::write(&p, "[gateway]\nflush = \"5s\"\n").unwrap();
        let err = GatewayConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("flush"), "{err}");
    }
}
