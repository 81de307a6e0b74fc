//! The untagged packets that open a PostgreSQL connection.

use super::wire::{Builder, DecodeError, Reader};

/// Protocol version 3.0.
pub const PROTOCOL_3_0: i32 = 196_608;
const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// The first packet a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    /// The client asks for TLS; the gateway answers 'N' until TLS lands.
    SslRequest,
    /// The client asks for GSSAPI encryption; answered 'N'.
    GssEncRequest,
    /// Cancel the query running on the backend with this key.
    CancelRequest { pid: i32, secret: i32 },
    /// The real start: protocol version and parameters (user, database, …).
    Startup {
        version: i32,
        params: Vec<(String, String)>,
    },
}

impl StartupPacket {
    /// Decodes a packet body (after the length).
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b'0', body);
        let code = r.i32()?;
        match code {
            SSL_REQUEST => Ok(StartupPacket::SslRequest),
            GSSENC_REQUEST => Ok(StartupPacket::GssEncRequest),
            CANCEL_REQUEST => Ok(StartupPacket::CancelRequest {
                pid: r.i32()?,
                secret: r.i32()?,
            }),
            version if version >> 16 == 3 => {
                let mut params = Vec::new();
                loop {
                    let key = r.cstr()?;
                    if key.is_empty() {
                        break;
                    }
                    params.push((key.to_string(), r.cstr()?.to_string()));
                }
                Ok(StartupPacket::Startup { version, params })
            }
            _ => Err(DecodeError {
                tag: '0',
                what: "unsupported protocol version (tapline speaks PostgreSQL protocol 3)",
            }),
        }
    }
}

/// Looks a startup parameter up by name.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Builds a StartupMessage for protocol 3.0.
pub fn startup_message(params: &[(String, String)]) -> bytes::Bytes {
    let mut b = Builder::new(None).i32(PROTOCOL_3_0);
    for (k, v) in params {
        b = b.cstr(k).cstr(v);
    }
    b.u8(0).finish()
}

/// Builds an SSLRequest: the gateway asking an upstream for TLS.
pub fn ssl_request() -> bytes::Bytes {
    Builder::new(None).i32(SSL_REQUEST).finish()
}

/// Builds a CancelRequest.
pub fn cancel_request(pid: i32, secret: i32) -> bytes::Bytes {
    Builder::new(None)
        .i32(CANCEL_REQUEST)
        .i32(pid)
        .i32(secret)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_round_trips() {
        let params = vec![
            ("user".to_string(), "alice".to_string()),
            ("database".to_string(), "db".to_string()),
        ];
        let msg = startup_message(&params);
        let parsed = StartupPacket::parse(&msg[4..]).unwrap();
        assert_eq!(
            parsed,
            StartupPacket::Startup {
                version: PROTOCOL_3_0,
                params
            }
        );
    }

    #[test]
    fn special_requests_are_recognised() {
        assert_eq!(
            StartupPacket::parse(&SSL_REQUEST.to_be_bytes()).unwrap(),
            StartupPacket::SslRequest
        );
        assert_eq!(
            StartupPacket::parse(&GSSENC_REQUEST.to_be_bytes()).unwrap(),
            StartupPacket::GssEncRequest
        );
        let c = cancel_request(7, 9);
        assert_eq!(
            StartupPacket::parse(&c[4..]).unwrap(),
            StartupPacket::CancelRequest { pid: 7, secret: 9 }
        );
    }

    #[test]
    fn unterminated_parameters_and_unknown_versions_are_refused() {
        let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
        body.extend_from_slice(b"user\0alice");
        assert!(StartupPacket::parse(&body).is_err());
        assert!(StartupPacket::parse(&0x0002_0000i32.to_be_bytes()).is_err());
        assert!(StartupPacket::parse(&[0, 1]).is_err());
    }
}
