//! Who is calling the admin API: a bearer token from the config (stored as its
//! SHA-256, compared in constant time), or an OIDC token checked like a client's.

use super::registry::Approver;
use crate::identity::OidcValidator;
use sha2::{Digest, Sha256};

/// A configured bearer token.
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub digest: [u8; 32],
    pub user: String,
    pub groups: Vec<String>,
}

impl AdminToken {
    /// The SHA-256 of a token.
    pub fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }
}

/// How the admin API authenticates its callers.
#[derive(Debug)]
pub struct AdminAuth {
    tokens: Vec<AdminToken>,
    oidc: Option<OidcValidator>,
}

impl AdminAuth {
    /// Bearer tokens and, optionally, OIDC.
    pub fn new(tokens: Vec<AdminToken>, oidc: Option<OidcValidator>) -> Self {
        AdminAuth { tokens, oidc }
    }

    /// The approver behind an `Authorization` header value; the error says why not.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Approver, String> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(
                "send `Authorization: Bearer TOKEN` (tapline approve reads $TAPLINE_ADMIN_TOKEN)",
            )?;
        let digest = AdminToken::digest(token);
        let mut found = None;
        for t in &self.tokens {
            // Every configured token is compared, all the way, whatever matches.
            let same = t
                .digest
                .iter()
                .zip(digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            if same {
                found = Some(t);
            }
        }
        if let Some(t) = found {
            return Ok(Approver {
                user: t.user.clone(),
                groups: t.groups.clone(),
                via: "bearer token".into(),
            });
        }
        match &self.oidc {
            Some(v) if token.starts_with("eyJ") => v
                .validate(token)
                .await
                .map(|id| Approver {
                    via: format!("oidc ({})", id.issuer.clone().unwrap_or_default()),
                    user: id.user,
                    groups: id.groups,
                })
                .map_err(|e| format!("the token was refused: {e}")),
            _ => Err("the bearer token is not one this gateway knows".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_map_to_identities() {
        let auth = AdminAuth::new(
            vec![AdminToken {
                digest: AdminToken::digest("s3cret-token-0123"),
                user: "olivia".into(),
                groups: vec!["dba".into()],
            }],
            None,
        );
        let who = auth
            .authenticate(Some("Bearer s3cret-token-0123"))
            .await
            .unwrap();
        assert_eq!(who.user, "olivia");
        assert!(auth.authenticate(Some("Bearer wrong")).await.is_err());
        assert!(
            auth.authenticate(None)
                .await
                .unwrap_err()
                .contains("Authorization")
        );
    }
}
