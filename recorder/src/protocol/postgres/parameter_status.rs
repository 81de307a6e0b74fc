//! ParameterStatus ('S'): a run-time setting the server reports at login and after
//! every change. The tap follows `client_encoding` from it (see `encoding`).

use super::wire::{DecodeError, Reader};

/// The parameter and value of a ParameterStatus body (both ASCII in practice; read as
/// UTF-8 with anything else shown, never refused).
pub fn parse(body: &[u8]) -> Result<(String, String), DecodeError> {
    let mut r = Reader::new(b'S', body);
    let name = r.cstr()?.into_owned();
    let value = r.cstr()?.into_owned();
    Ok((name, value))
}

/// Every setting a run of login messages (ParameterStatus among them) reports.
pub fn all_in(messages: &[bytes::Bytes]) -> impl Iterator<Item = (String, String)> + '_ {
    messages
        .iter()
        .filter(|m| m.first() == Some(&b'S') && m.len() >= 5)
        .filter_map(|m| parse(&m[5..]).ok())
}

/// The client encoding a run of login messages (ParameterStatus among them) reports.
pub fn client_encoding_in(messages: &[bytes::Bytes]) -> Option<String> {
    all_in(messages)
        .find(|(n, _)| n == "client_encoding")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::postgres::wire::Builder;

    #[test]
    fn the_client_encoding_is_found_among_the_login_messages() {
        let msgs = vec![
            Builder::new(Some(b'S'))
                .cstr("server_version")
                .cstr("16.4")
                .finish(),
            Builder::new(Some(b'S'))
                .cstr("client_encoding")
                .cstr("LATIN1")
                .finish(),
        ];
        assert_eq!(client_encoding_in(&msgs).as_deref(), Some("LATIN1"));
        assert!(parse(b"unterminated").is_err());
    }
}
