//! Approval rules: they match statements the way deny rules do (statement kind,
//! pattern, table list; scoped by connection and group), but instead of refusing a
//! statement they hold it until a person in the rule's approver groups decides.

use crate::policy::guard::{Denial, DenyRules, SessionGuard};
use crate::policy::sql::Sql;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How far an approval reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This statement only.
    Onetime,
    /// The same statement shape (literals aside) for the rest of the session.
    Session,
}

impl Scope {
    /// Parses `onetime` or `session`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "onetime" => Some(Scope::Onetime),
            "session" => Some(Scope::Session),
            _ => None,
        }
    }

    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Onetime => "onetime",
            Scope::Session => "session",
        }
    }
}

/// What an approval rule adds to its matcher.
#[derive(Debug, Clone)]
pub struct ApprovalRule {
    pub name: String,
    /// Groups whose members may decide.
    pub approvers: Vec<String>,
    /// The scope an approval gets unless the approver says otherwise.
    pub scope: Scope,
    /// How long a statement waits before it is refused.
    pub timeout: Duration,
}

/// Every approval rule of the gateway.
#[derive(Debug, Clone, Default)]
pub struct ApprovalRules {
    /// The matching half (kinds, pattern, tables, scope), shared with deny rules.
    pub matcher: DenyRules,
    pub rules: HashMap<String, ApprovalRule>,
}

/// The approval rules of one session.
#[derive(Debug, Clone, Default)]
pub struct SessionApprovals {
    guard: SessionGuard,
    rules: Arc<ApprovalRules>,
}

/// A statement that needs a person's approval.
#[derive(Debug, Clone)]
pub struct NeedsApproval {
    pub rule: ApprovalRule,
    /// What matched (e.g. `statement kind update_without_where`).
    pub matched: String,
    pub message: String,
    /// The statement's shape as the session read it when it arrived: what a
    /// session-wide approval of it covers, compared later without reading it again
    /// (and so never under other settings than the server read it with).
    pub shape: String,
}

impl ApprovalRules {
    /// Whether there is no rule at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules for a session on `connection` by a caller in `groups`.
    pub fn for_session(self: &Arc<Self>, connection: &str, groups: &[String]) -> SessionApprovals {
        SessionApprovals {
            guard: self.matcher.for_session(connection, groups),
            rules: self.clone(),
        }
    }
}

impl SessionApprovals {
    /// Whether no approval rule applies (then nothing is parsed).
    pub fn is_empty(&self) -> bool {
        self.guard.is_empty()
    }

    /// Whether `sql` needs approval, and by which rule.
    pub fn check(&self, sql: &Sql<'_>) -> Option<NeedsApproval> {
        let Denial {
            rule,
            message,
            matched,
            ..
        } = self.guard.check_sql(sql)?;
        // Unparseable SQL is the deny rules' business; an approval rule holds only
        // what it positively matched.
        let r = self.rules.rules.get(&rule)?;
        Some(NeedsApproval {
            rule: r.clone(),
            matched,
            message,
            shape: super::shape::shape(sql),
        })
    }
}
