//! TLS between clients and the gateway, with real psql and openssl against a
//! throw-away CA: `sslmode=verify-full` works and the whole session is recorded with
//! its TLS; a client in clear text is refused by a listener that requires TLS; a
//! certificate for another name fails verify-full; and SIGHUP serves a renewed
//! certificate to new connections while a live session carries on.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::postgres::PgServer;
use support::psql::{printed as text, scram_verifier as verifier};
use support::query_json;
use support::tls::{Issued, TestCa};

fn gateway(pg: &PgServer, cert: &Issued, tls: &str) -> GatewayProc {
    gateway_with(pg, cert, tls, "")
}

/// A gateway whose connection has `extra` keys (tables such as [connections.users]
/// go last).
fn gateway_with(pg: &PgServer, cert: &Issued, tls: &str, extra: &str) -> GatewayProc {
    let config = format!(
        "[[connections]]\nname = \"pg\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\ntls = \"{tls}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n{extra}",
        cert.cert.display(),
        cert.key.display()
    );
    GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("postgres"),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    )
}

/// psql through the gateway, by the name its certificate has, with libpq's TLS
/// settings `ssl`.
fn psql(gw: &GatewayProc, ssl: &str, sql: &str) -> std::process::Output {
    support::psql::run(
        &format!(
            "hostaddr=127.0.0.1 host=localhost port={} user=alice dbname=postgres {ssl}",
            gw.port
        ),
        sql,
    )
}

#[test]
fn verify_full_through_the_gateway_works_and_the_session_records_its_tls() {
    let pg = PgServer::start();
    let ca = TestCa::new("tapline test CA");
    let cert = ca.issue("gateway", "localhost", &["localhost"], &[]);
    let mut gw = gateway(&pg, &cert, "required");
    let root = format!("sslmode=verify-full sslrootcert={}", ca.cert.display());

    let out = psql(
        &gw,
        &root,
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    assert!(out.status.success(), "{}", text(&out));
    // The upstream leg is plain here; what the client sees is the gateway's TLS.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "f");

    // Clear text is refused before the client authenticates, and says what to do.
    let out = psql(&gw, "sslmode=disable", "SELECT 1");
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("accepts TLS connections only"), "{said}");
    assert!(said.contains("sslmode"), "{said}");

    // A certificate the client cannot tie to the name it dialled fails verify-full.
    let out = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=alice dbname=postgres {root}",
            gw.port
        ))
        .args(["-X", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("does not match host name"), "{said}");

    assert!(gw.stop(), "{}", gw.log());
    let sessions = query_json(
        gw.archive(),
        "SELECT s.end_reason, s.tls_version, s.tls_cipher, s.tls_client_cert, e.text \
         FROM sessions s JOIN events e USING (session_id) \
         WHERE e.kind = 'session_start' ORDER BY s.start_ts",
    );
    assert_eq!(
        sessions.len(),
        1,
        "refused handshakes start no session: {sessions:?}"
    );
    let start = sessions[0]["text"].as_str().unwrap();
    assert!(start.contains("tls TLSv1.3 cipher TLS13_"), "{start}");
    // The session's row says it too, for an auditor listing sessions by TLS.
    assert_eq!(sessions[0]["tls_version"], "TLSv1.3", "{sessions:?}");
    let cipher = sessions[0]["tls_cipher"].as_str().unwrap();
    assert!(
        start.contains(cipher) && cipher.starts_with("TLS13_"),
        "{cipher}"
    );
    assert!(sessions[0]["tls_client_cert"].is_null(), "{sessions:?}");
    let queries = query_json(
        gw.archive(),
        "SELECT command FROM events WHERE kind = 'query'",
    );
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert!(
        queries[0]["command"]
            .as_str()
            .unwrap()
            .contains("pg_stat_ssl")
    );
    let verify = support::tapline(
        gw.archive(),
        &["verify", "--pubkey", gw.pubkey().to_str().unwrap()],
    );
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn an_optional_listener_serves_tls_and_clear_text_and_records_which() {
    let pg = PgServer::start();
    let ca = TestCa::new("tapline test CA");
    let cert = ca.issue("gateway", "localhost", &["localhost"], &[]);
    let mut gw = gateway(&pg, &cert, "optional");
    let root = format!("sslmode=verify-full sslrootcert={}", ca.cert.display());
    for ssl in [root.as_str(), "sslmode=disable"] {
        let out = psql(&gw, ssl, "SELECT 1");
        assert!(out.status.success(), "{ssl}: {}", text(&out));
    }
    assert!(gw.stop(), "{}", gw.log());
    let starts = query_json(
        gw.archive(),
        "SELECT text FROM events WHERE kind = 'session_start' ORDER BY ts",
    );
    assert_eq!(starts.len(), 2);
    assert!(starts[0]["text"].as_str().unwrap().contains("tls TLSv1."));
    assert!(starts[1]["text"].as_str().unwrap().ends_with("tls off"));
    let rows = query_json(
        gw.archive(),
        "SELECT tls_version FROM sessions ORDER BY start_ts",
    );
    assert!(
        rows[0]["tls_version"]
            .as_str()
            .unwrap()
            .starts_with("TLSv1.")
    );
    assert!(rows[1]["tls_version"].is_null(), "clear text: {rows:?}");
}

/// The subject of the certificate `openssl s_client` is served on `port`.
fn served_subject(port: u16) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-starttls",
            "postgres",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_else(|| panic!("no certificate served: {all}"))
        .to_string()
}

#[test]
fn sighup_serves_a_renewed_certificate_without_dropping_a_live_session() {
    let pg = PgServer::start();
    let ca = TestCa::new("tapline test CA");
    let first = ca.issue("gateway", "localhost", &["localhost"], &[]);
    let mut gw = gateway(&pg, &first, "required");
    assert!(served_subject(gw.port).contains("CN = localhost"));

    // A live session over TLS, fed one statement at a time.
    let mut live = Command::new("psql")
        .arg(format!(
            "hostaddr=127.0.0.1 host=localhost port={} user=alice dbname=postgres sslmode=verify-full sslrootcert={}",
            gw.port,
            ca.cert.display()
        ))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = live.stdin.take().unwrap();
    let mut output = BufReader::new(live.stdout.take().unwrap());
    let mut ask = |sql: &str| {
        writeln!(input, "{sql}").unwrap();
        input.flush().unwrap();
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        line.trim().to_string()
    };
    assert_eq!(ask("SELECT 'before';"), "before");

    // Renew: a new certificate (another subject) in place of the old files.
    let renewed = ca.issue("renewed", "localhost renewed", &["localhost"], &[]);
    std::fs::copy(&renewed.cert, &first.cert).unwrap();
    std::fs::copy(&renewed.key, &first.key).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        gw.wait_log("TLS certificate reloaded", 1, Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    assert!(served_subject(gw.port).contains("CN = localhost renewed"));
    assert_eq!(
        ask("SELECT 'after';"),
        "after",
        "the live session carries on"
    );

    // A reload that cannot read a key keeps serving the certificate in use.
    std::fs::write(&first.key, "not a key").unwrap();
    Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(
        gw.wait_log("TLS certificate reload failed", 1, Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    assert!(served_subject(gw.port).contains("CN = localhost renewed"));
    drop(input);
    assert!(live.wait().unwrap().success());
    assert!(gw.stop(), "{}", gw.log());
}

#[test]
fn scram_with_channel_binding_is_offered_over_tls() {
    let pg = PgServer::start();
    let ca = TestCa::new("tapline test CA");
    let cert = ca.issue("gateway", "localhost", &["localhost"], &[]);
    let users = format!(
        "client_auth = \"secret\"\n[connections.users]\nalice = \"{}\"\n",
        verifier("alice-S3cret")
    );
    let mut gw = gateway_with(&pg, &cert, "required", &users);
    let root = format!("sslmode=verify-full sslrootcert={}", ca.cert.display());
    let bound = psql(
        &gw,
        &format!("{root} password=alice-S3cret channel_binding=require"),
        "SELECT 'bound'",
    );
    assert!(bound.status.success(), "{}", text(&bound));
    let plain = psql(
        &gw,
        &format!("{root} password=alice-S3cret channel_binding=disable"),
        "SELECT 'unbound'",
    );
    assert!(plain.status.success(), "{}", text(&plain));
    let wrong = psql(
        &gw,
        &format!("{root} password=nope channel_binding=require"),
        "SELECT 1",
    );
    assert!(!wrong.status.success());
    assert!(gw.stop(), "{}", gw.log());
    let auths = query_json(
        gw.archive(),
        "SELECT status, text FROM events WHERE kind = 'auth' ORDER BY ts",
    );
    assert_eq!(auths.len(), 3, "{auths:?}");
    let said = |i: usize| auths[i]["text"].as_str().unwrap().to_string();
    assert!(
        said(0).starts_with("client authenticated: scram-sha-256-plus;"),
        "{}",
        said(0)
    );
    assert!(
        said(1).starts_with("client authenticated: scram-sha-256;"),
        "{}",
        said(1)
    );
    assert_eq!(auths[2]["status"], "denied", "{auths:?}");
}

#[test]
fn a_public_listener_taking_secrets_must_require_tls() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = verifier("secret");
    let cfg = dir.path().join("tapline.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[connections]]\nname = \"prod\"\nlisten = \"0.0.0.0:6432\"\nupstream = \"postgres://app@db:5432/app\"\n\
             [connections.users]\nalice = \"{}\"\n",
            verifier
        ),
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
    let said = text(&out);
    assert!(said.contains("connections[0].tls"), "{said}");
    assert!(said.contains("tls = \"required\""), "{said}");
}

/// A client certificate's key file as libpq accepts it (no one else may read it).
fn private(issued: &Issued) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&issued.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        "sslcert={} sslkey={}",
        issued.cert.display(),
        issued.key.display()
    )
}

#[test]
fn a_client_certificate_names_the_user_and_its_groups() {
    let pg = PgServer::start();
    let ca = TestCa::new("tapline test CA");
    let cert = ca.issue("gateway", "localhost", &["localhost"], &[]);
    let alice = ca.issue("alice", "alice", &[], &[]);
    let impostor_ca = TestCa::new("someone else's CA");
    let forged = impostor_ca.issue("forged", "alice", &[], &[]);
    let extra = format!(
        "client_auth = \"cert\"\ntls_client_ca = \"{}\"\nallowed_groups = [\"dba\"]\n\
         [connections.cert_groups]\nalice = [\"dba\"]\n",
        ca.cert.display()
    );
    let mut gw = gateway_with(&pg, &cert, "required", &extra);
    let root = format!("sslmode=verify-full sslrootcert={}", ca.cert.display());

    let ok = psql(&gw, &format!("{root} {}", private(&alice)), "SELECT 'in'");
    assert!(ok.status.success(), "{}", text(&ok));
    // Alice's certificate does not make her bob.
    let as_bob = psql(
        &gw,
        &format!("{root} {} user=bob", private(&alice)),
        "SELECT 1",
    );
    assert!(!as_bob.status.success());
    assert!(
        text(&as_bob).contains("log in as `alice`"),
        "{}",
        text(&as_bob)
    );
    // No certificate, or one from another CA: the handshake itself fails.
    for ssl in [root.clone(), format!("{root} {}", private(&forged))] {
        let out = psql(&gw, &ssl, "SELECT 1");
        assert!(!out.status.success(), "{ssl}");
    }
    assert!(gw.stop(), "{}", gw.log());
    let auths = query_json(
        gw.archive(),
        "SELECT status, text FROM events WHERE kind = 'auth' ORDER BY ts",
    );
    assert_eq!(
        auths.len(),
        2,
        "handshakes that fail start no session: {auths:?}"
    );
    let first = auths[0]["text"].as_str().unwrap();
    assert!(
        first.starts_with("client authenticated: cert; user alice groups [dba] issuer CN=tapline test CA token_id sha256:"),
        "{first}"
    );
    assert_eq!(auths[1]["status"], "denied");
    let start = query_json(
        gw.archive(),
        "SELECT text FROM events WHERE kind = 'session_start' ORDER BY ts LIMIT 1",
    );
    assert!(
        start[0]["text"]
            .as_str()
            .unwrap()
            .contains("client_cert sha256:"),
        "{start:?}"
    );
}

#[test]
fn an_optional_client_certificate_is_recorded_when_sent() {
    let pg = PgServer::start();
    let ca = TestCa::new("tapline test CA");
    let cert = ca.issue("gateway", "localhost", &["localhost"], &[]);
    let alice = ca.issue("alice", "alice", &[], &[]);
    let extra = format!(
        "tls_client_ca = \"{}\"\ntls_client_cert = \"optional\"\n",
        ca.cert.display()
    );
    let mut gw = gateway_with(&pg, &cert, "required", &extra);
    let root = format!("sslmode=verify-full sslrootcert={}", ca.cert.display());
    for ssl in [format!("{root} {}", private(&alice)), root.clone()] {
        let out = psql(&gw, &ssl, "SELECT 1");
        assert!(out.status.success(), "{ssl}: {}", text(&out));
    }
    assert!(gw.stop(), "{}", gw.log());
    let starts = query_json(
        gw.archive(),
        "SELECT text FROM events WHERE kind = 'session_start' ORDER BY ts",
    );
    assert_eq!(starts.len(), 2);
    assert!(
        starts[0]["text"]
            .as_str()
            .unwrap()
            .contains("client_cert sha256:")
    );
    assert!(!starts[1]["text"].as_str().unwrap().contains("client_cert"));
    let rows = query_json(
        gw.archive(),
        "SELECT tls_client_cert FROM sessions ORDER BY start_ts",
    );
    let sent = rows[0]["tls_client_cert"].as_str().unwrap();
    let fingerprint = starts[0]["text"]
        .as_str()
        .unwrap()
        .split("client_cert ")
        .nth(1)
        .unwrap();
    assert!(
        sent.starts_with("CN=alice") && sent.ends_with(fingerprint),
        "{sent} / {fingerprint}"
    );
    assert!(rows[1]["tls_client_cert"].is_null(), "{rows:?}");
}

/// psycopg (with the libpq its wheel bundles) through the gateway with `conninfo`.
fn libpq17(conninfo: &str, sql: &str) -> (bool, serde_json::Value) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/direct_tls.py");
    let out = Command::new("python3")
        .arg(script)
        .args([conninfo, sql])
        .output()
        .expect("run python3 (scripts/test installs psycopg[binary])");
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

#[test]
fn direct_tls_of_libpq_17_needs_alpn_and_is_recorded() {
    let pg = PgServer::start();
    let ca = TestCa::new("tapline test CA");
    let cert = ca.issue("gateway", "localhost", &["localhost"], &[]);
    let mut gw = gateway(&pg, &cert, "required");
    let conninfo = format!(
        "hostaddr=127.0.0.1 host=localhost port={} user=alice dbname=postgres sslmode=verify-full sslrootcert={} sslnegotiation=direct",
        gw.port,
        ca.cert.display()
    );
    let (ok, v) = libpq17(&conninfo, "SELECT 'direct'");
    assert!(ok, "{v}\n{}", gw.log());
    assert!(v["libpq"].as_i64().unwrap() >= 170000, "{v}");
    assert_eq!(v["value"], "direct");

    // A direct handshake without the ALPN protocol is refused after it completes.
    Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", gw.port),
            "-quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        gw.wait_log(
            "must agree on the ALPN protocol",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        gw.log()
    );
    assert!(gw.stop(), "{}", gw.log());
    let starts = query_json(
        gw.archive(),
        "SELECT text FROM events WHERE kind = 'session_start'",
    );
    assert_eq!(starts.len(), 1, "{starts:?}");
    let start = starts[0]["text"].as_str().unwrap();
    assert!(start.contains("alpn postgresql"), "{start}");
}
