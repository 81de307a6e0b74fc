//! The gateway logs in upstream with its own Microsoft Entra ID token, as Azure
//! Database for PostgreSQL accepts one as the password. The token endpoint is a
//! loopback HTTPS stand-in for the client-credentials flow (tests/python); the
//! throw-away PostgreSQL role's password is the token it issues. The gateway logs in
//! with it, refreshes it when it nears its expiry, and the token reaches no client
//! byte, no archive value and no log line.

mod support;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use support::gateway::{GatewayOpts, GatewayProc};
use support::parquet_dump::{contains, decompressed_archive};
use support::postgres::PgServer;
use support::psql::as_alice as psql;
use support::tls::TestCa;
use support::{free_port, query_json};

/// The token endpoint, stopped on drop.
struct TokenServer {
    port: u16,
    state: PathBuf,
    log: PathBuf,
    child: Child,
}

impl TokenServer {
    fn start(dir: &Path, ca: &TestCa) -> TokenServer {
        let cert = ca.issue("authority", "localhost", &["localhost"], &[]);
        let port = free_port();
        let state = dir.join("token.json");
        let log = dir.join("requests.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/token_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .args([&cert.cert, &cert.key, &state, &log])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        TokenServer {
            port,
            state,
            log,
            child,
        }
    }

    /// The token the next request gets, and its lifetime.
    fn issue(&self, token: &str, expires_in: u64) {
        std::fs::write(
            &self.state,
            serde_json::json!({"token": token, "expires_in": expires_in}).to_string(),
        )
        .unwrap();
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_gateway_logs_in_with_its_own_entra_token_and_refreshes_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("authority CA");
    let authority = TokenServer::start(dir.path(), &ca);
    // A password-only server (as Azure asks for the token as a password).
    let pg = PgServer::start_with_auth("password");
    let first = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.tapline-test-token-one.c2ln";
    let second = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.tapline-test-token-two.c2ln";
    pg.psql_direct(
        "postgres",
        &format!("CREATE ROLE entra_app LOGIN PASSWORD '{first}'"),
    );
    // 301 s: inside the five minutes before expiry in a second, so the next login
    // after that asks for a new token.
    authority.issue(first, 301);
    let config = format!(
        "[[connections]]\nname = \"azure\"\nlisten = \"127.0.0.1:{{port}}\"\n\
         upstream = \"postgres://entra_app@127.0.0.1:{}/postgres\"\nupstream_auth = \"entra\"\n\
         [connections.entra]\ncredential = \"client_secret\"\ntenant_id = \"tapline-test-tenant\"\n\
         client_id = \"0f0e0d0c-tapline-gateway\"\nclient_secret_env = \"TAPLINE_TEST_ENTRA_SECRET\"\n\
         authority_host = \"https://localhost:{}\"\nauthority_ca = \"{}\"\n",
        pg.port,
        authority.port,
        ca.cert.display()
    );
    let mut gw = GatewayProc::start_with_config(
        GatewayOpts {
            flush_interval: "1s",
            env: vec![(
                "TAPLINE_TEST_ENTRA_SECRET".into(),
                "sp-secret-never-recorded".into(),
            )],
            ..Default::default()
        },
        &config,
    );

    let (ok, out) = psql(&gw, "SELECT current_user");
    assert!(ok, "{out}\n{}", gw.log());
    assert_eq!(out.trim(), "entra_app");

    // The authority rotates, the role takes the new token, the old one stops working.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    authority.issue(second, 3600);
    pg.psql_direct(
        "postgres",
        &format!("ALTER ROLE entra_app PASSWORD '{second}'"),
    );
    let (ok, out) = psql(&gw, "SELECT 'refreshed'");
    assert!(ok, "the gateway refreshed its token: {out}\n{}", gw.log());

    let requests = authority.requests();
    assert_eq!(
        requests.len(),
        2,
        "one token, then one refresh: {requests:?}"
    );
    for r in &requests {
        assert_eq!(r["path"], "/tapline-test-tenant/oauth2/v2.0/token");
        assert_eq!(r["grant_type"], "client_credentials");
        assert_eq!(r["client_id"], "0f0e0d0c-tapline-gateway");
        assert_eq!(
            r["scope"],
            "https://ossrdbms-aad.database.windows.net/.default"
        );
        assert_eq!(r["has_secret"], true);
    }

    assert!(gw.stop(), "{}", gw.log());
    let sessions = query_json(gw.archive(), "SELECT end_reason FROM sessions");
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    // Neither token, nor the service principal's secret, is anywhere a client or an
    // auditor could read it.
    let archive = decompressed_archive(gw.archive());
    let spool: Vec<u8> = walk(&gw.spool());
    for secret in [first, second, "sp-secret-never-recorded"] {
        assert!(!contains(&archive, secret), "{secret} is in the archive");
        assert!(!contains(&spool, secret), "{secret} is in the spool");
        assert!(!gw.log().contains(secret), "{secret} is in the log");
        assert!(!out.contains(secret), "{secret} reached the client");
    }
}

/// Every byte of every file below `dir`.
fn walk(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.extend(bytes);
            }
        }
    }
    out
}

#[test]
fn an_unreachable_authority_refuses_the_session_with_the_reason() {
    let pg = PgServer::start_with_auth("password");
    let config = format!(
        "[[connections]]\nname = \"azure\"\nlisten = \"127.0.0.1:{{port}}\"\n\
         upstream = \"postgres://entra_app@127.0.0.1:{}/postgres\"\nupstream_auth = \"entra\"\n\
         [connections.entra]\ncredential = \"client_secret\"\ntenant_id = \"t\"\nclient_id = \"c\"\n\
         client_secret_env = \"TAPLINE_TEST_ENTRA_SECRET\"\nauthority_host = \"https://127.0.0.1:{}\"\n",
        pg.port,
        free_port()
    );
    let mut gw = GatewayProc::start_with_config(
        GatewayOpts {
            flush_interval: "1s",
            env: vec![("TAPLINE_TEST_ENTRA_SECRET".into(), "s".into())],
            ..Default::default()
        },
        &config,
    );
    let (ok, out) = psql(&gw, "SELECT 1");
    assert!(!ok);
    assert!(out.contains("could not get its Entra ID token"), "{out}");
    assert!(gw.stop(), "{}", gw.log());
}
