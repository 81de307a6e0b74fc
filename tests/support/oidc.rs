//! Tokens an identity provider would issue, signed with the test-only fixture keys in
//! tests/fixtures/oidc (whose JWKS the test gateways load from a file).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::path::PathBuf;

pub const ISSUER: &str = "https://login.example.test/tenant-1/v2.0";
pub const AUDIENCE: &str = "api://tapline-orders";

/// A fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oidc")
        .join(name)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs `claims` with a fixture key under `kid`.
pub fn sign(alg: Algorithm, pem: &str, kid: &str, claims: &serde_json::Value) -> String {
    let bytes = std::fs::read(fixture(pem)).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&bytes),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&bytes),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&bytes),
        other => panic!("no fixture for {other:?}"),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Valid claims for `user` in `groups`, for ten minutes.
pub fn claims(user: &str, groups: &[&str]) -> serde_json::Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": format!("sub-{user}"),
        "preferred_username": user,
        "groups": groups,
        "iat": now(),
        "nbf": now() - 5,
        "exp": now() + 600,
        "jti": format!("jti-{user}"),
    })
}

/// A valid RS256 token for `user` in `groups`.
pub fn token(user: &str, groups: &[&str]) -> String {
    sign(
        Algorithm::RS256,
        "rsa.pem",
        "test-rsa",
        &claims(user, groups),
    )
}

/// The `[connections.oidc]` table accepting these tokens.
pub fn oidc_section() -> String {
    format!(
        "[connections.oidc]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\", \"api://other\"]\n\
         jwks = \"{}\"\nuser_claim = \"preferred_username\"\ngroups_claim = \"groups\"\nclock_skew = \"30s\"\n",
        fixture("jwks.json").display()
    )
}
