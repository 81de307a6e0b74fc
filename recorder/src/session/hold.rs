//! Holding a command for a person's approval, whatever the protocol. The tap stops
//! at the command (nothing after it is read or forwarded, so the client simply
//! waits) and hands it here: it is recorded as `held`, registered with the gateway's
//! holds, and waited on until a decision, the rule's timeout, the gateway's shutdown,
//! or the client leaving. The decision is recorded with the approver's identity and
//! reason; what the client is told is the tap's to say in its own protocol.

use super::who::SessionWho;
use crate::approvals::registry::{Decision, HoldInfo, Holds, Outcome};
use crate::approvals::rules::NeedsApproval;
use crate::shutdown::{Phase, Shutdown};
use std::future::Future;
use tapline_store::{Direction, EventDraft, Kind, Status};

/// A command that waits for a person.
pub struct HeldCommand {
    /// The command as recorded (SQL with its parameters, a shell line, …).
    pub command: String,
    /// The client bytes that carried it.
    pub payload: bytes::Bytes,
    pub needs: NeedsApproval,
}

/// Records the hold, waits for its end, and records the decision. `record` appends
/// an event to the session; `client_left` resolves when the client goes away.
pub async fn await_decision<E>(
    holds: &Holds,
    who: &SessionWho,
    held: &HeldCommand,
    record: impl Fn(EventDraft) -> Result<(), E>,
    client_left: impl Future<Output = ()>,
    shutdown: &mut Shutdown,
) -> Result<Decision, E> {
    let rule = &held.needs.rule;
    let waiting = holds.hold(
        HoldInfo {
            id: String::new(),
            session_id: who.session_id.clone(),
            user: who.user.clone(),
            groups: who.groups.clone(),
            connection: who.connection.clone(),
            statement: held.command.clone(),
            rule: rule.name.clone(),
            approvers: rule.approvers.clone(),
            scope: rule.scope,
            held_at: String::new(),
            age_seconds: 0,
            expires_in_seconds: 0,
        },
        rule.timeout,
    );
    let id = waiting.id.clone();
    tracing::info!(hold = %id, rule = %rule.name, session = %who.session_id, user = %who.user, "statement held for approval");
    record(
        EventDraft::new(Direction::Client, Kind::Query)
            .status(Status::Held)
            .command(held.command.clone())
            .text(format!(
                "{}\n-- held for approval by rule `{}` ({}), hold {id}: approvers [{}], timeout {}",
                held.command,
                rule.name,
                held.needs.matched,
                rule.approvers.join(", "),
                humantime::format_duration(rule.timeout)
            ))
            .payload(held.payload.clone()),
    )?;
    let decision = tokio::select! {
        d = waiting.decision() => d,
        _ = shutdown.reached(Phase::Terminating) => {
            holds.withdraw(&id);
            Decision { outcome: Outcome::Cancelled, approver: None, reason: Some("the gateway is shutting down".into()) }
        }
        _ = client_left => {
            holds.withdraw(&id);
            Decision { outcome: Outcome::Cancelled, approver: None, reason: Some("the client left while the statement was held".into()) }
        }
    };
    let (status, verb) = match &decision.outcome {
        Outcome::Approved { .. } => (Status::Approved, "approved"),
        Outcome::Denied => (Status::Denied, "denied"),
        Outcome::TimedOut => (Status::Denied, "timed out"),
        Outcome::Cancelled => (Status::Denied, "cancelled"),
    };
    let mut text = format!("hold {id} {verb}");
    if let Some(a) = &decision.approver {
        text.push_str(&format!(
            " by {} (groups [{}], via {})",
            a.user,
            a.groups.join(", "),
            a.via
        ));
    }
    if let Some(r) = &decision.reason {
        text.push_str(&format!(": {r}"));
    }
    if let Outcome::Approved { scope } = &decision.outcome {
        text.push_str(&format!("; scope {}", scope.as_str()));
    }
    tracing::info!(hold = %id, decision = verb, "hold ended");
    record(
        EventDraft::new(Direction::Gateway, Kind::Policy)
            .status(status)
            .command(held.command.clone())
            .text(text),
    )?;
    Ok(decision)
}

/// Why a command that was not approved is refused, and the hint naming its rule:
/// the words every tap puts in its own protocol's error.
pub struct NotApproved {
    pub message: String,
    pub hint: String,
}

impl NotApproved {
    /// The refusal of `held` after `decision`.
    pub fn of(held: &HeldCommand, decision: &Decision) -> Self {
        let denied = matches!(decision.outcome, Outcome::Denied);
        let mut message = if denied {
            format!(
                "{} (denied by {})",
                held.needs.message,
                decision
                    .approver
                    .as_ref()
                    .map_or("an approver", |a| a.user.as_str())
            )
        } else {
            format!("{}: not approved", held.needs.message)
        };
        if let Some(r) = &decision.reason {
            message.push_str(&format!(": {r}"));
        }
        let hint = format!(
            "tapline rule `{}` holds this statement for approval by [{}]",
            held.needs.rule.name,
            held.needs.rule.approvers.join(", ")
        );
        NotApproved { message, hint }
    }
}
