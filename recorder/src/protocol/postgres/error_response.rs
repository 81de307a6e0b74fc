//! ErrorResponse and NoticeResponse: the fields the server explains itself with.

use super::encoding::PgEncoding;
use super::wire::{Builder, DecodeError, Reader};

/// The fields of an ErrorResponse or NoticeResponse that a reader cares about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ErrorFields {
    /// Decodes the body of an 'E' or 'N' message (its texts in the session's
    /// encoding: the server translates its messages into the client's).
    pub fn parse(tag: u8, body: &[u8], encoding: PgEncoding) -> Result<Self, DecodeError> {
        let mut r = Reader::in_encoding(tag, body, encoding);
        let mut f = ErrorFields::default();
        loop {
            let field = r.u8()?;
            if field == 0 {
                break;
            }
            let value = r.cstr()?.to_string();
            match field {
                b'V' => f.severity = value,
                b'S' if f.severity.is_empty() => f.severity = value,
                b'C' => f.code = value,
                b'M' => f.message = value,
                b'D' => f.detail = Some(value),
                b'H' => f.hint = Some(value),
                _ => {}
            }
        }
        Ok(f)
    }

    /// `SQLSTATE SEVERITY: message`, then DETAIL and HINT lines. The SQLSTATE comes
    /// first so SQL over the archive can split it off.
    pub fn render(&self) -> String {
        crate::text_format::error_text(
            &self.code,
            &self.severity,
            &self.message,
            self.detail.as_deref(),
            self.hint.as_deref(),
        )
    }

    /// Builds an ErrorResponse ('E') or NoticeResponse ('N') carrying these fields.
    pub fn to_message(&self, tag: u8) -> bytes::Bytes {
        let mut b = Builder::new(Some(tag))
            .u8(b'S')
            .cstr(&self.severity)
            .u8(b'V')
            .cstr(&self.severity)
            .u8(b'C')
            .cstr(&self.code)
            .u8(b'M')
            .cstr(&self.message);
        if let Some(d) = &self.detail {
            b = b.u8(b'D').cstr(d);
        }
        if let Some(h) = &self.hint {
            b = b.u8(b'H').cstr(h);
        }
        b.u8(0).finish()
    }
}

/// An ErrorResponse from the gateway itself.
pub fn gateway_error(
    severity: &str,
    code: &str,
    message: impl Into<String>,
    hint: Option<String>,
) -> bytes::Bytes {
    ErrorFields {
        severity: severity.into(),
        code: code.into(),
        message: message.into(),
        detail: None,
        hint,
    }
    .to_message(b'E')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::postgres::encoding::UTF8;

    #[test]
    fn error_fields_round_trip_and_render() {
        let f = ErrorFields {
            severity: "ERROR".into(),
            code: "42P01".into(),
            message: "relation \"nope\" does not exist".into(),
            detail: None,
            hint: Some("check the name".into()),
        };
        let msg = f.to_message(b'E');
        let back = ErrorFields::parse(b'E', &msg[5..], UTF8).unwrap();
        assert_eq!(back, f);
        assert_eq!(
            back.render(),
            "42P01 ERROR: relation \"nope\" does not exist\nHINT: check the name"
        );
    }

    #[test]
    fn a_field_without_terminator_is_malformed() {
        assert!(ErrorFields::parse(b'E', b"SERROR", UTF8).is_err());
    }
}
