//! `[policy]` and `[[deny]]`: the settings every rule shares, and each deny rule (also
//! the matching half of `[[approve]]`), compiled into [`DenyRules`] with every mistake
//! reported as the key at fault, what is wrong and how to fix it.

use super::pattern::Pattern;
use super::statement_kind::StatementKind;
use super::table_list::TableList;
use super::{DenyRule, DenyRules, Unparseable};
use crate::config::{ConfigError, KeyPrefix};
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::Arc;

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

/// Validates `[policy]` and every `[[deny]]`; `connections` are the declared names.
pub fn deny_rules(
    policy: &PolicySection,
    deny: &[DenySection],
    connections: &HashSet<String>,
) -> Result<DenyRules, ConfigError> {
    let mut out = DenyRules::default();
    match policy.unparseable_sql.as_deref() {
        None | Some("open") => {}
        Some("closed") => out.unparseable = Unparseable::Closed,
        Some(other) => {
            return Err(ConfigError::at(
                "policy.unparseable_sql",
                format!("`{other}` is not a choice"),
                "use \"open\" or \"closed\"",
            ));
        }
    }
    if let Some(groups) = &policy.unparseable_closed_groups {
        out.unparseable_closed_groups = groups.clone();
    }
    for (i, f) in policy.allow_fast_path.iter().enumerate() {
        if f.is_empty() || f.contains('\0') || f.contains('(') {
            return Err(ConfigError::at(
                format!("policy.allow_fast_path[{i}]"),
                format!("`{f}` is not a function name"),
                "list function names without arguments, e.g. allow_fast_path = [\"lo_open\", \"loread\"]",
            ));
        }
    }
    out.allow_fast_path = policy.allow_fast_path.clone();
    for (i, e) in policy.client_encodings.iter().enumerate() {
        match crate::protocol::postgres::encoding::PgEncoding::by_name(e) {
            Some(enc) => out.client_encodings.push(enc.name.to_string()),
            None => {
                return Err(ConfigError::at(
                    format!("policy.client_encodings[{i}]"),
                    format!("`{e}` is not a PostgreSQL encoding"),
                    "use names as PostgreSQL spells them, e.g. client_encodings = [\"UTF8\", \"LATIN1\"]",
                ));
            }
        }
    }
    let mut seen = HashSet::new();
    for (i, d) in deny.iter().enumerate() {
        let rule = compile_rule(d, &format!("deny[{i}]"), connections)?;
        if !seen.insert(rule.name.clone()) {
            return Err(ConfigError::at(
                format!("deny[{i}].name"),
                format!("`{}` is used twice", rule.name),
                "give every rule its own name",
            ));
        }
        out.rules.push(Arc::new(rule));
    }
    Ok(out)
}

/// Compiles `d`, whose keys are reported under `prefix` (e.g. `deny[2]`).
pub fn compile_rule(
    d: &DenySection,
    prefix: &str,
    connections: &HashSet<String>,
) -> Result<DenyRule, ConfigError> {
    let at = KeyPrefix(prefix);
    let err = |field: &str, problem: String, fix: &str| at.err(field, problem, fix);
    let name = d.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
        err(
            "name",
            "is missing".into(),
            "give every rule a name; it is recorded with each statement it applies to",
        )
    })?;
    let mut kinds = Vec::new();
    for k in &d.kinds {
        kinds.push(StatementKind::parse(k).ok_or_else(|| {
            let known: Vec<&str> = StatementKind::ALL.iter().map(|(n, _)| *n).collect();
            err(
                "kinds",
                format!("`{k}` is not a statement kind"),
                &format!("use one of {}", known.join(", ")),
            )
        })?);
    }
    let pattern = match &d.pattern {
        None => None,
        Some(p) => Some(Pattern::new(p).map_err(|e| {
            err(
                "pattern",
                format!("is not a regular expression: {e}"),
                "fix the pattern (Rust regex syntax)",
            )
        })?),
    };
    if kinds.is_empty() && pattern.is_none() && d.tables.is_empty() {
        return Err(err(
            "kinds",
            "the rule matches nothing".into(),
            "set kinds, pattern or tables",
        ));
    }
    if let Some(c) = d.connections.iter().find(|c| !connections.contains(*c)) {
        return Err(err(
            "connections",
            format!("`{c}` is not a declared connection"),
            "use the name of a [[connections]] entry",
        ));
    }
    Ok(DenyRule {
        message: d
            .message
            .clone()
            .unwrap_or_else(|| format!("tapline policy `{name}` does not allow this statement")),
        name,
        kinds,
        pattern,
        tables: (!d.tables.is_empty()).then(|| TableList::new(&d.tables)),
        connections: d.connections.clone(),
        groups: d.groups.clone(),
    })
}
