//! Streaming through the spool into an archive, measured in one run:
//!
//! 1. The recording pipeline (chain, spool, Parquet, upload) into a local archive, then
//!    into Azurite with async and with sync durability: events/s and MB/s until the
//!    archive has confirmed everything, each as a ratio to the local figure.
//! 2. `pgbench -S -c 8` through the gateway with sync durability vs async, alternated.
//!
//! Run: cargo bench --bench archive_stream   (ROUNDS=3 SECONDS=10 EVENTS=40000)

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use std::process::Command;
use std::time::{Duration, Instant};
use support::azurite::Azurite;
use support::env_num;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;
use support::recording::session_meta;
use tapline_store::{
    Archive, ArchiveLocation, ArchiveWriter, Direction, Durability, EventDraft, GatewayKey, Kind,
    WriterConfig,
};

const SESSIONS: usize = 8;
const PAYLOAD: usize = 256;

/// Records SESSIONS × `events` events (query/result pairs) and returns the time until
/// the archive has confirmed all of them.
async fn stream(location: ArchiveLocation, durability: Durability, events: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::create(&location).unwrap();
    let mut config = WriterConfig::new("bench", dir.path().join("spool"));
    config.flush_interval = Duration::from_secs(1);
    config.drain_timeout = Duration::from_secs(600);
    let writer = ArchiveWriter::start(archive, GatewayKey::generate(), config).unwrap();
    let handle = writer.handle();
    let payload = Bytes::from(vec![b'r'; PAYLOAD]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let handle = handle.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut rec = handle
                .open_session(
                    session_meta("bench", &format!("user{s}"), tapline_store::event::now_ns()),
                    durability,
                )
                .unwrap();
            for i in 0..events / 2 {
                let sql = format!("SELECT abalance FROM pgbench_accounts WHERE aid = {i}");
                rec.record(
                    EventDraft::new(Direction::Client, Kind::Query)
                        .command(sql.clone())
                        .payload(Bytes::from(sql.clone().into_bytes())),
                )
                .unwrap();
                rec.record(
                    EventDraft::new(Direction::Server, Kind::Result)
                        .command(sql)
                        .row_count(1)
                        .payload(payload.clone())
                        .text("abalance\n0"),
                )
                .unwrap();
                // What the tap does before forwarding a result in sync mode.
                if let Some(point) = rec.durable_point() {
                    point.wait().await.unwrap();
                } else if i % 256 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            rec.end("client_closed").unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    writer.shutdown().await.unwrap();
    start.elapsed()
}

fn pgbench(args: &[&str], conn: &str) -> f64 {
    let out = Command::new("pgbench")
        .args(args)
        .arg(conn)
        .output()
        .expect("pgbench is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pgbench failed: {text}");
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("pgbench prints tps")
}

fn main() {
    let rounds = env_num("ROUNDS", 3);
    let seconds = env_num("SECONDS", 10).to_string();
    let events = env_num("EVENTS", 40_000) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. Pipeline into a local archive and into Azurite.
    let az = Azurite::start();
    let az_archive = az.archive("bench", "stream");
    for (k, v) in az.env() {
        // SAFETY: set before any other thread reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    let total = (SESSIONS * events) as f64;
    let bytes = total / 2.0 * PAYLOAD as f64;
    println!(
        "spool → archive, {SESSIONS} sessions × {events} events ({PAYLOAD} B results), {rounds} rounds"
    );
    let mut sums = [0.0f64; 3];
    for round in 1..=rounds {
        let local_dir = tempfile::tempdir().unwrap();
        let local = rt.block_on(stream(
            ArchiveLocation::Local(local_dir.path().join("archive")),
            Durability::Async,
            events,
        ));
        let az_loc = ArchiveLocation::parse(&az_archive.location).unwrap();
        let az_async = rt.block_on(stream(az_loc.clone(), Durability::Async, events));
        let az_sync = rt.block_on(stream(az_loc, Durability::Sync, events));
        let rate = |d: Duration| total / d.as_secs_f64();
        println!(
            "round {round}: local {:.0} ev/s, azurite async {:.0} ev/s ({:.2}x), azurite sync {:.0} ev/s ({:.2}x)",
            rate(local),
            rate(az_async),
            rate(az_async) / rate(local),
            rate(az_sync),
            rate(az_sync) / rate(local)
        );
        for (i, d) in [local, az_async, az_sync].into_iter().enumerate() {
            sums[i] += rate(d);
        }
    }
    let n = rounds as f64;
    for (i, label) in ["local archive, async", "azurite, async", "azurite, sync"]
        .iter()
        .enumerate()
    {
        let r = sums[i] / n;
        println!(
            "  {label:<22} {r:>10.0} events/s {:>7.1} MB/s  ratio to local {:.2}",
            r * bytes / total / 1e6,
            r / (sums[0] / n)
        );
    }

    // 2. pgbench -S through the gateway, sync vs async durability.
    let pg = PgServer::start();
    let init = Command::new("pgbench")
        .args(["-i", "-s", "10", "-q"])
        .arg(pg.direct_conninfo("postgres"))
        .output()
        .unwrap();
    assert!(init.status.success());
    let gateway = |mode: &str| {
        GatewayProc::start(GatewayOpts {
            upstream: pg.upstream_url("postgres"),
            flush_interval: "5s",
            extra: vec!["--durability".into(), mode.into()],
            ..Default::default()
        })
    };
    let asy = gateway("async");
    let syn = gateway("sync");
    let args = ["-S", "-c", "8", "-j", "2", "-n", "-T", seconds.as_str()];
    let (mut a, mut s) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let ta = pgbench(&args, &asy.conninfo("bench"));
        let ts = pgbench(&args, &syn.conninfo("bench"));
        println!(
            "round {round}: async {ta:.0} tps, sync {ts:.0} tps, sync/async {:.3}",
            ts / ta
        );
        a.push(ta);
        s.push(ts);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "pgbench -S -c 8 -j 2 -T {seconds}, {rounds} rounds: async {:.0} tps, sync {:.0} tps, sync/async = {:.3}",
        mean(&a),
        mean(&s),
        mean(&s) / mean(&a)
    );
}
