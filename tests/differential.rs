//! Direct and through the gateway, three client libraries of three lineages (psql on
//! libpq, tokio-postgres, node-postgres) run the same workload and must see the same
//! thing: values of many types, command tags and row counts, errors with their
//! SQLSTATE, message and detail, notices, transaction status (an error aborts a block,
//! COMMIT then reports ROLLBACK), savepoints, session settings, many rows, and a
//! multi-statement string. The gateway runs with a masking rule active, so its
//! scanning path is exercised on every value.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::postgres::{PgServer, UPSTREAM_PASSWORD, UPSTREAM_USER};

const WORKLOAD: &[&str] = &[
    "DROP TABLE IF EXISTS w",
    "CREATE TABLE w (id int PRIMARY KEY, name text, price numeric(10,2), at timestamptz, tags text[], doc jsonb, raw bytea, ok bool, f float8)",
    "INSERT INTO w VALUES (1, 'Zoë ''quoted''', 12.50, '2026-01-02 03:04:05+00', '{a,b}', '{\"k\": [1, 2]}', '\\xdeadbeef', true, 1.5e300), (2, NULL, -0.01, NULL, '{}', 'null', NULL, false, 'NaN')",
    "SELECT * FROM w ORDER BY id",
    "SELECT count(*), sum(price), max(name) FROM w",
    "UPDATE w SET name = 'Bob' WHERE id = 2 RETURNING id, name",
    "INSERT INTO w (id, name) VALUES (1, 'dup')",
    "SELECT * FROM missing_table",
    "SELECT 1/0",
    "SELECT nope FROM w",
    "BEGIN",
    "INSERT INTO w (id, name) VALUES (3, 'three')",
    "SELECT undefined_column",
    "SELECT 1",
    "COMMIT",
    "SELECT count(*) FROM w",
    "BEGIN",
    "SAVEPOINT s",
    "INSERT INTO w (id, name) VALUES (4, 'four')",
    "ROLLBACK TO s",
    "INSERT INTO w (id, name) VALUES (5, 'five')",
    "COMMIT",
    "SELECT id, name FROM w ORDER BY id",
    "SELECT note('hello from a function')",
    "SET TIME ZONE 'America/New_York'",
    "SELECT at FROM w WHERE id = 1",
    "SHOW TIME ZONE",
    "SELECT g, g * 2 AS twice FROM generate_series(1, 500) g",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT 'multi' AS a; SELECT 'statement' AS b",
    "SELECT length(repeat('x', 200000))",
    "DELETE FROM w WHERE id > 1",
    "DROP TABLE w",
];

fn setup(pg: &PgServer) {
    pg.psql_direct(
        "postgres",
        "CREATE FUNCTION note(t text) RETURNS int LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'note: %', t; RETURN length(t); END$$",
    );
}

fn gateway(pg: &PgServer) -> GatewayProc {
    let config = format!(
        r#"
[[mask]]
name = "cards"
detectors = ["credit_card", "us_ssn"]
strategy = "redact"

[[connections]]
name = "pg"
listen = "127.0.0.1:{{port}}"
upstream = "{{upstream}}"
upstream_password_env = "{PASSWORD_ENV}"
"#
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

/// psql reading the workload as a script, one statement per line.
fn psql(conninfo: &str) -> (String, String) {
    let mut child = Command::new("psql")
        .arg(conninfo)
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=0",
            "-v",
            "VERBOSITY=verbose",
            "-f",
            "-",
        ])
        .env("PGPASSWORD", UPSTREAM_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script: String = WORKLOAD.iter().map(|s| format!("{s};\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        // psql names the location of the server's code in verbose errors; the same.
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// node-postgres running each statement; its JSON transcript.
fn node(host_port: u16, user: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workload.json");
    std::fs::write(&file, serde_json::to_vec(WORKLOAD).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/transcript.js"))
        .arg(&file)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", host_port.to_string())
        .env("PGUSER", user)
        .env("PGDATABASE", "postgres")
        .env("PGPASSWORD", UPSTREAM_PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// tokio-postgres running each statement with the simple protocol, and the typed
/// (extended, binary) protocol for the queries that return rows; every notice in
/// order; one line per message.
fn tokio_transcript(conninfo: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use futures::StreamExt;
        let (client, mut conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
            .await
            .unwrap();
        let (tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
        let stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        tokio::spawn(stream.for_each(move |m| {
            if let Ok(tokio_postgres::AsyncMessage::Notice(n)) = m {
                let _ = tx.send(format!("NOTICE {} {}", n.code().code(), n.message()));
            }
            futures::future::ready(())
        }));
        let mut out = Vec::new();
        let describe_error = |e: tokio_postgres::Error| match e.as_db_error() {
            Some(d) => format!(
                "ERROR {} {} | {:?} | {:?}",
                d.code().code(),
                d.message(),
                d.detail(),
                d.hint()
            ),
            None => format!("CLIENT ERROR {e}"),
        };
        for s in WORKLOAD {
            match client.simple_query(s).await {
                Ok(messages) => {
                    for m in messages {
                        out.push(match m {
                            tokio_postgres::SimpleQueryMessage::Row(r) => {
                                let cols: Vec<String> =
                                    (0..r.len()).map(|i| format!("{:?}", r.get(i))).collect();
                                format!("ROW {}", cols.join(", "))
                            }
                            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => {
                                format!("COMPLETE {n}")
                            }
                            tokio_postgres::SimpleQueryMessage::RowDescription(d) => format!(
                                "COLUMNS {}",
                                d.iter()
                                    .map(|c| c.name().to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            _ => "OTHER".into(),
                        });
                    }
                }
                Err(e) => out.push(describe_error(e)),
            }
            while let Ok(n) = notices.try_recv() {
                out.push(n);
            }
        }
        // Typed reads through the extended protocol.
        match client
            .query(
                "SELECT $1::int, 'Zoë'::text, true, 1.5e300::float8, '\\xdeadbeef'::bytea",
                &[&1i32],
            )
            .await
        {
            Ok(rows) => {
                for r in rows {
                    out.push(format!(
                        "TYPED {} {:?} {:?} {:?} {:?}",
                        r.get::<_, i32>(0),
                        r.get::<_, Option<String>>(1),
                        r.get::<_, Option<bool>>(2),
                        r.get::<_, Option<f64>>(3),
                        r.get::<_, Option<Vec<u8>>>(4)
                    ));
                }
            }
            Err(e) => out.push(describe_error(e)),
        }
        match client.query("SELECT $1::int + 1", &[&"not an int"]).await {
            Ok(_) => out.push("unexpected".into()),
            Err(e) => out.push(describe_error(e)),
        }
        out
    })
}

#[test]
fn three_client_libraries_see_the_same_thing_direct_and_through_the_gateway() {
    let pg = PgServer::start();
    setup(&pg);
    let mut gw = gateway(&pg);
    let direct_conninfo = pg.direct_conninfo("postgres");
    let through_conninfo = gw.conninfo("alice");

    let (d_out, d_err) = psql(&direct_conninfo);
    let (g_out, g_err) = psql(&through_conninfo);
    assert_eq!(g_out, d_out, "psql output differs");
    assert_eq!(g_err, d_err, "psql errors and notices differ");
    assert!(
        d_out.contains("ROLLBACK"),
        "the workload aborts a block: {d_out}"
    );
    assert!(
        d_err.contains("23505") && d_err.contains("25P02"),
        "{d_err}"
    );

    let d = tokio_transcript(&direct_conninfo);
    let g = tokio_transcript(&through_conninfo);
    assert_eq!(g, d, "tokio-postgres saw something else");
    assert!(
        d.iter().any(|l| l.starts_with("NOTICE 00000 note:")),
        "{d:?}"
    );
    assert!(d.iter().any(|l| l.starts_with("TYPED 1 ")), "{d:?}");

    let d = node(pg.port, UPSTREAM_USER);
    let g = node(gw.port, "alice");
    assert_eq!(g, d, "node-postgres saw something else");
    assert!(gw.stop(), "{}", gw.log());
}
