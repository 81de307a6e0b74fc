//! The checks every ledger entry gets in order, whatever it records: its name matches
//! its seq, it hashes to what it stores, a trusted key signed it, and it links to the
//! entry before it without a gap. Gateway and maintenance ledgers share them.

use super::report::ArchiveProblem;
use crate::ledger::LedgerEntry;
use crate::ledger::entry_path_in;
use crate::ledger::reader::ReadEntry;
use crate::seal::TrustedKeys;

/// One ledger's walk, entry by entry.
pub struct LedgerLinks {
    /// The ledger as reports name it (`gw-eu-1`, `maintenance/ops`).
    label: String,
    /// The archive folder the ledger lives under.
    root: &'static str,
    /// The ledger's id (the folder name under `root`).
    id: String,
    expected: u64,
    prev_hash: Option<String>,
    prev_seq: Option<u64>,
    /// The last entry read: its seq and hash.
    pub head: Option<(u64, String)>,
    pub entries: u64,
}

/// One entry that could be read, and whether a trusted key signed it.
pub struct CheckedEntry {
    pub entry: LedgerEntry,
    pub signed: bool,
}

impl LedgerLinks {
    /// A walk over ledger `id` under `root`, reported as `label`.
    pub fn new(root: &'static str, id: &str, label: &str) -> Self {
        LedgerLinks {
            label: label.to_string(),
            root,
            id: id.to_string(),
            expected: 0,
            prev_hash: None,
            prev_seq: None,
            head: None,
            entries: 0,
        }
    }

    /// Checks the next entry read; problems go to `problems`. Returns the entry unless
    /// it could not be read at all.
    pub fn check(
        &mut self,
        item: ReadEntry,
        keys: &TrustedKeys,
        problems: &mut Vec<ArchiveProblem>,
    ) -> Option<CheckedEntry> {
        self.entries += 1;
        if item.seq != self.expected {
            problems.push(ArchiveProblem::LedgerGap {
                gateway: self.label.clone(),
                after: self.prev_seq,
                next: item.seq,
            });
            self.prev_hash = None;
        }
        self.expected = item.seq + 1;
        self.prev_seq = Some(item.seq);
        let entry = match item.entry {
            Ok(e) => e,
            Err(problem) => {
                problems.push(ArchiveProblem::LedgerEntry {
                    gateway: self.label.clone(),
                    seq: item.seq,
                    detail: problem.to_string(),
                });
                self.prev_hash = None;
                return None;
            }
        };
        if entry.body.seq != item.seq || entry.body.gateway_id != self.id {
            problems.push(ArchiveProblem::LedgerEntry {
                gateway: self.label.clone(),
                seq: item.seq,
                detail: format!(
                    "it says it is entry {} of `{}`, but it is stored as {}",
                    entry.body.seq,
                    entry.body.gateway_id,
                    entry_path_in(self.root, &self.id, item.seq)
                ),
            });
        }
        let signed = match entry.check_signature(keys) {
            Ok(()) => true,
            Err(problem) => {
                problems.push(ArchiveProblem::LedgerEntry {
                    gateway: self.label.clone(),
                    seq: item.seq,
                    detail: problem.to_string(),
                });
                false
            }
        };
        // Each entry links to the one before; entry 0 links to nothing. (After a gap or
        // an unreadable entry the link cannot be checked, and the gap is reported.)
        let forked = match (&self.prev_hash, item.seq) {
            (Some(prev), _) => entry.body.prev.as_ref() != Some(prev),
            (None, 0) => entry.body.prev.is_some(),
            (None, _) => false,
        };
        if forked {
            problems.push(ArchiveProblem::LedgerFork {
                gateway: self.label.clone(),
                seq: item.seq,
            });
        }
        let hash = entry.hash_hex();
        self.prev_hash = Some(hash.clone());
        self.head = Some((item.seq, hash));
        Some(CheckedEntry { entry, signed })
    }
}
