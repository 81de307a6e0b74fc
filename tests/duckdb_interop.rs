//! Another engine reads the archive as it is: DuckDB over the same hive-partitioned
//! Parquet files, knowing only the documented layout, gives tapline's own answers —
//! counts, a join of sessions to events, and payload sizes with the `payload_splice`
//! rule applied.

mod support;

use std::process::Command;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;
use support::query_json;

fn duckdb_answers(archive: &std::path::Path) -> serde_json::Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/duckdb_answers.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(archive)
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "DuckDB could not read the archive (scripts/test installs it: pip install duckdb):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// Rows of `[key, number]` from tapline, as DuckDB's script prints them.
fn pairs(rows: Vec<serde_json::Value>, key: &str, n: &str) -> serde_json::Value {
    serde_json::Value::Array(
        rows.into_iter()
            .map(|r| serde_json::json!([r[key], r[n]]))
            .collect(),
    )
}

#[test]
fn duckdb_reads_the_archive_and_agrees_with_tapline() {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        ..Default::default()
    });
    for (user, sql) in [
        (
            "alice",
            vec![
                "CREATE TABLE t (id int, note text)",
                "INSERT INTO t VALUES (1, 'ünïcode')",
                "SELECT * FROM t",
            ],
        ),
        ("bob", vec!["SELECT 1", "SELECT * FROM no_such_table"]),
        ("alice", vec!["SELECT note FROM t WHERE id = 1"]),
    ] {
        let mut cmd = Command::new("psql");
        cmd.arg(gw.conninfo(user)).arg("-X");
        for s in sql {
            cmd.args(["-c", s]);
        }
        cmd.output().expect("psql is installed");
    }
    assert!(gw.stop());
    let archive = gw.archive();
    let duck = duckdb_answers(archive);

    let events = query_json(archive, "SELECT count(*) AS n FROM events");
    assert_eq!(duck["events"], events[0]["n"]);
    let sessions = query_json(archive, "SELECT count(*) AS n FROM sessions");
    assert_eq!(duck["sessions"], sessions[0]["n"]);
    assert_eq!(sessions[0]["n"], 3);
    assert_eq!(
        duck["events_by_day"],
        pairs(
            query_json(
                archive,
                "SELECT date, count(*) AS n FROM events GROUP BY 1 ORDER BY 1"
            ),
            "date",
            "n"
        )
    );
    let by_user = pairs(
        query_json(
            archive,
            "SELECT s.\"user\", count(*) AS n FROM sessions s JOIN events e USING (session_id) \
             WHERE e.kind = 'query' GROUP BY 1 ORDER BY 1",
        ),
        "user",
        "n",
    );
    assert_eq!(duck["queries_by_user"], by_user);
    assert_eq!(by_user[0], serde_json::json!(["alice", 4]), "{by_user}");
    let bytes = pairs(
        query_json(
            archive,
            "SELECT session_id, sum(octet_length(payload)) AS n FROM events GROUP BY 1 ORDER BY 1",
        ),
        "session_id",
        "n",
    );
    assert_eq!(duck["payload_bytes_by_session"], bytes);
    let ended: Vec<serde_json::Value> = query_json(
        archive,
        "SELECT session_id, end_reason, events FROM sessions ORDER BY session_id",
    )
    .into_iter()
    .map(|r| serde_json::json!([r["session_id"], r["end_reason"], r["events"]]))
    .collect();
    assert_eq!(duck["ended"], serde_json::Value::Array(ended));
}
