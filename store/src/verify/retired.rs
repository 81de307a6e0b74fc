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
use crate::segment::partition_day;
use chrono::NaiveDate;
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

/// The UTC day an entry was signed on.
fn signing_day(written_ns: i64) -> Option<NaiveDate> {
    chrono::DateTime::from_timestamp(written_ns.div_euclid(1_000_000_000), 0)
        .map(|d| d.date_naive())
}

/// Whether a retention with cutoff `before`, signed on `signed_on`, may have removed
/// `path`: only a partition dated before its cutoff, and only with a cutoff no later
/// than the day it was signed (as `tapline archive retain` enforces). So even a
/// retention key in the wrong hands cannot excuse the removal of data recorded after
/// it signed, nor of anything outside a dated partition (ledgers, keys).
fn may_remove(path: &str, before: &str, signed_on: Option<NaiveDate>) -> bool {
    let Ok(before) = NaiveDate::parse_from_str(before, "%Y-%m-%d") else {
        return false;
    };
    let within_signing = signed_on.is_some_and(|day| before <= day);
    within_signing && partition_day(path).is_some_and(|d| d < before)
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
        let pins = pinned
            .iter()
            .filter(|(l, _)| *l == label)
            .map(|(_, h)| h.clone());
        let mut links = LedgerLinks::new(MAINTENANCE_ROOT, &actor, &label).with_pins(pins);
        let mut problems = Vec::new();
        let mut stream = std::pin::pin!(read_entries(archive, entries));
        while let Some(item) = stream.next().await {
            let Some(CheckedEntry { entry, signed }) = links.check(item?, keys, &mut problems)
            else {
                continue;
            };
            let seq = entry.body.seq;
            let signed_on = signing_day(entry.body.written_ns);
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
                        let (allowed, beyond): (Vec<_>, Vec<_>) = removed
                            .into_iter()
                            .partition(|o| may_remove(&o.path, &by.before, signed_on));
                        if !beyond.is_empty() {
                            problems.push(ArchiveProblem::LedgerEntry {
                                gateway: label.clone(),
                                seq,
                                detail: format!(
                                    "it names {} object(s) outside what a retention may remove (partitions before {}, a day no later than the one it was signed on), e.g. {}; their removal is not excused",
                                    beyond.len(),
                                    by.before,
                                    beyond[0].path
                                ),
                            });
                        }
                        for o in allowed {
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
        problems.extend(links.unreached_pins());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
    }

    #[test]
    fn a_retention_excuses_only_old_partitions_up_to_the_day_it_was_signed() {
        let signed = day("2026-12-04");
        assert!(may_remove(
            "events/date=2025-01-01/a.parquet",
            "2025-06-01",
            signed
        ));
        assert!(!may_remove(
            "events/date=2025-06-01/a.parquet",
            "2025-06-01",
            signed
        ));
        // A cutoff after the signing day would reach data recorded later.
        assert!(!may_remove(
            "events/date=2026-12-04/a.parquet",
            "2026-12-05",
            signed
        ));
        assert!(!may_remove(
            "events/date=2026-11-01/a.parquet",
            "2030-01-01",
            signed
        ));
        // Nothing outside a dated partition.
        assert!(!may_remove(
            "ledger/gw/00000000000000000000.json",
            "2026-12-04",
            signed
        ));
        assert!(!may_remove("keys/abc.pub", "2026-12-04", signed));
        assert!(!may_remove(
            "events/date=2025-01-01/a.parquet",
            "not a day",
            signed
        ));
        assert!(!may_remove(
            "events/date=2025-01-01/a.parquet",
            "2025-06-01",
            None
        ));
    }
}
