//! End to end through the gateway against a real PostgreSQL, with real clients:
//! psql, tokio-postgres and pgbench. Every assertion reads the archive back through
//! `tapline query`, `tapline sessions` and `tapline verify`, as a user would.

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::{PgServer, UPSTREAM_PASSWORD};
use support::{eventually, query_json, tapline};

fn gateway(pg: &PgServer, flush: &'static str) -> GatewayProc {
    GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: flush,
        extra: Vec::new(),
        ..Default::default()
    })
}

fn psql(gw: &GatewayProc, user: &str, input: &str) -> std::process::Output {
    let mut child = Command::new("psql")
        .arg(gw.conninfo(user))
        .args(["-X", "-v", "ON_ERROR_STOP=0", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn command_row(archive: &std::path::Path, like: &str) -> serde_json::Value {
    let rows = query_json(
        archive,
        &format!("SELECT * FROM commands WHERE command LIKE '{like}' ORDER BY ts"),
    );
    assert!(!rows.is_empty(), "no command like {like}");
    rows[0].clone()
}

fn verify_ok(gw: &GatewayProc) -> String {
    let out = tapline(
        gw.archive(),
        &["verify", "--pubkey", gw.pubkey().to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "verify failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn a_psql_session_is_recorded_command_by_command_and_verifies() {
    let pg = PgServer::start();
    pg.psql_direct(
        "postgres",
        "CREATE TABLE items(id int primary key, name text); INSERT INTO items VALUES (1,'alice'),(2,'bob'),(3,NULL);",
    );
    let mut gw = gateway(&pg, "1s");
    let dir = tempfile::tempdir().unwrap();
    let copy_out = dir.path().join("out.tsv");
    let copy_in = dir.path().join("in.tsv");
    std::fs::write(&copy_in, "10\tcarol\n11\tdave\n").unwrap();
    let script = format!(
        "SELECT id, name FROM items ORDER BY id;\n\
         SELECT * FROM no_such_table;\n\
         \\copy items TO '{}'\n\
         \\copy items FROM '{}'\n\
         SELECT count(*) AS n FROM items;\n\
         DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$;\n\
         LISTEN audit_channel;\n\
         NOTIFY audit_channel, 'row changed';\n",
        copy_out.display(),
        copy_in.display()
    );
    let out = psql(&gw, "alice", &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("alice"), "psql output: {stdout}\n{stderr}");
    assert!(stderr.contains("no_such_table"), "{stderr}");
    assert!(stderr.contains("hello from plpgsql"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&copy_out).unwrap(),
        "1\talice\n2\tbob\n3\t\\N\n"
    );
    assert_eq!(
        pg.psql_direct("postgres", "SELECT count(*) FROM items"),
        "5"
    );
    assert!(gw.stop(), "gateway did not exit cleanly:\n{}", gw.log());

    let select = command_row(gw.archive(), "SELECT id, name FROM items%");
    assert_eq!(select["user"], "alice");
    assert_eq!(select["status"], "ok");
    assert_eq!(select["row_count"], 3);
    assert_eq!(select["result_text"], "id\tname\n1\talice\n2\tbob\n3\tNULL");
    assert!(select["duration_us"].as_u64().is_some());

    let err = command_row(gw.archive(), "SELECT * FROM no_such_table%");
    assert_eq!(err["status"], "error");
    assert_eq!(err["sqlstate"], "42P01");
    assert_eq!(
        err["error_message"],
        "relation \"no_such_table\" does not exist"
    );

    let copy_to = command_row(gw.archive(), "COPY%items%TO STDOUT%");
    assert_eq!(copy_to["row_count"], 3);
    assert!(copy_to["result_text"].as_str().unwrap().contains("2\tbob"));
    let copy_from = command_row(gw.archive(), "COPY%items%FROM STDIN%");
    assert_eq!(copy_from["row_count"], 2);
    let input = query_json(gw.archive(), "SELECT text FROM events WHERE kind = 'input'");
    assert_eq!(input.len(), 1);
    assert!(input[0]["text"].as_str().unwrap().contains("11\tdave"));

    let count = command_row(gw.archive(), "SELECT count(*) AS n FROM items%");
    assert_eq!(count["result_text"], "n\n5");
    let notice = command_row(gw.archive(), "DO $$%");
    assert!(
        notice["result_text"]
            .as_str()
            .unwrap()
            .contains("NOTICE: 00000 NOTICE: hello from plpgsql")
    );

    let notify = query_json(
        gw.archive(),
        "SELECT text FROM events WHERE kind = 'output' AND text LIKE 'NOTIFY%'",
    );
    assert_eq!(notify.len(), 1);
    assert!(
        notify[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("NOTIFY audit_channel: row changed")
    );

    let sessions = tapline(gw.archive(), &["sessions", "--format", "json"]);
    assert!(sessions.status.success());
    let sessions: serde_json::Value = serde_json::from_slice(&sessions.stdout).unwrap();
    let s = &sessions.as_array().unwrap()[0];
    assert_eq!(s["user"], "alice");
    assert_eq!(s["connection"], "pg-test");
    assert_eq!(s["commands"], 8);
    assert_eq!(s["errors"], 1);
    assert_eq!(s["end_reason"], "client_closed");
    assert_eq!(s["state"], "ended");

    let filtered = tapline(
        gw.archive(),
        &["sessions", "--contains", "NO_SUCH_TABLE", "--format", "csv"],
    );
    assert_eq!(String::from_utf8_lossy(&filtered.stdout).lines().count(), 2);
    let none = tapline(
        gw.archive(),
        &["sessions", "--user", "mallory", "--format", "csv"],
    );
    assert!(String::from_utf8_lossy(&none.stdout).lines().count() <= 1);

    let report = verify_ok(&gw);
    assert!(report.contains("sealed at end (client_closed)"), "{report}");

    // The upstream password the gateway holds never enters the archive.
    let hex_pw: String = UPSTREAM_PASSWORD
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let leaks = query_json(
        gw.archive(),
        &format!(
            "SELECT count(*) AS n FROM events WHERE strpos(encode(payload, 'hex'), '{hex_pw}') > 0 \
             OR strpos(coalesce(text, ''), '{UPSTREAM_PASSWORD}') > 0 OR strpos(coalesce(command, ''), '{UPSTREAM_PASSWORD}') > 0"
        ),
    );
    assert_eq!(leaks[0]["n"], 0);

    let bad = tapline(gw.archive(), &["query", "SELEC nonsense"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("error"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(gw: &GatewayProc, user: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&gw.conninfo(user), tokio_postgres::NoTls)
        .await
        .expect("connect through the gateway");
    tokio::spawn(conn);
    client
}

#[test]
fn tokio_postgres_simple_extended_pipelined_and_cancelled_queries_are_recorded() {
    let pg = PgServer::start();
    let mut gw = gateway(&pg, "1s");
    runtime().block_on(async {
        let client = connect(&gw, "bob").await;
        client
            .simple_query("CREATE TABLE t(id int, label text)")
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO t VALUES ($1, $2), ($3, $4)",
                &[&1i32, &"one", &2i32, &"it's two"],
            )
            .await
            .unwrap();
        let rows = client
            .query(
                "SELECT id, label FROM t WHERE id >= $1 ORDER BY id",
                &[&1i32],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);

        // Pipelined: three queries in flight on one connection at once.
        let s1 = client.prepare("SELECT $1::int + 1 AS next").await.unwrap();
        let (a, b, c) = tokio::join!(
            client.query_one(&s1, &[&10i32]),
            client.query_one(&s1, &[&20i32]),
            client.query("SELECT label FROM t ORDER BY id", &[]),
        );
        assert_eq!(a.unwrap().get::<_, i32>(0), 11);
        assert_eq!(b.unwrap().get::<_, i32>(0), 21);
        assert_eq!(c.unwrap().len(), 2);

        // An error in the extended protocol, and the session goes on.
        let err = client
            .query("SELECT * FROM missing_table", &[])
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42P01");
        let err = client
            .query("SELECT 1/$1::int", &[&0i32])
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "22012");

        // A client cancel travels through the gateway's key mapping.
        let token = client.cancel_token();
        let sleeper = tokio::spawn(async move {
            let r = client.simple_query("SELECT pg_sleep(30)").await;
            (client, r)
        });
        // Cancel until the sleeper returns: a cancel that arrives before the query
        // starts running is ignored by PostgreSQL, as it should be.
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if sleeper.is_finished() {
                break;
            }
            token
                .cancel_query(tokio_postgres::NoTls)
                .await
                .expect("cancel");
        }
        let (client, r) = tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.unwrap_err().code().unwrap().code(), "57014");

        // Live sessions become visible within a flush interval.
        client
            .simple_query("SELECT 'still here' AS marker")
            .await
            .unwrap();
        let gw_archive = gw.archive().to_path_buf();
        let seen = tokio::task::spawn_blocking(move || {
            eventually(Duration::from_secs(15), || {
                let rows = query_json(
                    &gw_archive,
                    "SELECT count(*) AS n FROM commands WHERE command LIKE '%still here%'",
                );
                (rows[0]["n"] == 1).then_some(())
            })
        })
        .await
        .unwrap();
        assert!(
            seen.is_some(),
            "a live session's command did not become visible"
        );
        let live = query_json(
            gw.archive(),
            "SELECT state FROM sessions WHERE \"user\" = 'bob'",
        );
        assert_eq!(live[0]["state"], "live");
        drop(client);
    });
    assert!(gw.stop());

    let insert = command_row(gw.archive(), "INSERT INTO t VALUES%");
    assert_eq!(insert["row_count"], 2);
    let cmd = insert["command"].as_str().unwrap();
    assert!(
        cmd.contains("-- params: $1 = 1, $2 = 'one', $3 = 2, $4 = 'it''s two'"),
        "{cmd}"
    );
    let select = command_row(gw.archive(), "SELECT id, label FROM t WHERE%");
    assert_eq!(select["row_count"], 2);
    assert_eq!(select["result_text"], "1\tone\n2\tit's two");
    let pipelined = query_json(
        gw.archive(),
        "SELECT command, result_text FROM commands WHERE command LIKE 'SELECT $1::int + 1%' ORDER BY seq",
    );
    assert_eq!(pipelined.len(), 2);
    assert!(
        pipelined[0]["command"]
            .as_str()
            .unwrap()
            .ends_with("$1 = 10")
    );
    assert_eq!(pipelined[0]["result_text"], "11");
    assert_eq!(pipelined[1]["result_text"], "21");
    let missing = command_row(gw.archive(), "SELECT * FROM missing_table%");
    assert_eq!(missing["sqlstate"], "42P01");
    let div = command_row(gw.archive(), "SELECT 1/$1::int%");
    assert_eq!(div["sqlstate"], "22012");
    let cancelled = command_row(gw.archive(), "SELECT pg_sleep(30)%");
    assert_eq!(cancelled["sqlstate"], "57014");
    assert_eq!(cancelled["status"], "error");
    verify_ok(&gw);
}

#[test]
fn twenty_concurrent_sessions_and_pgbench_are_all_recorded() {
    let pg = PgServer::start();
    let init = Command::new("pgbench")
        .args(["-i", "-s", "1", "-q"])
        .arg(pg.direct_conninfo("postgres"))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut gw = gateway(&pg, "1s");
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for i in 0..20 {
            let conninfo = gw.conninfo(&format!("agent{i:02}"));
            tasks.push(tokio::spawn(async move {
                let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                for j in 0..10 {
                    let row = client
                        .query_one("SELECT $1::int * 2", &[&{ j }])
                        .await
                        .unwrap();
                    assert_eq!(row.get::<_, i32>(0), j * 2);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let bench = Command::new("pgbench")
        .args(["-S", "-c", "4", "-j", "2", "-T", "3", "-n"])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &gw.port.to_string(),
            "-U",
            "bencher",
            "postgres",
        ])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&bench.stdout).to_string();
    assert!(
        bench.status.success(),
        "pgbench: {report}\n{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let processed: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|n| n.split('/').next())
        .and_then(|n| n.trim().parse().ok())
        .expect("pgbench reports its transactions");
    assert!(gw.stop());

    let agents = query_json(
        gw.archive(),
        "SELECT \"user\", commands, state FROM sessions WHERE \"user\" LIKE 'agent%' ORDER BY \"user\"",
    );
    assert_eq!(agents.len(), 20);
    assert!(
        agents
            .iter()
            .all(|a| a["commands"] == 10 && a["state"] == "ended")
    );
    let doubled = query_json(
        gw.archive(),
        "SELECT count(*) AS n, sum(CAST(result_text AS INT)) AS total FROM commands WHERE command LIKE 'SELECT $1::int * 2%'",
    );
    assert_eq!(doubled[0]["n"], 200);
    assert_eq!(
        doubled[0]["total"],
        20 * (0..10).map(|j| j * 2).sum::<i64>()
    );
    let selects = query_json(
        gw.archive(),
        "SELECT count(*) AS n FROM commands WHERE \"user\" = 'bencher' AND command LIKE 'SELECT abalance FROM pgbench_accounts%' AND status = 'ok' AND row_count = 1",
    );
    assert_eq!(
        selects[0]["n"], processed,
        "every pgbench transaction is in the archive"
    );
    verify_ok(&gw);
}

/// Reads until ReadyForQuery ('Z', length 5) appears.
fn read_until_ready(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(6).any(|w| w == b"Z\0\0\0\x05I") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before ReadyForQuery: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

fn read_to_end(s: &mut std::net::TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn malformed_and_oversized_messages_close_only_their_own_session() {
    let pg = PgServer::start();
    let mut gw = gateway(&pg, "1s");
    runtime().block_on(async {
        let healthy = connect(&gw, "carol").await;
        healthy.simple_query("SELECT 1").await.unwrap();

        let port = gw.port;
        let (malformed, oversized) = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(&support::startup_packet("mallory", "postgres"))
                .unwrap();
            read_until_ready(&mut s);
            s.write_all(b"Q\0\0\0\x02").unwrap();
            let malformed = read_to_end(&mut s);

            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(&support::startup_packet("mallory", "postgres"))
                .unwrap();
            read_until_ready(&mut s);
            s.write_all(b"Q\x7f\0\0\0select").unwrap();
            let oversized = read_to_end(&mut s);
            (malformed, oversized)
        })
        .await
        .unwrap();
        let malformed = String::from_utf8_lossy(&malformed);
        assert!(malformed.starts_with('E'), "{malformed}");
        assert!(
            malformed.contains("08P01") && malformed.contains("length 2"),
            "{malformed}"
        );
        let oversized = String::from_utf8_lossy(&oversized);
        assert!(oversized.contains("max_message_bytes"), "{oversized}");

        let rows = healthy
            .simple_query("SELECT 'still serving'")
            .await
            .unwrap();
        assert!(!rows.is_empty());
    });
    assert!(gw.stop());
    let ends = query_json(
        gw.archive(),
        "SELECT end_reason FROM sessions WHERE \"user\" = 'mallory' ORDER BY start_ts",
    );
    assert_eq!(ends.len(), 2);
    for end in &ends {
        let reason = end["end_reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("protocol_error: client"), "{ends:?}");
    }
    verify_ok(&gw);
}

#[test]
fn an_unreachable_upstream_gets_a_postgres_error_naming_the_connection() {
    let closed = support::free_port();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: format!("postgres://app@127.0.0.1:{closed}/postgres"),
        flush_interval: "1s",
        extra: Vec::new(),
        ..Default::default()
    });
    runtime().block_on(async {
        let err = tokio_postgres::connect(&gw.conninfo("dave"), tokio_postgres::NoTls)
            .await
            .err()
            .expect("the connection must be refused");
        let db = err
            .as_db_error()
            .expect("a PostgreSQL ErrorResponse, not a dropped socket");
        assert_eq!(db.code().code(), "08006");
        assert!(db.message().contains("pg-test"), "{}", db.message());
        assert!(db.message().contains("cannot reach"), "{}", db.message());
    });
    assert!(gw.stop());
    let ends = query_json(gw.archive(), "SELECT end_reason FROM sessions");
    assert_eq!(ends[0]["end_reason"], "upstream_unavailable");
}

#[test]
fn sigterm_refuses_new_connections_and_seals_live_sessions() {
    let pg = PgServer::start();
    let mut gw = gateway(&pg, "30s");
    let port = gw.port;
    runtime().block_on(async {
        let client = connect(&gw, "erin").await;
        client.simple_query("SELECT 42").await.unwrap();
        let _ = Command::new("kill").args(["-TERM", &gw_pid(&gw)]).status();
        let mut refused = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                refused = true;
                break;
            }
        }
        assert!(
            refused,
            "a draining gateway must not accept new connections"
        );
        // The live session keeps working during the grace period…
        client.simple_query("SELECT 43").await.unwrap();
        // …and is closed with a FATAL when the grace period ends.
        for _ in 0..100 {
            if client.is_closed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            client.is_closed(),
            "the session was not closed after the grace period"
        );
    });
    assert!(
        gw.stop(),
        "the gateway must exit 0 after a graceful shutdown:\n{}",
        gw.log()
    );
    let s = query_json(
        gw.archive(),
        "SELECT end_reason, commands, state FROM sessions",
    );
    assert_eq!(s[0]["end_reason"], "shutdown", "gateway log:\n{}", gw.log());
    assert_eq!(s[0]["commands"], 2);
    assert_eq!(s[0]["state"], "ended");
    verify_ok(&gw);
}

fn gw_pid(gw: &GatewayProc) -> String {
    gw.pid().to_string()
}

#[test]
fn the_gateway_logs_in_upstream_with_scram_md5_or_cleartext() {
    for method in ["md5", "password", "scram-sha-256"] {
        let pg = PgServer::start_with_auth(method);
        let mut gw = gateway(&pg, "1s");
        let out = psql(&gw, "frank", "SELECT current_user AS upstream_user;\n");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(support::postgres::UPSTREAM_USER),
            "{method}: {stdout}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            gw.log()
        );
        assert!(gw.stop());
    }
}

#[test]
fn client_secrets_are_checked_with_scram_and_refusals_are_recorded() {
    let pg = PgServer::start();
    let verifier = support::psql::scram_verifier("grace-secret\n");
    let config = format!(
        "[[connections]]\nname = \"pg-secure\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{}\"\nclient_auth = \"secret\"\n[connections.users]\ngrace = \"{verifier}\"\n",
        support::gateway::PASSWORD_ENV
    );
    let mut gw = GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("postgres"),
            flush_interval: "1s",
            extra: Vec::new(),
            ..Default::default()
        },
        &config,
    );
    runtime().block_on(async {
        let ok = format!("{} password=grace-secret", gw.conninfo("grace"));
        let (client, conn) = tokio_postgres::connect(&ok, tokio_postgres::NoTls)
            .await
            .expect("right secret");
        tokio::spawn(conn);
        client.simple_query("SELECT 1").await.unwrap();
        for (user, password) in [("grace", "wrong"), ("nobody", "grace-secret")] {
            let bad = format!("{} password={password}", gw.conninfo(user));
            let err = tokio_postgres::connect(&bad, tokio_postgres::NoTls)
                .await
                .err()
                .expect("refused");
            assert_eq!(
                err.as_db_error().expect("an ErrorResponse").code().code(),
                "28P01",
                "{user}"
            );
        }
    });
    assert!(gw.stop());
    let auth = query_json(
        gw.archive(),
        "SELECT \"user\", status, text FROM events WHERE kind = 'auth' ORDER BY ts",
    );
    assert_eq!(auth.len(), 3);
    assert_eq!(
        auth[0]["text"],
        "client authenticated: scram-sha-256; user grace"
    );
    assert_eq!(auth[1]["status"], "denied");
    assert_eq!(
        auth[1]["text"],
        "client authentication refused: wrong secret"
    );
    assert_eq!(auth[2]["user"], "nobody");
    assert_eq!(auth[2]["status"], "denied");
    let secrets = query_json(
        gw.archive(),
        "SELECT count(*) AS n FROM events WHERE strpos(encode(payload, 'hex'), encode(CAST('grace-secret' AS BYTEA), 'hex')) > 0",
    );
    assert_eq!(
        secrets[0]["n"], 0,
        "a client secret never enters the archive"
    );
}
