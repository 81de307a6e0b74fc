//! Appending to a maintenance ledger: `maintenance/<actor>/<seq>.json`, the same
//! hash-chained, signed entries a gateway writes, under the operator's own key.
//!
//! Entries are written create-only. Two runs of the same actor at once both read the
//! same head; one wins the next seq and the other finds the object taken, reads the
//! new head and tries again, so the chain never forks.

use crate::archive::Archive;
use crate::error::StoreError;
use crate::event::now_ns;
use crate::ledger::entry::LEDGER_FORMAT;
use crate::ledger::reader::last_entry_in;
use crate::ledger::{LedgerAction, LedgerBody, LedgerEntry, MAINTENANCE_ROOT, entry_path_in};
use crate::seal::GatewayKey;

/// How often an append is retried when another writer took the seq first.
const APPEND_ATTEMPTS: usize = 8;

/// One operator's maintenance ledger in one archive.
pub struct MaintenanceLedger<'a> {
    archive: &'a Archive,
    actor: String,
    key: &'a GatewayKey,
}

/// Checks an actor name: it becomes a folder name in the archive.
pub fn check_actor(actor: &str) -> Result<(), String> {
    if actor.is_empty() || actor.len() > 64 {
        return Err("give 1 to 64 characters".into());
    }
    if !actor
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        || actor.starts_with('.')
    {
        return Err(format!(
            "`{actor}` may hold only letters, digits, `-`, `_` and `.` (not first)"
        ));
    }
    Ok(())
}

impl<'a> MaintenanceLedger<'a> {
    /// The ledger of `actor`, signed with `key`.
    pub fn new(archive: &'a Archive, actor: &str, key: &'a GatewayKey) -> Result<Self, StoreError> {
        check_actor(actor).map_err(|reason| StoreError::Maintenance {
            what: format!("maintenance ledger name `{actor}`"),
            reason,
        })?;
        Ok(MaintenanceLedger {
            archive,
            actor: actor.to_string(),
            key,
        })
    }

    /// The key this ledger's entries are signed with.
    pub fn key(&self) -> &GatewayKey {
        self.key
    }

    /// The ledger's name as reports print it: `maintenance/<actor>`.
    pub fn name(&self) -> String {
        format!("{MAINTENANCE_ROOT}/{}", self.actor)
    }

    /// Every entry of this ledger, in order (read to see what earlier runs recorded).
    pub async fn entries(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        use futures::StreamExt;
        let listing =
            crate::ledger::reader::list_ledgers_in(self.archive, MAINTENANCE_ROOT).await?;
        let Some(paths) = listing.gateways.get(&self.actor) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut stream = std::pin::pin!(crate::ledger::reader::read_entries(
            self.archive,
            paths.clone()
        ));
        while let Some(item) = stream.next().await {
            let item = item?;
            match item.entry {
                Ok(e) => out.push(e),
                Err(problem) => {
                    return Err(StoreError::Conflict {
                        path: item.path,
                        reason: format!(
                            "this maintenance ledger entry is {problem}; run tapline verify before changing the archive further"
                        ),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Signs `action` as the next entry and writes it; returns the entry written.
    pub async fn append(&self, action: LedgerAction) -> Result<LedgerEntry, StoreError> {
        // Publishing the key (create-only, idempotent) lets a verifier without
        // --pubkey find it, and tell the user that it trusted the archive's copy.
        self.archive.publish_key(self.key).await?;
        let mut last_conflict = None;
        for _ in 0..APPEND_ATTEMPTS {
            let head = last_entry_in(self.archive, MAINTENANCE_ROOT, &self.actor).await?;
            let (seq, prev) = match &head {
                Some(e) => (e.body.seq + 1, Some(e.hash_hex())),
                None => (0, None),
            };
            let entry = LedgerEntry::sign(
                LedgerBody {
                    format: LEDGER_FORMAT.into(),
                    gateway_id: self.actor.clone(),
                    seq,
                    prev,
                    written_ns: now_ns(),
                    key_id: self.key.id().0.clone(),
                    action: action.clone(),
                },
                self.key,
            );
            let path = entry_path_in(MAINTENANCE_ROOT, &self.actor, seq);
            match self.archive.put(&path, entry.to_object()).await {
                Ok(_) => return Ok(entry),
                Err(e @ StoreError::Conflict { .. }) => last_conflict = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_conflict.unwrap_or(StoreError::Conflict {
            path: self.name(),
            reason: "could not append".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ArchiveLocation;

    fn retained(n: usize) -> LedgerAction {
        LedgerAction::Retained {
            before: "2025-01-01".into(),
            policy: "test".into(),
            dates: vec![],
            removed: vec![crate::ledger::RemovedObject {
                path: format!("events/date=2024-12-3{n}/x.parquet"),
                bytes: 1,
            }],
        }
    }

    #[tokio::test]
    async fn entries_chain_in_order_and_concurrent_appends_never_fork() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::create(&ArchiveLocation::Local(dir.path().into())).unwrap();
        let key = GatewayKey::generate();
        let a = MaintenanceLedger::new(&archive, "ops", &key).unwrap();
        let b = MaintenanceLedger::new(&archive, "ops", &key).unwrap();
        let (x, y) = tokio::join!(a.append(retained(0)), b.append(retained(1)));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_ne!(x.body.seq, y.body.seq, "two appends take two seqs");
        let third = a.append(retained(0)).await.unwrap();
        assert_eq!(third.body.seq, 2);
        let all = a.entries().await.unwrap();
        assert_eq!(all.len(), 3);
        for w in all.windows(2) {
            assert_eq!(w[1].body.prev.as_deref(), Some(w[0].hash_hex().as_str()));
        }
        assert_eq!(all[0].body.prev, None);
        assert_eq!(a.name(), "maintenance/ops");
    }

    #[test]
    fn actor_names_are_plain_folder_names() {
        assert!(check_actor("ops-retention_1.eu").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_actor(bad).is_err(), "{bad}");
        }
    }
}
