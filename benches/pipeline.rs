//! The recording pipeline alone: hash chain plus Parquet segments, no network.
//!
//! Two traffic shapes: query-heavy (many small events, like pgbench -S) and
//! result-heavy (fewer, larger result payloads). For each it prints events/s and MB/s
//! for the chain alone and for chain + Parquet + archive write, and their ratio, all
//! measured in this one run.
//!
//! Run: cargo bench --bench pipeline

use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapline_store::canonical::CanonicalFields;
use tapline_store::{
    Archive, ArchiveLocation, ArchiveWriter, Chain, Direction, Durability, EventDraft, GatewayKey,
    Kind, SessionMeta, WriterConfig,
};

struct Shape {
    name: &'static str,
    sessions: usize,
    events_per_session: usize,
    payload: usize,
}

fn meta(i: usize) -> SessionMeta {
    SessionMeta {
        session_id: Arc::from(ulid::Ulid::new().to_string()),
        gateway_id: Arc::from("bench"),
        connection: Arc::from("pg"),
        protocol: Arc::from("postgres"),
        user: Arc::from(format!("user{i}")),
        groups: Vec::new(),
        client_addr: "127.0.0.1:50000".into(),
        database: Some("bench".into()),
        application_name: None,
        upstream: "postgres://bench@127.0.0.1:5432/bench".into(),
        start_ns: tapline_store::event::now_ns(),
        issuer: None,
        token_id: None,
        tls: None,
    }
}

fn chain_only(shape: &Shape, payload: &Bytes) -> Duration {
    let start = Instant::now();
    for s in 0..shape.sessions {
        let mut chain = Chain::new();
        let id = format!("session-{s}");
        for seq in 0..shape.events_per_session as u64 {
            let fields = CanonicalFields {
                session_id: &id,
                seq,
                ts_ns: seq as i64,
                gateway_id: "bench",
                connection: "pg",
                protocol: "postgres",
                user: "user",
                direction: "server",
                kind: "result",
                command: Some("SELECT abalance FROM pgbench_accounts WHERE aid = 42"),
                status: "ok",
                row_count: Some(1),
                duration_us: Some(80),
                masked: &[],
                payload: payload[..].into(),
                text: Some("abalance\n0"),
            };
            std::hint::black_box(chain.append(&fields));
        }
    }
    start.elapsed()
}

async fn full_pipeline(shape: &Shape, payload: &Bytes) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::create(&ArchiveLocation::Local(dir.path().to_path_buf())).unwrap();
    let mut config = WriterConfig::new("bench", dir.path().join("spool"));
    config.flush_interval = Duration::from_secs(1);
    let writer = ArchiveWriter::start(archive, GatewayKey::generate(), config).unwrap();
    let handle = writer.handle();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..shape.sessions {
        let handle = handle.clone();
        let payload = payload.clone();
        let n = shape.events_per_session;
        tasks.push(tokio::spawn(async move {
            let mut rec = handle.open_session(meta(s), Durability::Async).unwrap();
            for i in 0..n {
                let draft = if i % 2 == 0 {
                    EventDraft::new(Direction::Client, Kind::Query)
                        .command("SELECT abalance FROM pgbench_accounts WHERE aid = 42")
                        .payload(Bytes::from_static(
                            b"Q\0\0\0\x38SELECT abalance FROM pgbench_accounts WHERE aid = 42\0",
                        ))
                } else {
                    EventDraft::new(Direction::Server, Kind::Result)
                        .command("SELECT abalance FROM pgbench_accounts WHERE aid = 42")
                        .row_count(1)
                        .duration_us(80)
                        .payload(payload.clone())
                        .text("abalance\n0")
                };
                rec.record(draft).unwrap();
                if i % 1024 == 0 {
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

fn main() {
    let shapes = [
        Shape {
            name: "query-heavy (120 B payloads)",
            sessions: 8,
            events_per_session: 100_000,
            payload: 120,
        },
        Shape {
            name: "result-heavy (16 KiB payloads)",
            sessions: 8,
            events_per_session: 4_000,
            payload: 16 * 1024,
        },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "recording pipeline, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    for shape in &shapes {
        let payload = Bytes::from(vec![b'x'; shape.payload]);
        let events = (shape.sessions * shape.events_per_session) as f64;
        let bytes = events * shape.payload as f64;
        let chain = chain_only(shape, &payload);
        let full = rt.block_on(full_pipeline(shape, &payload));
        println!("{}", shape.name);
        for (label, d) in [("chain only", chain), ("chain + Parquet + archive", full)] {
            let s = d.as_secs_f64();
            println!(
                "  {label:<28} {:>12.0} events/s {:>9.1} MB/s  ({:.2} s)",
                events / s,
                bytes / s / 1e6,
                s
            );
        }
        println!(
            "  full pipeline / chain only: {:.2}x the time",
            full.as_secs_f64() / chain.as_secs_f64()
        );
    }
}
