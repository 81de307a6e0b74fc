//! Reading ledgers back from the archive: which gateways have one, and their entries
//! in order, fetched a few at a time so a long ledger on Blob Storage is not one round
//! trip after another.

use super::entry::{EntryProblem, LedgerEntry};
use super::{LEDGER_ROOT, parse_entry_path_in};
use crate::archive::Archive;
use crate::error::StoreError;
use futures::{Stream, StreamExt};
use std::collections::BTreeMap;

/// Entry objects fetched at once while reading a ledger.
const FETCH_AHEAD: usize = 16;

/// The ledger objects of an archive, by gateway, each as (seq from its name, path).
#[derive(Debug, Clone, Default)]
pub struct LedgerListing {
    pub gateways: BTreeMap<String, Vec<(u64, String)>>,
    /// Objects under `ledger/` whose names are not entry names.
    pub strays: Vec<String>,
}

/// Lists every gateway ledger in the archive.
pub async fn list_ledgers(archive: &Archive) -> Result<LedgerListing, StoreError> {
    list_ledgers_in(archive, LEDGER_ROOT).await
}

/// Lists every ledger under `root` (gateway or maintenance ledgers).
pub async fn list_ledgers_in(archive: &Archive, root: &str) -> Result<LedgerListing, StoreError> {
    let mut listing = LedgerListing::default();
    for path in archive.list(root).await? {
        match parse_entry_path_in(root, &path) {
            Some((gateway, seq)) => listing
                .gateways
                .entry(gateway.to_string())
                .or_default()
                .push((seq, path)),
            None => listing.strays.push(path),
        }
    }
    for entries in listing.gateways.values_mut() {
        entries.sort();
    }
    Ok(listing)
}

/// One entry as read: where it is, the seq its name claims, and what it holds.
#[derive(Debug)]
pub struct ReadEntry {
    pub path: String,
    pub seq: u64,
    pub entry: Result<LedgerEntry, EntryProblem>,
}

/// Reads entries in the order given, a few in flight at once. A fetch that fails
/// (the store is unreachable) ends the stream with that error.
pub fn read_entries(
    archive: &Archive,
    entries: Vec<(u64, String)>,
) -> impl Stream<Item = Result<ReadEntry, StoreError>> + '_ {
    futures::stream::iter(entries)
        .map(move |(seq, path)| async move {
            let bytes = archive.get(&path).await?;
            Ok(ReadEntry {
                entry: LedgerEntry::parse(&bytes),
                path,
                seq,
            })
        })
        .buffered(FETCH_AHEAD)
}

/// The newest entry of a gateway's ledger in the archive, if it has one. Used when a
/// spool holds no head of its own, so the gateway carries on its chain.
pub async fn last_entry(
    archive: &Archive,
    gateway_id: &str,
) -> Result<Option<LedgerEntry>, StoreError> {
    last_entry_in(archive, LEDGER_ROOT, gateway_id).await
}

/// The newest entry of ledger `gateway_id` under `root`, if it has one.
pub async fn last_entry_in(
    archive: &Archive,
    root: &str,
    gateway_id: &str,
) -> Result<Option<LedgerEntry>, StoreError> {
    let prefix = format!("{root}/{gateway_id}");
    let last = archive
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|p| {
            parse_entry_path_in(root, &p)
                .filter(|(id, _)| *id == gateway_id)
                .map(|(_, seq)| (seq, p.clone()))
        })
        .max();
    let Some((seq, path)) = last else {
        return Ok(None);
    };
    let bytes = archive.get(&path).await?;
    match LedgerEntry::parse(&bytes) {
        Ok(e) if e.body.seq == seq => Ok(Some(e)),
        Ok(e) => Err(StoreError::Conflict {
            path,
            reason: format!(
                "the ledger entry says it is seq {}, not {seq}; the ledger of `{gateway_id}` is damaged (run tapline verify)",
                e.body.seq
            ),
        }),
        Err(problem) => Err(StoreError::Conflict {
            path,
            reason: format!(
                "the newest ledger entry of `{gateway_id}` is {problem}; refusing to chain onto it (run tapline verify)"
            ),
        }),
    }
}
