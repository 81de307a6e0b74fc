//! Cancel keys: the client is given the upstream's real backend pid (drivers compare it
//! with `Notify.pid` and pass it to `pg_terminate_backend`), with a secret the gateway
//! makes. A cancel with that pair comes to the gateway, which cancels upstream with the
//! upstream's own secret: the client never learns it, so it cannot cancel around the
//! gateway.

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
    /// Issues the client's key for a session: the upstream's pid, a fresh secret.
    pub fn register(&self, upstream: UpstreamKey) -> (i32, i32) {
        let mut rng = rand::thread_rng();
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let key = (upstream.pid, rng.r#gen::<i32>());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_key_carries_the_upstream_pid_and_a_secret_of_its_own() {
        let reg = CancelRegistry::default();
        let up = UpstreamKey {
            host: "127.0.0.1".into(),
            port: 5432,
            pid: 4242,
            secret: 77,
            session_id: "s".into(),
        };
        let a = reg.register(up.clone());
        let b = reg.register(up);
        assert_eq!((a.0, b.0), (4242, 4242));
        assert_ne!(a.1, b.1, "each session has its own secret");
        assert_ne!(a.1, 77, "never the upstream's secret");
    }
}
