//! Messages a client sends once the session is running.

use super::encoding::PgEncoding;
use super::wire::{DecodeError, Reader};

/// What the statement or portal a Describe or Close names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Statement,
    Portal,
}

/// A decoded client message. Only the parts the tap records are kept; the bytes
/// themselves are always forwarded untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage {
    /// Simple query.
    Query {
        sql: String,
    },
    /// Extended query: prepare.
    Parse {
        statement: String,
        sql: String,
        param_types: Vec<u32>,
    },
    /// Extended query: bind parameters to a portal.
    Bind(Bind),
    /// Extended query: describe a statement or portal.
    Describe {
        target: Target,
        name: String,
    },
    /// Extended query: run a portal.
    Execute {
        portal: String,
        max_rows: i32,
    },
    /// Extended query: close a statement or portal.
    Close {
        target: Target,
        name: String,
    },
    Sync,
    Flush,
    /// Fast-path function call (legacy).
    FunctionCall {
        oid: u32,
    },
    CopyData,
    CopyDone,
    CopyFail {
        reason: String,
    },
    Terminate,
    /// A password or SASL message outside authentication.
    Password,
}

/// A Bind: the values a portal runs its statement with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub portal: String,
    pub statement: String,
    /// One format for all parameters, one per parameter, or none (all text).
    pub param_formats: Vec<i16>,
    /// Each parameter's bytes; `None` is SQL NULL.
    pub params: Vec<Option<Vec<u8>>>,
    pub result_formats: Vec<i16>,
}

fn target(tag: u8, b: u8) -> Result<Target, DecodeError> {
    match b {
        b'S' => Ok(Target::Statement),
        b'P' => Ok(Target::Portal),
        _ => Err(DecodeError {
            tag: tag as char,
            what: "the target is neither 'S' nor 'P'",
        }),
    }
}

impl FrontendMessage {
    /// Decodes one client message body, its strings in the session's encoding.
    pub fn parse(tag: u8, body: &[u8], encoding: PgEncoding) -> Result<Self, DecodeError> {
        let mut r = Reader::in_encoding(tag, body, encoding);
        Ok(match tag {
            b'Q' => FrontendMessage::Query {
                sql: r.cstr()?.to_string(),
            },
            b'P' => {
                let statement = r.cstr()?.to_string();
                let sql = r.cstr()?.to_string();
                let n = r.count16()?;
                let mut param_types = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    param_types.push(r.i32()? as u32);
                }
                FrontendMessage::Parse {
                    statement,
                    sql,
                    param_types,
                }
            }
            b'B' => {
                let portal = r.cstr()?.to_string();
                let statement = r.cstr()?.to_string();
                let nf = r.count16()?;
                let mut param_formats = Vec::with_capacity(nf.min(1024));
                for _ in 0..nf {
                    param_formats.push(r.i16()?);
                }
                let np = r.count16()?;
                let mut params = Vec::with_capacity(np.min(1024));
                for _ in 0..np {
                    params.push(r.value()?.map(<[u8]>::to_vec));
                }
                let nr = r.count16()?;
                let mut result_formats = Vec::with_capacity(nr.min(1024));
                for _ in 0..nr {
                    result_formats.push(r.i16()?);
                }
                FrontendMessage::Bind(Bind {
                    portal,
                    statement,
                    param_formats,
                    params,
                    result_formats,
                })
            }
            b'D' => {
                let t = target(tag, r.u8()?)?;
                FrontendMessage::Describe {
                    target: t,
                    name: r.cstr()?.to_string(),
                }
            }
            b'E' => FrontendMessage::Execute {
                portal: r.cstr()?.to_string(),
                max_rows: r.i32()?,
            },
            b'C' => {
                let t = target(tag, r.u8()?)?;
                FrontendMessage::Close {
                    target: t,
                    name: r.cstr()?.to_string(),
                }
            }
            b'S' => FrontendMessage::Sync,
            b'H' => FrontendMessage::Flush,
            b'F' => FrontendMessage::FunctionCall {
                oid: r.i32()? as u32,
            },
            b'd' => FrontendMessage::CopyData,
            b'c' => FrontendMessage::CopyDone,
            b'f' => FrontendMessage::CopyFail {
                reason: r.cstr()?.to_string(),
            },
            b'X' => FrontendMessage::Terminate,
            b'p' => FrontendMessage::Password,
            _ => {
                return Err(DecodeError {
                    tag: tag as char,
                    what: "unknown client message type",
                });
            }
        })
    }
}

/// Renders one bound parameter for the `command` column: text values quoted SQL-style,
/// binary values decoded for common types (by the Parse type OID) or shown as hex.
pub fn render_param(
    value: Option<&[u8]>,
    binary: bool,
    type_oid: u32,
    encoding: PgEncoding,
) -> String {
    let Some(v) = value else {
        return "NULL".to_string();
    };
    if !binary {
        return quote(&encoding.decode(v));
    }
    match super::row::render_binary(type_oid, v, encoding) {
        Some(text) if super::row::is_text_like(type_oid) => quote(&text),
        Some(text) => text,
        None => format!("'\\x{}'", hex::encode(v)),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::postgres::encoding::UTF8;
    use crate::protocol::postgres::wire::Builder;

    #[test]
    fn bind_is_decoded_with_null_and_binary_parameters() {
        let msg = Builder::new(Some(b'B'))
            .cstr("p1")
            .cstr("s1")
            .i16(2)
            .i16(0)
            .i16(1)
            .i16(3)
            .i32(2)
            .raw(b"42")
            .i32(-1)
            .i32(4)
            .raw(&7i32.to_be_bytes())
            .i16(0)
            .finish();
        let parsed = FrontendMessage::parse(b'B', &msg[5..], UTF8).unwrap();
        let FrontendMessage::Bind(Bind {
            portal,
            statement,
            params,
            ..
        }) = parsed
        else {
            panic!("not a bind")
        };
        assert_eq!((portal.as_str(), statement.as_str()), ("p1", "s1"));
        assert_eq!(
            params,
            vec![
                Some(b"42".to_vec()),
                None,
                Some(7i32.to_be_bytes().to_vec())
            ]
        );
        assert_eq!(render_param(Some(&7i32.to_be_bytes()), true, 23, UTF8), "7");
        assert_eq!(render_param(Some(b"it's"), false, 0, UTF8), "'it''s'");
        assert_eq!(render_param(None, false, 0, UTF8), "NULL");
    }

    #[test]
    fn truncated_bind_and_bad_targets_are_malformed() {
        let msg = Builder::new(Some(b'B'))
            .cstr("")
            .cstr("")
            .i16(0)
            .i16(1)
            .i32(10)
            .raw(b"ab")
            .finish();
        assert!(FrontendMessage::parse(b'B', &msg[5..], UTF8).is_err());
        assert!(FrontendMessage::parse(b'D', b"Xname\0", UTF8).is_err());
        assert!(FrontendMessage::parse(b'!', b"", UTF8).is_err());
        let neg = Builder::new(Some(b'P'))
            .cstr("")
            .cstr("select 1")
            .i16(-1)
            .finish();
        assert!(FrontendMessage::parse(b'P', &neg[5..], UTF8).is_err());
    }
}
