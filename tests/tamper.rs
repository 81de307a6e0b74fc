//! Tamper evidence: record a real session, rewrite its Parquet files the way an
//! attacker would, and check that `tapline verify` names the break and its seq.

mod support;

use datafusion::arrow::array::{Array, AsArray, BinaryArray, RecordBatch};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;
use support::segments::{copy_dir, parquet_files, read, reorder, replace, resign_seals, write};
use support::tapline;
use tapline_store::GatewayKey;
use tapline_store::segment::Table;

struct Recorded {
    archive: PathBuf,
    pubkey: PathBuf,
    events: usize,
    _gw: GatewayProc,
    _pg: PgServer,
}

fn record_a_session() -> Recorded {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "60s",
        extra: Vec::new(),
        ..Default::default()
    });
    let out = Command::new("psql")
        .arg(gw.conninfo("alice"))
        .args([
            "-X", "-c", "SELECT 1", "-c", "SELECT 2", "-c", "SELECT 3", "-c", "SELECT 4",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gw.stop());
    let archive = gw.archive().to_path_buf();
    assert_eq!(
        parquet_files(&archive.join("events")).len(),
        1,
        "one events segment"
    );
    let events = read(&parquet_files(&archive.join("events"))[0]).num_rows();
    assert!(
        events >= 10,
        "session_start, auth, 4 queries, 4 results, session_end"
    );
    Recorded {
        archive,
        pubkey: gw.pubkey(),
        events,
        _gw: gw,
        _pg: pg,
    }
}

/// Copies the archive, applies `tamper` to the copy, and returns verify's output.
fn verify_after(rec: &Recorded, tamper: impl FnOnce(&Path)) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("archive");
    copy_dir(&rec.archive, &copy);
    tamper(&copy);
    let out = tapline(&copy, &["verify", "--pubkey", rec.pubkey.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

fn tamper_events(archive: &Path, f: impl FnOnce(&RecordBatch) -> RecordBatch) {
    let path = parquet_files(&archive.join("events")).remove(0);
    let batch = read(&path);
    write(&path, &f(&batch), Table::Events);
}

fn expect_break(rec: &Recorded, tamper: impl FnOnce(&Path), expected: &str) {
    let (ok, report) = verify_after(rec, tamper);
    assert!(!ok, "verify must fail for {expected}:\n{report}");
    assert!(
        report.contains(expected),
        "expected `{expected}` in:\n{report}"
    );
    assert!(report.contains("1 broken"), "{report}");
}

#[test]
fn verify_names_every_kind_of_tampering_at_its_seq() {
    let rec = record_a_session();
    let n = rec.events as u32;
    let (ok, report) = verify_after(&rec, |_| {});
    assert!(ok, "an untouched archive verifies:\n{report}");

    // One payload byte changed at seq 4.
    expect_break(
        &rec,
        |a| {
            tamper_events(a, |b| {
                let payload = b.column_by_name("payload").unwrap().as_binary::<i32>();
                let values: Vec<Vec<u8>> = (0..payload.len())
                    .map(|i| {
                        let mut v = payload.value(i).to_vec();
                        if i == 4 {
                            let at = v.len() - 2;
                            v[at] ^= 0x01;
                        }
                        v
                    })
                    .collect();
                let col = BinaryArray::from_iter_values(values.iter());
                replace(b, "payload", Arc::new(col))
            })
        },
        "BROKEN at seq 4: modified",
    );

    // One event deleted.
    expect_break(
        &rec,
        |a| {
            tamper_events(a, |b| {
                reorder(b, &(0..n).filter(|&i| i != 5).collect::<Vec<_>>())
            })
        },
        "BROKEN at seq 5: missing",
    );

    // Two events swapped: the rows keep their seq numbers, the contents trade places.
    expect_break(
        &rec,
        |a| {
            tamper_events(a, |b| {
                let mut rows: Vec<u32> = (0..n).collect();
                rows.swap(6, 7);
                let swapped = reorder(b, &rows);
                replace(&swapped, "seq", b.column_by_name("seq").unwrap().clone())
            })
        },
        "BROKEN at seq 6: reordered",
    );

    // An event inserted (a copy of seq 3 placed again).
    expect_break(
        &rec,
        |a| {
            tamper_events(a, |b| {
                let mut rows: Vec<u32> = (0..n).collect();
                rows.insert(4, 3);
                reorder(b, &rows)
            })
        },
        "BROKEN at seq 3: inserted",
    );

    // The session truncated: its last two events removed.
    expect_break(
        &rec,
        |a| tamper_events(a, |b| reorder(b, &(0..n - 2).collect::<Vec<_>>())),
        &format!("BROKEN at seq {}: truncated", n - 2),
    );

    // A seal re-signed with another key, keeping the original key id.
    expect_break(
        &rec,
        |a| {
            let path = parquet_files(&a.join("sessions")).remove(0);
            resign_seals(&path, &GatewayKey::generate());
        },
        &format!("BROKEN at seq {}: bad signature", n - 1),
    );
}
