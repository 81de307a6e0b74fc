//! The SQL functions an auditor reaches for, over an archive recorded through the
//! gateway from a real PostgreSQL: byte sizes of binary payloads, payloads as text,
//! links that open a session in `tapline replay`, and a result exported as Parquet.

mod support;

use datafusion::arrow::array::AsArray;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::process::Command;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;
use support::{query_json, tapline, tapline_bin};

const BIG: &str = "SELECT repeat('z', 5000) AS big";
const GREETING: &str = "SELECT 'héllo wörld' AS greeting";

fn recorded_archive() -> (PgServer, GatewayProc) {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        ..Default::default()
    });
    let out = Command::new("psql")
        .arg(gw.conninfo("alice"))
        .args(["-X", "-c", BIG, "-c", GREETING])
        .output()
        .expect("psql is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gw.stop());
    (pg, gw)
}

#[test]
fn auditor_functions_answer_over_binary_payloads() {
    let (_pg, gw) = recorded_archive();
    let archive = gw.archive();

    // The size of a payload, in bytes, however it is asked for.
    let q = query_json(
        archive,
        &format!(
            "SELECT octet_length(payload) AS octets, length(payload) AS len, \
                    length(encode(payload, 'hex')) / 2 AS from_hex \
             FROM events WHERE kind = 'query' AND command = '{}'",
            BIG.replace('\'', "''")
        ),
    );
    assert_eq!(q.len(), 1, "{q:?}");
    let octets = q[0]["octets"].as_i64().unwrap();
    assert_eq!(octets, q[0]["from_hex"].as_i64().unwrap(), "{q:?}");
    assert_eq!(octets, q[0]["len"].as_i64().unwrap(), "{q:?}");
    assert!(octets as usize > BIG.len(), "{q:?}");

    // What the server sent back holds the 5 000 z's.
    let sent = query_json(
        archive,
        "SELECT sum(octet_length(payload)) AS n FROM events WHERE direction = 'server'",
    );
    assert!(sent[0]["n"].as_i64().unwrap() > 5000, "{sent:?}");

    // Strings answer as before: length counts characters, octet_length bytes.
    let s = query_json(
        archive,
        "SELECT length('héllo') AS chars, octet_length('héllo') AS bytes, \
                length(CAST(NULL AS BYTEA)) AS nothing",
    );
    assert_eq!(s[0]["chars"], 5);
    assert_eq!(s[0]["bytes"], 6);
    assert!(s[0]["nothing"].is_null(), "{s:?}");

    // A payload read as text, non-ASCII intact, searchable with LIKE.
    let t = query_json(
        archive,
        "SELECT payload_text(payload) AS t FROM events \
         WHERE kind = 'query' AND payload_text(payload) LIKE '%héllo wörld%'",
    );
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(t[0]["t"].as_str().unwrap().contains(GREETING), "{t:?}");
    let lossy = query_json(
        archive,
        "SELECT payload_text(CAST(X'41FF42' AS BYTEA)) AS t",
    );
    assert_eq!(lossy[0]["t"], "A\u{FFFD}B");

    // A wrong argument is a plain planning error, not a crash.
    let bad = tapline(archive, &["query", "SELECT payload_text(1, 2)"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("payload_text"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn a_session_url_opens_that_session_in_that_archive() {
    let (_pg, gw) = recorded_archive();
    let rows = query_json(
        gw.archive(),
        "SELECT session_id, session_url(session_id) AS url, \
                session_url('01NOSUCHSESSION0000000000') AS missing FROM sessions",
    );
    assert_eq!(rows.len(), 1);
    let id = rows[0]["session_id"].as_str().unwrap();
    let url = rows[0]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("tapline://replay/{id}?archive=file%3A%2F%2F")),
        "{url}"
    );

    // The link alone names the archive: replay it from a folder with no archive, with
    // no --archive and no $TAPLINE_ARCHIVE. A session that is not there is refused by
    // name, which it could only be after finding the archive.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(tapline_bin())
        .args(["replay", rows[0]["missing"].as_str().unwrap()])
        .current_dir(elsewhere.path())
        .env_remove("TAPLINE_ARCHIVE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no session `01NOSUCHSESSION0000000000`"),
        "{err}"
    );
}

#[test]
fn a_result_exports_as_parquet_with_its_bytes_intact() {
    let (_pg, gw) = recorded_archive();
    let archive = gw.archive();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("queries.parquet");
    let sql = "SELECT seq, command, payload FROM events WHERE kind = 'query' ORDER BY seq";
    let out = tapline(
        archive,
        &[
            "query",
            sql,
            "--format",
            "parquet",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrote 2 row(s)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut exported = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let command = b.column_by_name("command").unwrap().as_string::<i32>();
        let payload = b.column_by_name("payload").unwrap().as_binary::<i32>();
        for i in 0..b.num_rows() {
            exported.push((command.value(i).to_string(), hex::encode(payload.value(i))));
        }
    }
    let expected: Vec<(String, String)> = query_json(
        archive,
        "SELECT command, encode(payload, 'hex') AS p FROM events WHERE kind = 'query' ORDER BY seq",
    )
    .into_iter()
    .map(|r| {
        (
            r["command"].as_str().unwrap().to_string(),
            r["p"].as_str().unwrap().to_string(),
        )
    })
    .collect();
    assert_eq!(exported, expected);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no partial file left: {leftovers:?}");

    // CSV goes to a file too; parquet without a file is refused with the fix.
    let csv = dir.path().join("q.csv");
    let out = tapline(
        archive,
        &["query", sql, "--format", "csv", "-o", csv.to_str().unwrap()],
    );
    assert!(out.status.success());
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("seq,command,payload\n"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    let refused = tapline(archive, &["query", sql, "--format", "parquet"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("add --output FILE"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // A failed query leaves no file behind.
    let none = dir.path().join("none.parquet");
    let failed = tapline(
        archive,
        &[
            "query",
            "SELECT CAST(command AS INT) AS n FROM events WHERE kind = 'query'",
            "--format",
            "parquet",
            "-o",
            none.to_str().unwrap(),
        ],
    );
    assert!(!failed.status.success());
    assert!(!none.exists());
    let none_csv = dir.path().join("none.csv");
    let failed = tapline(
        archive,
        &[
            "query",
            // Fails while rows stream, after the output is opened.
            "SELECT CAST(command AS INT) AS n FROM events WHERE kind = 'query'",
            "--format",
            "csv",
            "-o",
            none_csv.to_str().unwrap(),
        ],
    );
    assert!(!failed.status.success());
    assert!(
        !none_csv.exists(),
        "a failed query leaves no CSV file either"
    );
}
