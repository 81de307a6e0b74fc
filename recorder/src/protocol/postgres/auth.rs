//! Authentication messages, both ways: the gateway is a server to its clients and a
//! client to its upstream.

use super::wire::{Builder, DecodeError, Reader};

/// An 'R' message from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest {
    Ok,
    Cleartext,
    Md5 {
        salt: [u8; 4],
    },
    Sasl {
        mechanisms: Vec<String>,
    },
    SaslContinue {
        data: Vec<u8>,
    },
    SaslFinal {
        data: Vec<u8>,
    },
    /// Kerberos, GSSAPI, SSPI: not something a gateway-held password can answer.
    Unsupported(i32),
}

impl AuthRequest {
    /// Decodes an 'R' body.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b'R', body);
        Ok(match r.i32()? {
            0 => AuthRequest::Ok,
            3 => AuthRequest::Cleartext,
            5 => {
                let s = r.bytes(4)?;
                AuthRequest::Md5 {
                    salt: [s[0], s[1], s[2], s[3]],
                }
            }
            10 => {
                let mut mechanisms = Vec::new();
                loop {
                    let m = r.cstr()?;
                    if m.is_empty() {
                        break;
                    }
                    mechanisms.push(m.to_string());
                }
                AuthRequest::Sasl { mechanisms }
            }
            11 => AuthRequest::SaslContinue {
                data: r.remaining().to_vec(),
            },
            12 => AuthRequest::SaslFinal {
                data: r.remaining().to_vec(),
            },
            other => AuthRequest::Unsupported(other),
        })
    }

    /// Encodes this request as an 'R' message.
    pub fn to_message(&self) -> bytes::Bytes {
        let b = Builder::new(Some(b'R'));
        match self {
            AuthRequest::Ok => b.i32(0),
            AuthRequest::Cleartext => b.i32(3),
            AuthRequest::Md5 { salt } => b.i32(5).raw(salt),
            AuthRequest::Sasl { mechanisms } => {
                let mut b = b.i32(10);
                for m in mechanisms {
                    b = b.cstr(m);
                }
                b.u8(0)
            }
            AuthRequest::SaslContinue { data } => b.i32(11).raw(data),
            AuthRequest::SaslFinal { data } => b.i32(12).raw(data),
            AuthRequest::Unsupported(code) => b.i32(*code),
        }
        .finish()
    }
}

/// A PasswordMessage with a cleartext or md5 password.
pub fn password_message(password: &str) -> bytes::Bytes {
    Builder::new(Some(b'p')).cstr(password).finish()
}

/// A SASLInitialResponse.
pub fn sasl_initial_response(mechanism: &str, data: &[u8]) -> bytes::Bytes {
    Builder::new(Some(b'p'))
        .cstr(mechanism)
        .i32(data.len() as i32)
        .raw(data)
        .finish()
}

/// A SASLResponse.
pub fn sasl_response(data: &[u8]) -> bytes::Bytes {
    Builder::new(Some(b'p')).raw(data).finish()
}

/// Decodes a SASLInitialResponse body: (mechanism, client-first-message).
pub fn parse_sasl_initial(body: &[u8]) -> Result<(String, Vec<u8>), DecodeError> {
    let mut r = Reader::new(b'p', body);
    let mechanism = r.cstr()?.to_string();
    let data = r.value()?.unwrap_or_default().to_vec();
    Ok((mechanism, data))
}

/// The md5 password PostgreSQL expects: "md5" + md5(md5(password + user) + salt).
pub fn md5_password(user: &str, password: &str, salt: &[u8; 4]) -> String {
    use md5::{Digest, Md5};
    let inner = hex::encode(Md5::digest(format!("{password}{user}").as_bytes()));
    let mut h = Md5::new();
    h.update(inner.as_bytes());
    h.update(salt);
    format!("md5{}", hex::encode(h.finalize()))
}

/// BackendKeyData: the key a client cancels with.
pub fn backend_key_data(pid: i32, secret: i32) -> bytes::Bytes {
    Builder::new(Some(b'K')).i32(pid).i32(secret).finish()
}

/// Decodes BackendKeyData.
pub fn parse_backend_key_data(body: &[u8]) -> Result<(i32, i32), DecodeError> {
    let mut r = Reader::new(b'K', body);
    Ok((r.i32()?, r.i32()?))
}

/// ReadyForQuery with a transaction status ('I', 'T' or 'E').
pub fn ready_for_query(status: u8) -> bytes::Bytes {
    Builder::new(Some(b'Z')).u8(status).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_postgres() {
        // Known answer, computed independently (Python hashlib) for user "postgres",
        // password "secret", salt 01020304.
        assert_eq!(
            md5_password("postgres", "secret", &[1, 2, 3, 4]),
            "md5bb41a296aab6baccb36ff243a562abff"
        );
        assert_ne!(
            md5_password("postgres", "secret", &[1, 2, 3, 5]),
            "md5bb41a296aab6baccb36ff243a562abff"
        );
    }

    #[test]
    fn auth_requests_round_trip() {
        for req in [
            AuthRequest::Ok,
            AuthRequest::Cleartext,
            AuthRequest::Md5 { salt: [9, 8, 7, 6] },
            AuthRequest::Sasl {
                mechanisms: vec!["SCRAM-SHA-256".into()],
            },
            AuthRequest::SaslContinue {
                data: b"r=abc".to_vec(),
            },
        ] {
            let m = req.to_message();
            assert_eq!(AuthRequest::parse(&m[5..]).unwrap(), req);
        }
        assert!(AuthRequest::parse(&[0, 0, 0, 5, 1]).is_err());
    }
}
