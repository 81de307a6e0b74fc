//! The extended query protocol: Parse is judged like a simple query, Bind renders
//! the command with its parameters, Execute records it (or holds it for approval),
//! and Describe and Close keep the names the client uses in step.

use super::super::described::Described;
use super::super::encoding::PgEncoding;
use super::super::frontend::{Bind, Target, render_param};
use super::super::io::TapError;
use super::super::pipeline::Pending;
use super::super::refusal::refusal_parse;
use super::super::session_state::SessionState;
use super::{Action, FrontendState, Held};
use crate::session::hold::HeldCommand;
use std::time::Instant;
use tapline_store::{Direction, EventDraft, Kind};

/// Bytes of extended-protocol messages that belong to the next Execute.
const MAX_PENDING_RECORD: usize = 1 << 20;

impl FrontendState {
    /// Parse: judged by the policy; a denied statement is refused and the rest of
    /// the pipeline skipped until Sync, as the server would after an error.
    pub(super) async fn parse(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        statement: String,
        sql: String,
        param_types: Vec<u32>,
    ) -> Result<Action, TapError> {
        let (denial, needs, columns) = self.judge(state, &sql).await;
        if let Some(d) = denial {
            let mut payload = std::mem::take(&mut self.pending_bytes);
            payload.extend_from_slice(raw);
            self.refuse(state, &payload, sql, d, false)?;
            self.skipping = true;
            return Ok(Action::Replace(refusal_parse()));
        }
        self.keep_for_execute(raw);
        self.described.parsed(&statement);
        self.statements.insert(
            statement.clone(),
            (sql.clone(), param_types, needs, columns),
        );
        state.pipeline.push(Pending::Parse {
            statement,
            sql,
            started: Instant::now(),
        });
        Ok(Action::Forward)
    }

    /// Bind: the portal's command is the statement's SQL with its parameters.
    pub(super) fn bind(&mut self, state: &SessionState, raw: &[u8], bind: Bind) {
        let Bind {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        } = bind;
        self.keep_for_execute(raw);
        let described = state
            .described_params
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&statement)
            .cloned()
            .unwrap_or_default();
        let command = self.command_for(
            &statement,
            &param_formats,
            &params,
            &described,
            state.encoding.client(),
        );
        let (needs, columns) = self
            .statements
            .get(&statement)
            .map(|(_, _, needs, columns)| (needs.clone(), columns.clone()))
            .unwrap_or_default();
        self.portals
            .insert(portal.clone(), (command, needs, columns));
        self.described.bound(&portal, &statement);
        state.pipeline.push(Pending::Bind {
            statement,
            portal,
            result_formats,
        });
    }

    /// Describe: queued, so its answer is matched to it.
    pub(super) fn describe(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        target: Target,
        name: String,
    ) {
        self.keep_for_execute(raw);
        self.described.described(target, &name);
        state.pipeline.push(Pending::Describe {
            target,
            name,
            hidden: false,
        });
    }

    /// Execute: the portal's command is recorded with the Parse, Bind and Describe
    /// bytes before it, or held when its statement needs an approval.
    pub(super) fn execute(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        portal: String,
    ) -> Result<Action, TapError> {
        let (command, needs, columns) = self.portals.get(&portal).cloned().unwrap_or_else(|| {
            (
                format!("<execute of unknown portal \"{portal}\">"),
                None,
                None,
            )
        });
        let mut payload = std::mem::take(&mut self.pending_bytes);
        payload.extend_from_slice(raw);
        let needs = match needs {
            Some(n) if !self.approved_for_session(&n) => Some(n),
            _ => None,
        };
        if let Some(needs) = needs {
            return Ok(Action::Hold(
                Box::new(HeldCommand {
                    command,
                    payload: payload.freeze(),
                    needs,
                }),
                Held::Execute {
                    portal,
                    message: bytes::Bytes::copy_from_slice(raw),
                },
            ));
        }
        state.record(
            EventDraft::new(Direction::Client, Kind::Query)
                .command(command.clone())
                .payload(payload.freeze()),
        )?;
        let describe = self.describe_first(state, &portal, raw);
        state.pipeline.push(Pending::Execute {
            portal,
            command,
            started: Instant::now(),
            approved: false,
            columns,
        });
        Ok(match describe {
            Some(bytes) => Action::Replace(bytes),
            None => Action::Forward,
        })
    }

    /// Close: the statement or portal is forgotten.
    pub(super) fn close(&mut self, state: &SessionState, target: Target, name: String) {
        self.described.closed(target, &name);
        match target {
            Target::Statement => {
                self.statements.remove(&name);
            }
            Target::Portal => {
                self.portals.remove(&name);
            }
        }
        state.pipeline.push(Pending::Close);
    }

    /// Before an Execute whose portal the client never described, when column rules
    /// need its columns: queues a hidden Describe of the portal and returns the bytes
    /// to send upstream in place of the Execute (the Describe, then the Execute).
    pub(super) fn describe_first(
        &mut self,
        state: &SessionState,
        portal: &str,
        execute: &[u8],
    ) -> Option<bytes::Bytes> {
        if !state.masking.needs_columns() || self.described.portal_known(portal) {
            return None;
        }
        self.described.described(Target::Portal, portal);
        state.pipeline.push(Pending::Describe {
            target: Target::Portal,
            name: portal.to_string(),
            hidden: true,
        });
        let mut out = Described::describe_for_execute(execute);
        out.extend_from_slice(execute);
        Some(out.into())
    }

    /// Keeps a Parse, Bind or Describe for the payload of the Execute that follows.
    fn keep_for_execute(&mut self, raw: &[u8]) {
        if self.pending_bytes.len() + raw.len() <= MAX_PENDING_RECORD {
            self.pending_bytes.extend_from_slice(raw);
        }
    }

    /// `SQL` followed by `-- params: $1 = '42', $2 = NULL` when there are parameters.
    pub(super) fn command_for(
        &self,
        statement: &str,
        formats: &[i16],
        params: &[Option<Vec<u8>>],
        described: &[u32],
        encoding: PgEncoding,
    ) -> String {
        let (sql, types) = match self.statements.get(statement) {
            Some((sql, types, _, _)) => (sql.as_str(), types.as_slice()),
            None => return format!("<bind of unknown statement \"{statement}\">"),
        };
        if params.is_empty() {
            return sql.to_string();
        }
        let mut out = format!("{sql}\n-- params: ");
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let binary = match formats.len() {
                0 => false,
                1 => formats[0] == 1,
                _ => formats.get(i) == Some(&1),
            };
            let oid = types
                .get(i)
                .copied()
                .filter(|&t| t != 0)
                .or_else(|| described.get(i).copied())
                .unwrap_or(0);
            out.push_str(&format!(
                "${} = {}",
                i + 1,
                render_param(p.as_deref(), binary, oid, encoding)
            ));
        }
        out
    }
}
