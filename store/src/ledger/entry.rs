//! One ledger entry: what a gateway wrote into the archive in one step, hash-chained to
//! the entry before it and signed with the gateway's key.
//!
//! An entry object holds two lines. The first is the body, JSON, exactly the bytes that
//! are hashed: `hash = blake3("tapline/ledger/v1" ‖ body)`. The second holds the hash
//! and the ed25519 signature of `"tapline/ledger-sig/v1" ‖ hash`. Hashing the stored
//! bytes rather than a re-serialisation means a verifier never depends on how a JSON
//! library orders keys or prints numbers.

use crate::seal::{GatewayKey, KeyId, SealProblem, TrustedKeys};
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

/// Domain separator of an entry's hash.
pub const LEDGER_DOMAIN: &[u8] = b"tapline/ledger/v1";
/// Domain separator of an entry's signature.
pub const LEDGER_SIG_DOMAIN: &[u8] = b"tapline/ledger-sig/v1";
/// The `format` every body carries.
pub const LEDGER_FORMAT: &str = "tapline-ledger/1";

/// One object written into the archive, as the ledger vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// Path relative to the archive root.
    pub path: String,
    /// `events` or `sessions`.
    pub table: String,
    pub bytes: u64,
    /// blake3 of the object's bytes, hex.
    pub blake3: String,
    pub rows: u64,
    /// The segment format version (see `segment::FORMAT_VERSION`).
    pub format: u32,
}

/// Where a session's chain stood after this entry's segments: the same head the
/// checkpoint seal in its `sessions` segment signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHead {
    pub session_id: String,
    /// The first seq of this session in this entry's segments (`None`: no events, only
    /// a new checkpoint, e.g. its end).
    pub first_seq: Option<u64>,
    pub last_seq: u64,
    /// The full 32-byte chain head at `last_seq`, hex.
    pub head: String,
    pub ended: bool,
}

/// One object a maintenance step removes from the archive on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedObject {
    /// Path relative to the archive root.
    pub path: String,
    pub bytes: u64,
}

/// What the entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerAction {
    /// One spool chunk uploaded: its segments and the sessions they touched.
    Chunk {
        spool_id: String,
        chunk: u64,
        segments: Vec<SegmentRecord>,
        sessions: Vec<SessionHead>,
    },
    /// Whole date partitions deleted by retention (a maintenance ledger's entry),
    /// written before the first object is removed, so verify can tell a deliberate,
    /// signed removal from tampering.
    Retained {
        /// Partitions dated before this day (`YYYY-MM-DD`) were removed.
        before: String,
        /// The policy as the operator gave it (`--older-than 400d`), for the report.
        policy: String,
        /// The partitions (`YYYY-MM-DD`) removed.
        dates: Vec<String>,
        /// Every object removed, events and sessions alike.
        removed: Vec<RemovedObject>,
    },
}

/// The hashed part of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerBody {
    pub format: String,
    pub gateway_id: String,
    /// 0 for a gateway's first entry, then one more each time.
    pub seq: u64,
    /// The previous entry's hash, hex (`None` for seq 0).
    pub prev: Option<String>,
    pub written_ns: i64,
    pub key_id: String,
    pub action: LedgerAction,
}

/// The second line of an entry object.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SignatureLine {
    hash: String,
    signature: String,
}

/// A ledger entry with its hash and signature, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub body: LedgerBody,
    /// The body's exact bytes (the first line).
    pub body_bytes: Vec<u8>,
    pub hash: [u8; 32],
    pub signature: [u8; 64],
}

/// How an entry object failed to check out on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProblem {
    /// Not two lines of the expected JSON.
    Unreadable(String),
    /// The stored hash is not the hash of the body: the body was changed.
    Altered,
    /// The signature does not verify, or the key is not trusted.
    Signature(SealProblem),
}

impl std::fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryProblem::Unreadable(why) => write!(f, "unreadable ({why})"),
            EntryProblem::Altered => write!(f, "altered (its content does not match its hash)"),
            EntryProblem::Signature(SealProblem::UnknownKey(id)) => write!(
                f,
                "signed with key {id}, which is not trusted; pass the gateway's key with --pubkey"
            ),
            EntryProblem::Signature(SealProblem::BadSignature(id)) => {
                write!(f, "its signature does not match key {id}")
            }
        }
    }
}

/// The hash of a body's bytes.
pub fn body_hash(body_bytes: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(LEDGER_DOMAIN);
    h.update(body_bytes);
    *h.finalize().as_bytes()
}

fn signed_message(hash: &[u8; 32]) -> Vec<u8> {
    let mut m = LEDGER_SIG_DOMAIN.to_vec();
    m.extend_from_slice(hash);
    m
}

impl LedgerEntry {
    /// Hashes and signs a body.
    pub fn sign(body: LedgerBody, key: &GatewayKey) -> Self {
        // Serialising a struct of strings, integers and vectors cannot fail.
        let body_bytes = serde_json::to_vec(&body).unwrap_or_default();
        let hash = body_hash(&body_bytes);
        let signature = key.sign_bytes(&signed_message(&hash));
        LedgerEntry {
            body,
            body_bytes,
            hash,
            signature,
        }
    }

    /// The object's bytes: the body line, then the signature line.
    pub fn to_object(&self) -> Vec<u8> {
        let line = SignatureLine {
            hash: hex::encode(self.hash),
            signature: hex::encode(self.signature),
        };
        let mut out = self.body_bytes.clone();
        out.push(b'\n');
        out.extend_from_slice(&serde_json::to_vec(&line).unwrap_or_default());
        out.push(b'\n');
        out
    }

    /// Parses an entry object and checks that its hash is the hash of its body. The
    /// signature is checked separately ([`LedgerEntry::check_signature`]), since that
    /// needs the trusted keys.
    pub fn parse(object: &[u8]) -> Result<Self, EntryProblem> {
        let text = std::str::from_utf8(object)
            .map_err(|_| EntryProblem::Unreadable("not UTF-8".into()))?;
        let mut lines = text.lines();
        let (Some(body_line), Some(sig_line)) = (lines.next(), lines.next()) else {
            return Err(EntryProblem::Unreadable(
                "an entry has a body line and a signature line".into(),
            ));
        };
        let body: LedgerBody = serde_json::from_str(body_line)
            .map_err(|e| EntryProblem::Unreadable(format!("body: {e}")))?;
        let sig: SignatureLine = serde_json::from_str(sig_line)
            .map_err(|e| EntryProblem::Unreadable(format!("signature line: {e}")))?;
        let hash: [u8; 32] = hex_array(&sig.hash)
            .ok_or_else(|| EntryProblem::Unreadable("hash is not 32 bytes of hex".into()))?;
        let signature: [u8; 64] = hex_array(&sig.signature)
            .ok_or_else(|| EntryProblem::Unreadable("signature is not 64 bytes of hex".into()))?;
        let body_bytes = body_line.as_bytes().to_vec();
        if body_hash(&body_bytes) != hash {
            return Err(EntryProblem::Altered);
        }
        Ok(LedgerEntry {
            body,
            body_bytes,
            hash,
            signature,
        })
    }

    /// Checks the signature against the key the body names.
    pub fn check_signature(&self, keys: &TrustedKeys) -> Result<(), EntryProblem> {
        keys.check_bytes(
            &KeyId(self.body.key_id.clone()),
            &signed_message(&self.hash),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(EntryProblem::Signature)
    }

    /// The entry's hash, hex: what `gateway status` prints and `--expect-head` pins.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// Parses `hex` into exactly `N` bytes.
pub fn hex_array<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let v = hex::decode(hex).ok()?;
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(seq: u64, prev: Option<String>) -> LedgerBody {
        LedgerBody {
            format: LEDGER_FORMAT.into(),
            gateway_id: "gw".into(),
            seq,
            prev,
            written_ns: 1,
            key_id: String::new(),
            action: LedgerAction::Chunk {
                spool_id: "s".into(),
                chunk: 7,
                segments: vec![SegmentRecord {
                    path: "events/date=2026-01-01/gw-s-0000000000000007.parquet".into(),
                    table: "events".into(),
                    bytes: 10,
                    blake3: "00".repeat(32),
                    rows: 3,
                    format: 2,
                }],
                sessions: vec![SessionHead {
                    session_id: "A".into(),
                    first_seq: Some(0),
                    last_seq: 2,
                    head: "11".repeat(32),
                    ended: true,
                }],
            },
        }
    }

    fn signed(key: &GatewayKey, seq: u64) -> LedgerEntry {
        let mut b = body(seq, None);
        b.key_id = key.id().0.clone();
        LedgerEntry::sign(b, key)
    }

    #[test]
    fn an_entry_round_trips_and_checks_with_its_key() {
        let key = GatewayKey::generate();
        let e = signed(&key, 0);
        let back = LedgerEntry::parse(&e.to_object()).unwrap();
        assert_eq!(back, e);
        let mut keys = TrustedKeys::default();
        keys.add(key.verifying_key());
        assert_eq!(back.check_signature(&keys), Ok(()));
        let other = TrustedKeys::default();
        assert!(matches!(
            back.check_signature(&other),
            Err(EntryProblem::Signature(SealProblem::UnknownKey(_)))
        ));
    }

    #[test]
    fn a_changed_body_byte_is_caught_and_a_foreign_signature_refused() {
        let key = GatewayKey::generate();
        let e = signed(&key, 3);
        let obj = String::from_utf8(e.to_object()).unwrap();
        let tampered = obj.replacen("\"rows\":3", "\"rows\":4", 1);
        assert_ne!(obj, tampered);
        assert_eq!(
            LedgerEntry::parse(tampered.as_bytes()),
            Err(EntryProblem::Altered)
        );

        // Re-hashed and re-signed by a forger under the gateway's key id.
        let forger = GatewayKey::generate();
        let mut b = body(3, None);
        b.key_id = key.id().0.clone();
        let forged = LedgerEntry::sign(b, &forger);
        let mut keys = TrustedKeys::default();
        keys.add(key.verifying_key());
        assert!(matches!(
            forged.check_signature(&keys),
            Err(EntryProblem::Signature(SealProblem::BadSignature(_)))
        ));
    }
}
