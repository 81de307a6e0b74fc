//! OIDC tokens as credentials: a client presents an access token or ID token (a JWT)
//! where its protocol expects a password, and the gateway checks it against the
//! issuer's published keys and the connection's issuer and audience, then takes the
//! user and groups from the claims the connection names.

use super::jwks::{JwksCache, JwksSource};
use super::{Identity, TokenRejection};
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;
use sha2::Digest;
use std::time::Duration;

/// The claim the user name is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserClaim {
    Sub,
    PreferredUsername,
    /// Azure AD's user principal name.
    Upn,
    /// Azure AD's application id: the user of a service principal's token.
    AppId,
}

impl UserClaim {
    /// Parses the config value.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "sub" => UserClaim::Sub,
            "preferred_username" => UserClaim::PreferredUsername,
            "upn" => UserClaim::Upn,
            "appid" => UserClaim::AppId,
            _ => return None,
        })
    }

    /// The claim's name in the token.
    pub fn claim(self) -> &'static str {
        match self {
            UserClaim::Sub => "sub",
            UserClaim::PreferredUsername => "preferred_username",
            UserClaim::Upn => "upn",
            UserClaim::AppId => "appid",
        }
    }
}

/// One connection's token rules.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    /// Any of these in `aud` is accepted.
    pub audiences: Vec<String>,
    pub jwks: JwksSource,
    pub user_claim: UserClaim,
    /// `groups`, `roles`, or another claim holding a list of names.
    pub groups_claim: String,
    /// Tolerance for clocks that disagree, applied to `exp` and `nbf`.
    pub clock_skew: Duration,
}

/// The clock skew allowed when the config names none.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The algorithms a token may be signed with.
const ACCEPTED: [(&str, Algorithm); 3] = [
    ("RS256", Algorithm::RS256),
    ("ES256", Algorithm::ES256),
    ("EdDSA", Algorithm::EdDSA),
];

/// Validates tokens for one connection (cheap to share: keys are cached inside).
pub struct OidcValidator {
    settings: OidcSettings,
    keys: JwksCache,
}

impl std::fmt::Debug for OidcValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcValidator")
            .field("settings", &self.settings)
            .finish()
    }
}

/// What the header and payload say before anything is trusted: used to pick the key
/// and to phrase a rejection (the expiry time, the audience that was given).
struct Unverified {
    alg: String,
    kid: Option<String>,
    claims: Value,
}

fn unverified(token: &str) -> Result<Unverified, TokenRejection> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenRejection::NotAJwt);
    };
    let json = |part: &str| -> Result<Value, TokenRejection> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| TokenRejection::NotAJwt)?;
        serde_json::from_slice(&bytes).map_err(|_| TokenRejection::NotAJwt)
    };
    let header = json(h)?;
    let claims = json(p)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenRejection::NotAJwt)?
        .to_string();
    Ok(Unverified {
        alg,
        kid: header
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_string),
        claims,
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

impl OidcValidator {
    /// A validator; keys are loaded on the first token (or by [`OidcValidator::preload`]).
    pub fn new(settings: OidcSettings) -> Self {
        let keys = JwksCache::new(settings.jwks.clone());
        OidcValidator { settings, keys }
    }

    /// The connection's settings.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// Loads the keys at start-up, so a wrong JWKS path is reported before any client.
    pub async fn preload(&self) -> Result<usize, String> {
        self.keys.reload().await
    }

    /// Checks a token and says who it names.
    pub async fn validate(&self, token: &str) -> Result<Identity, TokenRejection> {
        let token = token.trim();
        let head = unverified(token)?;
        if head.alg.eq_ignore_ascii_case("none") {
            return Err(TokenRejection::Unsigned);
        }
        let Some(&(_, alg)) = ACCEPTED.iter().find(|(name, _)| *name == head.alg) else {
            return Err(TokenRejection::AlgorithmNotAccepted(head.alg));
        };
        let keys = self.keys.keys_for(head.kid.as_deref()).await?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&self.settings.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.settings.clock_skew.as_secs();
        validation.validate_nbf = true;
        let mut last = TokenRejection::BadSignature;
        for entry in keys.iter().filter(|k| k.algorithms.contains(&alg)) {
            match jsonwebtoken::decode::<Value>(token, &entry.key, &validation) {
                Ok(data) => return self.identity(token, &data.claims),
                Err(e) => {
                    last = self.rejection(e.kind(), &head.claims);
                    if last != TokenRejection::BadSignature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    fn rejection(&self, kind: &ErrorKind, claims: &Value) -> TokenRejection {
        let num = |name: &str| claims.get(name).and_then(Value::as_i64).unwrap_or(0);
        match kind {
            ErrorKind::ExpiredSignature => TokenRejection::Expired { at: num("exp") },
            ErrorKind::ImmatureSignature => TokenRejection::NotYetValid { from: num("nbf") },
            ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer {
                got: claims
                    .get("iss")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                want: self.settings.issuer.clone(),
            },
            ErrorKind::InvalidAudience => TokenRejection::WrongAudience {
                got: strings(claims.get("aud")),
                want: self.settings.audiences.clone(),
            },
            ErrorKind::MissingRequiredClaim(c) => TokenRejection::MissingClaim(c.clone()),
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => TokenRejection::NotAJwt,
            _ => TokenRejection::BadSignature,
        }
    }

    fn identity(&self, token: &str, claims: &Value) -> Result<Identity, TokenRejection> {
        let claim = self.settings.user_claim.claim();
        let user = claims
            .get(claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TokenRejection::MissingClaim(claim.to_string()))?
            .to_string();
        let groups = strings(claims.get(&self.settings.groups_claim));
        let token_id = claims
            .get("jti")
            .or_else(|| claims.get("uti"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                let digest = sha2::Sha256::digest(token.as_bytes());
                format!("sha256:{}", hex::encode(&digest[..12]))
            });
        Ok(Identity {
            user,
            groups,
            issuer: Some(self.settings.issuer.clone()),
            token_id: Some(token_id),
        })
    }
}
