//! Upstream → client: decode each message, mask what the session's rules cover,
//! build the result of the command at the head of the pipeline, record it when it
//! completes, then forward the bytes (the masked ones where masking changed them).
//!
//! A result event's payload is the exact backend bytes of that command's response
//! (up to `max_recorded_result_bytes`), and its text a readable rendering: column
//! names, then rows, tab-separated.
//!
//! The loop is here; what each message does to the result in progress is in
//! `results`, notices and notifications in `notices`, errors in `error`.

mod error;
mod notices;
mod result_builder;
mod results;

use super::backend::BackendMessage;
use super::error_response::gateway_error;
use super::frame::peek_message_len;
use super::frontend::Target;
use super::io::TapError;
use super::pipeline::Pending;
use super::row::Column;
use super::session_state::SessionState;
use crate::shutdown::{Phase, Shutdown};
use bytes::{Buf, Bytes, BytesMut};
use result_builder::ResultBuilder;
use std::collections::HashMap;
use std::sync::Arc;
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

/// Whose question a RowDescription or NoData answers.
enum DescribeAnswer {
    /// A Describe the client sent: forwarded.
    Client,
    /// A Describe the gateway sent before an Execute (see `described`): dropped.
    Hidden,
    /// No Describe: the columns of a result in progress.
    Result(Vec<Column>),
}

/// What the upstream side of one session remembers between messages.
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

impl BackendState {
    /// Handles one upstream message; returns what the client gets instead of it,
    /// when masking changed it (empty bytes: nothing at all).
    fn handle(&mut self, state: &SessionState, raw: &[u8]) -> Result<Option<Bytes>, TapError> {
        let enc = state.encoding.client();
        match BackendMessage::parse(raw[0], &raw[5..], enc)? {
            BackendMessage::ParameterStatus(Some((name, value))) => {
                parameter_status(state, &name, &value)?
            }
            BackendMessage::RowDescription(cols) => {
                return Ok(self.row_description(state, cols, raw));
            }
            BackendMessage::NoData => return Ok(self.no_data(state)),
            BackendMessage::ParameterDescription(types) => parameter_description(state, types),
            BackendMessage::ParseComplete => {
                state
                    .pipeline
                    .pop_if(|p| matches!(p, Pending::Parse { .. }));
            }
            BackendMessage::CloseComplete => {
                state.pipeline.pop_if(|p| matches!(p, Pending::Close));
            }
            BackendMessage::BindComplete => self.bind_complete(state),
            BackendMessage::DataRow => return self.data_row(state, raw),
            BackendMessage::CommandComplete { tag } => self.completion(state, raw, &tag)?,
            BackendMessage::EmptyQueryResponse | BackendMessage::PortalSuspended => {
                self.completion(state, raw, "")?
            }
            BackendMessage::CopyOutResponse { binary } => self.copy_out(state, raw, binary),
            BackendMessage::CopyInResponse
            | BackendMessage::CopyBothResponse
            | BackendMessage::CopyDone => {
                if let Some(r) = self.current(state) {
                    r.append(raw);
                }
            }
            BackendMessage::CopyData => return self.copy_data(state, raw),
            BackendMessage::FunctionCallResponse => return self.function_result(state, raw),
            BackendMessage::ErrorResponse => return self.error(state, raw),
            BackendMessage::NoticeResponse => return self.notice(state, raw),
            BackendMessage::NotificationResponse => return notices::notification(state, raw),
            BackendMessage::ReadyForQuery => self.ready_for_query(state, raw)?,
            BackendMessage::ParameterStatus(None) | BackendMessage::Other(_) => {}
        }
        Ok(None)
    }
}

/// A run-time parameter changed: strings after a new client_encoding are in it, and
/// the SQL reader follows settings such as standard_conforming_strings.
fn parameter_status(state: &SessionState, name: &str, value: &str) -> Result<(), TapError> {
    if name == "client_encoding" {
        state.encoding.set_client(value);
        if let Some(why) = state.client_encodings.refuses(value) {
            return Err(TapError::SettingRefused(why));
        }
    }
    state.sql_settings.report(name, value);
    Ok(())
}

/// The parameter types of a statement the client described, kept to render the
/// values later bound to it.
fn parameter_description(state: &SessionState, types: Vec<u32>) {
    if let Some(Pending::Describe {
        target: Target::Statement,
        name,
        ..
    }) = state.pipeline.front()
    {
        state
            .described_params
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, types);
    }
}
