//! Reading whole messages off a socket, and the errors a session can end with.

use super::frame::{self, Frame, FrameError};
use super::wire::DecodeError;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a PostgreSQL session ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Protocol(String),
    #[error("the client sent nothing for {0} s during startup")]
    Timeout(u64),
    /// A setting the policy does not allow took effect (SQLSTATE 22023).
    #[error("{0}")]
    SettingRefused(String),
    #[error(transparent)]
    Store(#[from] tapline_store::StoreError),
}

impl TapError {
    /// The FATAL 08P01 the client is sent when this error ends its session.
    pub fn to_fatal(&self) -> bytes::Bytes {
        use tapline_store::StoreError;
        let code = match self {
            // disk_full: the spool cannot take more until the archive catches up.
            TapError::Store(StoreError::SpoolFull { .. } | StoreError::SpoolFailed) => "53100",
            TapError::Store(_) => "58000",
            TapError::SettingRefused(_) => "22023",
            _ => "08P01",
        };
        super::error_response::gateway_error(
            "FATAL",
            code,
            format!("tapline closed the session: {self}"),
            None,
        )
    }
}

/// Reads until one tagged message is complete; `Ok(None)` on a clean EOF between
/// messages.
pub async fn read_message<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    limit: usize,
) -> Result<Option<Frame>, TapError> {
    loop {
        if let Some(f) = frame::take_message(buf, limit)? {
            return Ok(Some(f));
        }
        if stream.read_buf(buf).await? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(TapError::Protocol(format!(
                "the connection closed in the middle of a message ({} bytes pending)",
                buf.len()
            )));
        }
    }
}

/// Reads one untagged startup packet; `Ok(None)` on EOF before any byte.
pub async fn read_startup<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
) -> Result<Option<bytes::Bytes>, TapError> {
    loop {
        if let Some(p) = frame::take_startup(buf)? {
            return Ok(Some(p));
        }
        if stream.read_buf(buf).await? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(TapError::Protocol(
                "the connection closed in the middle of the startup packet".into(),
            ));
        }
    }
}
