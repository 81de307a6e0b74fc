//! `oidc` tables (`[connections.oidc]`, `[approvals.oidc]`): which issuer's tokens are
//! accepted and how a token names its user and groups, and their validation.

use super::oidc::DEFAULT_CLOCK_SKEW;
use super::{JwksSource, OidcSettings, UserClaim};
use crate::config::{ConfigError, KeyPrefix, parse_duration};
use serde::Deserialize;

/// An `oidc` table.
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

/// Validates an `oidc` table whose keys are reported under `at` (e.g.
/// `connections[0].oidc`).
pub fn oidc_settings(s: &OidcSection, at: KeyPrefix<'_>) -> Result<OidcSettings, ConfigError> {
    let issuer = s.issuer.clone().filter(|i| !i.is_empty()).ok_or_else(|| {
        at.err(
            "issuer",
            "is missing",
            "set it to the exact `iss` of your identity provider's tokens",
        )
    })?;
    let audiences = s
        .audience
        .clone()
        .map(OneOrMany::into_vec)
        .unwrap_or_default();
    if audiences.is_empty() {
        return Err(at.err(
            "audience",
            "is missing",
            "set it to the audience (client id or API URI) your tokens are issued for",
        ));
    }
    let jwks_text = s.jwks.as_deref().ok_or_else(|| {
        at.err(
            "jwks",
            "is missing",
            "set it to the issuer's JWKS URL (https://…) or a file holding it",
        )
    })?;
    let jwks = JwksSource::parse(jwks_text)
        .map_err(|problem| at.err("jwks", problem, "use an https URL or a file path"))?;
    let user_claim = match s.user_claim.as_deref() {
        None => UserClaim::Sub,
        Some(c) => UserClaim::parse(c).ok_or_else(|| {
            at.err(
                "user_claim",
                format!("`{c}` is not a user claim tapline reads"),
                "use sub, preferred_username, upn or appid",
            )
        })?,
    };
    let clock_skew = match s.clock_skew.as_deref() {
        None => DEFAULT_CLOCK_SKEW,
        Some(t) => parse_duration(t).map_err(|e| {
            at.err(
                "clock_skew",
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
