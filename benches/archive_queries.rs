//! Auditor queries over an archive of many small segments, tapline (DataFusion) vs
//! DuckDB on the same files, in one run.
//!
//! The archive is written by the gateway's own writer (chain, spool, Parquet, ledger)
//! with sessions spread over the last seven days and segments cut small, as a gateway
//! cutting one every `flush_interval` leaves them. Then each query runs ROUNDS times
//! on each engine, alternating, each time from a fresh context (tapline:
//! `open_context`, as a new `tapline query` does; DuckDB: a new connection and its
//! views), so listing the files and reading their footers is part of every figure:
//!
//! - a one-session lookup;
//! - the sessions of the last week (the `sessions` view);
//! - a full-text `LIKE` over `text`;
//! - an aggregate by user.
//!
//! It prints each median and tapline ÷ DuckDB, and checks that both engines agree.
//! Needs `pip install duckdb`.
//!
//! Run: cargo bench --bench archive_queries   (EVENTS=10000000 SEGMENTS=20000 ROUNDS=3
//! PACE_US=250: the pause after each step of 64 sessions; the journal cuts at most about
//! one segment per batch, so more segments need a longer pause)

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::env_num;
use support::recording::session_meta;
use support::segments::parquet_files;
use tapline_store::{
    Archive, ArchiveLocation, ArchiveWriter, Direction, Durability, EventDraft, GatewayKey, Kind,
    WriterConfig,
};

/// Events per session (queries and results alternate).
const PER_SESSION: usize = 500;
/// Sessions recorded at once, so each segment holds many sessions' events.
const LIVE: usize = 64;
const USERS: usize = 50;
const DAY_NS: i64 = 86_400_000_000_000;

/// Writes `events` events in about `segments` segments; returns one session id.
async fn build(dir: &Path, events: usize, segments: usize, pace: Duration) -> String {
    let archive = Archive::create(&ArchiveLocation::Local(dir.join("archive"))).unwrap();
    let mut config = WriterConfig::new("bench", dir.join("spool"));
    config.flush_interval = Duration::from_secs(3600);
    config.drain_timeout = Duration::from_secs(3600);
    // The spool compresses its batches: one of these queries or results takes about
    // 22 bytes of spool file (measured), which is what the writer cuts segments by.
    config.segment_max_bytes = ((events as u64 * 22) / segments.max(1) as u64).max(1024);
    let writer = ArchiveWriter::start(archive, GatewayKey::generate(), config).unwrap();
    let handle = writer.handle();
    let now = tapline_store::event::now_ns();
    let sessions = events.div_ceil(PER_SESSION);
    let mut some_id = String::new();
    let payload =
        Bytes::from_static(b"D\x00\x00\x00\x1a\x00\x02\x00\x00\x00\x041042\x00\x00\x00\x06active");
    for wave in (0..sessions).step_by(LIVE) {
        let mut live: Vec<_> = (wave..(wave + LIVE).min(sessions))
            .map(|i| {
                // Spread over the last seven days, deterministically.
                let start = now - DAY_NS * 7 + (i as i64 * 7 * DAY_NS) / sessions as i64;
                (
                    handle
                        .open_session(
                            session_meta("bench", &format!("user{:02}", i % USERS), start),
                            Durability::Async,
                        )
                        .unwrap(),
                    start,
                    i,
                )
            })
            .collect();
        if some_id.is_empty() {
            some_id = live[live.len() / 2].0.session_id().to_string();
        }
        for step in 0..PER_SESSION / 2 {
            for (rec, start, i) in &mut live {
                let ts = *start + step as i64 * 1_000_000;
                let sql = format!(
                    "SELECT balance, state FROM accounts WHERE id = {}",
                    step * 7 + *i
                );
                rec.record(
                    EventDraft::new(Direction::Client, Kind::Query)
                        .command(sql.clone())
                        .payload(Bytes::from(sql.clone().into_bytes()))
                        .at(ts),
                )
                .unwrap();
                rec.record(
                    EventDraft::new(Direction::Server, Kind::Result)
                        .command(sql)
                        .row_count(1)
                        .payload(payload.clone())
                        .text(format!(
                            "balance\tstate\n{}\tneedle-{}",
                            step,
                            (step + *i) % 997
                        ))
                        .at(ts + 500_000),
                )
                .unwrap();
            }
            // The journal cuts a segment between its batches (about one a
            // millisecond); pacing the writes like a busy gateway, rather than
            // as fast as a loop can, lets small segments form.
            std::thread::sleep(pace);
            tokio::task::yield_now().await;
        }
        for (rec, start, _) in live {
            rec.end_at("client_closed", start + PER_SESSION as i64 * 1_000_000)
                .unwrap();
        }
    }
    writer.shutdown().await.unwrap();
    some_id
}

/// Runs `sql` in a fresh tapline context; returns the time and the rows as text.
async fn tapline_query(archive: &Path, sql: &str) -> (f64, Vec<Vec<String>>) {
    let t0 = Instant::now();
    let a = Archive::open(&ArchiveLocation::Local(archive.to_path_buf())).unwrap();
    let ctx = tapline_query::open_context(&a).await.unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let mut rows = Vec::new();
    for b in &batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    (secs, rows)
}

fn duckdb(archive: &Path, rounds: u64, queries: &[(&str, String)]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/duckdb_queries.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(archive)
        .arg(rounds.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    let list: Vec<[&str; 2]> = queries.iter().map(|(n, q)| [*n, q.as_str()]).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&list).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "DuckDB failed (pip install duckdb): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let events = env_num("EVENTS", 10_000_000) as usize;
    let segments = env_num("SEGMENTS", 20_000) as usize;
    let rounds = env_num("ROUNDS", 3);
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let t0 = Instant::now();
    let pace = Duration::from_micros(env_num("PACE_US", 250));
    let session = rt.block_on(build(dir.path(), events, segments, pace));
    let archive = dir.path().join("archive");
    let files = parquet_files(&archive.join("events")).len();
    let checkpoints = parquet_files(&archive.join("sessions")).len();
    println!(
        "archive: {events} events in {files} events segments and {checkpoints} sessions segments, written in {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    let week_ago = chrono::Utc::now() - chrono::Duration::days(7) - chrono::Duration::hours(1);
    let since = week_ago.format("%Y-%m-%dT%H:%M:%S").to_string();
    let queries: Vec<(&str, String)> = vec![
        (
            "one-session lookup",
            format!(
                "SELECT count(*) AS n, max(seq) AS last FROM events WHERE session_id = '{session}'"
            ),
        ),
        (
            "sessions over a week",
            format!(
                "SELECT count(*) AS n, sum(events) AS e FROM sessions WHERE start_ts >= TIMESTAMP '{since}'"
            ),
        ),
        (
            "LIKE over text",
            "SELECT count(*) AS n FROM events WHERE text LIKE '%needle-42'".to_string(),
        ),
        (
            "aggregate by user",
            "SELECT \"user\", count(*) AS n FROM events GROUP BY 1 ORDER BY 1".to_string(),
        ),
    ];
    let duck = duckdb(&archive, rounds, &queries);
    println!(
        "{:<22} {:>12} {:>12} {:>16}",
        "query", "tapline", "DuckDB", "tapline/DuckDB"
    );
    for (name, sql) in &queries {
        let mut times = Vec::new();
        let mut rows = Vec::new();
        for _ in 0..rounds {
            let (t, r) = rt.block_on(tapline_query(&archive, sql));
            times.push(t);
            rows = r;
        }
        let d = &duck[*name];
        let duck_rows: Vec<Vec<String>> = serde_json::from_value(d["rows"].clone()).unwrap();
        assert_eq!(rows, duck_rows, "{name}: both engines give the same answer");
        let mut duck_times: Vec<f64> = serde_json::from_value(d["seconds"].clone()).unwrap();
        let (t, dt) = (median(&mut times), median(&mut duck_times));
        println!("{name:<22} {:>10.3} s {:>10.3} s {:>16.2}", t, dt, t / dt);
    }
}
