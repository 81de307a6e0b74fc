//! The issuer's signing keys (a JWKS), from a file or an https URL. Keys are cached
//! by `kid`; a token naming a `kid` the cache lacks triggers one reload (at most one
//! every [`MIN_RELOAD_GAP`]), which is how a key rotation at the issuer is picked up
//! without a gateway restart and without letting bad tokens hammer the issuer.

use super::TokenRejection;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The shortest time between two reloads triggered by unknown `kid`s.
pub const MIN_RELOAD_GAP: Duration = Duration::from_secs(10);

/// How long a fetch of the key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    /// `https://…` (or `http://` to a loopback address, for a local issuer).
    Url(String),
}

impl JwksSource {
    /// Parses the config value: an https URL, a loopback http URL, `file://…` or a path.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("file://") {
            return Ok(JwksSource::File(PathBuf::from(path)));
        }
        if text.starts_with("https://") {
            return Ok(JwksSource::Url(text.to_string()));
        }
        if text.starts_with("http://") {
            let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
            let loopback = match url.host() {
                Some(url::Host::Ipv4(a)) => a.is_loopback(),
                Some(url::Host::Ipv6(a)) => a.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if !loopback {
                return Err(format!(
                    "`{text}` is plain http to a remote host; use https so the keys cannot be swapped in transit"
                ));
            }
            return Ok(JwksSource::Url(text.to_string()));
        }
        if text.contains("://") {
            return Err(format!(
                "`{text}` is neither an https URL nor a file; use https://…/jwks or a path"
            ));
        }
        Ok(JwksSource::File(PathBuf::from(text)))
    }
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(p) => write!(f, "{}", p.display()),
            JwksSource::Url(u) => f.write_str(u),
        }
    }
}

/// One usable key.
#[derive(Clone)]
pub struct KeyEntry {
    pub key: DecodingKey,
    /// The algorithms this key may verify (from its type, narrowed by its `alg`).
    pub algorithms: Vec<Algorithm>,
}

/// The keys of one issuer, cached.
pub struct JwksCache {
    source: JwksSource,
    keys: RwLock<Arc<KeySet>>,
    last_reload: Mutex<Option<Instant>>,
    http: reqwest::Client,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, KeyEntry>,
    /// Keys published without a `kid` (tried in turn for tokens without one).
    unnamed: Vec<KeyEntry>,
}

impl JwksCache {
    /// A cache that loads on first use.
    pub fn new(source: JwksSource) -> Self {
        JwksCache {
            source,
            keys: RwLock::new(Arc::new(KeySet::default())),
            last_reload: Mutex::new(None),
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .build()
                .unwrap_or_default(),
        }
    }

    /// Where the keys come from.
    pub fn source(&self) -> &JwksSource {
        &self.source
    }

    /// Loads the key set now, replacing the cache.
    pub async fn reload(&self) -> Result<usize, String> {
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let text = match &self.source {
            JwksSource::File(p) => tokio::fs::read_to_string(p)
                .await
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
            JwksSource::Url(u) => {
                let resp = self
                    .http
                    .get(u)
                    .send()
                    .await
                    .map_err(|e| format!("cannot fetch {u}: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("{u} answered {}", resp.status()));
                }
                resp.text()
                    .await
                    .map_err(|e| format!("cannot read {u}: {e}"))?
            }
        };
        let set = parse_key_set(&text).map_err(|e| format!("{}: {e}", self.source))?;
        let n = set.by_kid.len() + set.unnamed.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(n)
    }

    fn may_reload(&self) -> bool {
        self.last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|t| t.elapsed() >= MIN_RELOAD_GAP)
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The keys that may have signed a token with this `kid`, reloading once if the
    /// `kid` is unknown.
    pub async fn keys_for(&self, kid: Option<&str>) -> Result<Vec<KeyEntry>, TokenRejection> {
        let found = |set: &KeySet| -> Vec<KeyEntry> {
            match kid {
                Some(k) => set.by_kid.get(k).cloned().into_iter().collect(),
                None => set
                    .unnamed
                    .iter()
                    .chain(set.by_kid.values())
                    .cloned()
                    .collect(),
            }
        };
        let keys = found(&self.current());
        if !keys.is_empty() {
            return Ok(keys);
        }
        if self.may_reload() {
            if let Err(e) = self.reload().await {
                tracing::warn!(jwks = %self.source, error = %e, "cannot reload the issuer's keys");
                if self.current().by_kid.is_empty() && self.current().unnamed.is_empty() {
                    return Err(TokenRejection::KeysUnavailable(e));
                }
            }
            let keys = found(&self.current());
            if !keys.is_empty() {
                return Ok(keys);
            }
        }
        Err(TokenRejection::UnknownKey(
            kid.unwrap_or("(none given)").to_string(),
        ))
    }
}

/// Parses a JWKS document, keeping the signing keys tapline can use.
fn parse_key_set(text: &str) -> Result<KeySet, String> {
    let jwks: JwkSet =
        serde_json::from_str(text).map_err(|e| format!("not a JSON Web Key Set ({e})"))?;
    let mut set = KeySet::default();
    for jwk in &jwks.keys {
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            continue; // an encryption key
        }
        let algorithms = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => vec![Algorithm::RS256],
            AlgorithmParameters::EllipticCurve(p)
                if p.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
            {
                vec![Algorithm::ES256]
            }
            AlgorithmParameters::OctetKeyPair(p)
                if p.curve == jsonwebtoken::jwk::EllipticCurve::Ed25519 =>
            {
                vec![Algorithm::EdDSA]
            }
            _ => continue, // symmetric keys and curves tapline does not accept
        };
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let entry = KeyEntry { key, algorithms };
        match &jwk.common.key_id {
            Some(kid) => {
                set.by_kid.insert(kid.clone(), entry);
            }
            None => set.unnamed.push(entry),
        }
    }
    if set.by_kid.is_empty() && set.unnamed.is_empty() {
        return Err("holds no RS256, ES256 or EdDSA signing key".into());
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_https_loopback_http_or_files() {
        assert_eq!(
            JwksSource::parse("https://idp.example/keys"),
            Ok(JwksSource::Url("https://idp.example/keys".into()))
        );
        assert!(JwksSource::parse("http://127.0.0.1:8080/keys").is_ok());
        let err = JwksSource::parse("http://idp.example/keys").unwrap_err();
        assert!(err.contains("use https"), "{err}");
        assert_eq!(
            JwksSource::parse("/etc/tapline/jwks.json"),
            Ok(JwksSource::File("/etc/tapline/jwks.json".into()))
        );
        assert!(JwksSource::parse("ftp://x/y").is_err());
    }

    #[test]
    fn a_key_set_keeps_the_signing_keys_it_can_use() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/oidc/jwks.json"
        ))
        .unwrap();
        let set = parse_key_set(&text).unwrap();
        assert_eq!(set.by_kid.len(), 3);
        assert_eq!(set.by_kid["test-ec"].algorithms, vec![Algorithm::ES256]);
        let symmetric = r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#;
        assert!(parse_key_set(symmetric).err().unwrap().contains("no RS256"));
        assert!(
            parse_key_set("{")
                .err()
                .unwrap()
                .contains("not a JSON Web Key Set")
        );
    }

    #[tokio::test]
    async fn an_unknown_kid_reloads_once_then_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let fixture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/oidc/jwks.json"
        ))
        .unwrap();
        std::fs::write(&path, &fixture).unwrap();
        let cache = JwksCache::new(JwksSource::File(path.clone()));
        assert_eq!(cache.keys_for(Some("test-rsa")).await.unwrap().len(), 1);
        // A rotation at the issuer: the new kid is picked up on its first token only
        // once the reload gap has passed.
        std::fs::write(&path, fixture.replace("test-ec", "rotated-ec")).unwrap();
        assert_eq!(
            cache.keys_for(Some("rotated-ec")).await.err(),
            Some(TokenRejection::UnknownKey("rotated-ec".into()))
        );
        *cache.last_reload.lock().unwrap() = Some(Instant::now() - MIN_RELOAD_GAP);
        assert_eq!(cache.keys_for(Some("rotated-ec")).await.unwrap().len(), 1);
    }
}
