//! Just-in-time approval against a real PostgreSQL through the gateway, driven from
//! the CLI (`tapline approvals`, `approve`, `deny`) against the live admin API:
//! approve, deny, timeout, self-approval refused, an approver outside the approver
//! groups refused, and a session-scoped approval. The server's state shows that a
//! held statement ran only once approved, and the archive records every hold and
//! every decision with the approver and the reason.

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::oidc::{oidc_section, token};
use support::postgres::PgServer;
use support::{free_port, query_json, tapline_bin};

const OLIVIA: &str = "olivia-approver-token-0001";
const MALLORY: &str = "mallory-developer-token-02";
const AGENT_ADMIN: &str = "agent7-admin-token-000003";

fn start(pg: &PgServer, admin_port: u16) -> GatewayProc {
    let config = format!(
        r#"
[approvals]
listen = "127.0.0.1:{admin_port}"

[[approvals.tokens]]
user = "olivia"
groups = ["dba-leads"]
token_env = "TAPLINE_TEST_OLIVIA"

{approvals_oidc}

[[approvals.tokens]]
user = "mallory"
groups = ["devs"]
token_env = "TAPLINE_TEST_MALLORY"

[[approvals.tokens]]
user = "agent-7"
groups = ["dba-leads"]
token_env = "TAPLINE_TEST_AGENT_ADMIN"

[[approve]]
name = "writes"
pattern = "(?i)^\\s*update\\b"
groups = ["agents"]
approvers = ["dba-leads"]
message = "updates by agents need a DBA's approval"

[[approve]]
name = "deletes"
pattern = "(?i)^\\s*delete\\b"
approvers = ["dba-leads"]
timeout = "2s"

[[approve]]
name = "inserts"
pattern = "(?i)^\\s*insert\\b"
approvers = ["dba-leads"]
scope = "session"

[[connections]]
name = "orders"
listen = "127.0.0.1:{{port}}"
upstream = "{{upstream}}"
upstream_password_env = "{PASSWORD_ENV}"
client_auth = "oidc"
{}"#,
        oidc_section(),
        approvals_oidc = oidc_section().replace("[connections.oidc]", "[approvals.oidc]"),
    );
    GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("shop"),
            flush_interval: "1s",
            env: vec![
                ("TAPLINE_TEST_OLIVIA".into(), OLIVIA.into()),
                ("TAPLINE_TEST_MALLORY".into(), MALLORY.into()),
                ("TAPLINE_TEST_AGENT_ADMIN".into(), AGENT_ADMIN.into()),
            ],
            ..Default::default()
        },
        &config,
    )
}

struct Admin {
    url: String,
}

impl Admin {
    fn run(&self, token: &str, args: &[&str]) -> Output {
        Command::new(tapline_bin())
            .args(args)
            .env("TAPLINE_ADMIN_URL", &self.url)
            .env("TAPLINE_ADMIN_TOKEN", token)
            .output()
            .expect("run tapline")
    }

    /// The pending holds, as `tapline approvals --json` lists them.
    fn holds(&self) -> Vec<serde_json::Value> {
        let out = self.run(OLIVIA, &["approvals", "--json"]);
        assert!(
            out.status.success(),
            "tapline approvals: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .expect("JSON")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits for exactly one hold and returns it.
    fn one_hold(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let holds = self.holds();
            if holds.len() == 1 {
                return holds[0].clone();
            }
            assert!(holds.len() < 2, "more than one hold: {holds:#?}");
            assert!(Instant::now() < deadline, "no statement was held");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn decide(&self, token: &str, args: &[&str]) -> (bool, String) {
        let out = self.run(token, args);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

async fn login(port: u16) -> tokio_postgres::Client {
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=x dbname=shop password={} connect_timeout=20",
        token("agent-7", &["agents"])
    );
    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .expect("login through the gateway");
    tokio::spawn(conn);
    client
}

#[test]
fn held_statements_wait_for_a_person_and_every_decision_is_recorded() {
    let pg = PgServer::start();
    pg.psql_direct("postgres", "CREATE DATABASE shop");
    pg.psql_direct(
        "shop",
        "CREATE TABLE orders (id int PRIMARY KEY, total int); INSERT INTO orders VALUES (1, 10), (2, 20);",
    );
    let admin_port = free_port();
    let mut gw = start(&pg, admin_port);
    let admin = Admin {
        url: format!("http://127.0.0.1:{admin_port}"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = std::sync::Arc::new(rt.block_on(login(gw.port)));
    let total =
        |id: i32| pg.psql_direct("shop", &format!("SELECT total FROM orders WHERE id = {id}"));

    // 1. Approve (extended protocol: held at Execute). Self-approval and an approver
    //    outside the approver groups are refused first.
    let c = client.clone();
    let update = rt.spawn(async move {
        c.execute("UPDATE orders SET total = 11 WHERE id = 1", &[])
            .await
    });
    let hold = admin.one_hold();
    let id = hold["id"].as_str().unwrap().to_string();
    assert_eq!(hold["user"], "agent-7");
    assert_eq!(hold["connection"], "orders");
    assert_eq!(hold["rule"], "writes");
    assert!(
        hold["statement"]
            .as_str()
            .unwrap()
            .contains("UPDATE orders SET total = 11"),
        "{hold}"
    );
    assert_eq!(total(1), "10", "a held statement has not run");
    let table = admin.run(OLIVIA, &["approvals"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("STATEMENT") && table.contains(&id) && table.contains("agent-7"),
        "{table}"
    );
    let (ok, out) = admin.decide(AGENT_ADMIN, &["approve", &id]);
    assert!(!ok && out.contains("own statement"), "{out}");
    let (ok, out) = admin.decide(MALLORY, &["approve", &id, "--reason", "lgtm"]);
    assert!(!ok && out.contains("not in the approver groups"), "{out}");
    let (ok, out) = admin.decide("not-a-known-token-at-all", &["approve", &id]);
    assert!(!ok && out.contains("401"), "{out}");
    assert_eq!(admin.holds().len(), 1, "refused decisions leave the hold");
    let (ok, out) = admin.decide(OLIVIA, &["approve", &id, "--reason", "ticket 42"]);
    assert!(ok, "{out}");
    let rows = rt
        .block_on(update)
        .unwrap()
        .expect("the approved UPDATE ran");
    assert_eq!(rows, 1);
    assert_eq!(total(1), "11");

    // 2. Deny (simple protocol: held at Query); the session goes on.
    let c = client.clone();
    let update = rt.spawn(async move {
        c.simple_query("UPDATE orders SET total = 99 WHERE id = 2")
            .await
    });
    let id = admin.one_hold()["id"].as_str().unwrap().to_string();
    // This approver signs in with an OIDC token instead of a configured one.
    let dora = token("dora", &["dba-leads"]);
    let (ok, out) = admin.decide(&dora, &["deny", &id, "--reason", "not during the freeze"]);
    assert!(ok, "{out}");
    let err = rt.block_on(update).unwrap().unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42501");
    assert!(
        db.message()
            .contains("updates by agents need a DBA's approval")
            && db.message().contains("not during the freeze"),
        "{}",
        db.message()
    );
    assert_eq!(total(2), "20", "a denied statement never ran");
    let one = rt.block_on(client.query_one("SELECT 1::int", &[])).unwrap();
    assert_eq!(
        one.get::<_, i32>(0),
        1,
        "the session goes on after a denial"
    );

    // 3. Timeout (this rule waits 2 s).
    let err = rt
        .block_on(client.execute("DELETE FROM orders WHERE id = 2", &[]))
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    let message = err
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("nobody decided within 2s"), "{message}");
    assert_eq!(total(2), "20", "a timed-out statement never ran");
    assert!(
        admin.holds().is_empty(),
        "the hold is gone after its timeout"
    );

    // 3b. The client cancels (a CancelRequest, as psql's Ctrl-C sends): the held
    //     statement is refused at once.
    let c = client.clone();
    let update = rt.spawn(async move {
        c.simple_query("UPDATE orders SET total = 77 WHERE id = 2")
            .await
    });
    admin.one_hold();
    let cancel = client.cancel_token();
    rt.block_on(cancel.cancel_query(tokio_postgres::NoTls))
        .expect("the cancel request is accepted");
    let err = rt.block_on(update).unwrap().unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    assert!(admin.holds().is_empty(), "a cancel ends the hold");
    assert_eq!(total(2), "20", "a cancelled statement never ran");

    // 4. A session-scoped approval covers the same statement shape afterwards; a
    //    one-time approval does not.
    let c = client.clone();
    let insert = rt.spawn(async move { c.execute("INSERT INTO orders VALUES (3, 30)", &[]).await });
    let id = admin.one_hold()["id"].as_str().unwrap().to_string();
    let (ok, out) = admin.decide(OLIVIA, &["approve", &id, "--reason", "backfill"]);
    assert!(ok, "{out}");
    rt.block_on(insert).unwrap().unwrap();
    let again = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(20),
            client.execute("INSERT INTO orders VALUES (4, 40)", &[]),
        )
        .await
    });
    assert_eq!(again.expect("the same shape is not held again").unwrap(), 1);
    let c = client.clone();
    let update = rt.spawn(async move {
        c.execute("UPDATE orders SET total = 12 WHERE id = 1", &[])
            .await
    });
    let id = admin.one_hold()["id"].as_str().unwrap().to_string();
    let (ok, out) = admin.decide(OLIVIA, &["approve", &id, "--scope", "onetime"]);
    assert!(ok, "{out}");
    rt.block_on(update).unwrap().unwrap();
    assert_eq!(total(1), "12");
    assert_eq!(total(4), "40");
    drop(client);
    drop(rt);
    assert!(gw.stop());

    // The archive: each hold, each decision with who and why, and the outcome.
    let held = query_json(
        gw.archive(),
        "SELECT command, text FROM events WHERE kind = 'query' AND status = 'held' ORDER BY seq",
    );
    assert_eq!(held.len(), 6, "{held:#?}");
    assert!(
        held[0]["text"]
            .as_str()
            .unwrap()
            .contains("held for approval by rule `writes`")
    );
    let decisions = query_json(
        gw.archive(),
        "SELECT status, text FROM events WHERE kind = 'policy' ORDER BY seq",
    );
    let texts: Vec<(String, String)> = decisions
        .iter()
        .map(|d| {
            (
                d["status"].as_str().unwrap().to_string(),
                d["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(texts.len(), 6, "{texts:#?}");
    assert_eq!(texts[0].0, "approved");
    assert!(
        texts[0].1.contains("by olivia")
            && texts[0].1.contains("ticket 42")
            && texts[0].1.contains("scope onetime"),
        "{texts:#?}"
    );
    assert_eq!(texts[1].0, "denied");
    assert!(
        texts[1].1.contains("not during the freeze")
            && texts[1].1.contains("by dora")
            && texts[1].1.contains("via oidc"),
        "{texts:#?}"
    );
    assert!(texts[2].1.contains("timed out"), "{texts:#?}");
    assert!(
        texts[3].1.contains("cancelled") && texts[3].1.contains("client cancelled"),
        "{texts:#?}"
    );
    assert!(texts[4].1.contains("scope session"), "{texts:#?}");
    let commands = query_json(
        gw.archive(),
        "SELECT command, status, sqlstate FROM commands WHERE command NOT LIKE 'SELECT%' ORDER BY seq",
    );
    let statuses: Vec<(String, String)> = commands
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                c["sqlstate"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("approved".to_string(), String::new()),
            ("denied".to_string(), "42501".to_string()),
            ("denied".to_string(), "57014".to_string()),
            ("denied".to_string(), "57014".to_string()),
            ("approved".to_string(), String::new()),
            ("ok".to_string(), String::new()),
            ("approved".to_string(), String::new()),
        ],
        "{commands:#?}"
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with the openssl CLI.
fn tls_files(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tapline test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "admin.key",
        "-out",
        "admin.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "admin.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "admin.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("admin.pem"),
        dir.join("admin.key"),
    )
}

#[test]
fn the_admin_api_speaks_tls_when_configured() {
    let pg = PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path());
    let admin_port = free_port();
    let config = format!(
        "[approvals]\nlisten = \"127.0.0.1:{admin_port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n\
         [[approvals.tokens]]\nuser = \"olivia\"\ngroups = [\"dba-leads\"]\ntoken_env = \"TAPLINE_TEST_OLIVIA\"\n\n\
         [[approve]]\nname = \"writes\"\npattern = \"(?i)^\\\\s*update\\\\b\"\napprovers = [\"dba-leads\"]\n\n\
         [[connections]]\nname = \"orders\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\n",
        cert.display(),
        key.display()
    );
    let mut gw = GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("postgres"),
            flush_interval: "1s",
            env: vec![("TAPLINE_TEST_OLIVIA".into(), OLIVIA.into())],
            ..Default::default()
        },
        &config,
    );
    let https = Admin {
        url: format!("https://127.0.0.1:{admin_port}"),
    };
    let ca = ca.to_str().unwrap();
    let out = https.run(OLIVIA, &["approvals", "--ca-cert", ca]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no statement is waiting"));
    // Without the CA the certificate is not trusted, and plain HTTP gets no answer.
    let out = https.run(OLIVIA, &["approvals"]);
    assert!(!out.status.success());
    let plain = Admin {
        url: format!("http://127.0.0.1:{admin_port}"),
    };
    assert!(!plain.run(OLIVIA, &["approvals"]).status.success());
    assert!(gw.stop());
}
