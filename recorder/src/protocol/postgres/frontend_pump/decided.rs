//! After a hold: what a person's decision does to the held statement.

use super::super::hold;
use super::super::pipeline::Pending;
use super::super::refusal::{refusal_parse, refusal_query};
use super::super::session_state::SessionState;
use super::{Action, FrontendState, Held};
use crate::approvals::registry::{Decision, Outcome};
use crate::approvals::rules::{NeedsApproval, Scope};
use crate::session::hold::HeldCommand;
use std::time::Instant;
use tapline_store::Status;

impl FrontendState {
    /// Whether a session-wide approval granted since the statement arrived covers
    /// its shape (read then, as the server read it).
    pub(super) fn approved_for_session(&self, needs: &NeedsApproval) -> bool {
        self.approved_shapes.contains(&needs.shape)
    }

    /// Goes on after a hold: an approved statement is forwarded (and its shape
    /// remembered for a session-wide approval); any other end refuses it in place.
    pub(super) async fn decided(
        &mut self,
        state: &SessionState,
        held: HeldCommand,
        at: Held,
        decision: Decision,
    ) -> Action {
        if let Outcome::Approved { scope } = decision.outcome {
            if scope == Scope::Session && !held.needs.shape.is_empty() {
                self.approved_shapes.insert(held.needs.shape.clone());
            }
            match at {
                Held::Query => {
                    self.last_simple = Some(held.command.clone());
                    state.pipeline.push(Pending::Simple {
                        command: held.command,
                        started: Instant::now(),
                        approved: true,
                        columns: None,
                    });
                }
                Held::Execute { portal, message } => {
                    let describe = self.describe_first(state, &portal, &message);
                    state.pipeline.push(Pending::Execute {
                        portal,
                        command: held.command,
                        started: Instant::now(),
                        approved: true,
                        columns: None,
                    });
                    if let Some(bytes) = describe {
                        return Action::Replace(bytes);
                    }
                }
            }
            return Action::Forward;
        }
        let (error, text) = hold::refusal(&held, &decision);
        let simple = matches!(at, Held::Query);
        state.pipeline.push(Pending::Refused {
            command: held.command,
            error,
            text,
            status: Status::Denied,
            simple,
        });
        if simple {
            Action::Replace(refusal_query())
        } else {
            // As after an error: the server skips to the client's Sync.
            self.skipping = true;
            Action::Replace(refusal_parse())
        }
    }
}
