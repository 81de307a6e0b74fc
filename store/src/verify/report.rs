//! What verifying a whole archive found beyond single sessions: segments and ledger
//! entries that are missing, altered or out of place, each with where it is.

/// One thing wrong with the archive as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveProblem {
    /// A segment a ledger lists is not in the archive.
    SegmentMissing {
        path: String,
        gateway: String,
        entry: u64,
    },
    /// A segment's bytes are not those the ledger recorded.
    SegmentAltered { path: String, detail: String },
    /// A segment no ledger lists.
    SegmentExtra { path: String, detail: String },
    /// A ledger entry that does not check out on its own.
    LedgerEntry {
        gateway: String,
        seq: u64,
        detail: String,
    },
    /// Entries missing from a ledger's sequence.
    LedgerGap {
        gateway: String,
        after: Option<u64>,
        next: u64,
    },
    /// An entry that does not link to the one before it.
    LedgerFork { gateway: String, seq: u64 },
    /// A ledger that ends before the head an outside copy pinned.
    LedgerTruncated {
        gateway: String,
        pinned: String,
        ends_at: Option<(u64, String)>,
    },
    /// An object under `ledger/` that is no entry.
    LedgerStray { path: String },
}

impl std::fmt::Display for ArchiveProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveProblem::SegmentMissing {
                path,
                gateway,
                entry,
            } => write!(
                f,
                "segment {path}  MISSING: ledger `{gateway}` entry {entry} records it, but it is not in the archive"
            ),
            ArchiveProblem::SegmentAltered { path, detail } => {
                write!(f, "segment {path}  ALTERED: {detail}")
            }
            ArchiveProblem::SegmentExtra { path, detail } => {
                write!(f, "segment {path}  EXTRA: {detail}")
            }
            ArchiveProblem::LedgerEntry {
                gateway,
                seq,
                detail,
            } => write!(f, "ledger {gateway}  BROKEN at entry {seq}: {detail}"),
            ArchiveProblem::LedgerGap {
                gateway,
                after,
                next,
            } => match after {
                Some(a) => write!(
                    f,
                    "ledger {gateway}  GAP: entries {}..{} are missing (after entry {a}, the next is {next})",
                    a + 1,
                    next - 1
                ),
                None => write!(
                    f,
                    "ledger {gateway}  GAP: entries 0..{} are missing (the first entry present is {next})",
                    next - 1
                ),
            },
            ArchiveProblem::LedgerFork { gateway, seq } => write!(
                f,
                "ledger {gateway}  FORK at entry {seq}: it does not link to entry {} (replaced, or a second writer with the same gateway id)",
                seq.saturating_sub(1)
            ),
            ArchiveProblem::LedgerTruncated {
                gateway,
                pinned,
                ends_at,
            } => match ends_at {
                Some((seq, hash)) => write!(
                    f,
                    "ledger {gateway}  TRUNCATED: the pinned head {pinned} is not in it; it ends at entry {seq} ({hash})"
                ),
                None => write!(
                    f,
                    "ledger {gateway}  TRUNCATED: the pinned head {pinned} is given, but the archive has no ledger for `{gateway}`"
                ),
            },
            ArchiveProblem::LedgerStray { path } => {
                write!(f, "ledger object {path}  EXTRA: not a ledger entry name")
            }
        }
    }
}

/// What one gateway's ledger held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerSummary {
    pub gateway: String,
    pub entries: u64,
    /// The last entry's seq and hash (hex).
    pub head: Option<(u64, String)>,
    pub ok: bool,
}

/// One retention the maintenance ledgers record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionSummary {
    /// The maintenance ledger, as `maintenance/<actor>`.
    pub ledger: String,
    pub entry: u64,
    pub before: String,
    pub policy: String,
    pub dates: Vec<String>,
    pub objects: u64,
    pub bytes: u64,
    /// A trusted key signed it; an unsigned one excuses nothing.
    pub signed: bool,
    /// Objects it names that are still in the archive (a run that was interrupted;
    /// rerun it to finish).
    pub still_present: u64,
}

/// Totals of a whole-archive verification.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSummary {
    pub ledgers: Vec<LedgerSummary>,
    pub segments_checked: u64,
    pub segment_bytes: u64,
    pub events_checked: u64,
    /// Format 1 segments (written before ledgers) checked by chains and seals alone.
    pub legacy_segments: u64,
    /// Segments the gateway ledgers list that a signed retention removed.
    pub retired_segments: u64,
    pub retentions: Vec<RetentionSummary>,
    pub problems: Vec<ArchiveProblem>,
}
