//! Archive bytes against a plain text log of the same events, and `tapline verify` over
//! the archive, in one run.
//!
//! 1. `pgbench -S -c 8 -j 2` through the gateway (query-heavy), then result-heavy
//!    traffic (each command returns 2 000 rows of ~250 bytes). For each: the bytes
//!    under `events/` (integrity data included) ÷ the same events' content columns
//!    (every column but the integrity ones) as JSON lines, gzip -6. Timestamps are
//!    written as integer nanoseconds and payloads as hex, the smaller of the obvious
//!    JSON forms, so the log is as small as a log gets.
//! 2. `tapline verify` over the query-heavy archive: events/s, MB/s and peak RSS.
//!
//! Run: cargo bench --bench archive_size   (TRANSACTIONS=70000 per pgbench client,
//! RESULTS=60 per result-heavy client)

#[path = "../tests/support/mod.rs"]
mod support;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{TimestampNanosecondType, UInt64Type};
use futures::StreamExt;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use support::env_num;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;
use support::segments::parquet_files;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    parquet_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// The events' content columns as JSON lines, gzip -6: (events, gzip bytes).
fn json_gzip_bytes(archive: &Path) -> (u64, u64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let location = tapline_store::ArchiveLocation::Local(archive.to_path_buf());
        let a = tapline_store::Archive::open(&location).unwrap();
        let ctx = tapline_query::open_context(&a).await.unwrap();
        let sql = "SELECT session_id, seq, ts, gateway_id, connection, protocol, \"user\", direction, \
                   kind, command, status, row_count, duration_us, masked, payload, text FROM events";
        let mut stream = ctx.sql(sql).await.unwrap().execute_stream().await.unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        let mut n = 0u64;
        while let Some(batch) = stream.next().await {
            let b = batch.unwrap();
            let text = |i: usize| b.column(i).as_string::<i32>();
            let u64s = |i: usize| b.column(i).as_primitive::<UInt64Type>();
            let ts = b.column(2).as_primitive::<TimestampNanosecondType>();
            let masked = b.column(13).as_list::<i32>();
            let payload = b.column(14).as_binary::<i32>();
            for r in 0..b.num_rows() {
                let opt_text = |i: usize| {
                    let c = text(i);
                    (!c.is_null(r)).then(|| c.value(r).to_string())
                };
                let opt_u64 = |i: usize| {
                    let c = u64s(i);
                    (!c.is_null(r)).then(|| c.value(r))
                };
                let m = masked.value(r);
                let m = m.as_string::<i32>();
                let masked: Vec<&str> = (0..m.len()).map(|j| m.value(j)).collect();
                let row = serde_json::json!({
                    "session_id": text(0).value(r), "seq": u64s(1).value(r), "ts": ts.value(r),
                    "gateway_id": text(3).value(r), "connection": text(4).value(r),
                    "protocol": text(5).value(r), "user": text(6).value(r),
                    "direction": text(7).value(r), "kind": text(8).value(r),
                    "command": opt_text(9), "status": text(10).value(r),
                    "row_count": opt_u64(11), "duration_us": opt_u64(12), "masked": masked,
                    "payload": hex::encode(payload.value(r)), "text": opt_text(15),
                });
                serde_json::to_writer(&mut gz, &row).unwrap();
                gz.write_all(b"\n").unwrap();
                n += 1;
            }
        }
        (n, gz.finish().unwrap().len() as u64)
    })
}

fn report_size(label: &str, archive: &Path) {
    let events_bytes = bytes_under(&archive.join("events"));
    let (events, json) = json_gzip_bytes(archive);
    println!(
        "{label}: {events} events; archive events/ {:.2} MB ({:.2} B/event), JSON lines gzip -6 {:.2} MB ({:.2} B/event); archive / log = {:.3}",
        events_bytes as f64 / 1e6,
        events_bytes as f64 / events as f64,
        json as f64 / 1e6,
        json as f64 / events as f64,
        events_bytes as f64 / json as f64
    );
}

fn main() {
    let transactions = env_num("TRANSACTIONS", 70_000).to_string();
    let results = env_num("RESULTS", 60).to_string();
    let pg = PgServer::start();
    run(Command::new("pgbench")
        .args(["-i", "-s", "5", "-q"])
        .arg(pg.direct_conninfo("postgres")));

    // 1a. Query-heavy.
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "5s",
        ..Default::default()
    });
    run(Command::new("pgbench")
        .args([
            "-S",
            "-c",
            "8",
            "-j",
            "2",
            "-n",
            "-t",
            transactions.as_str(),
        ])
        .arg(gw.conninfo("bench")));
    assert!(gw.stop(), "{}", gw.log());
    report_size("pgbench -S (query-heavy)", gw.archive());

    // 2. verify over that archive.
    let timed = run(Command::new("/usr/bin/time")
        .args(["-f", "peak_rss_kb=%M wall_s=%e"])
        .arg(support::tapline_bin())
        .args(["verify", "--archive"])
        .arg(gw.archive())
        .arg("--pubkey")
        .arg(gw.pubkey()));
    let checked = timed
        .lines()
        .find(|l| l.starts_with("checked "))
        .unwrap_or("(no figures)");
    let rss = timed
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("peak_rss_kb="))
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    println!("verify: {checked}; peak RSS {:.0} MiB", rss / 1024.0);

    // 1b. Result-heavy.
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        script.path(),
        "SELECT i, md5(i::text), repeat('x', 200) FROM generate_series(1, 2000) i;\n",
    )
    .unwrap();
    let mut heavy = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "5s",
        ..Default::default()
    });
    run(Command::new("pgbench")
        .args(["-c", "4", "-j", "2", "-n", "-t", results.as_str(), "-f"])
        .arg(script.path())
        .arg(heavy.conninfo("bench")));
    assert!(heavy.stop(), "{}", heavy.log());
    report_size("2 000-row results (result-heavy)", heavy.archive());
}
