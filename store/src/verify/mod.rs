//! Recomputing session chains and checking seals and ledgers, and saying where and how
//! the record breaks.
//!
//! The verifier never trusts a stored hash: each row is re-encoded canonically and
//! chained onto the head before it. Seals then pin the chain to what the gateway
//! signed (a recomputed chain, a truncated tail or a re-signed seal fails there), and
//! the ledgers pin the archive to what the gateways wrote (a segment deleted, replaced
//! or slipped in, or a session removed whole, fails there).
//!
//! - `verdict`: the verdict on one session and the kinds of break;
//! - `walk`: the chain walk over stored rows, and what a mismatch means;
//! - `session_check`: one session from its rows and seals (the replay badge,
//!   `verify --session`);
//! - `archive_check`: the whole archive, led by the ledgers; `chunk_check` checks one
//!   ledger entry's segments, `segment_read` reads them, `legacy` checks format 1
//!   segments written before ledgers;
//! - `ledger_links`: the in-order checks every ledger entry gets;
//! - `retired`: the maintenance ledgers, which say what was removed on purpose;
//! - `report`: what is wrong with the archive beyond single sessions.

pub mod archive_check;
pub mod chunk_check;
pub mod ledger_links;
pub mod legacy;
pub mod report;
pub mod retired;
pub mod segment_read;
pub mod session_check;
pub mod verdict;
pub mod walk;

pub use archive_check::{Progress, VerifyOptions, verify_archive};
pub use report::{ArchiveProblem, ArchiveSummary, LedgerSummary, RetentionSummary};
pub use session_check::{SessionCheck, StoredSeal};
pub use verdict::{Break, BreakKind, SessionVerdict};
pub use walk::ChainWalk;
