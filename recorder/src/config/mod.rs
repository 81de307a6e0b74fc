//! Gateway configuration: the TOML file and the quick command-line flags, validated
//! once, up front, into one shape.
//!
//! Every problem is reported with where it is (the file and key, or the flag), what is
//! wrong and what to do, before the gateway accepts a single connection. Each section
//! is read where its meaning lives: `[[connections]]` here and in its protocol's
//! folder, `[policy]`/`[[deny]]` in `policy::guard::config`, `[masking]`/`[[mask]]` in
//! `policy::mask::config`, `[approvals]`/`[[approve]]` in `approvals::config`, and
//! `oidc` tables in `identity::config`.

pub mod byte_size;
pub mod client_auth;
pub mod connection;
pub mod error;
pub mod origin;
pub mod secret;

pub use byte_size::{ByteSize, parse_byte_size};
pub use client_auth::ClientAuth;
pub use connection::{
    ConnectionConfig, ConnectionSection, ListenerSection, Protocol, ProtocolConfig, ProtocolSection,
};
pub use error::{ConfigError, KeyPrefix};
pub use origin::Origin;
pub use secret::Secret;

use crate::approvals::config::{ApprovalsConfig, ApprovalsSection, ApproveSection, approvals};
use crate::policy::guard::DenyRules;
use crate::policy::guard::config::{DenySection, PolicySection, deny_rules};
use crate::policy::mask::config::{MaskSection, MaskingSection, mask_rules};
use crate::policy::mask::rules::MaskRules;
use origin::line_of;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tapline_store::Durability;

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
        Self::check(file).map_err(|e| origin.tell(e))
    }

    /// Validates a parsed configuration, reporting keys as the file spells them.
    fn check(file: ConfigFile) -> Result<Self, ConfigError> {
        let gw = |field: &str, problem: String, fix: String| {
            ConfigError::at(format!("gateway.{field}"), problem, fix)
        };
        let g = &file.gateway;
        let id = match &g.id {
            Some(id) => {
                if id.is_empty()
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(gw(
                        "id",
                        format!("`{id}` is not a valid gateway id"),
                        "use letters, digits, `-` and `_` only".into(),
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
                        gw(
                            field,
                            format!("`{v}` is not a positive duration"),
                            "write it like \"5s\" or \"500ms\"".into(),
                        )
                    }),
            }
        };
        let flush_interval = duration("flush_interval", &g.flush_interval, Duration::from_secs(5))?;
        let shutdown_grace =
            duration("shutdown_grace", &g.shutdown_grace, Duration::from_secs(10))?;
        let max_message_bytes = g.max_message_bytes.unwrap_or(64 << 20);
        if max_message_bytes < 1024 {
            return Err(gw(
                "max_message_bytes",
                "is below 1024 bytes".into(),
                "raise it; the default is 67108864 (64 MiB)".into(),
            ));
        }
        let max_recorded_result_bytes = g.max_recorded_result_bytes.unwrap_or(16 << 20);
        let size = |field: &str, value: &Option<ByteSize>, default: u64, min: u64| {
            let n = match value {
                None => return Ok(default),
                Some(v) => v.bytes().map_err(|problem| {
                    gw(
                        field,
                        problem,
                        "write a byte count such as 8589934592 or \"8GiB\"".into(),
                    )
                })?,
            };
            if n < min {
                return Err(gw(
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
            return Err(gw(
                "segment_max_bytes",
                format!("{segment_max_bytes} is larger than spool_max_bytes ({spool_max_bytes})"),
                "a segment must fit in the spool; lower segment_max_bytes or raise spool_max_bytes"
                    .into(),
            ));
        }
        let drain_timeout = duration("drain_timeout", &g.drain_timeout, Duration::from_secs(10))?;
        let default_durability = match &g.durability {
            None => Durability::default(),
            Some(d) => Durability::parse(d).ok_or_else(|| {
                gw(
                    "durability",
                    format!("`{d}` is not a durability"),
                    "use \"sync\" (results wait for the spool fsync) or \"async\"".into(),
                )
            })?,
        };
        if file.connections.is_empty() {
            return Err(gw(
                "connections",
                "no connection is declared".into(),
                "add a [[connections]] table with name, protocol, listen and upstream".into(),
            ));
        }
        let mut connections = Vec::new();
        let mut names = std::collections::HashSet::new();
        let mut listens = std::collections::HashSet::new();
        for (i, c) in file.connections.iter().enumerate() {
            let conn = c.validate(i, default_durability)?;
            let at = format!("connections[{i}]");
            let at = KeyPrefix(&at);
            if !names.insert(conn.name.clone()) {
                return Err(at.err(
                    "name",
                    format!("`{}` is declared twice", conn.name),
                    "give every connection its own name",
                ));
            }
            if !listens.insert(conn.listen) {
                return Err(at.err(
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
            deny: Arc::new(deny_rules(&file.policy, &file.deny, &names)?),
            approvals: approvals(&file.approvals, &file.approve, &names)?,
            masking: Arc::new(mask_rules(&file.masking, &file.mask, &names)?),
            connections,
        })
    }
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

    use crate::protocol::postgres::config::PostgresSection;

    fn conn(listen: &str) -> ConnectionSection {
        ConnectionSection {
            listener: ListenerSection {
                name: Some("pg".into()),
                listen: Some(listen.into()),
                ..Default::default()
            },
            protocol: ProtocolSection::Postgres(PostgresSection {
                upstream: Some("postgres://app@127.0.0.1:5432/appdb".into()),
                ..Default::default()
            }),
        }
    }

    fn pg(c: &mut ConnectionSection) -> &mut PostgresSection {
        let ProtocolSection::Postgres(p) = &mut c.protocol;
        p
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
            cfg.connections[0]
                .postgres()
                .unwrap()
                .upstream
                .database
                .as_deref(),
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
        c.listener.client_auth = Some("trust".into());
        assert!(validate(c).unwrap_err().to_string().contains("loopback"));
    }

    #[test]
    fn passwords_in_upstream_urls_and_bad_verifiers_are_refused() {
        let mut c = conn("127.0.0.1:6432");
        pg(&mut c).upstream = Some("postgres://app:pw@127.0.0.1/db".into());
        assert!(validate(c).unwrap_err().to_string().contains("password"));
        let mut c = conn("127.0.0.1:6432");
        c.listener.users.insert("alice".into(), "plain".into());
        assert!(validate(c).unwrap_err().to_string().contains("users.alice"));
        let mut c = conn("127.0.0.1:6432");
        pg(&mut c).upstream_password_env = Some("TAPLINE_TEST_SURELY_UNSET".into());
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
            c.listener.durability = durability.map(str::to_string);
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
