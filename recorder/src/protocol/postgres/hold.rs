//! Holding a statement for approval in the PostgreSQL tap. The session core records
//! and waits (`session::hold`); here the frontend pump's stop is watched for the
//! client leaving, and a statement that was not approved gets PostgreSQL's error.

use super::error_response::gateway_error;
use super::io::TapError;
use super::session_state::SessionState;
use crate::approvals::registry::{Decision, Outcome};
use crate::session::hold::{self, HeldCommand, NotApproved};
use crate::shutdown::Shutdown;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Waits for the decision on `held`. The client's socket is watched meanwhile: what
/// it sends is kept in `buf`, unread by the pump until the decision, and its leaving
/// ends the hold.
pub async fn await_decision<R: AsyncRead + Unpin>(
    state: &SessionState,
    held: &HeldCommand,
    client: &mut R,
    buf: &mut BytesMut,
    shutdown: &mut Shutdown,
) -> Result<Decision, TapError> {
    let client_left = async {
        match client.read_buf(buf).await {
            Ok(0) | Err(_) => {}
            // More input: the client is still there; stop watching.
            Ok(n) => {
                state.add_bytes_from_client(n);
                std::future::pending::<()>().await
            }
        }
    };
    hold::await_decision(
        &state.holds,
        &state.who,
        held,
        |draft| state.record(draft),
        client_left,
        shutdown,
    )
    .await
}

/// The error a client gets for a statement that was not approved, and its text.
pub fn refusal(held: &HeldCommand, decision: &Decision) -> (bytes::Bytes, String) {
    let why = NotApproved::of(held, decision);
    let code = match decision.outcome {
        Outcome::Denied => "42501",
        _ => "57014",
    };
    let error = gateway_error("ERROR", code, why.message.clone(), Some(why.hint.clone()));
    (
        error,
        format!("{code} ERROR: {}\nHINT: {}", why.message, why.hint),
    )
}
