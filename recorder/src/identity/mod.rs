//! Who is calling: the identity a client proves to the gateway, independent of the
//! protocol it speaks. A protocol tap hands over what the client presented (a token
//! as its password); this module says who that is, or why not, in words the caller
//! can act on. The PostgreSQL tap uses it today; the MySQL and SSH taps reuse it as is.

pub mod config;
pub mod jwks;
pub mod oidc;
pub mod rejection;

pub use jwks::{JwksCache, JwksSource};
pub use oidc::{OidcSettings, OidcValidator, UserClaim};
pub use rejection::TokenRejection;

/// A caller the gateway has identified. Stored with the session (user, groups,
/// issuer, token id); the token itself never is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    /// The token's issuer; `None` for a local per-user secret.
    pub issuer: Option<String>,
    /// The token's `jti` (or Azure's `uti`), else a fingerprint of the token, so an
    /// investigator can match a session to the issuer's sign-in logs.
    pub token_id: Option<String>,
}

impl Identity {
    /// Whether any of the caller's groups is in `allowed` (an empty list allows all).
    pub fn in_any(&self, allowed: &[String]) -> bool {
        allowed.is_empty() || self.groups.iter().any(|g| allowed.contains(g))
    }
}
