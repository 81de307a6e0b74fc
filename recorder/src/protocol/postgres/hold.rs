//! Holding a statement for approval in the PostgreSQL tap. The frontend pump stops
//! at the statement (nothing after it is read or forwarded, so the client simply
//! waits), records it as `held`, registers it with the gateway's holds and waits for
//! a decision, the timeout, the gateway's shutdown, or the client leaving. The
//! decision is recorded with the approver's identity and reason.

use super::error_response::gateway_error;
use super::io::TapError;
use super::session_state::SessionState;
use crate::approvals::registry::{Decision, HoldInfo, Outcome};
use crate::approvals::rules::NeedsApproval;
use crate::shutdown::{Phase, Shutdown};
use tapline_store::{Direction, EventDraft, Kind, Status};
use tokio::net::tcp::OwnedReadHalf;

/// A statement that waits for a person.
pub struct HeldStatement {
    /// The command as recorded (SQL, with parameters for an Execute).
    pub command: String,
    /// The SQL the rule matched (its shape is what a session approval covers).
    pub sql: String,
    /// The client bytes that carried it.
    pub payload: bytes::Bytes,
    pub needs: NeedsApproval,
}

/// Records the hold, waits for its end, and records the decision.
pub async fn await_decision(
    state: &SessionState,
    held: &HeldStatement,
    client: &mut OwnedReadHalf,
    shutdown: &mut Shutdown,
) -> Result<Decision, TapError> {
    let rule = &held.needs.rule;
    let who = &state.who;
    let waiting = state.holds.hold(
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
    state.record(
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
    let mut peek = [0u8; 1];
    let client_left = async {
        match client.peek(&mut peek).await {
            Ok(0) | Err(_) => {}
            // More input: the client is still there; stop watching.
            Ok(_) => std::future::pending::<()>().await,
        }
    };
    let decision = tokio::select! {
        d = waiting.decision() => d,
        _ = shutdown.reached(Phase::Terminating) => {
            state.holds.withdraw(&id);
            Decision { outcome: Outcome::Cancelled, approver: None, reason: Some("the gateway is shutting down".into()) }
        }
        _ = client_left => {
            state.holds.withdraw(&id);
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
    state.record(
        EventDraft::new(Direction::Gateway, Kind::Policy)
            .status(status)
            .command(held.command.clone())
            .text(text),
    )?;
    Ok(decision)
}

/// The error a client gets for a statement that was not approved, and its text.
pub fn refusal(held: &HeldStatement, decision: &Decision) -> (bytes::Bytes, String) {
    let (code, mut message) = match &decision.outcome {
        Outcome::Denied => (
            "42501",
            format!(
                "{} (denied by {})",
                held.needs.message,
                decision
                    .approver
                    .as_ref()
                    .map_or("an approver", |a| a.user.as_str())
            ),
        ),
        _ => ("57014", format!("{}: not approved", held.needs.message)),
    };
    if let Some(r) = &decision.reason {
        message.push_str(&format!(": {r}"));
    }
    let hint = format!(
        "tapline rule `{}` holds this statement for approval by [{}]",
        held.needs.rule.name,
        held.needs.rule.approvers.join(", ")
    );
    let error = gateway_error("ERROR", code, message.clone(), Some(hint.clone()));
    (error, format!("{code} ERROR: {message}\nHINT: {hint}"))
}
