//! SCRAM-SHA-256 (RFC 5802 / 7677) as PostgreSQL uses it, both as a client (to the
//! upstream, with the password the gateway holds) and as a server (to clients, against
//! a stored verifier, so the gateway never keeps client secrets in clear).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The mechanism name.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// The mechanism with channel binding, offered to clients over TLS.
pub const MECHANISM_PLUS: &str = "SCRAM-SHA-256-PLUS";

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

fn nonce() -> String {
    let mut raw = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    B64.encode(raw)
}

/// A SCRAM exchange failed; the text says what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCRAM-SHA-256: {0}")]
pub struct ScramError(pub String);

fn attr(msg: &str, key: char) -> Option<&str> {
    msg.split(',').find_map(|p| {
        let mut it = p.splitn(2, '=');
        (it.next()? == key.to_string()).then(|| it.next()).flatten()
    })
}

/// The client side, used towards the upstream.
pub struct ScramClient {
    password: String,
    client_nonce: String,
    client_first_bare: String,
    expected_server_signature: Option<[u8; 32]>,
}

impl ScramClient {
    /// Starts an exchange with the password the gateway holds.
    pub fn new(password: &str) -> Self {
        let client_nonce = nonce();
        ScramClient {
            password: password.to_string(),
            client_first_bare: format!("n=,r={client_nonce}"),
            client_nonce,
            expected_server_signature: None,
        }
    }

    /// client-first-message (no channel binding: TLS to the upstream is not used yet).
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Answers server-first-message with client-final-message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| ScramError("server-first is not UTF-8".into()))?;
        let nonce = attr(server_first, 'r')
            .ok_or_else(|| ScramError("server-first has no nonce".into()))?;
        if !nonce.starts_with(&self.client_nonce) {
            return Err(ScramError("the server nonce does not extend ours".into()));
        }
        let salt = B64
            .decode(
                attr(server_first, 's')
                    .ok_or_else(|| ScramError("server-first has no salt".into()))?,
            )
            .map_err(|_| ScramError("the salt is not base64".into()))?;
        let iterations: u32 = attr(server_first, 'i')
            .and_then(|i| i.parse().ok())
            .filter(|&i| i > 0)
            .ok_or_else(|| ScramError("server-first has no valid iteration count".into()))?;
        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks server-final-message, which proves the server knew the password too.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| ScramError("server-final is not UTF-8".into()))?;
        if let Some(e) = attr(text, 'e') {
            return Err(ScramError(format!("the server refused: {e}")));
        }
        let v = attr(text, 'v').ok_or_else(|| ScramError("server-final has no verifier".into()))?;
        let got = B64
            .decode(v)
            .map_err(|_| ScramError("the server verifier is not base64".into()))?;
        match self.expected_server_signature {
            Some(expected) if got == expected => Ok(()),
            _ => Err(ScramError("the server signature does not match".into())),
        }
    }
}

/// A stored SCRAM verifier in PostgreSQL's format:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramVerifier {
    /// Derives a verifier from a secret, with a fresh salt.
    pub fn derive(secret: &str, iterations: u32) -> Self {
        let mut salt = vec![0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let salted = salted_password(secret, &salt, iterations);
        ScramVerifier {
            iterations,
            salt,
            stored_key: Sha256::digest(hmac(&salted, b"Client Key")).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// Parses the stored text form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or("it does not start with `SCRAM-SHA-256$`")?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or("it has no `$` before the keys")?;
        let (iter, salt) = params
            .split_once(':')
            .ok_or("it has no `iterations:salt`")?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or("it has no `StoredKey:ServerKey`")?;
        let key = |s: &str| -> Result<[u8; 32], String> {
            B64.decode(s)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or_else(|| "a key is not 32 bytes of base64".to_string())
        };
        Ok(ScramVerifier {
            iterations: iter
                .parse()
                .map_err(|_| "the iteration count is not a number")?,
            salt: B64.decode(salt).map_err(|_| "the salt is not base64")?,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }
}

impl std::fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// The server side of one exchange, used towards clients.
pub struct ScramServer {
    verifier: ScramVerifier,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    /// The `c=` the client-final must carry: the GS2 header, and for
    /// SCRAM-SHA-256-PLUS the channel's binding data, in base64.
    channel: String,
}

impl ScramServer {
    /// Answers client-first-message with server-first-message. `mechanism` is what
    /// the client chose; `binding` is the TLS channel's `tls-server-end-point` data
    /// when the gateway offered SCRAM-SHA-256-PLUS (over TLS), else `None`.
    pub fn start(
        verifier: ScramVerifier,
        mechanism: &str,
        client_first: &[u8],
        binding: Option<&[u8]>,
    ) -> Result<(Self, Vec<u8>), ScramError> {
        let text = std::str::from_utf8(client_first)
            .map_err(|_| ScramError("client-first is not UTF-8".into()))?;
        let plus = mechanism == MECHANISM_PLUS;
        let mut parts = text.splitn(3, ',');
        let (flag, authzid, bare) = match (parts.next(), parts.next(), parts.next()) {
            (Some(f), Some(a), Some(b)) => (f, a, b),
            _ => return Err(ScramError("client-first has no GS2 header".into())),
        };
        if !authzid.is_empty() {
            return Err(ScramError(
                "an authorization identity is not supported; leave it out".into(),
            ));
        }
        let header = &text[..flag.len() + authzid.len() + 2];
        let mut cbind = header.as_bytes().to_vec();
        match (flag, plus) {
            ("n", false) => {}
            ("y", false) if binding.is_some() => {
                // The client would have bound the channel had it seen PLUS offered:
                // something between it and the gateway removed it.
                return Err(ScramError(
                    "the client believes the gateway offers no channel binding, but it does; the offer may have been stripped on the way"
                        .into(),
                ));
            }
            ("y", false) => {}
            ("p=tls-server-end-point", true) => match binding {
                Some(data) => cbind.extend_from_slice(data),
                None => {
                    return Err(ScramError(
                        "channel binding needs TLS with a certificate that names its hash".into(),
                    ));
                }
            },
            (f, true) if f.starts_with("p=") => {
                return Err(ScramError(format!(
                    "channel binding type `{}` is not supported; tapline binds with tls-server-end-point",
                    &f[2..]
                )));
            }
            (_, true) => {
                return Err(ScramError(
                    "SCRAM-SHA-256-PLUS was chosen without channel binding data".into(),
                ));
            }
            (_, false) => {
                return Err(ScramError(
                    "channel binding was asked for with SCRAM-SHA-256; choose SCRAM-SHA-256-PLUS"
                        .into(),
                ));
            }
        }
        if plus && binding.is_none() {
            return Err(ScramError(
                "SCRAM-SHA-256-PLUS is offered over TLS only".into(),
            ));
        }
        let client_nonce =
            attr(bare, 'r').ok_or_else(|| ScramError("client-first has no nonce".into()))?;
        let nonce = format!("{client_nonce}{}", self::nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&verifier.salt),
            verifier.iterations
        );
        let out = server_first.clone().into_bytes();
        Ok((
            ScramServer {
                verifier,
                client_first_bare: bare.to_string(),
                server_first,
                nonce,
                channel: B64.encode(cbind),
            },
            out,
        ))
    }

    /// Checks client-final-message; on success returns server-final-message.
    pub fn finish(&self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(client_final)
            .map_err(|_| ScramError("client-final is not UTF-8".into()))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| ScramError("client-final has no proof".into()))?;
        if attr(without_proof, 'r') != Some(self.nonce.as_str()) {
            return Err(ScramError("the nonce does not match".into()));
        }
        if attr(without_proof, 'c') != Some(self.channel.as_str()) {
            return Err(ScramError(
                "the channel binding does not match this TLS connection".into(),
            ));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError("the proof is not base64".into()))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = hmac(&self.verifier.stored_key, auth_message.as_bytes());
        if proof.len() != 32 {
            return Err(ScramError("password authentication failed".into()));
        }
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(a, b)| a ^ b).collect();
        let stored: [u8; 32] = Sha256::digest(&client_key).into();
        // Constant-time comparison: this decides authentication.
        let diff = stored
            .iter()
            .zip(self.verifier.stored_key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(ScramError("password authentication failed".into()));
        }
        let server_signature = hmac(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_agree_on_the_right_secret_only() {
        let verifier = ScramVerifier::derive("s3cret", 4096);
        let parsed = ScramVerifier::parse(&verifier.to_string()).unwrap();
        assert_eq!(parsed, verifier);

        let mut client = ScramClient::new("s3cret");
        let (server, first) =
            ScramServer::start(verifier.clone(), MECHANISM, &client.client_first(), None).unwrap();
        let fin = client.client_final(&first).unwrap();
        let server_final = server.finish(&fin).unwrap();
        client.verify_server_final(&server_final).unwrap();

        let mut wrong = ScramClient::new("nope");
        let (server, first) =
            ScramServer::start(verifier, MECHANISM, &wrong.client_first(), None).unwrap();
        let fin = wrong.client_final(&first).unwrap();
        assert!(server.finish(&fin).is_err());
    }

    /// A client-final for `header` (and binding `data`) with a proof made by hand, as
    /// a PLUS client computes it.
    fn plus_exchange(
        mechanism: &str,
        header: &str,
        offered: Option<&[u8]>,
        sent: &[u8],
    ) -> Result<(), ScramError> {
        let verifier = ScramVerifier::derive("s3cret", 4096);
        let bare = "n=,r=clientnonce";
        let first = format!("{header}{bare}");
        let (server, server_first) =
            ScramServer::start(verifier, mechanism, first.as_bytes(), offered)?;
        let server_first = String::from_utf8(server_first).unwrap();
        let nonce = attr(&server_first, 'r').unwrap();
        let salt = B64.decode(attr(&server_first, 's').unwrap()).unwrap();
        let mut cbind = header.as_bytes().to_vec();
        cbind.extend_from_slice(sent);
        let without_proof = format!("c={},r={nonce}", B64.encode(&cbind));
        let salted = salted_password("s3cret", &salt, 4096);
        let client_key = hmac(&salted, b"Client Key");
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        let auth = format!("{bare},{server_first},{without_proof}");
        let signature = hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(a, b)| a ^ b)
            .collect();
        server
            .finish(format!("{without_proof},p={}", B64.encode(proof)).as_bytes())
            .map(|_| ())
    }

    #[test]
    fn channel_binding_holds_only_for_this_channel() {
        let ours = b"end-point-of-our-certificate";
        plus_exchange(MECHANISM_PLUS, "p=tls-server-end-point,,", Some(ours), ours).unwrap();
        // Another channel's binding (a relay in the middle) fails.
        let e = plus_exchange(
            MECHANISM_PLUS,
            "p=tls-server-end-point,,",
            Some(ours),
            b"theirs",
        )
        .unwrap_err();
        assert!(e.0.contains("channel binding"), "{e}");
        // A client told PLUS was not offered, when it was: a stripped offer.
        let e = plus_exchange(MECHANISM, "y,,", Some(ours), b"").unwrap_err();
        assert!(e.0.contains("stripped"), "{e}");
        // Without TLS, "y" and "n" are fine and PLUS is refused.
        plus_exchange(MECHANISM, "y,,", None, b"").unwrap();
        plus_exchange(MECHANISM, "n,,", Some(ours), b"").unwrap();
        assert!(plus_exchange(MECHANISM_PLUS, "p=tls-server-end-point,,", None, b"").is_err());
        let e = plus_exchange(MECHANISM_PLUS, "p=tls-unique,,", Some(ours), b"").unwrap_err();
        assert!(e.0.contains("tls-unique"), "{e}");
        assert!(plus_exchange(MECHANISM, "n,a=root,", None, b"").is_err());
    }

    #[test]
    fn malformed_verifiers_are_explained() {
        assert!(
            ScramVerifier::parse("md5abc")
                .unwrap_err()
                .contains("SCRAM-SHA-256$")
        );
        assert!(ScramVerifier::parse("SCRAM-SHA-256$x:AA==$AA==:AA==").is_err());
    }
}
