//! What the two pumps of one session share: the recorder, the pipeline of pending
//! requests, and the client's write half (so either side can tell the client why the
//! session ends).

use super::client_encodings::ClientEncodings;
use super::encoding::SessionEncoding;
use super::fast_path::FastPath;
use super::io::TapError;
use super::masking::PgMasking;
use super::pipeline::Pipeline;
use crate::approvals::registry::Holds;
use crate::approvals::rules::SessionApprovals;
use crate::policy::guard::SessionGuard;
use crate::policy::sql::lexer::LiveSettings;
use crate::protocol::Limits;
use std::sync::{Arc, Mutex};
use tapline_store::{EventDraft, SessionRecorder};

pub use crate::session::SessionWho;
use crate::session::{EndReason, lifecycle};

/// The client's write half, whatever stream it is (a socket's half, TLS, or a test's
/// in-memory pipe).
pub type ClientWriter = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// What the gateway enforces in this session, picked once at its start.
pub struct SessionPolicy {
    /// The deny rules that apply to this session's connection and caller.
    pub guard: SessionGuard,
    /// What this session masks, for its client and its archive.
    pub masking: PgMasking,
    /// The approval rules that apply, and the gateway's holds.
    pub approvals: SessionApprovals,
    pub holds: Holds,
    /// Which fast-path calls are refused.
    pub fast_path: FastPath,
    /// Which client encodings the session may use.
    pub client_encodings: ClientEncodings,
}

/// Shared by the frontend and backend pump of one session.
pub struct SessionState {
    recorder: Mutex<Option<SessionRecorder>>,
    pub pipeline: Pipeline,
    pub client_writer: tokio::sync::Mutex<ClientWriter>,
    pub limits: Limits,
    /// Parameter types the server reported for prepared statements (ParameterDescription),
    /// so binary parameters bound later can be shown as values rather than hex.
    pub described_params: Mutex<std::collections::HashMap<String, Vec<u32>>>,
    /// The deny rules that apply to this session's connection and caller.
    pub guard: Arc<SessionGuard>,
    /// What this session masks, for its client and its archive.
    pub masking: PgMasking,
    /// The approval rules that apply to this session.
    pub approvals: Arc<SessionApprovals>,
    /// The gateway's pending holds.
    pub holds: Holds,
    /// Which fast-path calls are refused, and their functions' names.
    pub fast_path: FastPath,
    /// Which client encodings the session may use.
    pub client_encodings: ClientEncodings,
    pub who: SessionWho,
    /// The client encoding, as the server last reported it.
    pub encoding: SessionEncoding,
    /// The settings that change how the server reads SQL, as it last reported them.
    pub sql_settings: LiveSettings,
    sync: bool,
}

impl SessionState {
    /// Wraps a session's recorder and the client's write half.
    pub fn new(
        recorder: SessionRecorder,
        client_writer: ClientWriter,
        limits: Limits,
        who: SessionWho,
        policy: SessionPolicy,
    ) -> Self {
        SessionState {
            sync: recorder.durability() == tapline_store::Durability::Sync,
            recorder: Mutex::new(Some(recorder)),
            pipeline: Pipeline::default(),
            client_writer: tokio::sync::Mutex::new(client_writer),
            limits,
            described_params: Mutex::default(),
            guard: Arc::new(policy.guard),
            masking: policy.masking,
            approvals: Arc::new(policy.approvals),
            holds: policy.holds,
            fast_path: policy.fast_path,
            client_encodings: policy.client_encodings,
            who,
            encoding: SessionEncoding::default(),
            sql_settings: LiveSettings::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut SessionRecorder) -> T) -> Option<T> {
        let mut guard = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().map(f)
    }

    /// In sync durability, resolves once every event recorded so far is fsync'd in the
    /// spool; what the backend pump forwards next may then reach the client. In async
    /// durability, resolves at once.
    pub async fn wait_durable(&self) -> Result<(), TapError> {
        if !self.sync {
            return Ok(());
        }
        match self.with(|r| r.durable_point()).flatten() {
            Some(point) => point.wait().await.map_err(TapError::from),
            None => Ok(()),
        }
    }

    /// Appends an event to the session chain.
    pub fn record(&self, mut draft: EventDraft) -> Result<(), TapError> {
        if draft.direction == tapline_store::Direction::Client || draft.command.is_some() {
            self.masking
                .scrub_client_event(&mut draft, self.encoding.client());
        }
        match self.with(|r| r.record(draft)) {
            Some(result) => result.map(|_| ()).map_err(TapError::from),
            None => Ok(()),
        }
    }

    /// Counts bytes from the client.
    pub fn add_bytes_from_client(&self, n: usize) {
        self.with(|r| r.add_bytes_from_client(n));
    }

    /// Counts bytes from the server.
    pub fn add_bytes_from_server(&self, n: usize) {
        self.with(|r| r.add_bytes_from_server(n));
    }

    /// Ends the session (once) with a reason.
    pub fn end(&self, reason: &EndReason) {
        let recorder = self
            .recorder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(r) = recorder {
            lifecycle::end(r, reason);
        }
    }
}
