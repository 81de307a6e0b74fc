//! Retention as an auditor and an attacker see it: `tapline archive retain` removes
//! whole old days, records it first in a signed maintenance ledger, survives a kill -9
//! half way, and `tapline verify` then proves everything left while naming what was
//! removed on purpose. The same removal without the maintenance key is tampering.
//!
//! The archive is written by the gateway's own writer (journal, spool, uploader,
//! ledger) with events dated in the past, since a live gateway only records today.

mod support;

use bytes::Bytes;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::recording::session_meta;
use support::{query_json, tapline, tapline_bin};
use tapline_store::{
    Archive, ArchiveLocation, ArchiveWriter, Direction, Durability, EventDraft, GatewayKey, Kind,
    WriterConfig,
};

const GATEWAY: &str = "gw-retain";

/// Nanoseconds at a UTC time `YYYY-MM-DDTHH:MM:SSZ`.
fn at(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

/// A session of `queries` query/result pairs at the given times, ended at the last.
fn record(handle: &tapline_store::WriterHandle, user: &str, times: &[&str]) -> String {
    let start = at(times[0]);
    let mut rec = handle
        .open_session(session_meta(GATEWAY, user, start), Durability::Async)
        .unwrap();
    let id = rec.session_id().to_string();
    for (i, t) in times.iter().enumerate() {
        let sql = format!("SELECT {i} AS step -- {user}");
        rec.record(
            EventDraft::new(Direction::Client, Kind::Query)
                .command(sql.clone())
                .payload(Bytes::from(sql.clone().into_bytes()))
                .at(at(t)),
        )
        .unwrap();
        rec.record(
            EventDraft::new(Direction::Server, Kind::Result)
                .command(sql)
                .row_count(1)
                .payload(Bytes::from_static(
                    b"D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x011",
                ))
                .text("step\n1")
                .at(at(t) + 1_000),
        )
        .unwrap();
    }
    rec.end_at("client_closed", at(times[times.len() - 1]) + 2_000)
        .unwrap();
    id
}

struct History {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    gateway_pub: PathBuf,
    old: String,
    spanning: String,
    kept: String,
}

/// Three sessions: one wholly on 2024-01-10, one from 2024-01-10 23:59 into
/// 2024-01-11, one on 2024-01-12.
fn history() -> History {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let key = GatewayKey::generate();
    let gateway_key = dir.path().join("gateway.key");
    let gateway_pub = key.write(&gateway_key).unwrap();
    let rt = support::runtime();
    let (old, spanning, kept) = rt.block_on(async {
        let store = Archive::create(&ArchiveLocation::Local(archive.clone())).unwrap();
        let mut config = WriterConfig::new(GATEWAY, dir.path().join("spool"));
        config.flush_interval = Duration::from_millis(200);
        let writer = ArchiveWriter::start(store, key, config).unwrap();
        let h = writer.handle();
        let old = record(
            &h,
            "olga",
            &["2024-01-10T09:00:00Z", "2024-01-10T09:05:00Z"],
        );
        let spanning = record(
            &h,
            "sam",
            &[
                "2024-01-10T23:59:58Z",
                "2024-01-11T00:00:03Z",
                "2024-01-11T00:10:00Z",
            ],
        );
        let kept = record(&h, "kim", &["2024-01-12T08:00:00Z"]);
        writer.shutdown().await.unwrap();
        (old, spanning, kept)
    });
    History {
        _dir: dir,
        archive,
        gateway_pub,
        old,
        spanning,
        kept,
    }
}

fn verify(archive: &Path, pubkeys: &[&Path]) -> (bool, String) {
    let mut args = vec!["verify".to_string()];
    for k in pubkeys {
        args.push("--pubkey".into());
        args.push(k.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tapline(archive, &args);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn line_of<'a>(report: &'a str, session: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(session))
        .unwrap_or_else(|| panic!("no verdict for {session}:\n{report}"))
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    let out = Command::new(tapline_bin())
        .args(["keygen", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let public = PathBuf::from(format!("{}.pub", key.display()));
    (key, public)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn retention_removes_old_days_on_the_record_and_verify_proves_the_rest() {
    let h = history();
    let keys = tempfile::tempdir().unwrap();
    let (retention_key, retention_pub) = keygen(keys.path(), "retention.key");
    let (ok, report) = verify(&h.archive, &[&h.gateway_pub]);
    assert!(ok, "the fresh archive verifies:\n{report}");
    let days = |archive: &Path| -> Vec<String> {
        query_json(archive, "SELECT DISTINCT date FROM events ORDER BY date")
            .into_iter()
            .map(|r| r["date"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(days(&h.archive), ["2024-01-10", "2024-01-11", "2024-01-12"]);

    // An attacker with write access deletes the oldest day by hand; another runs
    // retention with a key of their own. Both are tampering.
    let by_hand = keys.path().join("by-hand");
    copy_dir(&h.archive, &by_hand);
    for table in ["events", "sessions"] {
        std::fs::remove_dir_all(by_hand.join(table).join("date=2024-01-10")).unwrap();
    }
    let (ok, report) = verify(&by_hand, &[&h.gateway_pub]);
    assert!(!ok, "{report}");
    assert!(report.contains("MISSING"), "{report}");
    assert!(line_of(&report, &h.old).contains("BROKEN"), "{report}");
    let rogue_run = keys.path().join("rogue-run");
    copy_dir(&h.archive, &rogue_run);
    let (rogue, _) = keygen(keys.path(), "rogue.key");
    let out = tapline(
        &rogue_run,
        &[
            "archive",
            "retain",
            "--before",
            "2024-01-11",
            "--key",
            rogue.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, report) = verify(&rogue_run, &[&h.gateway_pub]);
    assert!(
        !ok,
        "a removal signed by an untrusted key excuses nothing:\n{report}"
    );
    assert!(report.contains("NOT HONOURED"), "{report}");
    assert!(report.contains("MISSING"), "{report}");
    assert!(line_of(&report, &h.old).contains("BROKEN"), "{report}");

    // A dry run removes nothing.
    let out = tapline(
        &h.archive,
        &["archive", "retain", "--before", "2024-01-11", "--dry-run"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("would remove"),
        "{text}"
    );
    assert!(text.contains("2024-01-10"), "{text}");
    assert_eq!(days(&h.archive).len(), 3);

    // Today's partition is never removed, and an age must be whole days.
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    for (flag, value, says) in [
        ("--before", tomorrow.as_str(), "today's partition"),
        ("--older-than", "0d", "whole days"),
        ("--older-than", "12h", "whole days"),
    ] {
        let out = tapline(
            &h.archive,
            &[
                "archive",
                "retain",
                flag,
                value,
                "--key",
                retention_key.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{flag} {value}: {err}");
    }

    // The real run, killed -9 right after its first deletion.
    let mut child = Command::new(tapline_bin())
        .args(["archive", "retain", "--before", "2024-01-11", "--key"])
        .arg(&retention_key)
        .arg("--archive")
        .arg(&h.archive)
        .env("TAPLINE_TEST_PAUSE_AT", "retention_mid_delete")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let paused = lines.any(|l| l.unwrap().contains("paused at retention_mid_delete"));
    assert!(paused, "the run reached its first deletion");
    child.kill().unwrap();
    child.wait().unwrap();

    // Half done: what is gone is on the record, what is left still checks out.
    let (ok, report) = verify(&h.archive, &[&h.gateway_pub, &retention_pub]);
    assert!(ok, "an interrupted retention is no tampering:\n{report}");
    assert!(report.contains("still there"), "{report}");

    // A rerun finishes without a second entry.
    let out = tapline(
        &h.archive,
        &[
            "archive",
            "retain",
            "--before",
            "2024-01-11",
            "--key",
            retention_key.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("finished an earlier run"), "{text}");
    let entries = std::fs::read_dir(h.archive.join("maintenance/retention"))
        .unwrap()
        .count();
    assert_eq!(entries, 1, "one signed entry for one retention");
    assert_eq!(days(&h.archive), ["2024-01-11", "2024-01-12"]);

    let (ok, report) = verify(&h.archive, &[&h.gateway_pub, &retention_pub]);
    assert!(ok, "{report}");
    assert!(
        line_of(&report, &h.old).contains("retired: all 5 event(s) were removed by retention"),
        "{report}"
    );
    let spanning = line_of(&report, &h.spanning);
    assert!(
        spanning.starts_with(&format!("{}  ok: 5 event(s) left", h.spanning))
            && spanning.contains(
                "2 older event(s) were removed by retention of the partitions before 2024-01-11",
            ),
        "{report}"
    );
    let kept = line_of(&report, &h.kept);
    assert!(kept.contains("ok: 3 events, sealed at end"), "{report}");
    assert!(
        report.contains("retention maintenance/retention entry 0"),
        "{report}"
    );
    assert!(
        report.contains("ledger maintenance/retention  ok: 1 entries"),
        "{report}"
    );
    assert!(
        report.contains("2 of them partly or wholly removed by retention"),
        "{report}"
    );

    // The maintenance ledger's head can be pinned like a gateway's.
    let head = report
        .lines()
        .find_map(|l| l.strip_prefix("ledger maintenance/retention  ok: 1 entries, head entry 0 "))
        .expect("the maintenance ledger's head")
        .to_string();
    let pinned_verify = |pin: &str| {
        tapline(
            &h.archive,
            &[
                "verify",
                "--pubkey",
                h.gateway_pub.to_str().unwrap(),
                "--pubkey",
                retention_pub.to_str().unwrap(),
                "--expect-head",
                &format!("maintenance/retention={pin}"),
            ],
        )
    };
    let pinned = pinned_verify(&head);
    assert!(
        pinned.status.success(),
        "{}",
        String::from_utf8_lossy(&pinned.stdout)
    );
    let elsewhere = pinned_verify("00112233445566778899");
    assert!(!elsewhere.status.success());
    assert!(
        String::from_utf8_lossy(&elsewhere.stdout)
            .contains("ledger maintenance/retention  TRUNCATED"),
        "{}",
        String::from_utf8_lossy(&elsewhere.stdout)
    );

    // Without the maintenance key the same archive does not verify: the removal is
    // only deliberate if someone trusted signed it.
    let (ok, report) = verify(&h.archive, &[&h.gateway_pub]);
    assert!(!ok, "{report}");

    // What is left queries as before.
    let left = query_json(
        &h.archive,
        "SELECT \"user\", count(*) AS n FROM events GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[0]["user"], "kim");
    assert_eq!(left[1]["user"], "sam");
}
