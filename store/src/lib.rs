//! The tapline archive.
//!
//! `store` owns everything that is written to disk or to the object store: the event
//! model and its Arrow schemas, the blake3 hash chain and the ed25519 seals, the Parquet
//! segment format and the archive location. It knows no wire protocol: a protocol tap
//! hands it [`EventDraft`]s and it does the rest.

pub mod archive;
pub mod azure;
pub mod batch;
pub mod canonical;
pub mod chain;
pub mod durable_file;
pub mod error;
pub mod event;
pub mod failpoint;
pub mod ledger;
pub mod maintenance;
pub mod schema;
pub mod seal;
pub mod segment;
pub mod session;
pub mod spool;
pub mod text_format;
pub mod upload;
pub mod verify;
pub mod writer;

pub use archive::{Archive, ArchiveLocation};
pub use chain::Chain;
pub use error::StoreError;
pub use event::{Direction, Event, EventDraft, Kind, Status};
pub use seal::{GatewayKey, KeyId, Seal, TrustedKeys};
pub use session::{SessionMeta, SessionSummary, SessionTls};
pub use writer::{ArchiveWriter, Durability, SessionRecorder, WriterConfig, WriterHandle};
