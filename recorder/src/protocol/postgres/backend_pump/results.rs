//! What each upstream message does to the result of the command at the head of the
//! pipeline: columns, rows (masked before the client sees them), COPY data, the
//! completion, and ReadyForQuery, where a simple query's result is recorded.

use super::super::frontend::Target;
use super::super::io::TapError;
use super::super::masking::statement_columns::StatementText;
use super::super::masking::{MaskedMessage, PgMasking, ResultMasking};
use super::super::pipeline::Pending;
use super::super::row::{Column, apply_result_formats, render_data_row, render_header};
use super::super::session_state::SessionState;
use super::super::wire::DecodeError;
use super::result_builder::{ResultBuilder, TEXT_CAP};
use super::{BackendState, DescribeAnswer};
use bytes::Bytes;

impl BackendState {
    /// The builder of the command at the head of the pipeline, started on demand.
    pub(super) fn current(&mut self, state: &SessionState) -> Option<&mut ResultBuilder> {
        if self.current.is_none() {
            let cap = state.limits.max_recorded_result_bytes;
            // What the policy check read of the command's select lists, if it did.
            let mut read = None;
            self.current = match state.pipeline.front()? {
                Pending::Simple {
                    command,
                    started,
                    approved,
                    columns,
                } => {
                    read = columns;
                    let mut r = ResultBuilder::new(command, started, true, None, cap);
                    r.approved = approved;
                    Some(r)
                }
                Pending::Execute {
                    portal,
                    command,
                    started,
                    approved,
                    columns,
                } => {
                    read = columns;
                    let cols = self.portals.get(&portal).cloned();
                    let mut r = ResultBuilder::new(command, started, false, cols, cap);
                    r.approved = approved;
                    Some(r)
                }
                _ => None,
            };
            if let Some(r) = self.current.as_mut()
                && state.masking.needs_columns()
            {
                let statement = match read {
                    Some(columns) => StatementText::read(columns),
                    // Not read by the check (a held statement): read here.
                    None => StatementText::new(&r.command, state.sql_settings.get()),
                };
                r.masking = ResultMasking::for_statement(statement);
            }
        }
        self.current.as_mut()
    }

    /// A RowDescription: the answer to a Describe, or the columns of a result.
    pub(super) fn row_description(
        &mut self,
        state: &SessionState,
        cols: Vec<Column>,
        raw: &[u8],
    ) -> Option<Bytes> {
        let cols = match self.describe_done(state, cols) {
            DescribeAnswer::Result(cols) => cols,
            DescribeAnswer::Client => return None,
            // The gateway's own Describe: the client never asked for it.
            DescribeAnswer::Hidden => return Some(Bytes::new()),
        };
        let r = self.current(state)?;
        render_header(&cols, &mut r.text);
        r.cols = Some(cols);
        // A simple query may return several results, each described anew.
        r.masking.new_result();
        r.append(raw);
        None
    }

    /// NoData: the answer to a Describe of something that returns no rows.
    pub(super) fn no_data(&mut self, state: &SessionState) -> Option<Bytes> {
        match self.describe_done(state, Vec::new()) {
            DescribeAnswer::Hidden => Some(Bytes::new()),
            _ => None,
        }
    }

    /// Completes a pending Describe with the columns it returned (none for NoData);
    /// hands the columns back when no Describe was waiting, as they then describe a
    /// result in progress.
    fn describe_done(&mut self, state: &SessionState, cols: Vec<Column>) -> DescribeAnswer {
        match state
            .pipeline
            .pop_if(|p| matches!(p, Pending::Describe { .. }))
        {
            Some(Pending::Describe {
                target,
                name,
                hidden,
            }) => {
                match target {
                    Target::Statement => self.statements.insert(name, cols),
                    Target::Portal => self.portals.insert(name, cols),
                };
                if hidden {
                    DescribeAnswer::Hidden
                } else {
                    DescribeAnswer::Client
                }
            }
            _ => DescribeAnswer::Result(cols),
        }
    }

    /// BindComplete: the portal takes its statement's columns, in the result formats
    /// the Bind asked for.
    pub(super) fn bind_complete(&mut self, state: &SessionState) {
        if let Some(Pending::Bind {
            statement,
            portal,
            result_formats,
        }) = state.pipeline.pop_if(|p| matches!(p, Pending::Bind { .. }))
        {
            let mut cols = self.statements.get(&statement).cloned().unwrap_or_default();
            apply_result_formats(&mut cols, &result_formats);
            self.portals.insert(portal, cols);
        }
    }

    /// A DataRow, masked, recorded and rendered.
    pub(super) fn data_row(
        &mut self,
        state: &SessionState,
        raw: &[u8],
    ) -> Result<Option<Bytes>, TapError> {
        let masking = &state.masking;
        let enc = state.encoding.client();
        if let Some(r) = self.current(state) {
            r.data_rows += 1;
            let m = when_active(masking, || {
                masking.data_row(&mut r.masking, r.cols.as_deref(), raw, enc)
            })?;
            let recorded = m.for_record().unwrap_or(raw);
            r.append(recorded);
            if r.text.len() < TEXT_CAP {
                render_data_row(&recorded[5..], r.cols.as_deref(), enc, &mut r.text)?;
            } else {
                r.rows_not_rendered += 1;
            }
            return Ok(m.client);
        }
        if masking.is_active() {
            // A row no command claims (the pipeline is out of step): still masked,
            // by value, before it reaches the client.
            return Ok(masking
                .data_row(&mut ResultMasking::default(), None, raw, enc)?
                .client);
        }
        Ok(None)
    }

    /// CommandComplete, EmptyQueryResponse or PortalSuspended: the end of one
    /// command, recorded now in the extended protocol (a simple query ends at
    /// ReadyForQuery, as it may hold several).
    pub(super) fn completion(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        tag: &str,
    ) -> Result<(), TapError> {
        if let Some(r) = self.current(state) {
            r.append(raw);
            r.add_tag(tag);
            if !r.simple {
                self.finish(state)?;
                state.pipeline.pop();
            }
        }
        Ok(())
    }

    /// CopyOutResponse: the COPY's rows are masked by the plan for its format.
    pub(super) fn copy_out(&mut self, state: &SessionState, raw: &[u8], binary: bool) {
        let masking = &state.masking;
        if let Some(r) = self.current(state) {
            if masking.is_active() {
                masking.copy_out(&mut r.masking, &r.command, binary);
            }
            r.append(raw);
        }
    }

    /// CopyData of a COPY TO STDOUT, masked, recorded and rendered.
    pub(super) fn copy_data(
        &mut self,
        state: &SessionState,
        raw: &[u8],
    ) -> Result<Option<Bytes>, TapError> {
        let masking = &state.masking;
        let enc = state.encoding.client();
        let Some(r) = self.current(state) else {
            return Ok(None);
        };
        let m = when_active(masking, || Ok(masking.copy_data(&mut r.masking, raw, enc)))?;
        let recorded = m.for_record().unwrap_or(raw);
        r.append(recorded);
        if r.text.len() < TEXT_CAP {
            r.text.push_str(&enc.decode(&recorded[5..]));
        }
        Ok(m.client)
    }

    /// A fast-path function's result, masked as a value.
    pub(super) fn function_result(
        &mut self,
        state: &SessionState,
        raw: &[u8],
    ) -> Result<Option<Bytes>, TapError> {
        let masking = &state.masking;
        let enc = state.encoding.client();
        if let Some(r) = self.current(state) {
            let m = when_active(masking, || {
                masking.function_result(&mut r.masking, raw, enc)
            })?;
            r.append(m.for_record().unwrap_or(raw));
            return Ok(m.client);
        }
        if masking.is_active() {
            return Ok(masking
                .function_result(&mut ResultMasking::default(), raw, enc)?
                .client);
        }
        Ok(None)
    }

    /// ReadyForQuery: the end of a simple query (recorded now), of a refused simple
    /// query's stand-in, or of an extended-protocol Sync.
    pub(super) fn ready_for_query(
        &mut self,
        state: &SessionState,
        raw: &[u8],
    ) -> Result<(), TapError> {
        if state
            .pipeline
            .pop_if(|p| matches!(p, Pending::Refused { simple: true, .. }))
            .is_some()
        {
            // The end of a refused simple query's stand-in: its status is the
            // upstream's own (E inside a transaction block).
        } else if state
            .pipeline
            .front_is(|p| matches!(p, Pending::Simple { .. }))
        {
            if let Some(r) = self.current(state) {
                r.append(raw);
            }
            self.finish(state)?;
            state.pipeline.pop();
        } else if state
            .pipeline
            .pop_if(|p| matches!(p, Pending::Sync))
            .is_none()
        {
            // Out of step (a client that sent no Sync, or a server quirk):
            // resynchronise on the next Sync or simple query.
            state.pipeline.drain_until_sync();
            state.pipeline.pop();
            self.current = None;
        }
        Ok(())
    }

    /// Records the result in progress.
    pub(super) fn finish(&mut self, state: &SessionState) -> Result<(), TapError> {
        if let Some(r) = self.current.take() {
            state.record(r.into_draft())?;
        }
        Ok(())
    }
}

/// What masking makes of a message when the session has masking rules; the message
/// untouched (nothing to splice, nothing else to record) when it has none.
fn when_active(
    masking: &PgMasking,
    mask: impl FnOnce() -> Result<MaskedMessage, DecodeError>,
) -> Result<MaskedMessage, DecodeError> {
    if masking.is_active() {
        mask()
    } else {
        Ok(MaskedMessage::default())
    }
}
