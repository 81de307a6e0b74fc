//! The real psql client and the `tapline hash-secret` command, as the gateway tests
//! drive them: one statement per run, unaligned and tuples only, stopping at the
//! first error, with everything it printed kept for the assertion message.

use super::gateway::GatewayProc;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `psql CONNINFO -c SQL` (no psqlrc, unaligned, tuples only, stop on error).
pub fn run(conninfo: &str, sql: &str) -> Output {
    Command::new("psql")
        .arg(conninfo)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("run psql")
}

/// Runs one statement as `alice` through the gateway: whether psql succeeded, and
/// what it printed on both streams.
pub fn as_alice(gw: &GatewayProc, sql: &str) -> (bool, String) {
    let out = run(&gw.conninfo("alice"), sql);
    (out.status.success(), printed(&out))
}

/// A process's stdout then stderr, as one string.
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A SCRAM-SHA-256 verifier for `secret`, made by `tapline hash-secret` as an
/// operator would make one for `[connections.secrets]`.
pub fn scram_verifier(secret: &str) -> String {
    let mut hash = Command::new(super::tapline_bin())
        .arg("hash-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tapline hash-secret");
    hash.stdin
        .take()
        .expect("stdin")
        .write_all(secret.as_bytes())
        .expect("write the secret");
    let out = hash.wait_with_output().expect("tapline hash-secret");
    assert!(out.status.success(), "{}", printed(&out));
    let verifier = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    verifier
}
