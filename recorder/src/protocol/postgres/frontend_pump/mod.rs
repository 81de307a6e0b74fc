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

//!
//! The loop is here; the policy's verdict is in `judge`, the extended protocol in
//! `extended`, what follows a hold in `decided`, COPY FROM STDIN in `copy_in`.

mod copy_in;
mod decided;
mod extended;
mod judge;

use super::described::Described;
use super::frame::peek_message_len;
use super::frontend::FrontendMessage;
use super::hold;
use super::io::TapError;
use super::masking::statement_columns::ReadColumns;
use super::pipeline::Pending;
use super::refusal::refusal_query;
use super::session_state::SessionState;
use crate::approvals::rules::NeedsApproval;
use crate::session::hold::HeldCommand;
use crate::shutdown::{Phase, Shutdown};
use bytes::{Buf, BytesMut};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use tapline_store::{Direction, EventDraft, Kind};
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

/// What the client side of one session remembers between messages.
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
            FrontendMessage::Query { sql } => return self.query(state, raw, sql).await,
            FrontendMessage::FunctionCall { oid } => return self.function_call(state, raw, oid),
            FrontendMessage::Parse {
                statement,
                sql,
                param_types,
            } => return self.parse(state, raw, statement, sql, param_types).await,
            FrontendMessage::Bind(bind) => self.bind(state, raw, bind),
            FrontendMessage::Describe { target, name } => self.describe(state, raw, target, name),
            FrontendMessage::Execute { portal, .. } => return self.execute(state, raw, portal),
            FrontendMessage::Close { target, name } => self.close(state, target, name),
            FrontendMessage::Sync => state.pipeline.push(Pending::Sync),
            FrontendMessage::Flush => {}
            FrontendMessage::CopyData => self.copy_data(state, raw)?,
            FrontendMessage::CopyDone => self.copy_end(state, raw, None)?,
            FrontendMessage::CopyFail { reason } => self.copy_end(state, raw, Some(reason))?,
            FrontendMessage::Terminate => return Ok(Action::Terminate),
            FrontendMessage::Password => {
                return Err(TapError::Protocol(
                    "the client sent a password message after authentication had finished".into(),
                ));
            }
        }
        Ok(Action::Forward)
    }

    /// A simple query: refused, held for approval, or recorded and forwarded.
    async fn query(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        sql: String,
    ) -> Result<Action, TapError> {
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
        Ok(Action::Forward)
    }

    /// A fast-path function call, judged by the function it calls.
    fn function_call(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        oid: u32,
    ) -> Result<Action, TapError> {
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
        Ok(Action::Forward)
    }
}
