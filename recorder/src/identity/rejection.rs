//! Why a token was refused, said so the caller knows what to do next. The text goes
//! to the client in its protocol's error and into the session's auth event; it never
//! contains the token.

use std::fmt;

/// A refused token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRejection {
    /// The password is not a JWT at all.
    NotAJwt,
    /// `alg: none`: the token carries no signature.
    Unsigned,
    /// An algorithm other than RS256, ES256 and EdDSA.
    AlgorithmNotAccepted(String),
    /// The `kid` is not in the issuer's key set, even after a refresh.
    UnknownKey(String),
    /// The signature does not verify with the issuer's key.
    BadSignature,
    /// `exp` has passed (beyond the allowed clock skew).
    Expired {
        at: i64,
    },
    /// `nbf` is still ahead.
    NotYetValid {
        from: i64,
    },
    WrongIssuer {
        got: String,
        want: String,
    },
    WrongAudience {
        got: Vec<String>,
        want: Vec<String>,
    },
    /// A claim the gateway needs is missing or not a string.
    MissingClaim(String),
    /// None of the caller's groups may use this connection.
    GroupNotAllowed {
        user: String,
        groups: Vec<String>,
        allowed: Vec<String>,
    },
    /// The issuer's keys could not be loaded.
    KeysUnavailable(String),
}

fn when(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRejection::NotAJwt => write!(
                f,
                "the password is not a JWT; sign in with your identity provider and pass its access or ID token as the password"
            ),
            TokenRejection::Unsigned => write!(
                f,
                "the token is unsigned (alg none); tapline accepts only tokens signed with RS256, ES256 or EdDSA"
            ),
            TokenRejection::AlgorithmNotAccepted(alg) => write!(
                f,
                "the token is signed with {alg}; tapline accepts only RS256, ES256 or EdDSA"
            ),
            TokenRejection::UnknownKey(kid) => write!(
                f,
                "the token is signed with key `{kid}`, which the issuer does not publish; get a fresh token from the configured issuer"
            ),
            TokenRejection::BadSignature => write!(
                f,
                "the token's signature does not verify with the issuer's key; get a fresh token from the configured issuer"
            ),
            TokenRejection::Expired { at } => {
                write!(f, "the token expired at {}; get a fresh token", when(*at))
            }
            TokenRejection::NotYetValid { from } => write!(
                f,
                "the token is not valid before {}; check the clock of the machine that issued it",
                when(*from)
            ),
            TokenRejection::WrongIssuer { got, want } => write!(
                f,
                "the token was issued by `{got}`, but this connection accepts tokens from `{want}`"
            ),
            TokenRejection::WrongAudience { got, want } => write!(
                f,
                "the token is for audience {}, but this connection accepts {}; request a token for one of those",
                list(got),
                list(want)
            ),
            TokenRejection::MissingClaim(claim) => write!(
                f,
                "the token has no `{claim}` claim, which this connection takes the user or groups from"
            ),
            TokenRejection::GroupNotAllowed {
                user,
                groups,
                allowed,
            } => write!(
                f,
                "user `{user}` (groups {}) is not in any group allowed on this connection ({}); ask an administrator for access",
                list(groups),
                list(allowed)
            ),
            TokenRejection::KeysUnavailable(why) => write!(
                f,
                "the gateway cannot load the issuer's keys ({why}); try again shortly"
            ),
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
