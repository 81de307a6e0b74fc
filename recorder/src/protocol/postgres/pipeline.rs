//! The queue of client requests still waiting for their responses.
//!
//! PostgreSQL answers requests strictly in order, so the frontend pump pushes each
//! request before forwarding it and the backend pump pops it when its response has
//! arrived. This is how a result is tied to the command that asked for it even when a
//! client pipelines many extended-protocol messages before the first reply.

use super::frontend::Target;
use super::masking::statement_columns::ReadColumns;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

/// One request awaiting its response.
#[derive(Debug, Clone)]
pub enum Pending {
    /// A simple Query (or fast-path call): everything until ReadyForQuery answers it.
    Simple {
        command: String,
        started: Instant,
        /// Run after a person approved it (its result is recorded as `approved`).
        approved: bool,
        /// Its select lists, when the policy check read them (column rules apply).
        columns: Option<Arc<ReadColumns>>,
    },
    Parse {
        statement: String,
        sql: String,
        started: Instant,
    },
    Bind {
        statement: String,
        portal: String,
        result_formats: Vec<i16>,
    },
    Describe {
        target: Target,
        name: String,
        /// Sent by the gateway (see `described`): the answer is not the client's.
        hidden: bool,
    },
    Execute {
        portal: String,
        command: String,
        started: Instant,
        approved: bool,
        /// Its statement's select list, as read when it was parsed.
        columns: Option<Arc<ReadColumns>>,
    },
    Close,
    Sync,
    /// A statement the gateway refused. It never went upstream: in its place the
    /// upstream got a statement that fails at once (see `refusal`), so the upstream's
    /// transaction ends up exactly as if PostgreSQL itself had raised an error there
    /// (aborted inside a transaction block, rolled back outside one). The backend pump
    /// gives the client `error` instead of the upstream's error for it.
    Refused {
        command: String,
        error: bytes::Bytes,
        text: String,
        /// `blocked` for a deny rule, `denied` for a refused or expired approval.
        status: tapline_store::Status,
        /// A simple query (answered by ReadyForQuery after the error), or an extended
        /// one (its error is followed by the answers up to the client's Sync).
        simple: bool,
    },
}

/// The shared queue.
#[derive(Debug, Default)]
pub struct Pipeline {
    queue: Mutex<VecDeque<Pending>>,
}

impl Pipeline {
    /// Adds a request the client is about to send upstream.
    pub fn push(&self, p: Pending) {
        self.lock().push_back(p);
    }

    /// The oldest request still waiting.
    pub fn front(&self) -> Option<Pending> {
        self.lock().front().cloned()
    }

    /// Whether the oldest request matches, without copying it (per-message hot path).
    pub fn front_is(&self, pred: impl FnOnce(&Pending) -> bool) -> bool {
        self.lock().front().is_some_and(pred)
    }

    /// Removes and returns the oldest request if it matches.
    pub fn pop_if(&self, pred: impl FnOnce(&Pending) -> bool) -> Option<Pending> {
        let mut q = self.lock();
        if q.front().is_some_and(pred) {
            q.pop_front()
        } else {
            None
        }
    }

    /// Removes the oldest request.
    pub fn pop(&self) -> Option<Pending> {
        self.lock().pop_front()
    }

    /// After an error in the extended protocol the server skips everything until the
    /// next Sync: removes those requests and returns them.
    pub fn drain_until_sync(&self) -> Vec<Pending> {
        let mut q = self.lock();
        let mut out = Vec::new();
        while let Some(p) = q.front() {
            if matches!(
                p,
                Pending::Sync | Pending::Simple { .. } | Pending::Refused { simple: true, .. }
            ) {
                break;
            }
            out.extend(q.pop_front());
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        // A poisoned queue only means another pump panicked; the data is still sound.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}
