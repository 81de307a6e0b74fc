//! The gateway ledger: an append-only, hash-chained, signed list of everything a
//! gateway wrote into the archive (CloudTrail's digest files are the model).
//!
//! Each uploaded spool chunk gets one entry naming every segment it wrote (path, size,
//! blake3 of the bytes, rows) and every session it touched (last seq and chain head).
//! Entries are objects `ledger/<gateway>/<seq>.json`, written create-only after the
//! segments they name, each linking to the hash of the one before. `tapline verify`
//! checks the archive against the ledgers, so a segment that is deleted, replaced or
//! slipped in, or a session removed whole, is named rather than silently missing.
//!
//! Maintenance of the archive (retention now, compaction next) is recorded the same
//! way, in ledgers of their own under `maintenance/<actor>/`: a gateway keeps writing
//! its ledger while an operator's tool writes its own, so neither waits for the other
//! or forks the other's chain.
//!
//! - `entry`: one entry, its hash and signature;
//! - `local_head`: where the gateway keeps its own head between runs (the spool);
//! - `reader`: a ledger read back from the archive, in order.

pub mod entry;
pub mod local_head;
pub mod reader;

pub use entry::{
    EntryProblem, LedgerAction, LedgerBody, LedgerEntry, RemovedObject, SegmentRecord, SessionHead,
};
pub use local_head::LedgerHead;

/// The archive folder every gateway ledger lives under.
pub const LEDGER_ROOT: &str = "ledger";

/// The archive folder every maintenance ledger lives under.
pub const MAINTENANCE_ROOT: &str = "maintenance";

/// The object path of entry `seq` of a gateway's ledger. Zero-padded, so a listing
/// sorts in ledger order.
pub fn entry_path(gateway_id: &str, seq: u64) -> String {
    entry_path_in(LEDGER_ROOT, gateway_id, seq)
}

/// The object path of entry `seq` of ledger `id` under `root`.
pub fn entry_path_in(root: &str, id: &str, seq: u64) -> String {
    format!("{root}/{id}/{seq:020}.json")
}

/// The gateway id and entry seq an object path names, if it is a ledger entry path.
pub fn parse_entry_path(path: &str) -> Option<(&str, u64)> {
    parse_entry_path_in(LEDGER_ROOT, path)
}

/// The ledger id and entry seq an object path under `root` names, if it is an entry
/// path.
pub fn parse_entry_path_in<'a>(root: &str, path: &'a str) -> Option<(&'a str, u64)> {
    let rest = path.strip_prefix(root)?.strip_prefix('/')?;
    let (gateway, file) = rest.split_once('/')?;
    let seq = file.strip_suffix(".json")?;
    if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((gateway, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_sort_in_ledger_order_and_parse_back() {
        let a = entry_path("gw-1", 9);
        let b = entry_path("gw-1", 10);
        assert!(a < b, "{a} sorts before {b}");
        assert_eq!(parse_entry_path(&b), Some(("gw-1", 10)));
        assert_eq!(parse_entry_path("ledger/gw-1/notes.txt"), None);
        assert_eq!(
            parse_entry_path("events/gw-1/00000000000000000001.json"),
            None
        );
        let m = entry_path_in(MAINTENANCE_ROOT, "ops", 3);
        assert_eq!(m, "maintenance/ops/00000000000000000003.json");
        assert_eq!(parse_entry_path_in(MAINTENANCE_ROOT, &m), Some(("ops", 3)));
        assert_eq!(parse_entry_path(&m), None);
    }
}
