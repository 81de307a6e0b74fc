//! Deliberate changes to an archive after gateways wrote it, each recorded in a signed
//! maintenance ledger before anything is removed, so that `tapline verify` tells a
//! planned removal from tampering and still proves everything that is left.
//!
//! - `ledger_writer`: appending signed entries to an operator's maintenance ledger;
//! - `retention`: deleting whole date partitions older than a cutoff.

pub mod ledger_writer;
pub mod retention;

pub use ledger_writer::MaintenanceLedger;
pub use retention::{RetentionOutcome, RetentionPlan, plan_retention, retain};
