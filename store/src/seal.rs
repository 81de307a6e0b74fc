//! The gateway's ed25519 key and the seals it puts on session chains.
//!
//! A blake3 chain shows that events were not changed relative to one another, but
//! anyone can recompute a chain. The seal is what an attacker cannot recompute: the
//! gateway signs (session_id, last seq, head hash) at every segment checkpoint and at
//! session end, so a rewritten, truncated or re-chained session no longer matches a
//! signature made with a key the attacker does not hold.

use crate::error::StoreError;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Domain separator of the signed message.
pub const SEAL_DOMAIN: &[u8] = b"tapline/seal/v1";

/// A short, stable name for a public key: the first 8 bytes of blake3(public key), hex.
/// Stored with every seal so a verifier knows which key to check it against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(pub String);

impl KeyId {
    /// The id of a public key.
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = blake3::hash(key.as_bytes());
        KeyId(hex::encode(&digest.as_bytes()[..8]))
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a seal vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub session_id: String,
    pub last_seq: u64,
    pub head_hash: [u8; 32],
    pub signature: [u8; 64],
    pub key_id: KeyId,
}

/// The exact bytes that are signed for a seal.
pub fn seal_message(session_id: &str, last_seq: u64, head_hash: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SEAL_DOMAIN.len() + 8 + session_id.len() + 8 + 32);
    msg.extend_from_slice(SEAL_DOMAIN);
    msg.extend_from_slice(&(session_id.len() as u64).to_le_bytes());
    msg.extend_from_slice(session_id.as_bytes());
    msg.extend_from_slice(&last_seq.to_le_bytes());
    msg.extend_from_slice(head_hash);
    msg
}

/// The gateway's signing key.
#[derive(Clone)]
pub struct GatewayKey {
    signing: SigningKey,
    id: KeyId,
}

impl std::fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayKey").field("id", &self.id).finish()
    }
}

impl GatewayKey {
    /// A 32-byte key for another purpose (e.g. masking's keyed hash), derived from
    /// the signing key under `context`: stable for as long as the gateway keeps its
    /// key, and telling nothing about the signing key itself.
    pub fn derive_key(&self, context: &str) -> [u8; 32] {
        blake3::derive_key(context, self.signing.to_bytes().as_ref())
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_signing(signing)
    }

    fn from_signing(signing: SigningKey) -> Self {
        let id = KeyId::of(&signing.verifying_key());
        GatewayKey { signing, id }
    }

    /// Reads a PKCS#8 PEM private key written by [`GatewayKey::write`] or `openssl genpkey`.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let pem = std::fs::read_to_string(path).map_err(|e| StoreError::Key {
            path: path.into(),
            reason: format!(
                "cannot read it ({e}); create one with `tapline keygen --out {}`",
                path.display()
            ),
        })?;
        let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|e| StoreError::Key {
            path: path.into(),
            reason: format!("not an ed25519 PKCS#8 PEM private key ({e})"),
        })?;
        Ok(Self::from_signing(signing))
    }

    /// Writes the private key to `path` (mode 0600) and the public key to `path.pub`.
    /// Refuses to overwrite an existing key, which would orphan every seal made with it.
    pub fn write(&self, path: &Path) -> Result<PathBuf, StoreError> {
        let key_err = |reason: String| StoreError::Key {
            path: path.into(),
            reason,
        };
        if path.exists() {
            return Err(key_err(
                "already exists; refusing to overwrite a key that may have sealed sessions".into(),
            ));
        }
        let pem = self
            .signing
            .to_pkcs8_pem(Default::default())
            .map_err(|e| key_err(format!("cannot encode key: {e}")))?;
        write_private(path, pem.as_bytes()).map_err(|e| key_err(format!("cannot write: {e}")))?;
        let pub_path = public_key_path(path);
        std::fs::write(&pub_path, self.public_pem()).map_err(|e| StoreError::Key {
            path: pub_path.clone(),
            reason: format!("cannot write: {e}"),
        })?;
        Ok(pub_path)
    }

    /// The public half as PEM (SubjectPublicKeyInfo).
    pub fn public_pem(&self) -> String {
        self.signing
            .verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap_or_default()
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The key id recorded with every seal.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Signs `message` (already domain-separated by the caller, as the ledger does).
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Seals a session head.
    pub fn seal(&self, session_id: &str, last_seq: u64, head_hash: [u8; 32]) -> Seal {
        let signature = self
            .signing
            .sign(&seal_message(session_id, last_seq, &head_hash))
            .to_bytes();
        Seal {
            session_id: session_id.to_string(),
            last_seq,
            head_hash,
            signature,
            key_id: self.id.clone(),
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// `FILE.pub` for a private key at `FILE`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Parses a public key PEM.
pub fn parse_public_pem(pem: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| e.to_string())
}

/// Why a seal did not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealProblem {
    /// No trusted key has this id.
    UnknownKey(KeyId),
    /// A trusted key has this id but the signature does not match.
    BadSignature(KeyId),
}

/// The public keys a verifier trusts, by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: HashMap<KeyId, VerifyingKey>,
}

impl TrustedKeys {
    /// Trusts one more key.
    pub fn add(&mut self, key: VerifyingKey) -> KeyId {
        let id = KeyId::of(&key);
        self.keys.insert(id.clone(), key);
        id
    }

    /// Reads and trusts a public key PEM file.
    pub fn add_file(&mut self, path: &Path) -> Result<KeyId, StoreError> {
        let pem = std::fs::read_to_string(path).map_err(|e| StoreError::Key {
            path: path.into(),
            reason: format!("cannot read public key: {e}"),
        })?;
        let key = parse_public_pem(&pem).map_err(|e| StoreError::Key {
            path: path.into(),
            reason: format!("not an ed25519 public key PEM ({e})"),
        })?;
        Ok(self.add(key))
    }

    /// True when no key is trusted yet.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks one seal.
    pub fn check(&self, seal: &Seal) -> Result<(), SealProblem> {
        let msg = seal_message(&seal.session_id, seal.last_seq, &seal.head_hash);
        self.check_bytes(&seal.key_id, &msg, &Signature::from_bytes(&seal.signature))
    }

    /// Checks a signature over `message` made with the key `key_id` names.
    pub fn check_bytes(
        &self,
        key_id: &KeyId,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SealProblem> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| SealProblem::UnknownKey(key_id.clone()))?;
        key.verify(message, signature)
            .map_err(|_| SealProblem::BadSignature(key_id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_checks_with_its_key_and_not_with_another() {
        let key = GatewayKey::generate();
        let seal = key.seal("s1", 4, [7; 32]);
        let mut trusted = TrustedKeys::default();
        trusted.add(key.verifying_key());
        assert_eq!(trusted.check(&seal), Ok(()));

        let mut forged = GatewayKey::generate().seal("s1", 4, [7; 32]);
        forged.key_id = key.id().clone();
        assert_eq!(
            trusted.check(&forged),
            Err(SealProblem::BadSignature(key.id().clone()))
        );

        let mut moved = seal.clone();
        moved.last_seq = 3;
        assert!(trusted.check(&moved).is_err());
    }

    #[test]
    fn keys_round_trip_through_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.key");
        let key = GatewayKey::generate();
        let pub_path = key.write(&path).unwrap();
        let loaded = GatewayKey::load(&path).unwrap();
        assert_eq!(loaded.id(), key.id());
        let mut trusted = TrustedKeys::default();
        assert_eq!(&trusted.add_file(&pub_path).unwrap(), key.id());
        assert!(key.write(&path).is_err(), "must not overwrite");
    }
}
