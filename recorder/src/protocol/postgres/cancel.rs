//! Cancel keys: the client cancels with the gateway's key, the gateway cancels upstream
//! with the upstream's key, and the client never learns the upstream's.

use super::startup::cancel_request;
use crate::approvals::registry::Holds;
use rand::Rng;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::io::AsyncWriteExt;

/// Where a gateway key points.
#[derive(Debug, Clone)]
pub struct UpstreamKey {
    pub host: String,
    pub port: u16,
    pub pid: i32,
    pub secret: i32,
    /// The session the key belongs to (a cancel also ends its held statement).
    pub session_id: String,
}

/// All live sessions' keys, shared by every listener of the gateway.
#[derive(Debug, Default)]
pub struct CancelRegistry {
    keys: Mutex<HashMap<(i32, i32), UpstreamKey>>,
}

impl CancelRegistry {
    /// Issues a fresh gateway key for a session.
    pub fn register(&self, upstream: UpstreamKey) -> (i32, i32) {
        let mut rng = rand::thread_rng();
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let key = (rng.gen_range(1..i32::MAX), rng.r#gen::<i32>());
            if let std::collections::hash_map::Entry::Vacant(v) = keys.entry(key) {
                v.insert(upstream);
                return key;
            }
        }
    }

    /// Forgets a session's key when it ends.
    pub fn remove(&self, key: (i32, i32)) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Forwards a cancel to the upstream, and refuses the session's statement if it
    /// is held for approval (nothing of it runs upstream yet); an unknown key is
    /// ignored, as PostgreSQL does.
    pub async fn cancel(&self, pid: i32, secret: i32, holds: &Holds) -> bool {
        let target = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(pid, secret))
            .cloned();
        let Some(t) = target else {
            tracing::info!(pid, "cancel request with an unknown key ignored");
            return false;
        };
        if holds.cancel_session(&t.session_id) > 0 {
            tracing::info!(session = %t.session_id, "cancel request ended a held statement");
        }
        match tokio::net::TcpStream::connect((t.host.as_str(), t.port)).await {
            Ok(mut s) => {
                let ok = s.write_all(&cancel_request(t.pid, t.secret)).await.is_ok();
                let _ = s.shutdown().await;
                tracing::info!(upstream_pid = t.pid, "cancel request forwarded upstream");
                ok
            }
            Err(e) => {
                tracing::warn!(error = %e, "cancel request could not reach the upstream");
                false
            }
        }
    }
}
