//! The `[masking]` and `[[mask]]` sections of the gateway config, and their
//! validation into `MaskRules`. Every mistake is reported with the key at fault and
//! what to write instead, before the gateway starts.

use super::column_pattern::ColumnPattern;
use super::detectors::Detector;
use super::rules::{MaskRule, MaskRules};
use super::strategy::Strategy;
use crate::config::ConfigError;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;

/// `[masking]`: settings shared by every mask rule.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingSection {
    /// A file whose contents key the `hash` strategy (so several gateways give the
    /// same tokens); by default the key is derived from the gateway's signing key.
    pub hash_key_file: Option<PathBuf>,
    /// An environment variable holding that key instead.
    pub hash_key_env: Option<String>,
}

/// `[[mask]]`: one masking rule.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct MaskSection {
    pub name: Option<String>,
    /// Column globs: `*card*`, `ssn`, `customers.ssn`, `sales.customers.ssn`.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Built-in detectors by name.
    #[serde(default)]
    pub detectors: Vec<String>,
    /// A detector of one's own: a regular expression.
    pub pattern: Option<String>,
    /// redact, partial, hash or null.
    pub strategy: Option<String>,
    /// For `partial`: how many trailing characters stay visible [default: 4].
    pub keep: Option<usize>,
    #[serde(default)]
    pub connections: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub exempt_groups: Vec<String>,
    #[serde(default)]
    pub record_raw: bool,
    /// Whether the rule's detectors also mask the recorded command text, bind
    /// parameters and COPY input [default: true]; the upstream always gets them as sent.
    pub scrub_commands: Option<bool>,
}

/// Validates the masking sections; `connections` are the declared connection names.
pub fn mask_rules(
    masking: &MaskingSection,
    sections: &[MaskSection],
    connections: &HashSet<String>,
) -> Result<MaskRules, ConfigError> {
    let err = |key: String, problem: String, fix: &str| ConfigError::at(key, problem, fix);
    let hash_key = hash_key(masking)?;
    let mut rules = Vec::new();
    let mut seen = HashSet::new();
    for (i, m) in sections.iter().enumerate() {
        let key = |field: &str| format!("mask[{i}].{field}");
        let name = m.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
            err(
                key("name"),
                "is missing".into(),
                "give every mask rule a name; it is recorded with each value it masks",
            )
        })?;
        if !seen.insert(name.clone()) {
            return Err(err(
                key("name"),
                format!("`{name}` is used twice"),
                "give every mask rule its own name",
            ));
        }
        let strategy = match m.strategy.as_deref() {
            None => {
                return Err(err(
                    key("strategy"),
                    "is missing".into(),
                    "set strategy = \"redact\", \"partial\", \"hash\" or \"null\"",
                ));
            }
            Some(s) => {
                Strategy::parse(s, m.keep, hash_key.unwrap_or_default()).ok_or_else(|| {
                    err(
                        key("strategy"),
                        format!("`{s}` is not a strategy"),
                        "use redact, partial, hash or null",
                    )
                })?
            }
        };
        if m.keep.is_some() && !matches!(strategy, Strategy::Partial { .. }) {
            return Err(err(
                key("keep"),
                "only applies to strategy = \"partial\"".into(),
                "remove keep, or use strategy = \"partial\"",
            ));
        }
        let mut columns = Vec::new();
        for c in &m.columns {
            columns.push(
                ColumnPattern::parse(c)
                    .map_err(|e| err(key("columns"), e, "fix the column pattern"))?,
            );
        }
        let mut detectors = Vec::new();
        for d in &m.detectors {
            detectors.push(Detector::parse(d).ok_or_else(|| {
                err(
                    key("detectors"),
                    format!("`{d}` is not a detector"),
                    &format!("use one of {}", Detector::BUILT_IN.join(", ")),
                )
            })?);
        }
        if let Some(p) = &m.pattern {
            let custom = Detector::Custom {
                name: name.clone(),
                pattern: p.clone(),
            };
            custom.compile().map_err(|e| {
                err(
                    key("pattern"),
                    format!("is not a regular expression: {e}"),
                    "fix the pattern (Rust regex syntax)",
                )
            })?;
            detectors.push(custom);
        }
        if columns.is_empty() && detectors.is_empty() {
            return Err(err(
                key("columns"),
                "the rule masks nothing".into(),
                "set columns, detectors or pattern",
            ));
        }
        if let Some(c) = m.connections.iter().find(|c| !connections.contains(*c)) {
            return Err(err(
                key("connections"),
                format!("`{c}` is not a declared connection"),
                "use the name of a [[connections]] entry",
            ));
        }
        if m.record_raw && m.exempt_groups.is_empty() {
            return Err(err(
                key("record_raw"),
                "has no effect without exempt_groups".into(),
                "name the exempt_groups whose raw values may be recorded, or remove record_raw",
            ));
        }
        rules.push(MaskRule {
            name,
            columns,
            detectors,
            strategy,
            connections: m.connections.clone(),
            groups: m.groups.clone(),
            exempt_groups: m.exempt_groups.clone(),
            record_raw: m.record_raw,
            scrub_commands: m.scrub_commands.unwrap_or(true),
        });
    }
    let out = MaskRules::new(rules, hash_key.unwrap_or_default());
    out.check()
        .map_err(|e| err("mask".into(), e, "fix the rule named"))?;
    Ok(out)
}

/// The configured hash key, if any (32 bytes derived from whatever the file or
/// variable holds, so any secret of enough length will do).
fn hash_key(masking: &MaskingSection) -> Result<Option<[u8; 32]>, ConfigError> {
    let secret = match (&masking.hash_key_file, &masking.hash_key_env) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::at(
                "masking.hash_key_env",
                "is set together with hash_key_file",
                "keep one of the two",
            ));
        }
        (Some(path), None) => std::fs::read(path).map_err(|e| {
            ConfigError::at(
                "masking.hash_key_file",
                format!("cannot read {}: {e}", path.display()),
                "point it at a readable file holding at least 32 random bytes",
            )
        })?,
        (None, Some(var)) => std::env::var(var)
            .map_err(|_| {
                ConfigError::at(
                    "masking.hash_key_env",
                    format!("names ${var}, which is not set"),
                    format!("export {var} with at least 32 random characters"),
                )
            })?
            .into_bytes(),
        (None, None) => return Ok(None),
    };
    if secret.len() < 32 {
        return Err(ConfigError::at(
            "masking",
            format!("the hash key holds {} bytes, fewer than 32", secret.len()),
            "use at least 32 random bytes (e.g. `head -c 32 /dev/urandom | base64`)",
        ));
    }
    Ok(Some(blake3::derive_key(
        "tapline mask hash key v1",
        &secret,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns() -> HashSet<String> {
        ["pg".to_string()].into_iter().collect()
    }

    fn section(columns: &[&str], detectors: &[&str], strategy: &str) -> MaskSection {
        MaskSection {
            name: Some("r".into()),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            detectors: detectors.iter().map(|s| s.to_string()).collect(),
            strategy: Some(strategy.into()),
            ..Default::default()
        }
    }

    #[test]
    fn valid_rules_compile() {
        let r = mask_rules(
            &MaskingSection::default(),
            &[section(&["customers.ssn"], &["email"], "hash")],
            &conns(),
        )
        .unwrap();
        assert_eq!(r.rules.len(), 1);
        assert!(!r.has_hash_key(), "derived from the gateway key later");
    }

    #[test]
    fn mistakes_name_the_key() {
        let check = |s: MaskSection, key: &str, says: &str| {
            let ConfigError {
                key: k, problem, ..
            } = mask_rules(&MaskingSection::default(), &[s], &conns()).unwrap_err();
            assert_eq!(k, key);
            assert!(problem.contains(says), "{problem}");
        };
        check(
            section(&["a"], &[], "scramble"),
            "mask[0].strategy",
            "scramble",
        );
        check(
            section(&["a"], &["cc"], "redact"),
            "mask[0].detectors",
            "`cc`",
        );
        check(
            section(&[], &[], "redact"),
            "mask[0].columns",
            "masks nothing",
        );
        check(
            section(&["a..b"], &[], "redact"),
            "mask[0].columns",
            "empty part",
        );
        let mut keep = section(&["a"], &[], "redact");
        keep.keep = Some(2);
        check(keep, "mask[0].keep", "partial");
        let mut pattern = section(&[], &[], "redact");
        pattern.pattern = Some("(".into());
        check(pattern, "mask[0].pattern", "regular expression");
        let mut raw = section(&["a"], &[], "redact");
        raw.record_raw = true;
        check(raw, "mask[0].record_raw", "exempt_groups");
        let mut conn = section(&["a"], &[], "redact");
        conn.connections = vec!["nope".into()];
        check(conn, "mask[0].connections", "nope");
    }

    #[test]
    fn a_short_hash_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, "short").unwrap();
        let masking = MaskingSection {
            hash_key_file: Some(f),
            hash_key_env: None,
        };
        let ConfigError {
            key: k, problem, ..
        } = mask_rules(&masking, &[], &conns()).unwrap_err();
        assert_eq!(k, "masking");
        assert!(problem.contains("fewer than 32"));
    }
}
