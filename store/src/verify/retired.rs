//! The maintenance ledgers, read before the gateway ledgers: which objects were removed
//! on purpose, by whom, and under what policy.
//!
//! Only an entry that a trusted key signed counts. A segment a gateway ledger lists
//! that is gone, and that no such entry names, is still reported missing: deleting
//! data and writing a retention entry for it needs the maintenance key, not just write
//! access to the archive.

use super::ledger_links::{CheckedEntry, LedgerLinks};
use super::report::{ArchiveProblem, LedgerSummary, RetentionSummary};
use crate::archive::Archive;
use crate::error::StoreError;
use crate::ledger::reader::{list_ledgers_in, read_entries};
use crate::ledger::{LedgerAction, MAINTENANCE_ROOT};
use crate::seal::TrustedKeys;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;

/// The signed entry that removed an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    /// The maintenance ledger, as `maintenance/<actor>`.
    pub ledger: String,
    pub entry: u64,
    /// Partitions dated before this day were removed.
    pub before: String,
    pub policy: String,
}

impl Retirement {
    /// How reports name the removal.
    pub fn describe(&self) -> String {
        format!(
            "removed by retention of the partitions before {} ({}; {} entry {})",
            self.before, self.policy, self.ledger, self.entry
        )
    }
}

/// Object paths removed on purpose, each with the entry that removed it.
pub type RetiredPaths = HashMap<String, Arc<Retirement>>;

/// What the maintenance ledgers hold.
#[derive(Debug, Default)]
pub struct MaintenanceRead {
    pub retired: RetiredPaths,
    pub ledgers: Vec<LedgerSummary>,
    pub retentions: Vec<RetentionSummary>,
    pub problems: Vec<ArchiveProblem>,
}

/// Reads and checks every maintenance ledger. `pinned` holds (ledger, hash prefix)
/// pairs, as for gateway ledgers: a maintenance ledger that no longer reaches its
/// pinned entry was cut short.
pub async fn read_maintenance(
    archive: &Archive,
    keys: &TrustedKeys,
    pinned: &[(String, String)],
) -> Result<MaintenanceRead, StoreError> {
    let mut out = MaintenanceRead::default();
    let listing = list_ledgers_in(archive, MAINTENANCE_ROOT).await?;
    for path in listing.strays {
        out.problems.push(ArchiveProblem::LedgerStray { path });
    }
    for (actor, entries) in listing.gateways {
        let label = format!("{MAINTENANCE_ROOT}/{actor}");
        let mut links = LedgerLinks::new(MAINTENANCE_ROOT, &actor, &label);
        let mut problems = Vec::new();
        let mut pins: Vec<(String, bool)> = pinned
            .iter()
            .filter(|(l, h)| *l == label && h.len() >= 16)
            .map(|(_, h)| (h.to_ascii_lowercase(), false))
            .collect();
        let mut stream = std::pin::pin!(read_entries(archive, entries));
        while let Some(item) = stream.next().await {
            let Some(CheckedEntry { entry, signed }) = links.check(item?, keys, &mut problems)
            else {
                continue;
            };
            let seq = entry.body.seq;
            let hash = entry.hash_hex();
            for (pin, found) in &mut pins {
                *found |= hash.starts_with(pin.as_str());
            }
            match entry.body.action {
                LedgerAction::Retained {
                    before,
                    policy,
                    dates,
                    removed,
                } => {
                    let by = Arc::new(Retirement {
                        ledger: label.clone(),
                        entry: seq,
                        before: before.clone(),
                        policy: policy.clone(),
                    });
                    out.retentions.push(RetentionSummary {
                        ledger: label.clone(),
                        entry: seq,
                        before,
                        policy,
                        dates,
                        objects: removed.len() as u64,
                        bytes: removed.iter().map(|o| o.bytes).sum(),
                        signed,
                        still_present: 0,
                    });
                    if signed {
                        for o in removed {
                            out.retired.insert(o.path, by.clone());
                        }
                    }
                }
                LedgerAction::Chunk { .. } => problems.push(ArchiveProblem::LedgerEntry {
                    gateway: label.clone(),
                    seq,
                    detail: "a maintenance ledger holds a gateway's chunk entry; its segments are not vouched for".into(),
                }),
            }
        }
        for (pin, found) in pins {
            if !found {
                problems.push(ArchiveProblem::LedgerTruncated {
                    gateway: label.clone(),
                    pinned: pin,
                    ends_at: links.head.clone(),
                });
            }
        }
        out.ledgers.push(LedgerSummary {
            gateway: label,
            entries: links.entries,
            head: links.head.clone(),
            ok: problems.is_empty(),
        });
        out.problems.extend(problems);
    }
    Ok(out)
}
