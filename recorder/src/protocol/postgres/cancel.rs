//! Cancel keys: the client is given the upstream's real backend pid (drivers compare it
//! with `Notify.pid` and pass it to `pg_terminate_backend`), with a secret the gateway
//! makes. A cancel with that pair comes to the gateway, which cancels upstream with the
//! upstream's own secret: the client never learns it, so it cannot cancel around the
//! gateway. The cancel goes upstream with the session's own sslmode: its key is as
//! secret as the session, and a server that takes only TLS gets it in TLS.

use super::startup::cancel_request;
use super::upstream::start_tls;
use crate::approvals::registry::Holds;
use crate::session::{PeerStream, UpstreamTls};
use rand::Rng;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long forwarding one cancel upstream may take, TLS handshake included.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a gateway key points.
#[derive(Debug, Clone)]
pub struct UpstreamKey {
    pub host: String,
    pub port: u16,
    /// The session's TLS towards the upstream, which its cancel uses too.
    pub tls: UpstreamTls,
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
        match tokio::time::timeout(CANCEL_TIMEOUT, forward(&t)).await {
            Ok(Ok(())) => {
                tracing::info!(upstream_pid = t.pid, "cancel request forwarded upstream");
                true
            }
            Ok(Err(why)) => {
                tracing::warn!(error = %why, "cancel request could not reach the upstream");
                false
            }
            Err(_) => {
                tracing::warn!(
                    "cancel request could not reach the upstream within {} s",
                    CANCEL_TIMEOUT.as_secs()
                );
                false
            }
        }
    }
}

/// Sends the upstream's own key to it, over TLS when the session's sslmode asks.
async fn forward(t: &UpstreamKey) -> Result<(), String> {
    let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", t.host, t.port))?;
    let mut stream = PeerStream::Plain(tcp);
    start_tls(&mut stream, &t.host, &t.tls)
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&cancel_request(t.pid, t.secret))
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::postgres::startup::ssl_request;
    use crate::session::SslMode;
    use tokio::io::AsyncReadExt;

    #[test]
    fn the_client_key_carries_the_upstream_pid_and_a_secret_of_its_own() {
        let reg = CancelRegistry::default();
        let up = UpstreamKey {
            host: "127.0.0.1".into(),
            port: 5432,
            tls: UpstreamTls::new(SslMode::Prefer, None).unwrap(),
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

    /// What a loopback "upstream" received from one forwarded cancel: whether it was
    /// asked for TLS first (it answers 'N'), and the bytes after that.
    async fn cancel_with(mode: SslMode) -> (bool, bool, Vec<u8>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 8];
            s.read_exact(&mut head).await.unwrap();
            let asked = head[..] == ssl_request()[..];
            let mut rest = if asked {
                s.write_all(b"N").await.unwrap();
                Vec::new()
            } else {
                head.to_vec()
            };
            let _ = s.read_to_end(&mut rest).await;
            (asked, rest)
        });
        let reg = CancelRegistry::default();
        let (pid, secret) = reg.register(UpstreamKey {
            host: "127.0.0.1".into(),
            port,
            tls: UpstreamTls::new(mode, None).unwrap(),
            pid: 4242,
            secret: 77,
            session_id: "s".into(),
        });
        let sent = reg.cancel(pid, secret, &Holds::default()).await;
        let (asked, rest) = upstream.await.unwrap();
        (sent, asked, rest)
    }

    #[tokio::test]
    async fn a_cancel_negotiates_tls_as_its_session_did() {
        let key = cancel_request(4242, 77).to_vec();
        // prefer: TLS is asked for; a server without it gets the cancel in clear.
        assert_eq!(
            cancel_with(SslMode::Prefer).await,
            (true, true, key.clone())
        );
        // require: a server without TLS never sees the key.
        assert_eq!(
            cancel_with(SslMode::Require).await,
            (false, true, Vec::new())
        );
        // disable: straight to the cancel, as the session's login.
        assert_eq!(cancel_with(SslMode::Disable).await, (true, false, key));
    }
}
