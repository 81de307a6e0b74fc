//! A session of one million events opens and seeks by reading windows of it: the
//! viewer's peak memory grows by far less than the session's size.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tapline_replay_tui::ArchiveSource;
use tapline_replay_tui::source::WINDOW_EVENTS;
use tapline_store::{
    Archive, ArchiveLocation, ArchiveWriter, Direction, Durability, EventDraft, GatewayKey, Kind,
    SessionMeta, WriterConfig,
};

const EVENTS: u64 = 1_000_000;

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_event_session_opens_and_seeks_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let location = ArchiveLocation::Local(dir.path().join("archive"));
    let archive = Archive::create(&location).unwrap();
    let mut config = WriterConfig::new("big", dir.path().join("spool"));
    config.flush_interval = Duration::from_secs(2);
    config.drain_timeout = Duration::from_secs(600);
    let writer = ArchiveWriter::start(archive, GatewayKey::generate(), config).unwrap();
    let id = ulid::Ulid::new().to_string();
    let meta = SessionMeta {
        session_id: Arc::from(id.as_str()),
        gateway_id: Arc::from("big"),
        connection: Arc::from("pg"),
        protocol: Arc::from("postgres"),
        user: Arc::from("loader"),
        groups: Vec::new(),
        client_addr: "127.0.0.1:1".into(),
        database: None,
        application_name: None,
        upstream: "postgres://u@127.0.0.1:5432".into(),
        start_ns: tapline_store::event::now_ns(),
    };
    let mut rec = writer
        .handle()
        .open_session(meta, Durability::Async)
        .unwrap();
    rec.record(
        EventDraft::new(Direction::Client, Kind::SessionStart)
            .text("client 127.0.0.1:1 user loader"),
    )
    .unwrap();
    let row = Bytes::from(vec![b'x'; 200]);
    for i in 0..EVENTS / 2 {
        let sql = format!("SELECT payload FROM big WHERE id = {i}");
        rec.record(EventDraft::new(Direction::Client, Kind::Query).command(sql.clone()))
            .unwrap();
        rec.record(
            EventDraft::new(Direction::Server, Kind::Result)
                .command(sql)
                .row_count(1)
                .payload(row.clone())
                .text(format!("payload\nrow-{i}")),
        )
        .unwrap();
        if i % 4096 == 0 {
            tokio::task::yield_now().await;
        }
    }
    rec.end("client_closed").unwrap();
    writer.shutdown().await.unwrap();

    // From here on, only what the viewer does counts.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let base_kb = status_kb("VmRSS:");
    let source = ArchiveSource::open(Archive::open(&location).unwrap())
        .await
        .unwrap();
    let header = source
        .header(&id)
        .await
        .unwrap()
        .expect("the session is there");
    assert_eq!(header.last_seq, EVENTS + 1, "start, 1M events, end");
    let first = source.steps(&id, 0, WINDOW_EVENTS - 1).await.unwrap();
    assert!(!first.is_empty() && first.len() as u64 <= WINDOW_EVENTS);
    assert_eq!(first[1].label, "SELECT payload FROM big WHERE id = 0");
    // Seek deep into the session and read one result there.
    let at = 777_777;
    let window = source.steps(&id, at, at + WINDOW_EVENTS - 1).await.unwrap();
    let step = window.first().expect("commands around seq 777777");
    let detail = source
        .event(&id, step.result_seq.unwrap())
        .await
        .unwrap()
        .unwrap();
    let n = (step.seq - 1) / 2;
    assert_eq!(
        detail.text.as_deref(),
        Some(format!("payload\nrow-{n}").as_str())
    );
    let last = source.last_seq(&id).await.unwrap();
    assert_eq!(last, Some(EVENTS + 1));
    let peak_kb = status_kb("VmHWM:");
    let grown_mb = peak_kb.saturating_sub(base_kb) / 1024;
    eprintln!("peak RSS grew by {grown_mb} MB");
    // Windowed reads grow it by ~45 MB here; reading the whole timeline (no payloads)
    // grows it by ~125 MB, the whole session by far more.
    assert!(
        grown_mb < 90,
        "opening and seeking grew the peak RSS by {grown_mb} MB"
    );
}
