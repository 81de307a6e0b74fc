//! Retention: deleting whole date partitions older than a cutoff.
//!
//! A run lists the `events` and `sessions` partitions dated before the cutoff, signs
//! one `retained` entry into the operator's maintenance ledger naming every object it
//! is about to remove, and only then deletes them. A run killed half way leaves some
//! of those objects behind; the next run finds them already named by its ledger and
//! finishes deleting them without a second entry, so the job is idempotent and the
//! ledger never claims a removal that was not asked for.

use super::MaintenanceLedger;
use crate::archive::Archive;
use crate::error::StoreError;
use crate::ledger::{LedgerAction, RemovedObject};
use crate::seal::TrustedKeys;
use crate::segment::partition_day;
use chrono::NaiveDate;
use futures::StreamExt;
use std::collections::{BTreeSet, HashSet};

/// The tables whose partitions retention removes.
const TABLES: [&str; 2] = ["events", "sessions"];

/// Objects deleted at once.
const DELETE_AHEAD: usize = 16;

/// What a retention run would remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Partitions dated before this day go.
    pub before: NaiveDate,
    /// The partitions (`YYYY-MM-DD`) to remove, oldest first.
    pub dates: Vec<String>,
    pub objects: Vec<RemovedObject>,
}

impl RetentionPlan {
    /// Bytes the plan removes.
    pub fn bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.bytes).sum()
    }
}

/// What a retention run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub plan: RetentionPlan,
    /// The entry this run signed, as (ledger name, seq, hash hex) — the hash is what
    /// `verify --expect-head maintenance/<actor>=HASH` pins; `None` when every object
    /// was already named by an earlier run's entry (that run was interrupted) or there
    /// was nothing to remove.
    pub entry: Option<(String, u64, String)>,
    /// Objects an earlier entry already named.
    pub already_recorded: usize,
    /// Objects deleted by this run.
    pub deleted: usize,
}

/// Lists what retention would remove: every object in a partition dated before
/// `before`.
pub async fn plan_retention(
    archive: &Archive,
    before: NaiveDate,
) -> Result<RetentionPlan, StoreError> {
    let mut dates = BTreeSet::new();
    let mut objects = Vec::new();
    for table in TABLES {
        for (path, bytes) in archive.list_sized(table).await? {
            let Some(date) = partition_day(&path) else {
                continue;
            };
            if date < before {
                dates.insert(date.format("%Y-%m-%d").to_string());
                objects.push(RemovedObject { path, bytes });
            }
        }
    }
    Ok(RetentionPlan {
        before,
        dates: dates.into_iter().collect(),
        objects,
    })
}

/// Removes every partition dated before `before`, recording it in `ledger` first.
/// `policy` is how the operator phrased it (`--older-than 400d`), kept in the entry.
pub async fn retain(
    archive: &Archive,
    ledger: &MaintenanceLedger<'_>,
    before: NaiveDate,
    policy: &str,
) -> Result<RetentionOutcome, StoreError> {
    let plan = plan_retention(archive, before).await?;
    let mut outcome = RetentionOutcome {
        plan,
        entry: None,
        already_recorded: 0,
        deleted: 0,
    };
    if outcome.plan.objects.is_empty() {
        return Ok(outcome);
    }
    // Only what this run's own key signed counts as already recorded: an entry
    // planted in the ledger by someone else must not get objects deleted without a
    // signed record of it (they are named again, in this run's entry).
    let mut own = TrustedKeys::default();
    own.add(ledger.key().verifying_key());
    let mut named: HashSet<String> = HashSet::new();
    for e in ledger.entries().await? {
        if e.check_signature(&own).is_err() {
            continue;
        }
        if let LedgerAction::Retained { removed, .. } = e.body.action {
            named.extend(removed.into_iter().map(|o| o.path));
        }
    }
    let new: Vec<RemovedObject> = outcome
        .plan
        .objects
        .iter()
        .filter(|o| !named.contains(&o.path))
        .cloned()
        .collect();
    outcome.already_recorded = outcome.plan.objects.len() - new.len();
    if !new.is_empty() {
        let dates: BTreeSet<String> = new
            .iter()
            .filter_map(|o| partition_day(&o.path))
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect();
        let entry = ledger
            .append(LedgerAction::Retained {
                before: before.format("%Y-%m-%d").to_string(),
                policy: policy.to_string(),
                dates: dates.into_iter().collect(),
                removed: new,
            })
            .await?;
        outcome.entry = Some((ledger.name(), entry.body.seq, entry.hash_hex()));
    }
    // The first object goes alone, so a crash test pausing after it finds the rest
    // still there.
    let mut deleted = 0;
    let mut objects = outcome.plan.objects.iter();
    if let Some(first) = objects.next() {
        archive.delete(&first.path).await?;
        deleted += 1;
        crate::failpoint::pause("retention_mid_delete").await;
    }
    let mut deletes = futures::stream::iter(objects)
        .map(|o| archive.delete(&o.path))
        .buffer_unordered(DELETE_AHEAD);
    while let Some(done) = deletes.next().await {
        done?;
        deleted += 1;
    }
    drop(deletes);
    outcome.deleted = deleted;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ArchiveLocation;
    use crate::seal::GatewayKey;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    async fn archive_with(dir: &std::path::Path, paths: &[&str]) -> Archive {
        let archive = Archive::create(&ArchiveLocation::Local(dir.into())).unwrap();
        for p in paths {
            archive.put(p, p.as_bytes().to_vec()).await.unwrap();
        }
        archive
    }

    #[tokio::test]
    async fn only_partitions_before_the_cutoff_go_and_the_entry_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_with(
            dir.path(),
            &[
                "events/date=2024-01-10/a.parquet",
                "events/date=2024-01-11/b.parquet",
                "sessions/date=2024-01-10/a.parquet",
                "events/date=2024-01-12/c.parquet",
                "ledger/gw/00000000000000000000.json",
            ],
        )
        .await;
        let key = GatewayKey::generate();
        let ledger = MaintenanceLedger::new(&archive, "ops", &key).unwrap();
        let out = retain(&archive, &ledger, day("2024-01-12"), "--before 2024-01-12")
            .await
            .unwrap();
        assert_eq!(out.plan.dates, vec!["2024-01-10", "2024-01-11"]);
        assert_eq!(out.deleted, 3);
        let (name, seq, hash) = out.entry.clone().expect("an entry");
        assert_eq!((name.as_str(), seq), ("maintenance/ops", 0));
        assert_eq!(hash, ledger.entries().await.unwrap()[0].hash_hex());
        let left = archive.list("").await.unwrap();
        assert!(left.contains(&"events/date=2024-01-12/c.parquet".to_string()));
        assert!(left.contains(&"ledger/gw/00000000000000000000.json".to_string()));
        assert!(
            !left
                .iter()
                .any(|p| p.contains("2024-01-1") && !p.contains("01-12"))
        );
        let entries = ledger.entries().await.unwrap();
        let LedgerAction::Retained { removed, dates, .. } = &entries[0].body.action else {
            panic!("a retained entry");
        };
        assert_eq!(removed.len(), 3);
        assert_eq!(dates.len(), 2);
    }

    #[tokio::test]
    async fn a_rerun_after_an_interrupted_one_finishes_without_a_second_entry() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_with(
            dir.path(),
            &[
                "events/date=2024-01-10/a.parquet",
                "events/date=2024-01-10/b.parquet",
            ],
        )
        .await;
        let key = GatewayKey::generate();
        let ledger = MaintenanceLedger::new(&archive, "ops", &key).unwrap();
        // As if a run had signed its entry and been killed before deleting.
        let plan = plan_retention(&archive, day("2024-02-01")).await.unwrap();
        ledger
            .append(LedgerAction::Retained {
                before: "2024-02-01".into(),
                policy: "t".into(),
                dates: plan.dates.clone(),
                removed: plan.objects.clone(),
            })
            .await
            .unwrap();
        let out = retain(&archive, &ledger, day("2024-02-01"), "t")
            .await
            .unwrap();
        assert_eq!(out.entry, None);
        assert_eq!(out.already_recorded, 2);
        assert_eq!(out.deleted, 2);
        assert_eq!(ledger.entries().await.unwrap().len(), 1);
        assert!(archive.list("events").await.unwrap().is_empty());
        // Nothing left: a third run does nothing at all.
        let again = retain(&archive, &ledger, day("2024-02-01"), "t")
            .await
            .unwrap();
        assert_eq!((again.deleted, again.entry), (0, None));
    }

    #[tokio::test]
    async fn an_entry_planted_under_another_key_does_not_count_as_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_with(dir.path(), &["events/date=2024-01-10/a.parquet"]).await;
        let plan = plan_retention(&archive, day("2024-02-01")).await.unwrap();
        let planter = GatewayKey::generate();
        MaintenanceLedger::new(&archive, "ops", &planter)
            .unwrap()
            .append(LedgerAction::Retained {
                before: "2024-02-01".into(),
                policy: "planted".into(),
                dates: plan.dates.clone(),
                removed: plan.objects.clone(),
            })
            .await
            .unwrap();
        let key = GatewayKey::generate();
        let ledger = MaintenanceLedger::new(&archive, "ops", &key).unwrap();
        let out = retain(&archive, &ledger, day("2024-02-01"), "t")
            .await
            .unwrap();
        assert_eq!(out.already_recorded, 0);
        let (_, seq, _) = out.entry.expect("the run signs its own entry");
        assert_eq!(seq, 1);
        let entries = ledger.entries().await.unwrap();
        let LedgerAction::Retained { removed, .. } = &entries[1].body.action else {
            panic!("a retained entry");
        };
        assert_eq!(removed, &plan.objects);
    }
}
