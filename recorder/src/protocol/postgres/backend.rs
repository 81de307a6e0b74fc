//! Messages the upstream sends once the session is running, decoded as far as the
//! tap reads them. The bytes themselves go to the client as they came, or masked.
//!
//! Messages that masking may rewrite (rows, notices, errors, notifications, COPY data,
//! function results) carry nothing here: the tap reads them after masking, from the
//! bytes it records, so the archive never holds a value the client did not get.

use super::encoding::PgEncoding;
use super::parameter_status;
use super::row::{Column, parse_row_description};
use super::wire::{DecodeError, Reader};

/// A decoded upstream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage {
    /// A run-time parameter's new value (`S`); `None` when it does not decode, which
    /// the tap forwards untouched and does not act on.
    ParameterStatus(Option<(String, String)>),
    /// The columns of a result, or of a described statement or portal (`T`).
    RowDescription(Vec<Column>),
    /// A described statement or portal returns no rows (`n`).
    NoData,
    /// The parameter types of a described statement (`t`).
    ParameterDescription(Vec<u32>),
    ParseComplete,
    BindComplete,
    CloseComplete,
    DataRow,
    /// A command finished (`C`), with its tag such as `INSERT 0 3`.
    CommandComplete {
        tag: String,
    },
    /// A simple query was empty (`I`).
    EmptyQueryResponse,
    /// An Execute stopped at its row limit (`s`).
    PortalSuspended,
    /// COPY TO STDOUT starts (`H`); `binary` when its overall format is binary.
    CopyOutResponse {
        binary: bool,
    },
    CopyInResponse,
    CopyBothResponse,
    CopyData,
    CopyDone,
    /// The result of a fast-path function call (`V`).
    FunctionCallResponse,
    ErrorResponse,
    NoticeResponse,
    /// LISTEN/NOTIFY (`A`).
    NotificationResponse,
    ReadyForQuery,
    /// Anything else, forwarded and not read (BackendKeyData, a late authentication
    /// message, NegotiateProtocolVersion).
    Other(u8),
}

impl BackendMessage {
    /// Decodes one upstream message body; strings in a RowDescription are in the
    /// session's client encoding, command tags are ASCII.
    pub fn parse(tag: u8, body: &[u8], encoding: PgEncoding) -> Result<Self, DecodeError> {
        Ok(match tag {
            b'S' => BackendMessage::ParameterStatus(parameter_status::parse(body).ok()),
            b'T' => BackendMessage::RowDescription(parse_row_description(body, encoding)?),
            b'n' => BackendMessage::NoData,
            b't' => {
                let mut r = Reader::new(tag, body);
                let n = r.count16()?;
                let mut types = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    types.push(r.i32()? as u32);
                }
                BackendMessage::ParameterDescription(types)
            }
            b'1' => BackendMessage::ParseComplete,
            b'2' => BackendMessage::BindComplete,
            b'3' => BackendMessage::CloseComplete,
            b'D' => BackendMessage::DataRow,
            b'C' => BackendMessage::CommandComplete {
                tag: Reader::new(tag, body).cstr()?.into_owned(),
            },
            b'I' => BackendMessage::EmptyQueryResponse,
            b's' => BackendMessage::PortalSuspended,
            b'H' => BackendMessage::CopyOutResponse {
                binary: body.first() == Some(&1),
            },
            b'G' => BackendMessage::CopyInResponse,
            b'W' => BackendMessage::CopyBothResponse,
            b'd' => BackendMessage::CopyData,
            b'c' => BackendMessage::CopyDone,
            b'V' => BackendMessage::FunctionCallResponse,
            b'E' => BackendMessage::ErrorResponse,
            b'N' => BackendMessage::NoticeResponse,
            b'A' => BackendMessage::NotificationResponse,
            b'Z' => BackendMessage::ReadyForQuery,
            other => BackendMessage::Other(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::postgres::encoding::UTF8;
    use crate::protocol::postgres::wire::Builder;

    #[test]
    fn tags_parameters_and_copy_formats_are_decoded() {
        let complete = Builder::new(Some(b'C')).cstr("INSERT 0 3").finish();
        assert_eq!(
            BackendMessage::parse(b'C', &complete[5..], UTF8).unwrap(),
            BackendMessage::CommandComplete {
                tag: "INSERT 0 3".into()
            }
        );
        let params = Builder::new(Some(b't')).i16(2).i32(23).i32(25).finish();
        assert_eq!(
            BackendMessage::parse(b't', &params[5..], UTF8).unwrap(),
            BackendMessage::ParameterDescription(vec![23, 25])
        );
        let status = Builder::new(Some(b'S'))
            .cstr("client_encoding")
            .cstr("LATIN1")
            .finish();
        assert_eq!(
            BackendMessage::parse(b'S', &status[5..], UTF8).unwrap(),
            BackendMessage::ParameterStatus(Some(("client_encoding".into(), "LATIN1".into())))
        );
        assert_eq!(
            BackendMessage::parse(b'H', &[1, 0, 0], UTF8).unwrap(),
            BackendMessage::CopyOutResponse { binary: true }
        );
        assert_eq!(
            BackendMessage::parse(b'K', &[0; 8], UTF8).unwrap(),
            BackendMessage::Other(b'K')
        );
    }

    #[test]
    fn short_or_unterminated_bodies_are_malformed_not_panics() {
        assert!(BackendMessage::parse(b'C', b"SELECT 1", UTF8).is_err());
        assert!(BackendMessage::parse(b't', &[0, 2, 0, 0, 0, 23], UTF8).is_err());
        assert!(BackendMessage::parse(b'T', &[0, 1, b'a'], UTF8).is_err());
        // A ParameterStatus that does not decode is passed on, not acted on.
        assert_eq!(
            BackendMessage::parse(b'S', b"client_encoding", UTF8).unwrap(),
            BackendMessage::ParameterStatus(None)
        );
    }
}
