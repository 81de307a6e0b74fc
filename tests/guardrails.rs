//! Deny rules in the data path, against a real PostgreSQL through the gateway with real
//! clients: every statement kind, a table list, a pattern, a multi-statement string,
//! prepared statements (protocol-level and SQL PREPARE), pipelined queries, and
//! unparseable SQL refused for agents only. A refused statement never reaches the
//! upstream (its effects are checked directly on the server), the client gets 42501
//! with the rule's message, the session carries on, and the archive records it as
//! blocked with the rule's name.

mod support;

use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::oidc::{oidc_section, token};
use support::postgres::PgServer;
use support::query_json;

fn start(pg: &PgServer) -> GatewayProc {
    let config = format!(
        "[policy]\nunparseable_sql = \"open\"\nunparseable_closed_groups = [\"agents\"]\n\n\
         [[deny]]\nname = \"no-destruction\"\nkinds = [\"drop\", \"truncate\", \"alter_role\", \"grant\", \"copy_program\", \"delete_without_where\", \"update_without_where\"]\n\
         message = \"destructive statements are not allowed through tapline; ask a DBA\"\n\n\
         [[deny]]\nname = \"payroll\"\ntables = [\"payroll\"]\nmessage = \"payroll is off limits\"\n\n\
         [[deny]]\nname = \"no-sleep\"\npattern = \"(?i)pg_sleep\"\nconnections = [\"orders\"]\nmessage = \"no sleeping on the primary\"\n\n\
         [[connections]]\nname = \"orders\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\nclient_auth = \"oidc\"\n{}",
        oidc_section()
    );
    GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("shop"),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    )
}

async fn login(port: u16, token: &str) -> tokio_postgres::Client {
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=x dbname=shop password={token} connect_timeout=20"
    );
    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .expect("login through the gateway");
    tokio::spawn(conn);
    client
}

/// Runs `sql` and returns the SQLSTATE and message it was refused with.
async fn refused(client: &tokio_postgres::Client, sql: &str) -> (String, String) {
    let Err(e) = client.simple_query(sql).await else {
        panic!("`{sql}` was not refused");
    };
    let db = e.as_db_error().unwrap_or_else(|| panic!("`{sql}`: {e}"));
    (db.code().code().to_string(), db.message().to_string())
}

#[test]
fn deny_rules_refuse_before_the_upstream_and_the_session_goes_on() {
    let pg = PgServer::start();
    pg.psql_direct("postgres", "CREATE DATABASE shop");
    pg.psql_direct(
        "shop",
        "CREATE TABLE orders (id int PRIMARY KEY, total int); INSERT INTO orders VALUES (1, 10), (2, 20);\
         CREATE TABLE payroll (who text, amount int); INSERT INTO payroll VALUES ('ann', 100);\
         CREATE ROLE reporter NOLOGIN;",
    );
    let mut gw = start(&pg);
    let marker = tempfile::tempdir().unwrap();
    let program_marker = marker.path().join("copied");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let blocked_count = rt.block_on(async {
        let dba = login(gw.port, &token("dana", &["dba"])).await;
        let destructive = "destructive statements are not allowed through tapline; ask a DBA";
        let kinds = [
            "DROP TABLE orders".to_string(),
            "TRUNCATE orders".to_string(),
            "ALTER ROLE reporter SUPERUSER".to_string(),
            "GRANT ALL ON orders TO reporter".to_string(),
            format!(
                "COPY orders TO PROGRAM 'touch {}'",
                program_marker.display()
            ),
            "DELETE FROM orders".to_string(),
            "UPDATE orders SET total = 0".to_string(),
        ];
        let mut blocked = 0;
        for sql in &kinds {
            let (code, msg) = refused(&dba, sql).await;
            assert_eq!(code, "42501", "{sql}");
            assert_eq!(msg, destructive, "{sql}");
            blocked += 1;
            // The session carries on after each refusal.
            let rows = dba.query("SELECT count(*) FROM orders", &[]).await.unwrap();
            assert_eq!(rows[0].get::<_, i64>(0), 2, "after `{sql}`");
        }
        // Allowed statements of the same kinds still run.
        dba.simple_query("UPDATE orders SET total = total + 1 WHERE id = 1")
            .await
            .unwrap();

        // Two statements in one string, and SQL-level PREPARE.
        let (code, _) = refused(&dba, "SELECT 1; DROP TABLE orders").await;
        assert_eq!(code, "42501");
        let (code, _) = refused(&dba, "PREPARE wipe AS DELETE FROM orders").await;
        assert_eq!(code, "42501");
        blocked += 2;
        // Protocol-level prepare (Parse): refused at Parse, never executable.
        let Err(e) = dba.prepare("DELETE FROM orders").await else {
            panic!("a prepared DELETE without WHERE was accepted");
        };
        assert_eq!(e.code().map(|c| c.code()), Some("42501"));
        blocked += 1;
        // Table list and pattern.
        let (_, msg) = refused(&dba, "SELECT * FROM public.payroll").await;
        assert_eq!(msg, "payroll is off limits");
        let (_, msg) = refused(&dba, "SELECT pg_sleep(0)").await;
        assert_eq!(msg, "no sleeping on the primary");
        blocked += 2;
        // Pipelined: the refusal arrives in order between the answers around it.
        let (a, b, c) = tokio::join!(
            dba.query("SELECT 1::int", &[]),
            dba.execute("DELETE FROM orders", &[]),
            dba.query("SELECT 3::int", &[]),
        );
        assert_eq!(a.unwrap()[0].get::<_, i32>(0), 1);
        assert_eq!(b.unwrap_err().code().map(|c| c.code()), Some("42501"));
        assert_eq!(c.unwrap()[0].get::<_, i32>(0), 3);
        blocked += 1;
        // Unparseable SQL: the upstream judges it for a DBA, the gateway refuses it
        // for an agent.
        let Err(e) = dba.simple_query("SELEC oops").await else {
            panic!("garbage ran");
        };
        assert_eq!(
            e.code().map(|c| c.code()),
            Some("42601"),
            "the server's syntax error"
        );
        let agent = login(gw.port, &token("agent-7", &["agents"])).await;
        let (code, msg) = refused(&agent, "SELEC oops").await;
        assert_eq!(code, "42501");
        assert!(
            msg.contains("cannot parse") && msg.contains("refused for your groups"),
            "{msg}"
        );
        blocked += 1;
        let rows = agent
            .query("SELECT count(*) FROM orders", &[])
            .await
            .unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 2);
        blocked
    });

    // psql sees the rule's message and a failing exit status.
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &gw.port.to_string(),
            "-U",
            "x",
            "-d",
            "shop",
            "-c",
            "DROP TABLE payroll",
        ])
        .env("PGPASSWORD", token("dana", &["dba"]))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("42501")
            || err.contains("payroll is off limits")
            || err.contains("destructive"),
        "{err}"
    );
    let blocked_count = blocked_count + 1;
    assert!(gw.stop());

    // Nothing refused reached the upstream.
    assert_eq!(
        pg.psql_direct("shop", "SELECT count(*) FROM orders").trim(),
        "2"
    );
    assert_eq!(
        pg.psql_direct("shop", "SELECT sum(total) FROM orders")
            .trim(),
        "31"
    );
    assert_eq!(
        pg.psql_direct("shop", "SELECT count(*) FROM payroll")
            .trim(),
        "1"
    );
    assert_eq!(
        pg.psql_direct(
            "shop",
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'reporter'"
        )
        .trim(),
        "f"
    );
    assert_eq!(
        pg.psql_direct(
            "shop",
            "SELECT has_table_privilege('reporter', 'orders', 'DELETE')"
        )
        .trim(),
        "f"
    );
    assert!(!program_marker.exists(), "COPY TO PROGRAM ran");

    // The archive records each refusal as blocked, with the rule.
    let commands = query_json(
        gw.archive(),
        "SELECT command, status, sqlstate FROM commands WHERE status = 'blocked' ORDER BY seq",
    );
    assert_eq!(commands.len(), blocked_count, "{commands:#?}");
    assert!(
        commands.iter().all(|c| c["sqlstate"] == "42501"),
        "{commands:#?}"
    );
    let texts = query_json(
        gw.archive(),
        "SELECT text FROM events WHERE kind = 'query' AND status = 'blocked' ORDER BY ts",
    );
    assert!(
        texts[0]["text"]
            .as_str()
            .unwrap()
            .contains("blocked by rule `no-destruction` (statement kind drop)"),
        "{texts:#?}"
    );
    let sessions = query_json(gw.archive(), "SELECT sum(blocked) AS n FROM sessions");
    assert_eq!(sessions[0]["n"], blocked_count as i64);
}
