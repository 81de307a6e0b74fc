//! What the gateway enforces in the data path. Each decision is recorded as part of
//! the session, so an investigator sees what was asked and what the gateway did.
//!
//! - `guard`: deny rules (statement kind, pattern, table list), scoped per connection
//!   and group, checked before a statement reaches the upstream;
//! - `mask`: value detectors and masking strategies, applied in process;
//! - `sql`: statements as the checks read them, parsed within a budget on a stack
//!   deep enough for them.

pub mod guard;
pub mod mask;
pub mod sql;
