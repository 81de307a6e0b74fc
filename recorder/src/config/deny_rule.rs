//! Compiling one rule section (`[[deny]]`, or the matching half of `[[approve]]`)
//! into a `DenyRule`, with every mistake reported as the key at fault, what is wrong
//! and how to fix it.

use super::DenySection;
use crate::policy::guard::DenyRule;
use crate::policy::guard::pattern::Pattern;
use crate::policy::guard::statement_kind::StatementKind;
use crate::policy::guard::table_list::TableList;
use std::collections::HashSet;

/// A validation failure: the key, what is wrong, how to fix it.
pub type RuleError = (String, String, String);

/// Compiles `d`, whose keys are reported under `prefix` (e.g. `deny[2]`).
pub fn compile_rule(
    d: &DenySection,
    prefix: &str,
    connections: &HashSet<String>,
) -> Result<DenyRule, RuleError> {
    let key = |field: &str| format!("{prefix}.{field}");
    let err = |field: &str, problem: String, fix: &str| (key(field), problem, fix.to_string());
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
