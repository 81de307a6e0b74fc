//! A query the gateway itself runs on a logged-in upstream connection while it is idle
//! (before the client's first command): the catalog lookup for column masking, the
//! fast-path allow list. Its answer is read up to ReadyForQuery and never reaches the
//! client.

use super::encoding::PgEncoding;
use super::error_response::ErrorFields;
use super::io::{TapError, read_message};
use super::wire::Builder;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Sends `sql` and hands each DataRow body to `row`; an ErrorResponse, or an error
/// from `row`, fails the whole query (after reading on to ReadyForQuery, so the
/// connection is left idle either way).
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    leftover: &mut BytesMut,
    sql: &str,
    limit: usize,
    encoding: PgEncoding,
    what: &str,
    mut row: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let q = Builder::new(Some(b'Q'))
        .cstr_bytes(&encoding.encode(sql))
        .finish();
    stream
        .write_all(&q)
        .await
        .map_err(|e| format!("cannot send the {what}: {e}"))?;
    let mut failed = None;
    loop {
        let frame = read_message(stream, leftover, limit)
            .await
            .map_err(|e: TapError| e.to_string())?
            .ok_or_else(|| format!("the upstream closed during the {what}"))?;
        match frame.tag {
            b'D' if failed.is_none() => {
                if let Err(e) = row(frame.body()) {
                    failed = Some(e);
                }
            }
            b'E' => {
                failed = Some(
                    ErrorFields::parse(b'E', frame.body(), encoding)
                        .map(|f| f.render())
                        .unwrap_or_else(|e| e.to_string()),
                );
            }
            b'Z' => break,
            _ => {}
        }
    }
    failed.map_or(Ok(()), Err)
}
