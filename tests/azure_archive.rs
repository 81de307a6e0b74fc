//! Streaming to Azure Blob Storage (real Azurite) through the crash-safe spool: end to
//! end with psql and pgbench, `kill -9` at four points of the pipeline, a 30 s outage
//! of the store, and a full spool. Every check reads the archive back through the CLI
//! and compares it with what the clients themselves saw.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::archive::ArchiveRef;
use support::azurite::Azurite;
use support::eventually;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;

const PAUSE_ENV: &str = "TAPLINE_TEST_PAUSE_AT";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn az_gateway(
    pg: &PgServer,
    archive: &ArchiveRef,
    id: &'static str,
    extra: &[&str],
) -> GatewayProc {
    GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        extra: extra.iter().map(|s| s.to_string()).collect(),
        archive: Some(archive.clone()),
        gateway_id: Some(id),
        ..Default::default()
    })
}

fn verify_ok(archive: &ArchiveRef) -> String {
    let out = archive.tapline(&["verify"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "verify failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// No (session_id, seq) twice, and every session's seqs run 0..n without a gap.
fn assert_no_duplicates_or_gaps(archive: &ArchiveRef) {
    let dupes = archive.count(
        "SELECT count(*) AS n FROM (SELECT session_id, seq FROM events GROUP BY session_id, seq HAVING count(*) > 1) d",
    );
    assert_eq!(dupes, 0, "duplicate events in the archive");
    let gaps = archive.count(
        "SELECT count(*) AS n FROM (SELECT session_id, count(*) AS c, max(seq) AS m FROM events GROUP BY session_id) s WHERE c <> m + 1",
    );
    assert_eq!(gaps, 0, "a session has missing seqs");
}

/// The recorded query texts containing `needle`.
fn recorded_commands(archive: &ArchiveRef, needle: &str) -> Vec<String> {
    archive
        .query_json(&format!(
            "SELECT command FROM events WHERE kind = 'query' AND strpos(command, '{needle}') > 0"
        ))
        .iter()
        .filter_map(|r| r["command"].as_str().map(str::to_string))
        .collect()
}

/// Runs `SELECT 'TAG_i'` on one connection until the connection fails or `stop` is
/// set; returns the statements the client got a result for.
async fn client_loop(
    conninfo: String,
    tag: String,
    pace: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<String> {
    let mut acked = Vec::new();
    let Ok((client, conn)) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await else {
        return acked;
    };
    tokio::spawn(conn);
    for i in 0.. {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let sql = format!("SELECT '{tag}_{i}' AS tag");
        match tokio::time::timeout(Duration::from_secs(90), client.simple_query(&sql)).await {
            Ok(Ok(_)) => acked.push(sql),
            _ => break,
        }
        tokio::time::sleep(pace).await;
    }
    acked
}

#[test]
fn az_archive_end_to_end_with_psql_pgbench_and_two_gateways() {
    let az = Azurite::start();
    let archive = az.archive("tapline-e2e", "prod/eu");
    let again = archive.tapline(&["archive", "init"]);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    let pg = PgServer::start();
    let init = Command::new("pgbench")
        .args(["-i", "-s", "1", "-q"])
        .arg(pg.direct_conninfo("postgres"))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut a = az_gateway(&pg, &archive, "gw-a", &[]);
    let mut b = az_gateway(&pg, &archive, "gw-b", &["--durability", "sync"]);
    let rt = runtime();

    // A long-running session is visible to query and verify while it is live.
    let (live, conn) = rt
        .block_on(tokio_postgres::connect(
            &a.conninfo("watcher"),
            tokio_postgres::NoTls,
        ))
        .unwrap();
    rt.spawn(conn);
    rt.block_on(live.simple_query("SELECT 'still_live_marker'"))
        .unwrap();
    let seen_live = eventually(Duration::from_secs(30), || {
        let rows = archive.query_json(
            "SELECT s.state FROM sessions s JOIN events e ON s.session_id = e.session_id \
             WHERE strpos(e.command, 'still_live_marker') > 0",
        );
        rows.first()
            .and_then(|r| r["state"].as_str().map(str::to_string))
    });
    assert_eq!(seen_live.as_deref(), Some("live"), "{}", a.log());
    verify_ok(&archive);

    let psql = Command::new("psql")
        .arg(a.conninfo("alice"))
        .args(["-X", "-c", "CREATE TABLE az_items (id int, name text)"])
        .args([
            "-c",
            "INSERT INTO az_items SELECT g, 'item ' || g FROM generate_series(1, 50) g",
        ])
        .args(["-c", "SELECT count(*) FROM az_items"])
        .output()
        .unwrap();
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert!(String::from_utf8_lossy(&psql.stdout).contains("50"));

    let bench = Command::new("pgbench")
        .args(["-S", "-c", "2", "-j", "2", "-t", "60", "-n"])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &b.port.to_string(),
            "-U",
            "bencher",
            "postgres",
        ])
        .output()
        .unwrap();
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let report = String::from_utf8_lossy(&bench.stdout);
    assert!(
        report.contains("number of transactions actually processed: 120/120"),
        "{report}"
    );

    drop(live);
    assert!(a.stop(), "gateway a did not stop cleanly:\n{}", a.log());
    assert!(b.stop(), "gateway b did not stop cleanly:\n{}", b.log());

    // What the clients saw is what the archive holds.
    assert_eq!(
        archive.count("SELECT count(*) AS n FROM commands WHERE \"user\" = 'bencher' AND command ILIKE 'select abalance%' AND status = 'ok'"),
        120
    );
    for sql in [
        "CREATE TABLE az_items",
        "INSERT INTO az_items",
        "SELECT count(*) FROM az_items",
    ] {
        assert_eq!(recorded_commands(&archive, sql).len(), 1, "{sql}");
    }
    let rows = archive.query_json(
        "SELECT result_text FROM commands WHERE command = 'SELECT count(*) FROM az_items'",
    );
    assert!(
        rows[0]["result_text"].as_str().unwrap().contains("50"),
        "{rows:?}"
    );
    let gateways = archive.query_json("SELECT gateway_id, count(DISTINCT session_id) AS n FROM events GROUP BY gateway_id ORDER BY gateway_id");
    assert_eq!(gateways.len(), 2, "{gateways:?}");
    assert_eq!(gateways[0]["gateway_id"], "gw-a");
    assert_eq!(gateways[0]["n"], 2, "watcher and alice");
    assert_eq!(gateways[1]["gateway_id"], "gw-b");
    // pgbench opens one connection of its own before its two clients.
    let bench_sessions = gateways[1]["n"].as_i64().unwrap();
    assert!(bench_sessions >= 2, "{gateways:?}");
    assert_no_duplicates_or_gaps(&archive);
    let report = verify_ok(&archive);
    let total = 2 + bench_sessions;
    assert!(
        report.contains(&format!("{total} session(s) checked, {total} ok, 0 broken")),
        "{report}"
    );

    let listed = archive.tapline(&["sessions", "--format", "json"]);
    assert!(listed.status.success());
    let sessions: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len() as i64, total);
    assert!(
        sessions.iter().all(|s| s["state"] == "ended"),
        "{sessions:?}"
    );
}

/// Kills the gateway (sync durability) with three sessions live, at the n-th arrival
/// at `point`, restarts it, and checks that nothing a client saw is lost, nothing is
/// duplicated, every chain verifies and the interrupted sessions are sealed as
/// `gateway_crash`.
fn crash_at(point: &str, nth: u32) {
    let az = Azurite::start();
    let archive = az.archive("crash", &point.replace('_', "-"));
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        extra: vec!["--durability".into(), "sync".into()],
        archive: Some(archive.clone()),
        env: vec![(PAUSE_ENV.into(), format!("{point}:{nth}"))],
        ..Default::default()
    });
    let rt = runtime();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|s| {
            rt.spawn(client_loop(
                gw.conninfo(&format!("agent{s}")),
                format!("crash_{s}"),
                Duration::from_millis(5),
                stop.clone(),
            ))
        })
        .collect();
    assert!(
        gw.wait_log(&format!("paused at {point}"), 1, Duration::from_secs(90)),
        "the gateway never reached {point}:\n{}",
        gw.log()
    );
    // Upload pauses leave the journal running: let the clients go on a little.
    std::thread::sleep(Duration::from_millis(500));
    gw.kill9();
    let acked: Vec<String> = rt.block_on(async {
        let mut all = Vec::new();
        for c in clients {
            all.extend(c.await.unwrap());
        }
        all
    });
    assert!(
        acked.len() >= 3,
        "the clients got too few results: {acked:?}"
    );

    gw.remove_env(PAUSE_ENV);
    gw.restart(&[]);
    assert!(
        gw.wait_log(
            "recovered the spool of a previous run",
            1,
            Duration::from_secs(30)
        ),
        "{}",
        gw.log()
    );
    assert!(
        gw.stop(),
        "the restarted gateway did not stop cleanly:\n{}",
        gw.log()
    );
    assert!(
        !gw.log().contains("did not confirm everything"),
        "{}",
        gw.log()
    );

    let recorded: HashSet<String> = recorded_commands(&archive, "crash_").into_iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|s| !recorded.contains(*s)).collect();
    assert!(
        lost.is_empty(),
        "results the clients saw are missing from the archive: {lost:?}"
    );
    assert_eq!(
        archive.count("SELECT count(*) AS n FROM sessions WHERE end_reason = 'gateway_crash'"),
        3,
        "{:?}",
        archive.query_json("SELECT session_id, \"user\", end_reason, state FROM sessions")
    );
    assert_no_duplicates_or_gaps(&archive);
    verify_ok(&archive);
}

#[test]
fn kill_before_the_fsync_loses_nothing_acknowledged() {
    crash_at("before_fsync", 40);
}

#[test]
fn kill_after_the_fsync_loses_nothing_acknowledged() {
    crash_at("after_fsync", 40);
}

#[test]
fn kill_mid_upload_loses_nothing_acknowledged() {
    crash_at("mid_upload", 3);
}

#[test]
fn kill_after_upload_before_reclaim_writes_no_duplicates() {
    crash_at("before_reclaim", 3);
}

#[test]
fn a_30s_outage_grows_the_backlog_which_drains_when_the_store_returns() {
    let mut az = Azurite::start();
    let archive = az.archive("outage", "");
    let pg = PgServer::start();
    let mut gw = az_gateway(&pg, &archive, "gw-outage", &[]);
    let rt = runtime();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = rt.spawn(client_loop(
        gw.conninfo("steady"),
        "outage".into(),
        Duration::from_millis(20),
        stop.clone(),
    ));
    std::thread::sleep(Duration::from_secs(3));

    az.pause();
    let outage = Instant::now();
    let mut waiting = Vec::new();
    let mut error_seen = None;
    while outage.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_secs(3));
        let s = gw.status();
        waiting.push(s["events_waiting"].as_u64().unwrap());
        if let Some(e) = s["last_upload_error"].as_str() {
            error_seen = Some(e.to_string());
        }
    }
    // New sessions keep working while the store is away.
    let psql = Command::new("psql")
        .arg(gw.conninfo("during_outage"))
        .args(["-X", "-c", "SELECT 'made_during_outage'"])
        .output()
        .unwrap();
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert!(
        waiting.windows(2).all(|w| w[1] >= w[0]) && waiting.last() > waiting.first(),
        "the backlog should grow during the outage: {waiting:?}"
    );
    assert!(error_seen.is_some(), "status never showed the upload error");
    let text = {
        let out = Command::new(support::tapline_bin())
            .args(["gateway", "status", "--spool"])
            .arg(gw.spool())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(
        text.contains("last error") && text.contains("events"),
        "{text}"
    );

    az.resume();
    // Traffic goes on, so "drained" means caught up: no error, and nothing waiting
    // for longer than a few flush intervals.
    let peak = *waiting.iter().max().unwrap();
    let drained = eventually(Duration::from_secs(90), || {
        let s = gw.status();
        let oldest_age_ns = s["oldest_waiting_ns"]
            .as_i64()
            .map_or(0, |ts| s["updated_ns"].as_i64().unwrap() - ts);
        (s["last_upload_error"].is_null()
            && oldest_age_ns < 4_000_000_000
            && s["events_waiting"].as_u64().unwrap() < peak / 2)
            .then_some(())
    });
    assert!(
        drained.is_some(),
        "the backlog did not drain: {}\n{}",
        gw.status(),
        gw.log()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = rt.block_on(client).unwrap();
    assert!(gw.stop(), "{}", gw.log());

    let recorded = recorded_commands(&archive, "outage_");
    assert_eq!(recorded.len(), acked.len(), "every command exactly once");
    let recorded: HashSet<String> = recorded.into_iter().collect();
    assert!(acked.iter().all(|s| recorded.contains(s)));
    assert_eq!(recorded_commands(&archive, "made_during_outage").len(), 1);
    assert_no_duplicates_or_gaps(&archive);
    verify_ok(&archive);
}

#[test]
fn a_full_spool_refuses_new_sessions_and_keeps_what_it_holds() {
    let mut az = Azurite::start();
    let archive = az.archive("spoolfull", "x");
    az.pause();
    let pg = PgServer::start();
    let mut gw = az_gateway(
        &pg,
        &archive,
        "gw-full",
        &[
            "--spool-max-bytes",
            "512KiB",
            "--segment-max-bytes",
            "64KiB",
        ],
    );
    let rt = runtime();
    // One session fills the spool with large results until the gateway ends it.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let ended_with = rt.block_on({
        let acked = acked.clone();
        let conninfo = gw.conninfo("filler");
        async move {
            let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            for i in 0..1000 {
                let sql = format!("SELECT repeat('x', 20000) AS big_{i}");
                match client.simple_query(&sql).await {
                    Ok(_) => acked.lock().unwrap().push(sql),
                    Err(e) => {
                        return Some(match e.as_db_error() {
                            Some(db) => format!("{} {}", db.code().code(), db.message()),
                            None => e.to_string(),
                        });
                    }
                }
            }
            None
        }
    });
    let ended_with = ended_with.expect("the spool never filled");
    assert!(ended_with.starts_with("53100 "), "{ended_with}");
    assert!(ended_with.contains("spool is full"), "{ended_with}");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 10, "{}", acked.len());

    // A new session is refused with an error that names the cause.
    let refused = rt.block_on(async {
        match tokio_postgres::connect(&gw.conninfo("latecomer"), tokio_postgres::NoTls).await {
            Ok(_) => panic!("a new session was accepted with a full spool"),
            Err(e) => e,
        }
    });
    let db = refused
        .as_db_error()
        .expect("a protocol error, not a dropped socket");
    assert_eq!(db.code().code(), "53100");
    assert!(db.message().contains("spool is full"), "{}", db.message());
    assert!(db.message().contains("archive"), "{}", db.message());
    // status.json is rewritten every second.
    let refusing = eventually(Duration::from_secs(5), || {
        (gw.status()["accepting_sessions"] == false).then_some(())
    });
    assert!(refusing.is_some(), "{}", gw.status());

    az.resume();
    let drained = eventually(Duration::from_secs(90), || {
        (gw.status()["events_waiting"].as_u64() == Some(0)).then_some(())
    });
    assert!(drained.is_some(), "{}", gw.log());
    let psql = Command::new("psql")
        .arg(gw.conninfo("after"))
        .args(["-X", "-c", "SELECT 'accepted_again'"])
        .output()
        .unwrap();
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert!(gw.stop(), "{}", gw.log());

    let recorded: HashSet<String> = recorded_commands(&archive, "AS big_").into_iter().collect();
    assert!(
        acked.iter().all(|s| recorded.contains(s)),
        "a spooled command was lost"
    );
    assert_eq!(
        archive.count(
            "SELECT count(*) AS n FROM sessions WHERE \"user\" = 'filler' AND state = 'ended'"
        ),
        1
    );
    assert_no_duplicates_or_gaps(&archive);
    verify_ok(&archive);
}

#[test]
fn archive_init_and_reads_explain_credentials_accounts_and_missing_containers() {
    let az = Azurite::start();
    let base = ArchiveRef {
        location: "az://needs-auth/x".into(),
        env: az.env(),
    };
    let mut wrong_key = base.clone();
    wrong_key.env.push((
        "AZURE_STORAGE_ACCOUNT_KEY".into(),
        "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==".into(),
    ));
    let out = wrong_key.tapline(&["archive", "init"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad credentials"), "{err}");

    let mut closed = base.clone();
    closed.env = vec![
        ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
        (
            "AZURITE_BLOB_STORAGE_URL".into(),
            format!("http://127.0.0.1:{}", support::free_port()),
        ),
    ];
    let out = closed.tapline(&["archive", "init"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot reach"), "{err}");

    let mut no_account = base.clone();
    no_account
        .env
        .push(("AZURE_STORAGE_ACCOUNT_NAME".into(), "nosuchaccount".into()));
    let out = no_account.tapline(&["archive", "init"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no such storage account `nosuchaccount`"),
        "{err}"
    );

    // Reading an archive whose container was never created says so, plainly.
    let out = base.tapline(&["sessions"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("the container does not exist"), "{err}");
    assert!(err.contains("tapline archive init"), "{err}");
    assert!(
        err.lines().count() <= 2,
        "a plain message, not a request dump: {err}"
    );

    let bad_name = base.clone();
    let out = ArchiveRef {
        location: "az://Not_A_Container".into(),
        ..bad_name
    }
    .tapline(&["archive", "init"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid container name"));

    let out = base.tapline(&["archive", "init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created container needs-auth"));
}
