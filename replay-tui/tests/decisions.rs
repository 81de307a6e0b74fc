//! The player's timeline over a recorded session with every kind of decision: a
//! command refused by a deny rule in the middle of a pipeline, one held and then
//! approved, one held and then denied, and one still held. Each step shows how it
//! ended, and each is paired with its own completion.

use std::sync::Arc;
use std::time::Duration;
use tapline_replay_tui::ArchiveSource;
use tapline_store::{
    Archive, ArchiveLocation, ArchiveWriter, Direction, Durability, EventDraft, GatewayKey, Kind,
    SessionMeta, Status, WriterConfig,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_approved_denied_and_blocked_commands_show_how_they_ended() {
    let dir = tempfile::tempdir().unwrap();
    let location = ArchiveLocation::Local(dir.path().join("archive"));
    let archive = Archive::create(&location).unwrap();
    let mut config = WriterConfig::new("gw", dir.path().join("spool"));
    config.flush_interval = Duration::from_millis(200);
    let writer = ArchiveWriter::start(archive, GatewayKey::generate(), config).unwrap();
    let id = ulid::Ulid::new().to_string();
    let meta = SessionMeta {
        session_id: Arc::from(id.as_str()),
        gateway_id: Arc::from("gw"),
        connection: Arc::from("orders"),
        protocol: Arc::from("postgres"),
        user: Arc::from("agent-7"),
        groups: vec!["agents".into()],
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
    let query = |sql: &str, status: Status| {
        EventDraft::new(Direction::Client, Kind::Query)
            .command(sql)
            .status(status)
    };
    let done = |sql: &str, kind: Kind, status: Status| {
        EventDraft::new(Direction::Server, kind)
            .command(sql)
            .status(status)
            .text("ok")
    };
    let (a, b, c) = ("SELECT 1", "DROP TABLE orders", "SELECT 3");
    for e in [
        query(a, Status::Ok),
        query(b, Status::Blocked),
        query(c, Status::Ok),
        done(a, Kind::Result, Status::Ok),
        done(b, Kind::Error, Status::Blocked),
        done(c, Kind::Result, Status::Ok),
    ] {
        rec.record(e).unwrap();
    }
    let (d, e, f) = (
        "UPDATE orders SET total = 1 WHERE id = 1",
        "UPDATE orders SET total = 2 WHERE id = 2",
        "DELETE FROM orders WHERE id = 3",
    );
    for ev in [
        query(d, Status::Held),
        EventDraft::new(Direction::Gateway, Kind::Policy)
            .command(d)
            .status(Status::Approved)
            .text("hold h1 approved by olivia"),
        done(d, Kind::Result, Status::Approved),
        query(e, Status::Held),
        EventDraft::new(Direction::Gateway, Kind::Policy)
            .command(e)
            .status(Status::Denied)
            .text("hold h2 denied by olivia: not now"),
        done(e, Kind::Error, Status::Denied),
        query(f, Status::Held),
    ] {
        rec.record(ev).unwrap();
    }
    rec.end("client_closed").unwrap();
    writer.shutdown().await.unwrap();

    let source = ArchiveSource::open(Archive::open(&location).unwrap())
        .await
        .unwrap();
    let steps = source.steps(&id, 0, 100).await.unwrap();
    let shown: Vec<(String, Option<Status>)> = steps
        .iter()
        .filter(|s| s.kind == "query" || s.kind == "policy")
        .map(|s| (s.label.clone(), s.status))
        .collect();
    assert_eq!(
        shown,
        vec![
            (a.to_string(), Some(Status::Ok)),
            (b.to_string(), Some(Status::Blocked)),
            (c.to_string(), Some(Status::Ok)),
            (d.to_string(), Some(Status::Approved)),
            (
                "hold h1 approved by olivia".to_string(),
                Some(Status::Approved)
            ),
            (e.to_string(), Some(Status::Denied)),
            (
                "hold h2 denied by olivia: not now".to_string(),
                Some(Status::Denied)
            ),
            (f.to_string(), Some(Status::Held)),
        ]
    );
    // Each command is paired with its own completion, also in a pipeline.
    let c_step = steps.iter().find(|s| s.label == c).unwrap();
    let c_done = source
        .event(&id, c_step.result_seq.expect("C completed"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c_done.command.as_deref(), Some(c));
    assert!(
        steps
            .iter()
            .find(|s| s.label == f)
            .unwrap()
            .result_seq
            .is_none()
    );
}
