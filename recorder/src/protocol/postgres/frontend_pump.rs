//! Client → upstream: decode each message, check it against the session's deny rules,
//! record commands, queue what awaits a response, then forward the bytes unchanged.
//!
//! A refused simple query is replaced upstream by a query that fails at once, and a
//! refused Parse by a Parse that fails at once, with everything after it dropped until
//! the client's Sync, as PostgreSQL itself skips after an error (see `refusal`). The
//! refused statement never reaches the upstream, the upstream's transaction is aborted
//! as PostgreSQL's own error would abort it, and the client gets the gateway's error in
//! order, in place of the upstream's (see `Pending::Refused`).
//!
//! A statement an approval rule matches is held (see `hold`): at Query, or at the
//! Execute of a portal bound from it. What came before it goes upstream, nothing
//! after it is read until a person decides; an approval forwards it, anything else
//! refuses it the same way as a deny rule does.

use super::copy_rows::split_after_last_row;
use super::described::Described;
use super::encoding::PgEncoding;
use super::error_response::gateway_error;
use super::frame::peek_message_len;
use super::frontend::{FrontendMessage, Target, render_param};
use super::hold;
use super::io::TapError;
use super::masking::notification_guard::masked_notification;
use super::masking::statement_columns::{ReadColumns, read_columns};
use super::pipeline::Pending;
use super::refusal::{refusal_parse, refusal_query};
use super::session_state::SessionState;
use crate::approvals::registry::{Decision, Outcome};
use crate::approvals::rules::{NeedsApproval, Scope};
use crate::policy::guard::Denial;
use crate::policy::sql::{Sql, on_right_stack};
use crate::session::hold::HeldCommand;
use crate::shutdown::{Phase, Shutdown};
use bytes::{Buf, BytesMut};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use tapline_store::{Direction, EventDraft, Kind, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How the client side ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontendEnd {
    /// The client sent Terminate.
    Terminated,
    /// The client closed its socket.
    Closed,
    /// The gateway's shutdown grace ran out.
    Shutdown,
}

/// COPY FROM STDIN data is recorded in chunks of at most this many bytes.
const COPY_CHUNK: usize = 256 * 1024;

/// Bytes of extended-protocol messages that belong to the next Execute.
const MAX_PENDING_RECORD: usize = 1 << 20;

#[derive(Default)]
struct FrontendState {
    /// Prepared statement name → (SQL, parameter type OIDs, the approval it needs,
    /// its select list when column rules read it).
    statements: HashMap<String, (String, Vec<u32>, Option<NeedsApproval>, Columns)>,
    /// Portal name → the command text recorded when it is executed, the approval it
    /// needs, and its statement's select list.
    portals: HashMap<String, (String, Option<NeedsApproval>, Columns)>,
    /// Statement shapes approved for the rest of the session.
    approved_shapes: HashSet<String>,
    /// Client bytes of Parse/Bind/Describe since the last Execute.
    pending_bytes: BytesMut,
    /// The command that started the current COPY FROM STDIN.
    last_simple: Option<String>,
    copy: BytesMut,
    /// The rows of `copy`, as text.
    copy_text: String,
    /// After a refused Parse: drop messages until the client's Sync.
    skipping: bool,
    /// What the client described, to tell an Execute that would come back unplanned.
    described: Described,
}

/// A statement's select lists as the policy check read them, for column lineage.
type Columns = Option<Arc<ReadColumns>>;

/// What happens to one client message.
enum Action {
    Forward,
    /// Wait for a person's decision, then forward or refuse.
    Hold(Box<HeldCommand>, Held),
    /// Not sent upstream.
    Drop,
    /// Sent upstream as these bytes instead.
    Replace(bytes::Bytes),
    Terminate,
}

/// Which message a hold stopped at.
#[derive(Debug, Clone)]
enum Held {
    Query,
    /// An Execute, with its message as the client sent it.
    Execute {
        portal: String,
        message: bytes::Bytes,
    },
}

/// Runs until the client leaves, the gateway shuts down, or an error.
/// On a protocol error the client is told why (FATAL 08P01) before the socket closes.
/// The upstream half is handed back rather than dropped, so the session's owner
/// decides when the upstream sees the close, after it has recorded why.
pub async fn run<R, W>(
    state: Arc<SessionState>,
    mut client: R,
    mut server: W,
    shutdown: Shutdown,
) -> (Result<FrontendEnd, TapError>, W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let result = pump_messages(&state, &mut client, &mut server, shutdown).await;
    if let Err(e) = &result {
        let msg = e.to_fatal();
        let mut writer = state.client_writer.lock().await;
        let _ = writer.write_all(&msg).await;
        let _ = writer.shutdown().await;
        drop(writer);
        // Read what the client already sent: closing a socket with unread input
        // resets the connection, and the reset would destroy the error in flight.
        let mut sink = [0u8; 8192];
        let _ = tokio::time::timeout(DRAIN_AFTER_ERROR, async {
            while let Ok(n) = client.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
    (result, server)
}

/// How long the client's leftover input is drained after a protocol error.
const DRAIN_AFTER_ERROR: std::time::Duration = std::time::Duration::from_millis(500);

async fn pump_messages<R, W>(
    state: &SessionState,
    client: &mut R,
    server: &mut W,
    mut shutdown: Shutdown,
) -> Result<FrontendEnd, TapError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut holding = shutdown.clone();
    let limit = state.limits.max_message_bytes;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut fe = FrontendState::default();
    loop {
        let n = tokio::select! {
            r = client.read_buf(&mut buf) => r?,
            _ = shutdown.reached(Phase::Terminating) => {
                let _ = server.write_all(b"X\0\0\0\x04").await;
                return Ok(FrontendEnd::Shutdown);
            }
        };
        if n == 0 {
            if !buf.is_empty() {
                return Err(TapError::Protocol(format!(
                    "the client closed the connection in the middle of a message ({} bytes pending)",
                    buf.len()
                )));
            }
            let _ = server.write_all(b"X\0\0\0\x04").await;
            return Ok(FrontendEnd::Closed);
        }
        state.add_bytes_from_client(n);
        let mut pos = 0;
        let mut terminated = false;
        // Bytes to send when a message was dropped or replaced; otherwise the read
        // buffer goes upstream as it is.
        let mut edited: Option<BytesMut> = None;
        let mut copied = 0;
        while let Some(len) = peek_message_len(&buf[pos..], limit)? {
            let raw = &buf[pos..pos + len];
            let mut action = fe.handle(state, raw).await?;
            if let Action::Hold(held, at) = action {
                // What came before the held statement goes upstream first; nothing
                // after it is read until a person decides.
                match edited.take() {
                    Some(mut out) => {
                        out.extend_from_slice(&buf[copied..pos]);
                        if !out.is_empty() {
                            server.write_all(&out).await?;
                        }
                    }
                    None => server.write_all(&buf[copied..pos]).await?,
                }
                copied = pos;
                let decision =
                    hold::await_decision(state, &held, client, &mut buf, &mut holding).await?;
                action = fe.decided(state, *held, at, decision).await;
            }
            if !matches!(action, Action::Forward | Action::Terminate) {
                let out = edited.get_or_insert_with(BytesMut::new);
                out.extend_from_slice(&buf[copied..pos]);
                if let Action::Replace(bytes) = &action {
                    out.extend_from_slice(bytes);
                }
                copied = pos + len;
            }
            pos += len;
            if matches!(action, Action::Terminate) {
                terminated = true;
                break;
            }
        }
        if pos > 0 {
            match edited {
                Some(mut out) => {
                    out.extend_from_slice(&buf[copied..pos]);
                    if !out.is_empty() {
                        server.write_all(&out).await?;
                    }
                }
                None => server.write_all(&buf[copied..pos]).await?,
            }
            buf.advance(pos);
        }
        if terminated {
            return Ok(FrontendEnd::Terminated);
        }
    }
}

impl FrontendState {
    /// Records a refused statement and queues the error the client gets in its place;
    /// `simple` says whether the upstream gets the failing query or the failing Parse.
    fn refuse(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        sql: String,
        d: Denial,
        simple: bool,
    ) -> Result<(), TapError> {
        tracing::info!(rule = %d.rule, matched = %d.matched, "statement refused");
        state.record(
            EventDraft::new(Direction::Client, Kind::Query)
                .status(Status::Blocked)
                .command(sql.clone())
                .text(format!(
                    "{sql}\n-- blocked by rule `{}` ({}): {}",
                    d.rule, d.matched, d.message
                ))
                .payload(bytes::Bytes::copy_from_slice(raw)),
        )?;
        let error = gateway_error(
            "ERROR",
            d.sqlstate,
            d.message.clone(),
            Some(format!(
                "refused by tapline policy `{}` ({})",
                d.rule, d.matched
            )),
        );
        state.pipeline.push(Pending::Refused {
            command: sql,
            error,
            text: format!(
                "{} ERROR: {}\nHINT: refused by tapline policy `{}` ({})",
                d.sqlstate, d.message, d.rule, d.matched
            ),
            status: Status::Blocked,
            simple,
        });
        Ok(())
    }

    /// The deny rules' verdict on `sql`, else the approval it needs unless a
    /// session-wide approval covers its shape: one parse serves all three, made where
    /// it is safe (`policy::sql`). With no rule at all nothing is parsed.
    async fn judge(
        &self,
        state: &SessionState,
        sql: &str,
    ) -> (Option<Denial>, Option<NeedsApproval>, Columns) {
        let column_maskers = state.masking.column_maskers();
        if state.guard.is_empty() && state.approvals.is_empty() && column_maskers.is_empty() {
            return (None, None, None);
        }
        let guard = state.guard.clone();
        let approvals = state.approvals.clone();
        let derived = state.masking.catalog.derived().clone();
        let shapes = (!self.approved_shapes.is_empty()).then(|| self.approved_shapes.clone());
        on_right_stack(
            sql,
            state.sql_settings.get(),
            move |sql: &Sql<'_>| {
                // Column rules plan results from the same parse (see `lineage`), and
                // follow the views and tables it defines (`derived_relations`).
                let columns = (!column_maskers.is_empty()).then(|| {
                    match sql.statements() {
                        Ok(statements) => derived.note(statements),
                        Err(_) => derived.note_unreadable(),
                    }
                    Arc::new(read_columns(sql))
                });
                match guard
                    .check_sql(sql)
                    .or_else(|| masked_notification(sql, &column_maskers, &derived))
                {
                    Some(d) => (Some(d), None, columns),
                    None => {
                        let needs = approvals.check(sql);
                        let covered = needs
                            .as_ref()
                            .is_some_and(|n| shapes.as_ref().is_some_and(|s| s.contains(&n.shape)));
                        (None, needs.filter(|_| !covered), columns)
                    }
                }
            },
            || (Some(Denial::check_failed()), None, None),
        )
        .await
    }

    /// Whether a session-wide approval granted since the statement arrived covers
    /// its shape (read then, as the server read it).
    fn approved_for_session(&self, needs: &NeedsApproval) -> bool {
        self.approved_shapes.contains(&needs.shape)
    }

    /// Goes on after a hold: an approved statement is forwarded (and its shape
    /// remembered for a session-wide approval); any other end refuses it in place.
    async fn decided(
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

    /// Handles one whole message and says what to send upstream.
    async fn handle(&mut self, state: &SessionState, raw: &[u8]) -> Result<Action, TapError> {
        let tag = raw[0];
        let msg = FrontendMessage::parse(tag, &raw[5..], state.encoding.client())?;
        if self.skipping {
            match msg {
                FrontendMessage::Sync => {
                    self.skipping = false;
                    state.pipeline.push(Pending::Sync);
                    return Ok(Action::Forward);
                }
                FrontendMessage::Terminate => return Ok(Action::Terminate),
                // The upstream holds the refusal's error until it is flushed.
                FrontendMessage::Flush => return Ok(Action::Forward),
                _ => return Ok(Action::Drop),
            }
        }
        match msg {
            FrontendMessage::Query { sql } => {
                let (denial, needs, columns) = self.judge(state, &sql).await;
                if let Some(d) = denial {
                    self.refuse(state, raw, sql, d, true)?;
                    return Ok(Action::Replace(refusal_query()));
                }
                if let Some(needs) = needs {
                    return Ok(Action::Hold(
                        Box::new(HeldCommand {
                            command: sql,
                            payload: bytes::Bytes::copy_from_slice(raw),
                            needs,
                        }),
                        Held::Query,
                    ));
                }
                state.record(
                    // The SQL is in `command`; `text` would only repeat it.
                    EventDraft::new(Direction::Client, Kind::Query)
                        .command(sql.clone())
                        .payload(bytes::Bytes::copy_from_slice(raw)),
                )?;
                self.last_simple = Some(sql.clone());
                state.pipeline.push(Pending::Simple {
                    command: sql,
                    started: Instant::now(),
                    approved: false,
                    columns,
                });
            }
            FrontendMessage::FunctionCall { oid } => {
                let (command, denial) = state.fast_path.judge(oid);
                if let Some(d) = denial {
                    self.refuse(state, raw, command, d, true)?;
                    return Ok(Action::Replace(refusal_query()));
                }
                state.record(
                    EventDraft::new(Direction::Client, Kind::Query)
                        .command(command.clone())
                        .payload(bytes::Bytes::copy_from_slice(raw)),
                )?;
                state.pipeline.push(Pending::Simple {
                    command,
                    started: Instant::now(),
                    approved: false,
                    columns: None,
                });
            }
            FrontendMessage::Parse {
                statement,
                sql,
                param_types,
            } => {
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
            }
            FrontendMessage::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            } => {
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
            FrontendMessage::Describe { target, name } => {
                self.keep_for_execute(raw);
                self.described.described(target, &name);
                state.pipeline.push(Pending::Describe {
                    target,
                    name,
                    hidden: false,
                });
            }
            FrontendMessage::Execute { portal, .. } => {
                let (command, needs, columns) =
                    self.portals.get(&portal).cloned().unwrap_or_else(|| {
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
                if let Some(bytes) = describe {
                    return Ok(Action::Replace(bytes));
                }
            }
            FrontendMessage::Close { target, name } => {
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
            FrontendMessage::Sync => state.pipeline.push(Pending::Sync),
            FrontendMessage::Flush => {}
            FrontendMessage::CopyData => {
                self.copy.extend_from_slice(raw);
                self.copy_text
                    .push_str(&state.encoding.client().decode(&raw[5..]));
                if self.copy.len() >= COPY_CHUNK {
                    self.record_copy_rows(state)?;
                }
            }
            FrontendMessage::CopyDone => {
                self.copy.extend_from_slice(raw);
                self.record_copy(state, None)?;
            }
            FrontendMessage::CopyFail { reason } => {
                self.copy.extend_from_slice(raw);
                self.record_copy(state, Some(reason))?;
            }
            FrontendMessage::Terminate => return Ok(Action::Terminate),
            FrontendMessage::Password => {
                return Err(TapError::Protocol(
                    "the client sent a password message after authentication had finished".into(),
                ));
            }
        }
        Ok(Action::Forward)
    }

    /// Before an Execute whose portal the client never described, when column rules
    /// need its columns: queues a hidden Describe of the portal and returns the bytes
    /// to send upstream in place of the Execute (the Describe, then the Execute).
    fn describe_first(
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

    fn keep_for_execute(&mut self, raw: &[u8]) {
        if self.pending_bytes.len() + raw.len() <= MAX_PENDING_RECORD {
            self.pending_bytes.extend_from_slice(raw);
        }
    }

    /// `SQL` followed by `-- params: $1 = '42', $2 = NULL` when there are parameters.
    fn command_for(
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

    /// Records the whole rows of a long COPY FROM STDIN so far as an `input` event,
    /// and keeps the row in progress for the next one: a value is never split
    /// between two events, where masking could not see it whole.
    fn record_copy_rows(&mut self, state: &SessionState) -> Result<(), TapError> {
        let Some((head, tail)) = split_after_last_row(&self.copy) else {
            return self.record_copy(state, None);
        };
        let carry_text = match self.copy_text.rfind('\n') {
            Some(nl) => self.copy_text.split_off(nl + 1),
            None => String::new(),
        };
        self.copy = head;
        self.record_copy(state, None)?;
        self.copy = tail;
        self.copy_text = carry_text;
        Ok(())
    }

    /// Records buffered COPY FROM STDIN data as an `input` event.
    fn record_copy(
        &mut self,
        state: &SessionState,
        failed: Option<String>,
    ) -> Result<(), TapError> {
        if self.copy.is_empty() {
            return Ok(());
        }
        let payload = std::mem::take(&mut self.copy).freeze();
        let mut text = std::mem::take(&mut self.copy_text);
        if let Some(reason) = failed {
            text.push_str(&format!("\n-- COPY aborted by the client: {reason}"));
        }
        let mut draft = EventDraft::new(Direction::Client, Kind::Input)
            .payload(payload)
            .text(text);
        draft.command = self.last_simple.clone();
        state.record(draft)?;
        Ok(())
    }
}
