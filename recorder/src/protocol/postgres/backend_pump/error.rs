//! An ErrorResponse: the end of the command it belongs to, and in the extended
//! protocol of every command the server skips after it until Sync; or, for a refused
//! statement's stand-in, the moment the client gets the gateway's refusal instead.

use super::super::error_response::ErrorFields;
use super::super::io::TapError;
use super::super::pipeline::Pending;
use super::super::session_state::SessionState;
use super::BackendState;
use super::result_builder::ResultBuilder;
use crate::policy::mask::tally::Tally;
use bytes::Bytes;
use std::time::Instant;
use tapline_store::{Direction, EventDraft, Kind, Status};

/// Records the error a refused statement got, as its completion.
fn record_refusal(
    state: &SessionState,
    command: String,
    error: Bytes,
    text: String,
    status: Status,
) -> Result<(), TapError> {
    state.record(
        EventDraft::new(Direction::Gateway, Kind::Error)
            .command(command)
            .status(status)
            .row_count(0)
            .payload(error)
            .text(text),
    )
}

/// The upstream's error for a refused statement's stand-in: the client gets the
/// gateway's refusal in its place, and the refusal is recorded as its completion.
/// `None` when the error is not a stand-in's.
fn answer_refusal(state: &SessionState) -> Result<Option<Bytes>, TapError> {
    let Some(Pending::Refused {
        command,
        error,
        text,
        status,
        simple,
    }) = state
        .pipeline
        .front()
        .filter(|p| matches!(p, Pending::Refused { .. }))
    else {
        return Ok(None);
    };
    if !simple {
        state.pipeline.pop();
    }
    record_refusal(state, command, error.clone(), text, status)?;
    Ok(Some(error))
}

/// The command an extended-protocol error belongs to, among what the server skipped:
/// the first Execute, or else a Parse with no Execute behind it (a client preparing a
/// statement), which is then recorded as the command that failed.
fn failing_command(state: &SessionState, skipped: &[Pending]) -> Option<(String, Instant)> {
    let execute = skipped.iter().find_map(|p| match p {
        Pending::Execute {
            command, started, ..
        } => Some((command.clone(), *started)),
        _ => None,
    });
    if execute.is_some() {
        return execute;
    }
    skipped
        .iter()
        .find_map(|p| match p {
            Pending::Parse { sql, started, .. } => Some((sql.clone(), *started)),
            _ => None,
        })
        .inspect(|(sql, _)| {
            let _ = state.record(
                EventDraft::new(Direction::Client, Kind::Query)
                    .command(sql.clone())
                    .text(format!("(prepare) {sql}")),
            );
        })
}

/// Records what the server skipped after the failing command until Sync: refused
/// statements' stand-ins, and every Execute after the first.
fn record_skipped(state: &SessionState, skipped: &[Pending]) -> Result<(), TapError> {
    for p in skipped {
        if let Pending::Refused {
            command, status, ..
        } = p
        {
            state.record(
                EventDraft::new(Direction::Gateway, Kind::Error)
                    .command(command.clone())
                    .status(*status)
                    .row_count(0)
                    .text("refused by tapline policy; the server skipped this part of the pipeline anyway, after an earlier command failed"),
            )?;
        }
    }
    let executes = skipped.iter().filter_map(|p| match p {
        Pending::Execute { command, .. } => Some(command.clone()),
        _ => None,
    });
    for command in executes.skip(1) {
        state.record(
            EventDraft::new(Direction::Gateway, Kind::Error)
                .command(command)
                .status(Status::Error)
                .row_count(0)
                .text("skipped: the server did not run this command because an earlier command in the same pipeline failed"),
        )?;
    }
    Ok(())
}

impl BackendState {
    /// An ErrorResponse: in a simple query it ends with ReadyForQuery; in the extended
    /// protocol the server skips everything until Sync, so the failing command is
    /// recorded now and the commands skipped after it are recorded as such.
    pub(super) fn error(
        &mut self,
        state: &SessionState,
        raw: &[u8],
    ) -> Result<Option<Bytes>, TapError> {
        if let Some(refusal) = answer_refusal(state)? {
            return Ok(Some(refusal));
        }
        let mut tally = Tally::default();
        let enc = state.encoding.client();
        let masked = state.masking.notice(&mut tally, raw, enc)?;
        let recorded = masked.for_record().map(<[u8]>::to_vec);
        let client = masked.client;
        let raw = recorded.as_deref().unwrap_or(raw);
        let fields = ErrorFields::parse(b'E', &raw[5..], enc)?;
        match state.pipeline.front() {
            Some(Pending::Simple { .. }) => {
                if let Some(r) = self.current(state) {
                    r.append(raw);
                    r.error = Some(fields);
                    r.masking.tally.merge(tally);
                }
            }
            None | Some(Pending::Sync) => {
                // Not tied to any command: e.g. the server terminating the session.
                let mut draft = EventDraft::new(Direction::Server, Kind::Error)
                    .status(Status::Error)
                    .payload(Bytes::copy_from_slice(raw))
                    .text(fields.render());
                draft.masked = tally.into_entries();
                state.record(draft)?;
            }
            Some(_) => self.fail_extended(state, raw, fields, tally)?,
        }
        Ok(client)
    }

    /// An extended-protocol error: the failing command's completion, then what the
    /// server skipped until Sync.
    fn fail_extended(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        fields: ErrorFields,
        tally: Tally,
    ) -> Result<(), TapError> {
        let cap = state.limits.max_recorded_result_bytes;
        let skipped = state.pipeline.drain_until_sync();
        let failing = failing_command(state, &skipped);
        let mut builder = match (self.current.take(), failing) {
            (Some(b), _) => b,
            (None, Some((command, started))) => {
                ResultBuilder::new(command, started, false, None, cap)
            }
            (None, None) => ResultBuilder::new(String::new(), Instant::now(), false, None, cap),
        };
        builder.append(raw);
        builder.error = Some(fields);
        builder.masking.tally.merge(tally);
        let mut draft = builder.into_draft();
        if draft.command.as_deref() == Some("") {
            draft.command = None;
        }
        state.record(draft)?;
        record_skipped(state, &skipped)
    }
}
