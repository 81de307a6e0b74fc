//! `[approvals]` (the admin API and its callers) and `[[approve]]` (the rules), and
//! their validation. A rule set nobody could decide (no token, no OIDC) and an admin
//! API listening off loopback without TLS are refused before the gateway starts.

use super::admin_auth::{AdminAuth, AdminToken};
use super::rules::{ApprovalRule, ApprovalRules, Scope};
use crate::config::ConfigError;
use crate::config::KeyPrefix;
use crate::identity::config::{OidcSection, oidc_settings};
use crate::policy::guard::config::{DenySection, compile_rule};
use crate::policy::guard::{DenyRules, Unparseable};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the admin API listens unless `[approvals] listen` says otherwise.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9470";

/// How long a held statement waits unless its rule says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// `[approvals]`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSection {
    /// The admin API's address [default: 127.0.0.1:9470].
    pub listen: Option<String>,
    /// How long a statement is held before it is refused [default: "5m"].
    pub timeout: Option<String>,
    /// PEM certificate chain and key: required when `listen` is not loopback.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `[[approvals.tokens]]`: bearer tokens and who they stand for.
    #[serde(default)]
    pub tokens: Vec<AdminTokenSection>,
    /// `[approvals.oidc]`: accept OIDC tokens as bearer tokens too.
    pub oidc: Option<OidcSection>,
}

/// `[[approvals.tokens]]`.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenSection {
    pub user: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The variable holding the token.
    pub token_env: Option<String>,
    /// Or the token's SHA-256, in hex (so the config holds no secret).
    pub token_sha256: Option<String>,
}

/// `[[approve]]`: a deny rule's matching fields, plus who decides and how long. The
/// matching fields are spelled out rather than flattened from `DenySection`, because
/// serde cannot refuse unknown keys in a flattened struct, and a mistyped key must be
/// reported, not ignored.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ApproveSection {
    pub name: Option<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
    pub pattern: Option<String>,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub connections: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// What the client is told when the statement is denied or times out.
    pub message: Option<String>,
    /// Groups whose members may approve or deny.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// "onetime" (default) or "session".
    pub scope: Option<String>,
    /// Overrides `[approvals] timeout` for this rule.
    pub timeout: Option<String>,
}

/// The validated approval settings.
#[derive(Debug, Clone, Default)]
pub struct ApprovalsConfig {
    pub rules: Arc<ApprovalRules>,
    /// `None` when there is no rule and no token: no admin API is served.
    pub admin: Option<AdminConfig>,
}

/// The admin API's settings.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub auth: Arc<AdminAuth>,
}

fn problem(key: impl Into<String>, what: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::at(key, what, fix)
}

/// Validates the approval sections.
pub fn approvals(
    section: &ApprovalsSection,
    rules: &[ApproveSection],
    connections: &HashSet<String>,
) -> Result<ApprovalsConfig, ConfigError> {
    let default_timeout = match &section.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => crate::config::parse_duration(t).map_err(|e| {
            problem(
                "approvals.timeout",
                format!("`{t}` is not a duration ({e})"),
                "write it like \"5m\"",
            )
        })?,
    };
    let mut matcher = DenyRules {
        rules: Vec::new(),
        unparseable: Unparseable::Open,
        unparseable_closed_groups: Vec::new(),
        allow_fast_path: Vec::new(),
        client_encodings: Vec::new(),
    };
    let mut by_name = HashMap::new();
    for (i, a) in rules.iter().enumerate() {
        let prefix = format!("approve[{i}]");
        let d = DenySection {
            name: a.name.clone(),
            kinds: a.kinds.clone(),
            pattern: a.pattern.clone(),
            tables: a.tables.clone(),
            connections: a.connections.clone(),
            groups: a.groups.clone(),
            message: a.message.clone(),
        };
        let mut rule = compile_rule(&d, &prefix, connections)?;
        if a.message.is_none() {
            rule.message = format!(
                "tapline rule `{}` needs an approval for this statement",
                rule.name
            );
        }
        if a.approvers.is_empty() {
            return Err(problem(
                format!("{prefix}.approvers"),
                "is empty",
                "name the groups whose members may approve, e.g. approvers = [\"dba-leads\"]",
            ));
        }
        let scope = match a.scope.as_deref() {
            None => Scope::Onetime,
            Some(s) => Scope::parse(s).ok_or_else(|| {
                problem(
                    format!("{prefix}.scope"),
                    format!("`{s}` is not a scope"),
                    "use \"onetime\" or \"session\"",
                )
            })?,
        };
        let timeout = match &a.timeout {
            None => default_timeout,
            Some(t) => crate::config::parse_duration(t).map_err(|e| {
                problem(
                    format!("{prefix}.timeout"),
                    format!("`{t}` is not a duration ({e})"),
                    "write it like \"5m\"",
                )
            })?,
        };
        if by_name.contains_key(&rule.name) {
            return Err(problem(
                format!("{prefix}.name"),
                format!("`{}` is used twice", rule.name),
                "give every rule its own name",
            ));
        }
        by_name.insert(
            rule.name.clone(),
            ApprovalRule {
                name: rule.name.clone(),
                approvers: a.approvers.clone(),
                scope,
                timeout,
            },
        );
        matcher.rules.push(Arc::new(rule));
    }
    let mut tokens = Vec::new();
    for (i, t) in section.tokens.iter().enumerate() {
        let key = |f: &str| format!("approvals.tokens[{i}].{f}");
        let user = t.user.clone().filter(|u| !u.is_empty()).ok_or_else(|| {
            problem(
                key("user"),
                "is missing",
                "name who the token stands for; decisions are recorded under it",
            )
        })?;
        let digest = match (&t.token_env, &t.token_sha256) {
            (Some(var), None) => {
                let token = std::env::var(var).map_err(|_| {
                    problem(
                        key("token_env"),
                        format!("names ${var}, which is not set"),
                        format!("export {var}"),
                    )
                })?;
                if token.len() < 16 {
                    return Err(problem(
                        key("token_env"),
                        format!("${var} holds {} characters, fewer than 16", token.len()),
                        "use a long random token (e.g. `openssl rand -hex 32`)",
                    ));
                }
                AdminToken::digest(&token)
            }
            (None, Some(hexed)) => {
                let bytes = hex::decode(hexed)
                    .ok()
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| {
                        problem(
                            key("token_sha256"),
                            "is not 64 hex digits",
                            "use `printf %s TOKEN | sha256sum`",
                        )
                    })?;
                let mut d = [0u8; 32];
                d.copy_from_slice(&bytes);
                d
            }
            _ => {
                return Err(problem(
                    key("token_env"),
                    "exactly one of token_env and token_sha256 must be set",
                    "keep one of the two",
                ));
            }
        };
        tokens.push(AdminToken {
            digest,
            user,
            groups: t.groups.clone(),
        });
    }
    let oidc = match &section.oidc {
        None => None,
        Some(o) => Some(crate::identity::OidcValidator::new(oidc_settings(
            o,
            KeyPrefix("approvals.oidc"),
        )?)),
    };
    let wanted = !by_name.is_empty() || !tokens.is_empty() || oidc.is_some();
    if !by_name.is_empty() && tokens.is_empty() && oidc.is_none() {
        return Err(problem(
            "approvals.tokens",
            "approval rules are set but nobody can sign in to decide",
            "add [[approvals.tokens]] or [approvals.oidc]",
        ));
    }
    let admin = if wanted {
        let text = section.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN);
        let listen: SocketAddr = text.parse().map_err(|_| {
            problem(
                "approvals.listen",
                format!("`{text}` is not an address"),
                "write it like \"127.0.0.1:9470\"",
            )
        })?;
        let tls = match (&section.tls_cert, &section.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => {
                return Err(problem(
                    "approvals.tls_cert",
                    "tls_cert and tls_key go together",
                    "set both, or neither",
                ));
            }
        };
        if tls.is_none() && !listen.ip().is_loopback() {
            return Err(problem(
                "approvals.listen",
                format!("{listen} is not loopback, and the admin API carries bearer tokens"),
                "set tls_cert and tls_key, or listen on 127.0.0.1",
            ));
        }
        Some(AdminConfig {
            listen,
            tls,
            auth: Arc::new(AdminAuth::new(tokens, oidc)),
        })
    } else {
        None
    };
    Ok(ApprovalsConfig {
        rules: Arc::new(ApprovalRules {
            matcher,
            rules: by_name,
        }),
        admin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns() -> HashSet<String> {
        ["pg".to_string()].into_iter().collect()
    }

    fn rule() -> ApproveSection {
        ApproveSection {
            name: Some("writes".into()),
            kinds: vec!["update_without_where".into()],
            approvers: vec!["dba".into()],
            ..Default::default()
        }
    }

    fn token() -> AdminTokenSection {
        AdminTokenSection {
            user: Some("olivia".into()),
            groups: vec!["dba".into()],
            token_sha256: Some("ab".repeat(32)),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_setup_serves_the_admin_api_on_loopback() {
        let s = ApprovalsSection {
            tokens: vec![token()],
            ..Default::default()
        };
        let c = approvals(&s, &[rule()], &conns()).unwrap();
        let admin = c.admin.unwrap();
        assert_eq!(admin.listen.to_string(), DEFAULT_ADMIN_LISTEN);
        assert_eq!(c.rules.rules["writes"].timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.rules.rules["writes"].scope, Scope::Onetime);
    }

    #[test]
    fn mistakes_are_named() {
        let check = |s: ApprovalsSection, r: Vec<ApproveSection>, key: &str, says: &str| {
            let ConfigError {
                key: k, problem: p, ..
            } = approvals(&s, &r, &conns()).unwrap_err();
            assert_eq!(k, key);
            assert!(p.contains(says), "{p}");
        };
        let with_token = || ApprovalsSection {
            tokens: vec![token()],
            ..Default::default()
        };
        check(
            ApprovalsSection::default(),
            vec![rule()],
            "approvals.tokens",
            "nobody",
        );
        let mut r = rule();
        r.approvers.clear();
        check(with_token(), vec![r], "approve[0].approvers", "empty");
        let mut r = rule();
        r.scope = Some("forever".into());
        check(with_token(), vec![r], "approve[0].scope", "forever");
        let mut s = with_token();
        s.listen = Some("0.0.0.0:9470".into());
        check(s, vec![rule()], "approvals.listen", "not loopback");
        let mut s = with_token();
        s.tokens[0].token_sha256 = Some("xyz".into());
        check(s, vec![rule()], "approvals.tokens[0].token_sha256", "hex");
    }
}
