//! The gateway's own copy of its ledger head, kept in the spool folder.
//!
//! The next entry links to the last one, so the gateway must know it across restarts
//! even while the archive is unreachable. It is written (atomically, fsync'd) each time
//! an entry is staged for upload. A spool without one (new, or from before ledgers)
//! takes the head from the archive's ledger of this gateway, so a gateway that moves to
//! a new spool folder still continues its one chain.

use crate::error::StoreError;
use serde::{Deserialize, Serialize};
use std::path::Path;

const HEAD_FILE: &str = "ledger.head";

/// The last entry of a gateway's ledger: its seq and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerHead {
    pub gateway_id: String,
    pub seq: u64,
    /// The entry's hash, hex.
    pub hash: String,
}

impl LedgerHead {
    /// Reads the head kept in a spool folder; `None` if there is none yet.
    pub fn load(spool: &Path) -> Result<Option<Self>, StoreError> {
        let path = spool.join(HEAD_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::SpoolDamaged {
                        path: path.clone(),
                        offset: 0,
                        reason: format!("not a ledger head ({e})"),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io {
                context: format!("cannot read {}", path.display()),
                source: e,
            }),
        }
    }

    /// Replaces the head kept in a spool folder, durably.
    pub fn store(&self, spool: &Path) -> Result<(), StoreError> {
        let body = serde_json::to_vec(self).unwrap_or_default();
        crate::durable_file::replace_durably(spool, HEAD_FILE, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_survives_in_the_spool_folder() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(LedgerHead::load(tmp.path()).unwrap(), None);
        let head = LedgerHead {
            gateway_id: "gw".into(),
            seq: 41,
            hash: "ab".repeat(32),
        };
        head.store(tmp.path()).unwrap();
        assert_eq!(LedgerHead::load(tmp.path()).unwrap(), Some(head));
        std::fs::write(tmp.path().join(HEAD_FILE), b"{").unwrap();
        let err = LedgerHead::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("ledger.head"), "{err}");
    }
}
