//! TLS from the gateway to a PostgreSQL that accepts nothing else (ssl=on, only
//! `hostssl` lines in pg_hba.conf, as Azure Database for PostgreSQL): every sslmode
//! as libpq means it, and a wrong host name, an untrusted chain and an expired
//! certificate each refused with words that say what to fix.

mod support;

use std::process::Command;
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::postgres::PgServer;
use support::psql::as_alice as psql;
use support::query_json;
use support::tls::TestCa;

/// A gateway in front of `upstream_host`:`pg.port` with the connection keys `tls`.
fn gateway(pg: &PgServer, upstream_host: &str, tls: &str) -> GatewayProc {
    let config = format!(
        "[[connections]]\nname = \"pg\"\nlisten = \"127.0.0.1:{{port}}\"\n\
         upstream = \"postgres://tapline_up@{upstream_host}:{}/postgres\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\n{tls}\n",
        pg.port
    );
    GatewayProc::start_with_config(
        GatewayOpts {
            upstream: String::new(),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    )
}

const SSL_IN_USE: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[test]
fn verify_full_to_a_tls_only_server_works_and_is_recorded() {
    let ca = TestCa::new("upstream CA");
    let server = ca.issue("pg", "localhost", &["localhost"], &[]);
    let pg = PgServer::start_tls(&server.cert, &server.key);
    let root = ca.cert.display().to_string();
    let mut gw = gateway(
        &pg,
        "localhost",
        &format!("sslmode = \"verify-full\"\nsslrootcert = \"{root}\""),
    );
    let (ok, out) = psql(&gw, SSL_IN_USE);
    assert!(ok, "{out}\n{}", gw.log());
    assert_eq!(out.trim(), "t", "the upstream leg runs TLS");
    assert!(gw.stop(), "{}", gw.log());
    let queries = query_json(
        gw.archive(),
        "SELECT e.command, s.end_reason FROM events e JOIN sessions s USING (session_id) WHERE e.kind = 'query'",
    );
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(queries[0]["end_reason"], "client_closed");
}

#[test]
fn each_sslmode_means_what_it_means_in_libpq() {
    let ca = TestCa::new("upstream CA");
    let server = ca.issue("pg", "localhost", &["localhost"], &[]);
    let pg = PgServer::start_tls(&server.cert, &server.key);
    let root = ca.cert.display().to_string();

    // disable: the server has no clear-text line for the gateway.
    let mut gw = gateway(&pg, "127.0.0.1", "sslmode = \"disable\"");
    let (ok, out) = psql(&gw, "SELECT 1");
    assert!(!ok);
    assert!(
        out.contains("no encryption"),
        "the upstream's refusal: {out}"
    );
    gw.stop();

    // prefer (the default) and require: TLS without checking who answers.
    for mode in ["", "sslmode = \"prefer\"", "sslmode = \"require\""] {
        let mut gw = gateway(&pg, "127.0.0.1", mode);
        let (ok, out) = psql(&gw, SSL_IN_USE);
        assert!(ok && out.trim() == "t", "{mode}: {out}");
        gw.stop();
    }

    // verify-ca: the chain is checked, the name (an IP the certificate lacks) is not.
    let mut gw = gateway(
        &pg,
        "127.0.0.1",
        &format!("sslmode = \"verify-ca\"\nsslrootcert = \"{root}\""),
    );
    let (ok, out) = psql(&gw, SSL_IN_USE);
    assert!(ok && out.trim() == "t", "{out}");
    gw.stop();

    // verify-full: the same connection by IP fails on the name, and says so.
    let mut gw = gateway(
        &pg,
        "127.0.0.1",
        &format!("sslmode = \"verify-full\"\nsslrootcert = \"{root}\""),
    );
    let (ok, out) = psql(&gw, "SELECT 1");
    assert!(!ok);
    assert!(
        out.contains("not valid for the host name `127.0.0.1`"),
        "{out}"
    );
    gw.stop();

    // An untrusted chain: the roots of another CA.
    let other = TestCa::new("someone else's CA");
    let mut gw = gateway(
        &pg,
        "localhost",
        &format!(
            "sslmode = \"verify-full\"\nsslrootcert = \"{}\"",
            other.cert.display()
        ),
    );
    let (ok, out) = psql(&gw, "SELECT 1");
    assert!(!ok);
    assert!(
        out.contains("does not chain to a root in sslrootcert"),
        "{out}"
    );
    gw.stop();
}

#[test]
fn an_expired_upstream_certificate_and_a_server_without_tls_are_named() {
    let ca = TestCa::new("upstream CA");
    let expired = ca.issue_valid("old", "localhost", &["localhost"], &[], true);
    let pg = PgServer::start_tls(&expired.cert, &expired.key);
    let mut gw = gateway(
        &pg,
        "localhost",
        &format!(
            "sslmode = \"verify-full\"\nsslrootcert = \"{}\"",
            ca.cert.display()
        ),
    );
    let (ok, out) = psql(&gw, "SELECT 1");
    assert!(!ok);
    assert!(out.contains("has expired"), "{out}");
    gw.stop();

    let plain = PgServer::start();
    let mut gw = gateway(&plain, "127.0.0.1", "sslmode = \"require\"");
    let (ok, out) = psql(&gw, "SELECT 1");
    assert!(!ok);
    assert!(out.contains("does not offer TLS"), "{out}");
    gw.stop();
}

#[test]
fn a_verifying_mode_without_roots_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tapline.toml");
    std::fs::write(
        &cfg,
        "[[connections]]\nlisten = \"127.0.0.1:6432\"\nupstream = \"postgres://app@db:5432/app\"\nsslmode = \"verify-full\"\n",
    )
    .unwrap();
    let out = Command::new(support::tapline_bin())
        .args(["gateway", "--config"])
        .arg(&cfg)
        .arg("--archive")
        .arg(dir.path().join("a"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("connections[0].sslrootcert"), "{said}");
    assert!(said.contains("\"system\""), "{said}");
}
