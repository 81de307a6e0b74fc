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
    /// Hash prefixes an outside copy pinned, each with whether an entry had it.
    pins: Vec<(String, bool)>,
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
            pins: Vec::new(),
            head: None,
            entries: 0,
        }
    }

    /// Expects the ledger to hold an entry whose hash starts with each pin (at least
    /// 16 hex digits; shorter ones are ignored, as the command line refuses them).
    pub fn with_pins(mut self, pins: impl IntoIterator<Item = String>) -> Self {
        self.pins = pins
            .into_iter()
            .filter(|p| p.len() >= 16)
            .map(|p| (p.to_ascii_lowercase(), false))
            .collect();
        self
    }

    /// A `TRUNCATED` problem for each pin no entry had.
    pub fn unreached_pins(&self) -> Vec<ArchiveProblem> {
        self.pins
            .iter()
            .filter(|(_, found)| !found)
            .map(|(pin, _)| ArchiveProblem::LedgerTruncated {
                gateway: self.label.clone(),
                pinned: pin.clone(),
                ends_at: self.head.clone(),
            })
            .collect()
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
        for (pin, found) in &mut self.pins {
            *found |= hash.starts_with(pin.as_str());
        }
        self.prev_hash = Some(hash.clone());
        self.head = Some((item.seq, hash));
        Some(CheckedEntry { entry, signed })
    }
}
