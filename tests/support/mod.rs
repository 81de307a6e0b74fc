//! Helpers for end-to-end tests: throw-away PostgreSQL servers started from the
//! installed binaries, the built `tapline` binary as a gateway, and CLI runs.
#![allow(dead_code)]

pub mod archive;
pub mod azurite;
pub mod gateway;
pub mod oidc;
pub mod parquet_dump;
pub mod postgres;
pub mod psql;
pub mod raw_client;
pub mod recording;
pub mod segments;
pub mod tls;

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// A free loopback port (bound and released), never the same one twice in a test
/// process, so servers started side by side cannot be handed one port.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Waits until something accepts connections on the port.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The built `tapline` binary.
pub fn tapline_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tapline")
}

/// Runs `tapline ARGS` against an archive and returns its output.
pub fn tapline(archive: &Path, args: &[&str]) -> Output {
    archive::ArchiveRef::local(archive).tapline(args)
}

/// Runs `tapline query SQL --format json` and parses the rows.
pub fn query_json(archive: &Path, sql: &str) -> Vec<serde_json::Value> {
    archive::ArchiveRef::local(archive).query_json(sql)
}

/// Polls `f` until it returns Some or the timeout passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A number from the environment (benchmark sizes), or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A protocol 3.0 StartupMessage for `user` on `database`, for raw-socket tests
/// (malformed input, fast-path calls, pipelined bytes).
pub fn startup_packet(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196608i32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", database)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// A two-worker tokio runtime for a test's async clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A tokio-postgres client signed in through a gateway on `port` as `user`, on `db`
/// (trust: no password), its connection driven in the background.
pub async fn login(port: u16, user: &str, db: &str) -> tokio_postgres::Client {
    let conninfo = format!("host=127.0.0.1 port={port} user={user} dbname={db} connect_timeout=20");
    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .expect("login through the gateway");
    tokio::spawn(conn);
    client
}
