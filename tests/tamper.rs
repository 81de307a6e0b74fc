//! Tamper evidence: record a real session, rewrite its Parquet files the way an
//! attacker would, and check that `tapline verify` names the break and its seq.

mod support;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, FixedSizeBinaryArray, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{concat_batches, take};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;
use support::tapline;
use tapline_store::GatewayKey;

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(parquet_files(&p));
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    out
}

fn read(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn write(path: &Path, batch: &RecordBatch, sort: &[u32]) {
    std::fs::write(path, tapline_store::segment::encode(batch, sort).unwrap()).unwrap();
}

fn reorder(batch: &RecordBatch, rows: &[u32]) -> RecordBatch {
    let idx = UInt32Array::from(rows.to_vec());
    let cols: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &idx, None).unwrap())
        .collect();
    RecordBatch::try_new(batch.schema(), cols).unwrap()
}

fn replace(batch: &RecordBatch, name: &str, column: ArrayRef) -> RecordBatch {
    let i = batch.schema().index_of(name).unwrap();
    let mut cols = batch.columns().to_vec();
    cols[i] = column;
    RecordBatch::try_new(batch.schema(), cols).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

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
    write(&path, &f(&batch), &[0, 1]);
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
            let b = read(&path);
            let forger = GatewayKey::generate();
            let ids = b.column_by_name("session_id").unwrap().as_string::<i32>();
            let last = b
                .column_by_name("last_seq")
                .unwrap()
                .as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
            let heads = b
                .column_by_name("head_hash")
                .unwrap()
                .as_fixed_size_binary();
            let sigs: Vec<[u8; 64]> = (0..b.num_rows())
                .map(|i| {
                    let head: [u8; 32] = heads.value(i).try_into().unwrap();
                    forger.seal(ids.value(i), last.value(i), head).signature
                })
                .collect();
            let col = FixedSizeBinaryArray::try_from_iter(sigs.iter()).unwrap();
            write(
                &path,
                &replace(&b, "seal_signature", Arc::new(col)),
                &[0, 12],
            );
        },
        &format!("BROKEN at seq {}: bad signature", n - 1),
    );
}
