//! The holds waiting for a person: one registry per gateway, shared by every session
//! (which adds its held statement and waits) and the admin API (which lists holds and
//! decides them). A decision is checked here, so every way in obeys the same rules:
//! only the rule's approver groups decide, and nobody approves their own statement.

use super::rules::Scope;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

/// Who decided, as the admin API authenticated them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approver {
    pub user: String,
    pub groups: Vec<String>,
    /// How they proved it: `bearer token` or `oidc (issuer)`.
    pub via: String,
}

/// What became of a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Approved {
        scope: Scope,
    },
    Denied,
    /// Nobody decided in time.
    TimedOut,
    /// The gateway is shutting down.
    Cancelled,
}

/// A decision, as the held session receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub approver: Option<Approver>,
    pub reason: Option<String>,
}

/// A hold, as `tapline approvals` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct HoldInfo {
    pub id: String,
    pub session_id: String,
    pub user: String,
    pub groups: Vec<String>,
    pub connection: String,
    pub statement: String,
    pub rule: String,
    pub approvers: Vec<String>,
    /// The scope an approval gets unless the approver says otherwise.
    pub scope: Scope,
    /// RFC 3339.
    pub held_at: String,
    pub age_seconds: u64,
    pub expires_in_seconds: u64,
}

struct Entry {
    info: HoldInfo,
    since: Instant,
    timeout: Duration,
    decide: oneshot::Sender<Decision>,
}

/// Why a decision was refused; the admin API maps each to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error(
        "no pending hold `{0}` (it was decided, timed out, or never existed; run `tapline approvals`)"
    )]
    Unknown(String),
    #[error("{user} may not approve their own statement; another approver has to")]
    OwnStatement { user: String },
    #[error("{user} is not in the approver groups of rule `{rule}` ({approvers}); ask one of them")]
    NotAnApprover {
        user: String,
        rule: String,
        approvers: String,
    },
}

/// Every pending hold of the gateway.
#[derive(Clone, Default)]
pub struct Holds {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

/// A session's side of a hold: resolves once a decision is made.
pub struct Waiting {
    pub id: String,
    rx: oneshot::Receiver<Decision>,
    holds: Holds,
    timeout: Duration,
}

impl Holds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a hold (its `id`, `held_at` and ages are filled in here).
    pub fn hold(&self, mut info: HoldInfo, timeout: Duration) -> Waiting {
        let id = format!("h{}", ulid::Ulid::new().to_string().to_lowercase());
        info.id = id.clone();
        info.held_at = chrono::DateTime::<chrono::Utc>::from(SystemTime::now()).to_rfc3339();
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            id.clone(),
            Entry {
                info,
                since: Instant::now(),
                timeout,
                decide: tx,
            },
        );
        Waiting {
            id,
            rx,
            holds: self.clone(),
            timeout,
        }
    }

    /// The pending holds, oldest first.
    pub fn list(&self) -> Vec<HoldInfo> {
        let mut out: Vec<(Instant, HoldInfo)> = self
            .lock()
            .values()
            .map(|e| {
                let mut info = e.info.clone();
                let age = e.since.elapsed();
                info.age_seconds = age.as_secs();
                info.expires_in_seconds = e.timeout.saturating_sub(age).as_secs();
                (e.since, info)
            })
            .collect();
        out.sort_by_key(|(since, _)| *since);
        out.into_iter().map(|(_, i)| i).collect()
    }

    /// Decides a hold. Approving or denying takes one of the rule's approver groups,
    /// and approving one's own statement is refused.
    pub fn decide(
        &self,
        id: &str,
        approve: bool,
        scope: Option<Scope>,
        approver: Approver,
        reason: Option<String>,
    ) -> Result<HoldInfo, DecisionError> {
        let mut holds = self.lock();
        let entry = holds
            .get(id)
            .ok_or_else(|| DecisionError::Unknown(id.to_string()))?;
        let info = &entry.info;
        if approve && approver.user == info.user {
            return Err(DecisionError::OwnStatement {
                user: approver.user,
            });
        }
        if !approver.groups.iter().any(|g| info.approvers.contains(g)) {
            return Err(DecisionError::NotAnApprover {
                user: approver.user,
                rule: info.rule.clone(),
                approvers: info.approvers.join(", "),
            });
        }
        let entry = holds
            .remove(id)
            .ok_or_else(|| DecisionError::Unknown(id.to_string()))?;
        let outcome = if approve {
            Outcome::Approved {
                scope: scope.unwrap_or(entry.info.scope),
            }
        } else {
            Outcome::Denied
        };
        // The session may have gone (client left): the decision is then moot.
        let _ = entry.decide.send(Decision {
            outcome,
            approver: Some(approver),
            reason,
        });
        Ok(entry.info)
    }

    /// Removes a hold its session no longer waits for.
    pub fn withdraw(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Ends the holds of one session whose client cancelled its statement (a
    /// CancelRequest): the statement is refused, as a cancelled one would fail.
    pub fn cancel_session(&self, session_id: &str) -> usize {
        let mut holds = self.lock();
        let ids: Vec<String> = holds
            .iter()
            .filter(|(_, e)| e.info.session_id == session_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            if let Some(e) = holds.remove(id) {
                let _ = e.decide.send(Decision {
                    outcome: Outcome::Cancelled,
                    approver: None,
                    reason: Some("the client cancelled the statement".into()),
                });
            }
        }
        ids.len()
    }

    /// Ends every hold (the gateway is shutting down).
    pub fn cancel_all(&self) {
        for (_, e) in self.lock().drain() {
            let _ = e.decide.send(Decision {
                outcome: Outcome::Cancelled,
                approver: None,
                reason: Some("the gateway is shutting down".into()),
            });
        }
    }
}

impl Waiting {
    /// Waits for the decision, or the timeout.
    pub async fn decision(self) -> Decision {
        let Waiting {
            id,
            rx,
            holds,
            timeout,
        } = self;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(d)) => d,
            Ok(Err(_)) => Decision {
                outcome: Outcome::Cancelled,
                approver: None,
                reason: Some("the hold was dropped".into()),
            },
            Err(_) => {
                // A decision may have raced the timeout: it wins if it got in.
                let removed = holds.lock().remove(&id);
                match removed {
                    Some(_) => Decision {
                        outcome: Outcome::TimedOut,
                        approver: None,
                        reason: Some(format!(
                            "nobody decided within {}",
                            humantime::format_duration(timeout)
                        )),
                    },
                    None => Decision {
                        outcome: Outcome::TimedOut,
                        approver: None,
                        reason: Some("the decision arrived as the hold timed out".into()),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(user: &str) -> HoldInfo {
        HoldInfo {
            id: String::new(),
            session_id: "s1".into(),
            user: user.into(),
            groups: vec!["agents".into()],
            connection: "pg".into(),
            statement: "UPDATE t SET x = 1 WHERE id = 2".into(),
            rule: "writes".into(),
            approvers: vec!["dba".into()],
            scope: Scope::Onetime,
            held_at: String::new(),
            age_seconds: 0,
            expires_in_seconds: 0,
        }
    }

    fn who(user: &str, groups: &[&str]) -> Approver {
        Approver {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            via: "bearer token".into(),
        }
    }

    #[tokio::test]
    async fn approvers_decide_and_nobody_approves_their_own_statement() {
        let holds = Holds::default();
        let w = holds.hold(info("agent-7"), Duration::from_secs(60));
        assert_eq!(holds.list().len(), 1);
        let own = holds
            .decide(&w.id, true, None, who("agent-7", &["dba"]), None)
            .unwrap_err();
        assert!(matches!(own, DecisionError::OwnStatement { .. }));
        let outsider = holds
            .decide(&w.id, true, None, who("mallory", &["devs"]), None)
            .unwrap_err();
        assert!(outsider.to_string().contains("approver groups"));
        holds
            .decide(
                &w.id,
                true,
                Some(Scope::Session),
                who("olivia", &["dba"]),
                Some("ok".into()),
            )
            .unwrap();
        let d = w.decision().await;
        assert_eq!(
            d.outcome,
            Outcome::Approved {
                scope: Scope::Session
            }
        );
        assert_eq!(d.approver.unwrap().user, "olivia");
        assert!(holds.list().is_empty());
        assert!(matches!(
            holds.decide("nope", false, None, who("olivia", &["dba"]), None),
            Err(DecisionError::Unknown(_))
        ));
    }

    #[tokio::test]
    async fn an_undecided_hold_times_out_and_is_gone() {
        let holds = Holds::default();
        let w = holds.hold(info("agent-7"), Duration::from_millis(20));
        let id = w.id.clone();
        assert_eq!(w.decision().await.outcome, Outcome::TimedOut);
        assert!(holds.list().is_empty());
        assert!(
            holds
                .decide(&id, true, None, who("olivia", &["dba"]), None)
                .is_err()
        );
    }
}
