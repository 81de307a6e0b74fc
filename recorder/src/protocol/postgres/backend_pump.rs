//! Upstream → client: decode each message, mask what the session's rules cover,
//! build the result of the command at the head of the pipeline, record it when it
//! completes, then forward the bytes (the masked ones where masking changed them).
//!
//! A result event's payload is the exact backend bytes of that command's response
//! (up to `max_recorded_result_bytes`), and its text a readable rendering: column
//! names, then rows, tab-separated.

use super::error_response::{ErrorFields, gateway_error};
use super::frame::peek_message_len;
use super::frontend::Target;
use super::io::TapError;
use super::masking::statement_columns::StatementText;
use super::masking::{MaskedMessage, ResultMasking};
use super::parameter_status;
use super::pipeline::Pending;
use super::row::{
    Column, apply_result_formats, parse_row_description, render_data_row, render_header,
    tag_row_count,
};
use super::session_state::SessionState;
use super::wire::Reader;
use crate::policy::mask::tally::Tally;
use crate::shutdown::{Phase, Shutdown};
use crate::text_format;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tapline_store::{Direction, EventDraft, Kind, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// How the upstream side ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendEnd {
    /// The upstream closed the connection.
    Closed,
    /// The gateway's shutdown grace ran out; the client was told.
    Shutdown,
}

/// PostgreSQL's own ceiling for one message.
const SERVER_MESSAGE_LIMIT: usize = (1 << 30) + 5;

/// The readable rendering of one result is capped here; rows past it are counted.
const TEXT_CAP: usize = 1 << 20;

/// The result being assembled for the command at the head of the pipeline.
struct ResultBuilder {
    command: String,
    started: Instant,
    simple: bool,
    /// Run after a person approved it.
    approved: bool,
    cols: Option<Vec<Column>>,
    payload: BytesMut,
    payload_cap: usize,
    bytes_not_recorded: u64,
    text: String,
    rows_not_rendered: u64,
    tag_rows: Option<u64>,
    data_rows: u64,
    error: Option<ErrorFields>,
    /// Column plans, COPY plan and counts of what was masked.
    masking: ResultMasking,
}

impl ResultBuilder {
    fn new(
        command: String,
        started: Instant,
        simple: bool,
        cols: Option<Vec<Column>>,
        cap: usize,
    ) -> Self {
        ResultBuilder {
            command,
            started,
            simple,
            approved: false,
            cols,
            payload: BytesMut::new(),
            payload_cap: cap,
            bytes_not_recorded: 0,
            text: String::new(),
            rows_not_rendered: 0,
            tag_rows: None,
            data_rows: 0,
            error: None,
            masking: ResultMasking::default(),
        }
    }

    fn append(&mut self, raw: &[u8]) {
        if self.payload.len() + raw.len() <= self.payload_cap {
            self.payload.extend_from_slice(raw);
        } else {
            self.bytes_not_recorded += raw.len() as u64;
        }
    }

    fn line(&mut self, s: &str) {
        if self.text.len() < TEXT_CAP {
            self.text.push_str(s);
            self.text.push('\n');
        }
    }

    fn add_tag(&mut self, tag: &str) {
        if let Some(n) = tag_row_count(tag) {
            *self.tag_rows.get_or_insert(0) += n;
        }
        // Row-returning commands are already described by their rows.
        if !(tag.starts_with("SELECT") || tag.starts_with("FETCH") || tag.is_empty()) {
            self.line(tag);
        }
    }

    fn into_draft(mut self) -> EventDraft {
        if self.rows_not_rendered > 0 {
            let note = text_format::rows_not_rendered(self.rows_not_rendered);
            self.text.push_str(&note);
            self.text.push('\n');
        }
        if self.bytes_not_recorded > 0 {
            let note = text_format::recording_truncated(self.bytes_not_recorded);
            self.text.push_str(&note);
            self.text.push('\n');
        }
        let duration = self.started.elapsed().as_micros() as u64;
        let rows = self.tag_rows.unwrap_or(self.data_rows);
        let masked = std::mem::take(&mut self.masking.tally).into_entries();
        let (kind, status, text) = match &self.error {
            Some(e) => (
                Kind::Error,
                Status::Error,
                format!("{}\n{}", e.render(), self.text),
            ),
            None if self.approved => (Kind::Result, Status::Approved, self.text),
            None => (Kind::Result, Status::Ok, self.text),
        };
        let mut draft = EventDraft::new(Direction::Server, kind)
            .command(self.command)
            .status(status)
            .row_count(rows)
            .duration_us(duration)
            .payload(self.payload.freeze())
            .text(text.trim_end().to_string());
        draft.masked = masked;
        draft
    }
}

/// Whose question a RowDescription or NoData answers.
enum DescribeAnswer {
    /// A Describe the client sent: forwarded.
    Client,
    /// A Describe the gateway sent before an Execute (see `described`): dropped.
    Hidden,
    /// No Describe: the columns of a result in progress.
    Result(Vec<Column>),
}

#[derive(Default)]
struct BackendState {
    /// Statement name → columns, from a statement Describe.
    statements: HashMap<String, Vec<Column>>,
    /// Portal name → columns, with result formats applied.
    portals: HashMap<String, Vec<Column>>,
    current: Option<ResultBuilder>,
}

/// Runs until the upstream closes, the gateway shuts down, or an error.
pub async fn run<R: AsyncRead + Unpin>(
    state: Arc<SessionState>,
    mut server: R,
    mut buf: BytesMut,
    mut shutdown: Shutdown,
) -> Result<BackendEnd, TapError> {
    let mut be = BackendState::default();
    loop {
        let mut pos = 0;
        // What the client gets, when it differs from the upstream's bytes: masked
        // messages in place of the originals, and the gateway's error for a refused
        // statement in place of the upstream's error for its stand-in. Bytes up to
        // `copied` are in it.
        let mut spliced: Option<BytesMut> = None;
        let mut copied = 0;
        let mut writer = state.client_writer.lock().await;
        while let Some(len) = peek_message_len(&buf[pos..], SERVER_MESSAGE_LIMIT)? {
            if let Some(masked) = be.handle(&state, &buf[pos..pos + len])? {
                let out = spliced.get_or_insert_with(BytesMut::new);
                out.extend_from_slice(&buf[copied..pos]);
                out.extend_from_slice(&masked);
                copied = pos + len;
            }
            pos += len;
        }
        if pos > 0 || spliced.is_some() {
            state.wait_durable().await?;
            match spliced {
                Some(mut out) => {
                    out.extend_from_slice(&buf[copied..pos]);
                    writer.write_all(&out).await?;
                }
                None => writer.write_all(&buf[..pos]).await?,
            }
            buf.advance(pos);
        }
        drop(writer);
        let n = tokio::select! {
            // Shutdown first: the frontend closes the upstream on shutdown too, and
            // that close must not be mistaken for the upstream leaving on its own.
            biased;
            _ = shutdown.reached(Phase::Terminating) => {
                return Ok(shut_down(&state).await);
            }
            r = server.read_buf(&mut buf) => r?,
        };
        if n == 0 {
            // The frontend sends Terminate upstream when the grace runs out; the close
            // that follows can be read here first.
            if shutdown.phase() >= Phase::Terminating {
                return Ok(shut_down(&state).await);
            }
            return Ok(BackendEnd::Closed);
        }
        state.add_bytes_from_server(n);
    }
}

/// Tells the client the gateway is shutting down (its grace ran out).
async fn shut_down(state: &SessionState) -> BackendEnd {
    let msg = gateway_error(
        "FATAL",
        "57P01",
        "terminating connection because the tapline gateway is shutting down",
        Some("reconnect in a moment; your session up to here is recorded".into()),
    );
    let _ = state.client_writer.lock().await.write_all(&msg).await;
    BackendEnd::Shutdown
}

/// A server message no command claims (a notice between commands, a notification),
/// recorded as it was masked.
fn output_event(recorded: &[u8], text: String, tally: Tally) -> EventDraft {
    let mut draft = EventDraft::new(Direction::Server, Kind::Output)
        .payload(bytes::Bytes::copy_from_slice(recorded))
        .text(text);
    draft.masked = tally.into_entries();
    draft
}

/// Records the error a refused statement got, as its completion.
pub fn record_refusal(
    state: &SessionState,
    command: String,
    error: bytes::Bytes,
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

impl BackendState {
    /// The builder of the command at the head of the pipeline, started on demand.
    fn current(&mut self, state: &SessionState) -> Option<&mut ResultBuilder> {
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

    /// Handles one upstream message; returns what the client gets instead of it,
    /// when masking changed it.
    fn handle(&mut self, state: &SessionState, raw: &[u8]) -> Result<Option<Bytes>, TapError> {
        let tag = raw[0];
        let body = &raw[5..];
        let masking = &state.masking;
        let enc = state.encoding.client();
        match tag {
            b'S' => {
                // Strings after this one are in the new encoding.
                if let Ok((name, value)) = parameter_status::parse(body) {
                    if name == "client_encoding" {
                        state.encoding.set_client(&value);
                        if let Some(why) = state.client_encodings.refuses(&value) {
                            return Err(TapError::SettingRefused(why));
                        }
                    }
                    state.sql_settings.report(&name, &value);
                }
            }
            b'T' => {
                let cols = parse_row_description(body, enc)?;
                let cols = match self.describe_done(state, cols) {
                    DescribeAnswer::Result(cols) => Some(cols),
                    DescribeAnswer::Client => None,
                    // The gateway's own Describe: the client never asked for it.
                    DescribeAnswer::Hidden => return Ok(Some(Bytes::new())),
                };
                if let Some(cols) = cols {
                    let Some(r) = self.current(state) else {
                        return Ok(None);
                    };
                    render_header(&cols, &mut r.text);
                    r.cols = Some(cols);
                    // A simple query may return several results, each described anew.
                    r.masking.new_result();
                    r.append(raw);
                }
            }
            b'n' => {
                if let DescribeAnswer::Hidden = self.describe_done(state, Vec::new()) {
                    return Ok(Some(Bytes::new()));
                }
            }
            b't' => {
                if let Some(Pending::Describe {
                    target: Target::Statement,
                    name,
                    ..
                }) = state.pipeline.front()
                {
                    let mut r = Reader::new(tag, body);
                    let n = r.count16()?;
                    let mut types = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        types.push(r.i32()? as u32);
                    }
                    state
                        .described_params
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name, types);
                }
            }
            b'1' => {
                state
                    .pipeline
                    .pop_if(|p| matches!(p, Pending::Parse { .. }));
            }
            b'3' => {
                state.pipeline.pop_if(|p| matches!(p, Pending::Close));
            }
            b'2' => {
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
            b'D' => {
                if let Some(r) = self.current(state) {
                    r.data_rows += 1;
                    let m = if masking.is_active() {
                        masking.data_row(&mut r.masking, r.cols.as_deref(), raw, enc)?
                    } else {
                        MaskedMessage::default()
                    };
                    let recorded = m.for_record().unwrap_or(raw);
                    r.append(recorded);
                    if r.text.len() < TEXT_CAP {
                        render_data_row(&recorded[5..], r.cols.as_deref(), enc, &mut r.text)?;
                    } else {
                        r.rows_not_rendered += 1;
                    }
                    return Ok(m.client);
                } else if masking.is_active() {
                    // A row no command claims (the pipeline is out of step): still
                    // masked, by value, before it reaches the client.
                    return Ok(masking
                        .data_row(&mut ResultMasking::default(), None, raw, enc)?
                        .client);
                }
            }
            b'C' | b'I' | b's' => {
                let cmd_tag = if tag == b'C' {
                    Reader::new(tag, body).cstr()?.to_string()
                } else {
                    String::new()
                };
                if let Some(r) = self.current(state) {
                    r.append(raw);
                    r.add_tag(&cmd_tag);
                    if !r.simple {
                        self.finish(state)?;
                        state.pipeline.pop();
                    }
                }
            }
            b'H' => {
                if let Some(r) = self.current(state) {
                    if masking.is_active() {
                        let binary = body.first() == Some(&1);
                        masking.copy_out(&mut r.masking, &r.command, binary);
                    }
                    r.append(raw);
                }
            }
            b'V' => {
                if let Some(r) = self.current(state) {
                    let m = if masking.is_active() {
                        masking.function_result(&mut r.masking, raw, enc)?
                    } else {
                        MaskedMessage::default()
                    };
                    r.append(m.for_record().unwrap_or(raw));
                    return Ok(m.client);
                } else if masking.is_active() {
                    return Ok(masking
                        .function_result(&mut ResultMasking::default(), raw, enc)?
                        .client);
                }
            }
            b'G' | b'W' | b'c' => {
                if let Some(r) = self.current(state) {
                    r.append(raw);
                }
            }
            b'd' => {
                if let Some(r) = self.current(state) {
                    let m = if masking.is_active() {
                        masking.copy_data(&mut r.masking, raw, enc)
                    } else {
                        MaskedMessage::default()
                    };
                    let recorded = m.for_record().unwrap_or(raw);
                    r.append(recorded);
                    if r.text.len() < TEXT_CAP {
                        r.text.push_str(&enc.decode(&recorded[5..]));
                    }
                    return Ok(m.client);
                }
            }
            b'E' => return self.error(state, raw),
            b'N' => {
                let mut tally = Tally::default();
                let m = masking.notice(&mut tally, raw, enc)?;
                let recorded = m.for_record().unwrap_or(raw);
                let notice = format!(
                    "NOTICE: {}",
                    ErrorFields::parse(tag, &recorded[5..], enc)?.render()
                );
                match self.current(state) {
                    Some(r) => {
                        r.append(recorded);
                        r.line(&notice);
                        r.masking.tally.merge(tally);
                    }
                    None => state.record(output_event(recorded, notice, tally))?,
                }
                return Ok(m.client);
            }
            b'A' => {
                let mut tally = Tally::default();
                let m = masking.notification(&mut tally, raw, enc)?;
                let recorded = m.for_record().unwrap_or(raw);
                let mut r = Reader::in_encoding(tag, &recorded[5..], enc);
                let pid = r.i32()?;
                let channel = r.cstr()?;
                let payload = r.cstr()?;
                let text = format!("NOTIFY {channel}: {payload} (from backend {pid})");
                state.record(output_event(recorded, text, tally))?;
                return Ok(m.client);
            }
            b'Z' => {
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
            }
            _ => {}
        }
        Ok(None)
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

    fn finish(&mut self, state: &SessionState) -> Result<(), TapError> {
        if let Some(r) = self.current.take() {
            state.record(r.into_draft())?;
        }
        Ok(())
    }

    /// An ErrorResponse: in a simple query it ends with ReadyForQuery; in the extended
    /// protocol the server skips everything until Sync, so the failing command is
    /// recorded now and the commands skipped after it are recorded as such.
    fn error(&mut self, state: &SessionState, raw: &[u8]) -> Result<Option<Bytes>, TapError> {
        // The upstream's error for a refused statement's stand-in: the client gets the
        // gateway's refusal in its place, and the refusal is its completion.
        if let Some(Pending::Refused {
            command,
            error,
            text,
            status,
            simple,
        }) = state
            .pipeline
            .front()
            .filter(|p| matches!(p, Pending::Refused { .. }))
        {
            if !simple {
                state.pipeline.pop();
            }
            record_refusal(state, command, error.clone(), text, status)?;
            return Ok(Some(error));
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
                return Ok(client);
            }
            None | Some(Pending::Sync) => {
                // Not tied to any command: e.g. the server terminating the session.
                let mut draft = EventDraft::new(Direction::Server, Kind::Error)
                    .status(Status::Error)
                    .payload(bytes::Bytes::copy_from_slice(raw))
                    .text(fields.render());
                draft.masked = tally.into_entries();
                state.record(draft)?;
                return Ok(client);
            }
            Some(_) => {}
        }
        let cap = state.limits.max_recorded_result_bytes;
        let skipped = state.pipeline.drain_until_sync();
        let mut executes = skipped.iter().filter_map(|p| match p {
            Pending::Execute {
                command, started, ..
            } => Some((command.clone(), *started)),
            _ => None,
        });
        let failing = match executes.next() {
            Some((command, started)) => Some((command, started)),
            None => {
                // A Parse or Bind failed with no Execute behind it (a client preparing a
                // statement): record the statement as the command that failed.
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
        };
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
        for p in &skipped {
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
        for (command, _) in executes {
            state.record(
                EventDraft::new(Direction::Gateway, Kind::Error)
                    .command(command)
                    .status(Status::Error)
                    .row_count(0)
                    .text("skipped: the server did not run this command because an earlier command in the same pipeline failed"),
            )?;
        }
        Ok(client)
    }
}
