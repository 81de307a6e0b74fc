//! Time to first screen and time to seek to a random seq in `tapline replay`, for
//! sessions of 10 thousand, 1 million and 10 million events, with the viewer's peak
//! RSS. Each size is generated through the real recording pipeline, then measured in a
//! fresh child process, so the figures are the viewer's alone.
//!
//! With `MODE=browse`, the session browser instead: SESSIONS short sessions (default
//! 1.5 million) are recorded, then the child measures listing them (time to the first
//! screen), a re-sort, a typed filter (names, then command text), a jump to the last
//! row, and its peak RSS.
//!
//! Run: cargo bench --workspace --bench replay_open   (SIZES=10000,1000000,10000000)
//!      MODE=browse SESSIONS=1500000 cargo bench --workspace --bench replay_open

use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapline_replay_tui::ArchiveSource;
use tapline_replay_tui::source::WINDOW_EVENTS;
use tapline_store::{
    Archive, ArchiveLocation, ArchiveWriter, Direction, Durability, EventDraft, GatewayKey, Kind,
    SessionMeta, WriterConfig,
};

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A writer into a fresh local archive under `dir`.
fn start_writer(dir: &std::path::Path) -> ArchiveWriter {
    let location = ArchiveLocation::Local(dir.join("archive"));
    let archive = Archive::create(&location).unwrap();
    let mut config = WriterConfig::new("bench", dir.join("spool"));
    config.drain_timeout = Duration::from_secs(3600);
    ArchiveWriter::start(archive, GatewayKey::generate(), config).unwrap()
}

/// A session of `user` through `connection`, starting now.
fn meta(id: &str, connection: &str, user: &str) -> SessionMeta {
    SessionMeta {
        session_id: Arc::from(id),
        gateway_id: Arc::from("bench"),
        connection: Arc::from(connection),
        protocol: Arc::from("postgres"),
        user: Arc::from(user),
        groups: Vec::new(),
        client_addr: "127.0.0.1:1".into(),
        database: None,
        application_name: None,
        upstream: "postgres://u@127.0.0.1:5432".into(),
        start_ns: tapline_store::event::now_ns(),
        issuer: None,
        token_id: None,
        tls: None,
    }
}

async fn generate(dir: &std::path::Path, events: u64) -> String {
    let writer = start_writer(dir);
    let id = ulid::Ulid::new().to_string();
    let meta = meta(&id, "pg", "loader");
    let mut rec = writer
        .handle()
        .open_session(meta, Durability::Async)
        .unwrap();
    rec.record(EventDraft::new(Direction::Client, Kind::SessionStart).text("start"))
        .unwrap();
    let row = Bytes::from(vec![b'x'; 200]);
    for i in 0..events / 2 {
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
    id
}

/// Records `sessions` short sessions (start, one query and its result, end) from 40
/// users over 6 connections.
async fn generate_sessions(dir: &std::path::Path, sessions: u64) {
    let writer = start_writer(dir);
    let row = Bytes::from_static(b"id|name\n1|x");
    for n in 0..sessions {
        let meta = meta(
            &ulid::Ulid::new().to_string(),
            &format!("conn-{}", n % 6),
            &format!("user-{:02}", n % 40),
        );
        let mut rec = writer
            .handle()
            .open_session(meta, Durability::Async)
            .unwrap();
        rec.record(EventDraft::new(Direction::Client, Kind::SessionStart).text("start"))
            .unwrap();
        let sql = format!("SELECT * FROM table_{} WHERE id = {n}", n % 1000);
        rec.record(EventDraft::new(Direction::Client, Kind::Query).command(sql.clone()))
            .unwrap();
        rec.record(
            EventDraft::new(Direction::Server, Kind::Result)
                .command(sql)
                .row_count(1)
                .payload(row.clone()),
        )
        .unwrap();
        rec.end("client_closed").unwrap();
        if n % 1024 == 0 {
            tokio::task::yield_now().await;
        }
    }
    writer.shutdown().await.unwrap();
}

/// In the child: what `tapline replay` does before its first frame, then what the
/// browser's keys cost.
async fn measure_browse(archive: &str) {
    use tapline_replay_tui::browser::{Browser, draw_browser};
    use tapline_replay_tui::session_index::{SortKey, TextFilter};
    use tapline_replay_tui::theme::Theme;
    let draw = |b: &Browser| {
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(140, 50)).unwrap();
        t.draw(|f| draw_browser(f, b, &Theme { color: true }))
            .unwrap();
    };
    let start = Instant::now();
    let location = ArchiveLocation::parse(archive).unwrap();
    let source = ArchiveSource::open(Archive::open(&location).unwrap())
        .await
        .unwrap();
    let filter = tapline_query::sessions::SessionFilter::default();
    let mut b = Browser::new(source.session_index(&filter).await.unwrap());
    draw(&b);
    let first_screen = start.elapsed();
    let t = Instant::now();
    let order = b
        .index
        .arrange(SortKey::User, false, &TextFilter::default());
    b.arranged(order, false);
    draw(&b);
    let resort = t.elapsed();
    let t = Instant::now();
    b.cursor = b.order.len() - 1;
    draw(&b);
    let jump = t.elapsed();
    let t = Instant::now();
    let typed = TextFilter {
        needle: "user-07".into(),
        command_hits: None,
    };
    b.arranged(b.index.arrange(SortKey::Start, true, &typed), false);
    draw(&b);
    let names = t.elapsed();
    let t = Instant::now();
    let hits = source.command_hits(&filter, "table_777 ").await.unwrap();
    let typed = TextFilter {
        needle: "table_777 ".into(),
        command_hits: Some(hits),
    };
    b.arranged(b.index.arrange(SortKey::Start, true, &typed), true);
    draw(&b);
    let commands = t.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} {:.1} {:.1} {:.2} {:.1} {:.1} {} {}",
        b.index.len(),
        ms(first_screen),
        ms(resort),
        ms(jump),
        ms(names),
        ms(commands),
        b.order.len(),
        status_kb("VmHWM:") / 1024
    );
}

fn browse(rt: &tokio::runtime::Runtime, exe: &str) {
    let sessions: u64 = std::env::var("SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_500_000);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    rt.block_on(generate_sessions(dir.path(), sessions));
    let gen_s = t.elapsed().as_secs_f64();
    let archive = dir.path().join("archive").display().to_string();
    let out = std::process::Command::new(exe)
        .args(["measure-browse", &archive])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 {
        eprintln!(
            "measure failed: {line} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    println!(
        "tapline replay browser over {} sessions (generated in {gen_s:.0} s)",
        f[0]
    );
    println!("  first screen (list + sort + draw)   {:>9} ms", f[1]);
    println!("  re-sort by user                      {:>9} ms", f[2]);
    println!("  jump to the last row and draw        {:>9} ms", f[3]);
    println!("  filter on a user name                {:>9} ms", f[4]);
    println!("  filter on command text ({} hits)   {:>9} ms", f[6], f[5]);
    println!("  peak RSS                             {:>9} MiB", f[7]);
}

/// In the child: what `tapline replay ID` does before its first frame, then seeks.
async fn measure(archive: &str, id: &str, events: u64) {
    let start = Instant::now();
    let location = ArchiveLocation::parse(archive).unwrap();
    let source = ArchiveSource::open(Archive::open(&location).unwrap())
        .await
        .unwrap();
    let header = source.header(id).await.unwrap().unwrap();
    let steps = source.steps(id, 0, WINDOW_EVENTS - 1).await.unwrap();
    let first = steps[0].result_seq.unwrap_or(steps[0].seq);
    source.event(id, first).await.unwrap();
    let first_screen = start.elapsed();
    let mut seeks = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let seq = x % header.last_seq.max(1);
        let t = Instant::now();
        let from = seq.saturating_sub(WINDOW_EVENTS / 4);
        let window = source
            .steps(id, from, from + WINDOW_EVENTS - 1)
            .await
            .unwrap();
        if let Some(s) = window.iter().find(|s| s.seq >= seq) {
            source
                .event(id, s.result_seq.unwrap_or(s.seq))
                .await
                .unwrap();
        }
        seeks.push(t.elapsed());
    }
    seeks.sort();
    println!(
        "{events} {} {} {} {}",
        first_screen.as_secs_f64() * 1000.0,
        seeks[seeks.len() / 2].as_secs_f64() * 1000.0,
        seeks[seeks.len() - 1].as_secs_f64() * 1000.0,
        status_kb("VmHWM:") / 1024
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if args.get(1).map(String::as_str) == Some("measure") {
        rt.block_on(measure(&args[2], &args[3], args[4].parse().unwrap()));
        return;
    }
    if args.get(1).map(String::as_str) == Some("measure-browse") {
        rt.block_on(measure_browse(&args[2]));
        return;
    }
    if std::env::var("MODE").as_deref() == Ok("browse") {
        browse(&rt, &args[0]);
        return;
    }
    let sizes: Vec<u64> = std::env::var("SIZES")
        .unwrap_or_else(|_| "10000,1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("tapline replay, one session of N events (200 B results), 20 random seeks each");
    println!(
        "{:>10}  {:>16}  {:>14}  {:>12}  {:>13}",
        "events", "first screen ms", "seek p50 ms", "seek max ms", "peak RSS MiB"
    );
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let id = rt.block_on(generate(dir.path(), n));
        let gen_s = t.elapsed().as_secs_f64();
        let archive = dir.path().join("archive").display().to_string();
        let out = std::process::Command::new(&args[0])
            .args(["measure", &archive, &id, &n.to_string()])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 {
            eprintln!(
                "measure failed: {line} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        println!(
            "{:>10}  {:>16.1}  {:>14.1}  {:>12.1}  {:>13}   (generated in {gen_s:.0} s)",
            f[0],
            f[1].parse::<f64>().unwrap_or(0.0),
            f[2].parse::<f64>().unwrap_or(0.0),
            f[3].parse::<f64>().unwrap_or(0.0),
            f[4]
        );
    }
}
