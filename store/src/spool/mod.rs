//! The local spool: every event is appended here, framed and checksummed, before it is
//! rolled into a Parquet segment, and a spool file is deleted only after the archive has
//! confirmed every segment cut from it. A gateway killed at any point restarts from its
//! spool with nothing acknowledged lost and nothing uploaded twice.
//!
//! - `frame`: the file layout (header, length + CRC framing, tail detection);
//! - `codec` and `record`: what a record holds and its bytes;
//! - `book`: the running state of sessions, rebuilt identically after a crash;
//! - `journal`: the appending thread with group-committed fsync and chunk cutting;
//! - `recover`: start-up replay of what a previous run left;
//! - `dir`: the locked folder and its identity;
//! - `backlog`: what is waiting, for admission control and `gateway status`.

pub mod backlog;
pub mod book;
pub(crate) mod codec;
pub mod dir;
pub mod frame;
pub mod journal;
pub mod record;
pub mod recover;

pub use backlog::{Backlog, BacklogStatus, read_status};
pub use dir::{SpoolDir, spool_is_locked};
pub use journal::{Chunk, Durable};
