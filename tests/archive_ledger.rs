//! Nothing recorded is overwritten, lost or silently removed: a gateway restarted again
//! and again (cleanly and with kill -9) keeps every session of every run, on a local
//! archive and on Azure Blob Storage (Azurite); an object already at a name it writes
//! stops its uploads loudly without losing anything; and `tapline verify`, checking the
//! archive against the gateway's signed ledger, names a deleted, altered or copied-in
//! segment, a session removed whole, a changed ledger entry and a ledger cut short.

mod support;

use datafusion::arrow::array::AsArray;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::archive::ArchiveRef;
use support::azurite::Azurite;
use support::eventually;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;
use support::segments::{copy_dir, parquet_files, read, reorder, resign_seals, write};
use tapline_store::GatewayKey;
use tapline_store::segment::Table;

fn psql(gw: &GatewayProc, user: &str, sql: &[&str]) {
    let mut cmd = Command::new("psql");
    cmd.arg(gw.conninfo(user))
        .args(["-X", "-v", "ON_ERROR_STOP=1"]);
    for s in sql {
        cmd.args(["-c", s]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "psql: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
}

fn verify(archive: &ArchiveRef, pubkey: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["verify", "--pubkey", pubkey.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out: Output = archive.tapline(&args);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The distinct `SELECT 'run…'` tags the archive recorded.
fn recorded_runs(archive: &ArchiveRef) -> Vec<String> {
    let mut runs: Vec<String> = archive
        .query_json(
            "SELECT DISTINCT command FROM commands WHERE strpos(command, 'SELECT ''run') = 1 AND status = 'ok'",
        )
        .iter()
        .filter_map(|r| r["command"].as_str().map(str::to_string))
        .collect();
    runs.sort();
    runs
}

/// Four runs of one gateway on one spool and archive: three clean stops and a kill -9
/// with a session live, each run adding one session. Every run's session is there and
/// the whole archive verifies against the ledger.
fn restarts_keep_every_session(archive: Option<ArchiveRef>) {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        extra: vec!["--durability".into(), "sync".into()],
        archive,
        ..Default::default()
    });
    let archive = gw.archive_ref().clone();
    psql(&gw, "alice", &["SELECT 'run1'"]);
    assert!(gw.stop(), "{}", gw.log());

    gw.restart(&[]);
    psql(&gw, "alice", &["SELECT 'run2'"]);
    assert!(gw.stop(), "{}", gw.log());

    // Run 3 dies with a session live: its acknowledged command must survive.
    gw.restart(&[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let live = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&gw.conninfo("bob"), tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        client.simple_query("SELECT 'run3'").await.unwrap();
        (client, task)
    });
    gw.kill9();
    drop(live);

    gw.restart(&[]);
    psql(&gw, "carol", &["SELECT 'run4'"]);
    assert!(gw.stop(), "{}", gw.log());

    assert_eq!(
        recorded_runs(&archive),
        vec![
            "SELECT 'run1'".to_string(),
            "SELECT 'run2'".to_string(),
            "SELECT 'run3'".to_string(),
            "SELECT 'run4'".to_string()
        ],
        "every run's session is in the archive:\n{}",
        gw.log()
    );
    assert_eq!(
        archive.count("SELECT count(*) AS n FROM sessions"),
        4,
        "{:?}",
        archive.query_json("SELECT session_id, \"user\", end_reason FROM sessions")
    );
    assert_eq!(
        archive.count("SELECT count(*) AS n FROM sessions WHERE end_reason = 'gateway_crash'"),
        1
    );
    let (ok, report) = verify(&archive, &gw.pubkey(), &[]);
    assert!(ok, "{report}");
    assert!(
        report.contains("4 session(s) checked, 4 ok, 0 broken; 0 archive problem(s)"),
        "{report}"
    );
    assert!(report.contains("ledger gw-test  ok"), "{report}");
}

#[test]
fn restarts_never_overwrite_a_recorded_session_on_a_local_archive() {
    restarts_keep_every_session(None);
}

#[test]
fn restarts_never_overwrite_a_recorded_session_on_azure_blob() {
    let az = Azurite::start();
    restarts_keep_every_session(Some(az.archive("ledger", "restarts")));
}

/// A recorded archive of two gateway runs (so the ledger has several entries and the
/// archive several segments), and the key that sealed it.
struct Recorded {
    archive: PathBuf,
    pubkey: PathBuf,
    key: PathBuf,
    head: String,
    gw: GatewayProc,
    _pg: PgServer,
}

fn record() -> Recorded {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        ..Default::default()
    });
    psql(
        &gw,
        "alice",
        &[
            "SELECT 'alice one'",
            "SELECT 'alice two'",
            "SELECT 'alice three'",
        ],
    );
    psql(&gw, "bob", &["SELECT 'bob one'"]);
    assert!(gw.stop(), "{}", gw.log());
    gw.restart(&[]);
    psql(&gw, "carol", &["SELECT 'carol one'", "SELECT 'carol two'"]);
    assert!(gw.stop(), "{}", gw.log());
    let head = gw.status()["ledger_head"]
        .as_str()
        .expect("gateway status reports the ledger head")
        .to_string();
    let archive = gw.archive().to_path_buf();
    Recorded {
        archive,
        pubkey: gw.pubkey(),
        key: gw.key.clone(),
        head,
        gw,
        _pg: pg,
    }
}

/// Copies the archive, tampers with the copy, and returns verify's verdict on it.
fn verify_after(rec: &Recorded, extra: &[&str], tamper: impl FnOnce(&Path)) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("archive");
    copy_dir(&rec.archive, &copy);
    tamper(&copy);
    verify(&ArchiveRef::local(&copy), &rec.pubkey, extra)
}

fn expect(rec: &Recorded, extra: &[&str], tamper: impl FnOnce(&Path), wanted: &[&str]) {
    let (ok, report) = verify_after(rec, extra, tamper);
    assert!(!ok, "verify must fail:\n{report}");
    for w in wanted {
        assert!(report.contains(w), "expected `{w}` in:\n{report}");
    }
}

/// The session of `user` in an archive.
fn session_of(archive: &Path, user: &str) -> String {
    let rows = support::query_json(
        archive,
        &format!("SELECT session_id FROM sessions WHERE \"user\" = '{user}'"),
    );
    rows[0]["session_id"].as_str().unwrap().to_string()
}

/// The events segment holding a session's events.
fn segment_with(archive: &Path, session: &str) -> PathBuf {
    parquet_files(&archive.join("events"))
        .into_iter()
        .find(|p| {
            let b = read(p);
            let ids = b.column_by_name("session_id").unwrap().as_string::<i32>();
            (0..b.num_rows()).any(|i| ids.value(i) == session)
        })
        .expect("a segment holds the session")
}

fn relative(archive: &Path, p: &Path) -> String {
    p.strip_prefix(archive).unwrap().display().to_string()
}

#[test]
fn verify_checks_the_archive_against_the_signed_ledger() {
    let rec = record();
    let (ok, report) = verify_after(&rec, &[], |_| {});
    assert!(ok, "the untouched archive verifies:\n{report}");
    assert!(report.contains("3 session(s) checked, 3 ok"), "{report}");
    let (ok, report) = verify_after(
        &rec,
        &["--expect-head", &format!("gw-test={}", rec.head)],
        |_| {},
    );
    assert!(ok, "the pinned head is in the ledger:\n{report}");
    let bob = session_of(&rec.archive, "bob");
    let carol = session_of(&rec.archive, "carol");

    // A segment deleted: the ledger names it, and its session's events are missing.
    let seg = segment_with(&rec.archive, &carol);
    let seg_name = relative(&rec.archive, &seg);
    expect(
        &rec,
        &[],
        |a| std::fs::remove_file(a.join(&seg_name)).unwrap(),
        &[
            &format!("segment {seg_name}  MISSING"),
            &format!("{carol}  BROKEN at seq 0: missing"),
        ],
    );

    // Every event of one session removed by rewriting its segment without them.
    let seg = segment_with(&rec.archive, &bob);
    let seg_name = relative(&rec.archive, &seg);
    let bob_id = bob.clone();
    expect(
        &rec,
        &[],
        |a| {
            let path = a.join(&seg_name);
            let b = read(&path);
            let ids = b.column_by_name("session_id").unwrap().as_string::<i32>();
            let keep: Vec<u32> = (0..b.num_rows() as u32)
                .filter(|&i| ids.value(i as usize) != bob_id)
                .collect();
            write(&path, &reorder(&b, &keep), Table::Events);
        },
        &[
            &format!("segment {seg_name}  ALTERED"),
            &format!("{bob}  BROKEN at seq 0: missing"),
        ],
    );

    // A segment copied in from another archive, sealed by the same key.
    let pg = PgServer::start();
    let mut other = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        key: Some(rec.key.clone()),
        ..Default::default()
    });
    psql(&other, "mallory", &["SELECT 'from elsewhere'"]);
    assert!(other.stop(), "{}", other.log());
    let foreign = parquet_files(&other.archive().join("events")).remove(0);
    let foreign_name = relative(other.archive(), &foreign);
    expect(
        &rec,
        &[],
        |a| {
            let to = a.join(&foreign_name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&foreign, &to).unwrap();
        },
        &[&format!("segment {foreign_name}  EXTRA")],
    );

    // A ledger entry swapped for a genuine one of another archive (same gateway id,
    // same key): it checks out on its own, but the chain forks after it.
    let other_entry = other
        .archive()
        .join("ledger/gw-test/00000000000000000000.json");
    expect(
        &rec,
        &[],
        |a| {
            std::fs::copy(
                &other_entry,
                a.join("ledger/gw-test/00000000000000000000.json"),
            )
            .unwrap();
        },
        &["ledger gw-test  FORK at entry 1", "MISSING"],
    );

    // A sessions segment replaced by one re-signed with another key.
    let sessions_seg = parquet_files(&rec.archive.join("sessions")).remove(0);
    let sessions_name = relative(&rec.archive, &sessions_seg);
    expect(
        &rec,
        &[],
        |a| resign_seals(&a.join(&sessions_name), &GatewayKey::generate()),
        &[
            &format!("segment {sessions_name}  ALTERED"),
            "bad signature",
        ],
    );

    // One ledger entry changed.
    expect(
        &rec,
        &[],
        |a| {
            let entry = a.join("ledger/gw-test/00000000000000000000.json");
            let text = std::fs::read_to_string(&entry).unwrap();
            let changed = text.replacen("\"rows\":", "\"rows\":1", 1);
            assert_ne!(text, changed);
            std::fs::write(&entry, changed).unwrap();
        },
        &["ledger gw-test  BROKEN at entry 0: altered"],
    );

    // The ledger's newest entry deleted with the segments it lists: without an outside
    // copy of the head that looks like a gateway that stopped earlier; with the head
    // pinned, verify names the truncation.
    let entries = {
        let mut e: Vec<PathBuf> = std::fs::read_dir(rec.archive.join("ledger/gw-test"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        e.sort();
        e
    };
    assert!(entries.len() >= 2, "{entries:?}");
    let last = entries.last().unwrap().file_name().unwrap().to_owned();
    let cut = |a: &Path| {
        let entry = a.join("ledger/gw-test").join(&last);
        let text = std::fs::read_to_string(&entry).unwrap();
        let body: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        for s in body["action"]["segments"].as_array().unwrap() {
            std::fs::remove_file(a.join(s["path"].as_str().unwrap())).unwrap();
        }
        std::fs::remove_file(entry).unwrap();
    };
    let (ok, report) = verify_after(&rec, &[], cut);
    assert!(
        ok,
        "an unpinned ledger cut with its segments reads as an earlier stop:\n{report}"
    );
    expect(
        &rec,
        &["--expect-head", &format!("gw-test={}", rec.head)],
        cut,
        &["ledger gw-test  TRUNCATED"],
    );
    // A gap in the middle of the ledger is caught without any pin.
    expect(
        &rec,
        &[],
        |a| std::fs::remove_file(a.join("ledger/gw-test/00000000000000000000.json")).unwrap(),
        &["ledger gw-test  GAP"],
    );
    drop(rec.gw);
}

#[test]
fn an_object_already_at_the_next_name_stops_uploads_loudly_and_loses_nothing() {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        ..Default::default()
    });
    psql(&gw, "alice", &["SELECT 'before the conflict'"]);
    assert!(gw.stop(), "{}", gw.log());

    // Something else puts an object where the next run's first events segment goes.
    let next = gw.spool_counter() + 1;
    let name = format!("gw-test-{}-{next:016}.parquet", gw.spool_id());
    let today = utc_dates_now();
    let planted: Vec<PathBuf> = today
        .iter()
        .map(|d| gw.archive().join(format!("events/date={d}/{name}")))
        .collect();
    for p in &planted {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"not the gateway's segment").unwrap();
    }

    gw.restart(&[]);
    psql(&gw, "bob", &["SELECT 'after the conflict'"]);
    let status = eventually(Duration::from_secs(30), || {
        let s = gw.status();
        s["last_upload_error"]
            .as_str()
            .is_some_and(|e| e.contains("refusing to overwrite"))
            .then_some(s)
    })
    .unwrap_or_else(|| panic!("uploads must stop on the conflict:\n{}", gw.log()));
    let error = status["last_upload_error"].as_str().unwrap();
    assert!(error.contains(&name), "the error names the object: {error}");
    assert!(
        status["events_waiting"].as_u64().unwrap() > 0,
        "the spool keeps what could not be uploaded: {status}"
    );
    assert!(gw.log().contains("uploads stopped"), "{}", gw.log());
    // Recording goes on meanwhile.
    psql(&gw, "carol", &["SELECT 'while stopped'"]);
    assert!(gw.stop(), "{}", gw.log());
    for p in &planted {
        assert_eq!(
            std::fs::read(p).unwrap(),
            b"not the gateway's segment",
            "the object found there is untouched"
        );
    }

    // Once the operator moves it aside, the next start uploads everything.
    for p in &planted {
        std::fs::remove_file(p).unwrap();
    }
    gw.restart(&[]);
    assert!(gw.stop(), "{}", gw.log());
    let archive = gw.archive_ref().clone();
    let users: Vec<String> = archive
        .query_json("SELECT \"user\" FROM sessions ORDER BY \"user\"")
        .iter()
        .filter_map(|r| r["user"].as_str().map(str::to_string))
        .collect();
    assert_eq!(users, vec!["alice", "bob", "carol"]);
    let (ok, report) = verify(&archive, &gw.pubkey(), &[]);
    assert!(ok, "{report}");
}

/// Today's and tomorrow's UTC dates (a test may run across midnight).
fn utc_dates_now() -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    [now, now + 86_400]
        .iter()
        .map(|&s| {
            let out = Command::new("date")
                .args(["-u", "-d", &format!("@{s}"), "+%Y-%m-%d"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

#[test]
fn a_retried_upload_finds_its_own_identical_objects_and_carries_on() {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        extra: vec!["--durability".into(), "sync".into()],
        env: vec![("TAPLINE_TEST_PAUSE_AT".into(), "before_reclaim:1".into())],
        ..Default::default()
    });
    psql(&gw, "alice", &["SELECT 'uploaded twice'"]);
    assert!(
        gw.wait_log("paused at before_reclaim", 1, Duration::from_secs(30)),
        "{}",
        gw.log()
    );
    // Every object of the chunk is stored; the spool still holds it.
    gw.kill9();
    gw.remove_env("TAPLINE_TEST_PAUSE_AT");
    gw.restart(&[]);
    assert!(gw.stop(), "{}", gw.log());
    let log = gw.log();
    assert!(
        log.contains("already in the archive with the same bytes"),
        "the retry met its own objects:\n{log}"
    );
    assert!(!log.contains("uploads stopped"), "{log}");
    let archive = gw.archive_ref().clone();
    assert_eq!(
        archive.count(
            "SELECT count(*) AS n FROM commands WHERE command = 'SELECT ''uploaded twice'''"
        ),
        1
    );
    let (ok, report) = verify(&archive, &gw.pubkey(), &[]);
    assert!(ok, "{report}");
}

#[test]
fn a_planted_stray_in_the_ledger_folder_is_named() {
    let rec = record();
    expect(
        &rec,
        &[],
        |a| std::fs::write(a.join("ledger/gw-test/notes.json"), b"{}").unwrap(),
        &["ledger object ledger/gw-test/notes.json  EXTRA"],
    );
}
