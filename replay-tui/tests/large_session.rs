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
        issuer: None,
        token_id: None,
        tls: None,
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
    // Reading ahead: the results of the next steps come in the same read, except
    // those above the prefetch payload limit (the first is always read whole).
    let ahead: Vec<u64> = window.iter().take(8).filter_map(|s| s.result_seq).collect();
    let read = source.events(&id, &ahead, 1024).await.unwrap();
    assert_eq!(
        read.iter().map(|d| d.seq).collect::<Vec<_>>(),
        ahead,
        "every result under the limit"
    );
    let read = source.events(&id, &ahead, 100).await.unwrap();
    assert_eq!(
        read.iter().map(|d| d.seq).collect::<Vec<_>>(),
        ahead[..1],
        "200-byte results over a 100-byte limit are left for later"
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

/// The browser's index: every session listed once, then sorted and filtered in
/// memory, with command text found through the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_index_lists_sorts_and_filters_sessions() {
    use tapline_replay_tui::session_index::{SortKey, TextFilter};
    let dir = tempfile::tempdir().unwrap();
    let location = ArchiveLocation::Local(dir.path().join("archive"));
    let archive = Archive::create(&location).unwrap();
    let config = WriterConfig::new("gw", dir.path().join("spool"));
    let writer = ArchiveWriter::start(archive, GatewayKey::generate(), config).unwrap();
    let mut ids: Vec<String> = Vec::new();
    for (n, user) in ["carol", "alice", "bob", "alice"].iter().enumerate() {
        let id = ulid::Ulid::new().to_string();
        let meta = SessionMeta {
            session_id: Arc::from(id.as_str()),
            gateway_id: Arc::from("gw"),
            connection: Arc::from(if n % 2 == 0 { "orders" } else { "billing" }),
            protocol: Arc::from("postgres"),
            user: Arc::from(*user),
            groups: Vec::new(),
            client_addr: "127.0.0.1:1".into(),
            database: None,
            application_name: None,
            upstream: "postgres://u@127.0.0.1:5432".into(),
            start_ns: tapline_store::event::now_ns() + n as i64,
            issuer: None,
            token_id: None,
            tls: None,
        };
        let mut rec = writer
            .handle()
            .open_session(meta, Durability::Async)
            .unwrap();
        for c in 0..=n {
            let sql = format!("SELECT {c} FROM table_{n}");
            rec.record(EventDraft::new(Direction::Client, Kind::Query).command(sql.clone()))
                .unwrap();
            rec.record(
                EventDraft::new(Direction::Server, Kind::Result)
                    .command(sql)
                    .row_count(1),
            )
            .unwrap();
        }
        rec.end("client_closed").unwrap();
        ids.push(id);
    }
    writer.shutdown().await.unwrap();
    let source = ArchiveSource::open(Archive::open(&location).unwrap())
        .await
        .unwrap();
    let filter = tapline_query::sessions::SessionFilter::default();
    let index = source.session_index(&filter).await.unwrap();
    assert_eq!(index.len(), 4);
    let all = TextFilter::default();
    let by_commands = index.arrange(SortKey::Commands, true, &all);
    let rows: Vec<_> = by_commands.iter().map(|&i| index.row(i)).collect();
    assert_eq!(
        rows.iter().map(|r| r.commands).collect::<Vec<_>>(),
        [4, 3, 2, 1]
    );
    assert_eq!(rows[0].session_id, ids[3]);
    let by_user = index.arrange(SortKey::User, false, &all);
    let users: Vec<_> = by_user.iter().map(|&i| index.row(i).user).collect();
    assert_eq!(users, ["alice", "alice", "bob", "carol"]);
    let bill = TextFilter {
        needle: "bill".into(),
        command_hits: None,
    };
    assert_eq!(index.arrange(SortKey::Start, false, &bill).len(), 2);
    let hits = source.command_hits(&filter, "TABLE_2").await.unwrap();
    assert_eq!(hits, [ids[2].clone()].into_iter().collect());
    let text = TextFilter {
        needle: "table_2".into(),
        command_hits: Some(hits),
    };
    let found = index.arrange(SortKey::Start, false, &text);
    assert_eq!(found.len(), 1);
    assert_eq!(index.row(found[0]).user, "bob");
}
