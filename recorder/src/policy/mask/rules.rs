//! Masking rules as configured (`[[mask]]`), and how a session picks its own: the
//! rules scoped to its connection and its caller's groups, split into what the client
//! sees and what the archive keeps. A caller in a rule's `exempt_groups` sees the raw
//! value, but the archive still gets it masked unless the rule says `record_raw`.

use super::column_pattern::ColumnPattern;
use super::detectors::Detector;
use super::session_masker::SessionMasker;
use super::strategy::Strategy;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One `[[mask]]` rule, validated.
#[derive(Debug, Clone)]
pub struct MaskRule {
    pub name: String,
    /// Columns whose values the rule covers; empty: every value.
    pub columns: Vec<ColumnPattern>,
    /// Detectors (built-in and the rule's own pattern); empty with columns: the
    /// whole value of a covered column is masked.
    pub detectors: Vec<Detector>,
    pub strategy: Strategy,
    /// Connections it applies to; empty: all.
    pub connections: Vec<String>,
    /// Callers it applies to, by group; empty: everyone.
    pub groups: Vec<String>,
    /// Callers who see raw values.
    pub exempt_groups: Vec<String>,
    /// Whether an exempt caller's raw values are also what the archive keeps.
    pub record_raw: bool,
    /// Whether its detectors also scrub what the client sent (commands, bind
    /// parameters, COPY input) in the archive; false keeps literal queries.
    pub scrub_commands: bool,
}

impl MaskRule {
    fn applies(&self, connection: &str, groups: &[String]) -> bool {
        (self.connections.is_empty() || self.connections.iter().any(|c| c == connection))
            && (self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g)))
    }

    fn exempts(&self, groups: &[String]) -> bool {
        self.exempt_groups.iter().any(|g| groups.contains(g))
    }
}

/// Every masking rule of the gateway, with the key `hash` tokens are made with.
#[derive(Debug, Default)]
pub struct MaskRules {
    pub rules: Vec<MaskRule>,
    hash_key: [u8; 32],
    /// Compiled maskers by the set of rules they hold, so sessions share them.
    compiled: Mutex<HashMap<Vec<usize>, Arc<SessionMasker>>>,
}

/// What one session masks: for the client, and (when an exemption makes them differ)
/// for the archive.
#[derive(Debug, Clone, Default)]
pub struct SessionMasking {
    pub client: Option<Arc<SessionMasker>>,
    /// `None`: the archive keeps exactly what the client got.
    pub record: Option<Arc<SessionMasker>>,
    /// Whether the record differs from what the client got.
    pub split: bool,
    /// What scrubs the client's commands in the archive (the recorded rules that
    /// keep `scrub_commands`).
    pub commands: Option<Arc<SessionMasker>>,
}

impl SessionMasking {
    /// Whether anything is masked in this session at all.
    pub fn is_active(&self) -> bool {
        self.client.is_some() || self.record.is_some()
    }

    /// The masker whose output is recorded.
    pub fn for_record(&self) -> Option<&Arc<SessionMasker>> {
        if self.split {
            self.record.as_ref()
        } else {
            self.client.as_ref()
        }
    }
}

impl MaskRules {
    /// The rules, with the key for `hash`.
    pub fn new(rules: Vec<MaskRule>, hash_key: [u8; 32]) -> Self {
        MaskRules {
            rules,
            hash_key,
            compiled: Mutex::default(),
        }
    }

    /// Whether a hash key is still the all-zero placeholder.
    pub fn has_hash_key(&self) -> bool {
        self.hash_key != [0; 32]
    }

    /// The maskers for a session on `connection` by a caller in `groups`.
    pub fn for_session(&self, connection: &str, groups: &[String]) -> SessionMasking {
        let mut client = Vec::new();
        let mut record = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            if !r.applies(connection, groups) {
                continue;
            }
            if r.exempts(groups) {
                if !r.record_raw {
                    record.push(i);
                }
            } else {
                client.push(i);
                record.push(i);
            }
        }
        let split = client != record;
        let commands: Vec<usize> = record
            .iter()
            .copied()
            .filter(|&i| self.rules[i].scrub_commands)
            .collect();
        SessionMasking {
            client: self.compiled(client),
            record: if split { self.compiled(record) } else { None },
            split,
            commands: self.compiled(commands),
        }
    }

    fn compiled(&self, set: Vec<usize>) -> Option<Arc<SessionMasker>> {
        if set.is_empty() {
            return None;
        }
        let mut cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(&set) {
            return Some(m.clone());
        }
        let rules: Vec<&MaskRule> = set.iter().map(|&i| &self.rules[i]).collect();
        // Every pattern was compiled once at config validation, so this cannot fail.
        let masker = Arc::new(SessionMasker::compile(&rules, self.hash_key).ok()?);
        cache.insert(set, masker.clone());
        Some(masker)
    }

    /// Compiles every rule once, so a bad pattern is found at start-up, not in a
    /// session; the error names the rule.
    pub fn check(&self) -> Result<(), String> {
        for r in &self.rules {
            SessionMasker::compile(&[r], self.hash_key)
                .map_err(|e| format!("mask rule `{}`: {e}", r.name))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, exempt: &[&str], record_raw: bool) -> MaskRule {
        MaskRule {
            name: name.into(),
            columns: vec![ColumnPattern::parse("ssn").unwrap()],
            detectors: vec![],
            strategy: Strategy::Redact,
            connections: vec![],
            groups: vec![],
            exempt_groups: exempt.iter().map(|s| s.to_string()).collect(),
            record_raw,
            scrub_commands: true,
        }
    }

    #[test]
    fn a_rule_may_keep_literal_commands() {
        let mut keep = rule("keep", &[], false);
        keep.scrub_commands = false;
        let rules = MaskRules::new(vec![keep, rule("scrub", &[], false)], [1; 32]);
        assert!(rules.for_session("c", &[]).commands.is_some());
        let rules = MaskRules::new(vec![rules.rules[0].clone()], [1; 32]);
        let m = rules.for_session("c", &[]);
        assert!(m.client.is_some(), "values are still masked");
        assert!(m.commands.is_none(), "commands are kept literal");
    }

    #[test]
    fn exempt_callers_see_raw_values_but_the_archive_keeps_them_masked() {
        let rules = MaskRules::new(
            vec![rule("a", &["dba"], false), rule("b", &["dba"], true)],
            [1; 32],
        );
        let agent = rules.for_session("pg", &["agents".into()]);
        assert!(agent.client.is_some() && !agent.split);
        let dba = rules.for_session("pg", &["dba".into()]);
        assert!(dba.client.is_none(), "dba sees raw values");
        assert!(dba.split);
        let rec = dba.for_record().expect("rule a still masks the archive");
        assert_eq!(rec.columns.len(), 1);
        assert_eq!(rec.columns[0].rule, "a");
    }

    #[test]
    fn scope_picks_connections_and_groups() {
        let mut r = rule("a", &[], false);
        r.connections = vec!["pg-prod".into()];
        r.groups = vec!["agents".into()];
        let rules = MaskRules::new(vec![r], [1; 32]);
        assert!(rules.for_session("pg-prod", &["agents".into()]).is_active());
        assert!(!rules.for_session("pg-dev", &["agents".into()]).is_active());
        assert!(!rules.for_session("pg-prod", &["humans".into()]).is_active());
    }

    #[test]
    fn sessions_share_compiled_maskers() {
        let rules = MaskRules::new(vec![rule("a", &[], false)], [1; 32]);
        let x = rules.for_session("pg", &[]).client.unwrap();
        let y = rules.for_session("pg", &[]).client.unwrap();
        assert!(Arc::ptr_eq(&x, &y));
    }
}
