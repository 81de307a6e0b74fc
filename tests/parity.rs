//! Through the gateway a client sees what PostgreSQL would show it: the backend pid it
//! is given is the upstream's (a NOTIFY carries it, `pg_backend_pid()` returns it, and
//! `pg_terminate_backend` of it ends the client's own session as it does directly); a
//! database the connection does not serve is refused with 3D000; and a statement the
//! gateway refuses inside a transaction block aborts the transaction as PostgreSQL's
//! own error would, so COMMIT reports ROLLBACK and nothing of the block is kept.

mod support;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::postgres::{PgServer, UPSTREAM_PASSWORD, UPSTREAM_USER};

fn node_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/transcript.js")
}

/// node-postgres against a host and port, as `user` on `db`.
fn node(port: u16, user: &str, db: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(node_script())
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGUSER", user)
        .env("PGDATABASE", db)
        .env("PGPASSWORD", UPSTREAM_PASSWORD);
    cmd
}

fn json_line(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn gateway(pg: &PgServer, rules: &str, database: &str) -> GatewayProc {
    let config = format!(
        "{rules}\n[[connections]]\nname = \"pg\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\n{database}\n"
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

#[test]
fn the_client_is_given_the_backend_pid_that_notify_and_terminate_use() {
    let pg = PgServer::start();
    let mut gw = gateway(&pg, "", "");
    let out = node(gw.port, "alice", "postgres")
        .arg("pid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_line(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(
        v["given"], v["notify"],
        "Notify.pid is the pid the client was given: {v}"
    );
    assert_eq!(
        v["given"], v["backend"],
        "pg_backend_pid() is the pid the client was given: {v}"
    );

    // pg_terminate_backend of the given pid ends the session the same way, direct and
    // through the gateway.
    let ended = |port: u16, user: &str| -> Vec<serde_json::Value> {
        let mut child = node(port, user, "postgres")
            .arg("wait-terminate")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = json_line(&lines.next().unwrap().unwrap());
        let pid = first["given"].as_i64().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            pg.psql_direct("postgres", &format!("SELECT pg_terminate_backend({pid})")),
            "t",
            "the given pid is a real backend"
        );
        let rest: Vec<serde_json::Value> = lines.map(|l| json_line(&l.unwrap())).collect();
        let _ = child.wait();
        rest
    };
    let direct = ended(pg.port, UPSTREAM_USER);
    let through = ended(gw.port, "bob");
    assert_eq!(
        through, direct,
        "the client sees its termination as it does directly"
    );
    assert!(
        serde_json::to_string(&through).unwrap().contains("57P01"),
        "{through:?}"
    );
    assert!(gw.stop(), "{}", gw.log());
}

#[test]
fn a_database_the_connection_does_not_serve_is_refused_with_3d000() {
    let pg = PgServer::start();
    pg.psql_direct("postgres", "CREATE DATABASE second");
    pg.psql_direct("postgres", "CREATE DATABASE third");
    let mut fixed = gateway(&pg, "", "");
    let mut listed = gateway(&pg, "", "databases = [\"second\"]");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let connect = |port: u16, db: &str| {
            let conninfo = format!("host=127.0.0.1 port={port} user=carol dbname={db}");
            async move {
                match tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await {
                    Ok((client, conn)) => {
                        tokio::spawn(conn);
                        let row = client
                            .query_one("SELECT current_database()", &[])
                            .await
                            .unwrap();
                        Ok(row.get::<_, String>(0))
                    }
                    Err(e) => Err(e
                        .as_db_error()
                        .map(|d| (d.code().code().to_string(), d.message().to_string()))
                        .expect("a PostgreSQL error")),
                }
            }
        };
        assert_eq!(connect(fixed.port, "postgres").await, Ok("postgres".into()));
        let (code, message) = connect(fixed.port, "third").await.unwrap_err();
        assert_eq!(code, "3D000");
        assert!(
            message.contains("\"third\"") && message.contains("\"postgres\""),
            "names what was asked and what is served: {message}"
        );
        assert_eq!(connect(listed.port, "second").await, Ok("second".into()));
        assert_eq!(
            connect(listed.port, "postgres").await,
            Ok("postgres".into())
        );
        assert_eq!(connect(listed.port, "third").await.unwrap_err().0, "3D000");
    });
    assert!(fixed.stop());
    assert!(listed.stop());
    let ends = support::query_json(
        fixed.archive(),
        "SELECT end_reason FROM sessions ORDER BY start_ts",
    );
    assert!(
        ends.iter().any(|e| e["end_reason"] == "database_refused"),
        "the refusal is recorded: {ends:?}"
    );
}

const RULES: &str = r#"
[approvals]
timeout = "1s"

[[approvals.tokens]]
user = "olivia"
groups = ["dba-leads"]
token_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[[deny]]
name = "no-destruction"
kinds = ["drop", "truncate"]
message = "destructive statements are not allowed through tapline"

[[approve]]
name = "slow-down"
pattern = "held_for_approval"
approvers = ["dba-leads"]
"#;

#[test]
fn a_refused_statement_in_a_transaction_aborts_it_as_postgres_would() {
    let pg = PgServer::start();
    pg.psql_direct("postgres", "CREATE TABLE t (id int primary key)");
    let mut gw = gateway(&pg, RULES, "");

    // psql, simple protocol, one statement at a time: the refused statement (a deny
    // rule, an approval that timed out) aborts the block as an error of PostgreSQL's
    // would; the next statement is refused by PostgreSQL, and COMMIT says ROLLBACK.
    for (n, refused, code) in [
        (10, "DROP TABLE t", "42501"),
        (11, "TRUNCATE t", "42501"),
        (12, "SELECT 'held_for_approval'", "57014"),
    ] {
        let script =
            format!("BEGIN;\nINSERT INTO t VALUES ({n});\n{refused};\nSELECT 1;\nCOMMIT;\n");
        let out = Command::new("psql")
            .arg(gw.conninfo("dave"))
            .args([
                "-X",
                "-v",
                "ON_ERROR_STOP=0",
                "-v",
                "VERBOSITY=verbose",
                "-f",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(script.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(code), "{refused}: {stderr}");
        assert!(
            stderr.contains("25P02") && stderr.contains("current transaction is aborted"),
            "{refused}: the next statement is refused as PostgreSQL refuses it: {stderr}"
        );
        assert!(
            stdout.contains("ROLLBACK"),
            "{refused}: COMMIT reports ROLLBACK: {stdout}"
        );
        assert_eq!(
            pg.psql_direct(
                "postgres",
                &format!("SELECT count(*) FROM t WHERE id = {n}")
            ),
            "0",
            "{refused}: nothing of the block is kept"
        );
    }

    // tokio-postgres, extended protocol and pipelined.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut client, conn) =
            tokio_postgres::connect(&gw.conninfo("erin"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        let tx = client.transaction().await.unwrap();
        tx.execute("INSERT INTO t VALUES (20)", &[]).await.unwrap();
        let err = tx.execute("DROP TABLE t", &[]).await.unwrap_err();
        assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
        let next = tx.execute("SELECT 1", &[]).await.unwrap_err();
        assert_eq!(next.as_db_error().unwrap().code().code(), "25P02");
        tx.commit().await.unwrap();

        // Pipelined: the INSERT and the SELECT are prepared first, so the three go out
        // as Bind/Execute, Parse (refused), Bind/Execute before any answer comes back.
        let tx = client.transaction().await.unwrap();
        let insert = tx.prepare("INSERT INTO t VALUES (21)").await.unwrap();
        let count = tx.prepare("SELECT count(*) FROM t").await.unwrap();
        let (a, b, c) = tokio::join!(
            tx.execute(&insert, &[]),
            tx.execute("TRUNCATE t", &[]),
            tx.query(&count, &[]),
        );
        assert!(a.is_ok(), "{a:?}");
        assert_eq!(b.unwrap_err().as_db_error().unwrap().code().code(), "42501");
        assert_eq!(c.unwrap_err().as_db_error().unwrap().code().code(), "25P02");
        tx.commit().await.unwrap();
        let rows = client
            .query("SELECT id FROM t ORDER BY id", &[])
            .await
            .unwrap();
        assert!(rows.is_empty(), "nothing of the blocks is kept: {rows:?}");
    });
    assert!(gw.stop(), "{}", gw.log());
    let rows = support::query_json(
        gw.archive(),
        "SELECT command, status, sqlstate FROM commands WHERE status IN ('blocked', 'denied') ORDER BY ts",
    );
    assert!(rows.len() >= 5, "every refusal is recorded: {rows:?}");
}
