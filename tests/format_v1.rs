//! Archives written in format 1 (full `prev_hash` and `hash` per event, no ledger)
//! still read and verify, and tampering with them is still caught. The fixture was
//! recorded by a format 1 gateway in front of a real PostgreSQL (tests/fixtures).

mod support;

use datafusion::arrow::array::{Array, AsArray, BinaryArray};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::segments::{copy_dir, parquet_files, read, replace};
use support::{query_json, tapline};

fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("archive");
    copy_dir(&root.join("archive-v1"), &copy);
    (dir, copy, root.join("archive-v1-key.pem"))
}

#[test]
fn a_format_1_archive_reads_and_verifies() {
    let (_dir, archive, key) = fixture();
    let out = tapline(&archive, &["verify", "--pubkey", key.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("2 session(s) checked, 2 ok, 0 broken"),
        "{text}"
    );
    assert!(
        text.contains("has no ledger"),
        "verify says what it cannot check: {text}"
    );

    let rows = query_json(
        &archive,
        "SELECT \"user\", command, status, sqlstate FROM commands ORDER BY ts",
    );
    let cmds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["user"].as_str().unwrap(), r["command"].as_str().unwrap()))
        .collect();
    assert!(
        cmds.contains(&("alice", "SELECT * FROM v1_accounts")),
        "{cmds:?}"
    );
    assert!(cmds.contains(&("bob", "SELECT 'bob was here'")), "{cmds:?}");
    let failed: Vec<&serde_json::Value> = rows.iter().filter(|r| r["status"] == "error").collect();
    assert_eq!(failed.len(), 1, "{rows:?}");
    assert_eq!(failed[0]["sqlstate"], "42P01");
    // The payload of a format 1 row is read as stored, whole.
    let q = query_json(
        &archive,
        "SELECT encode(payload, 'hex') AS p, command FROM events WHERE kind = 'query' AND command = 'SELECT ''bob was here'''",
    );
    assert!(
        q[0]["p"]
            .as_str()
            .unwrap()
            .contains(&hex_of("SELECT 'bob was here'")),
        "{q:?}"
    );
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn tampering_with_a_format_1_archive_is_still_caught() {
    let (_dir, archive, key) = fixture();
    let seg = parquet_files(&archive.join("events")).remove(0);
    let b = read(&seg);
    let payload = b.column_by_name("payload").unwrap().as_binary::<i32>();
    let values: Vec<Vec<u8>> = (0..payload.len())
        .map(|i| {
            let mut v = payload.value(i).to_vec();
            if i == 3 {
                let at = v.len() - 2;
                v[at] ^= 1;
            }
            v
        })
        .collect();
    let changed = replace(
        &b,
        "payload",
        Arc::new(BinaryArray::from_iter_values(values.iter())),
    );
    // Written back as format 1 wrote it: the same columns, no format metadata.
    let file = std::fs::File::create(&seg).unwrap();
    let mut w =
        datafusion::parquet::arrow::ArrowWriter::try_new(file, changed.schema(), None).unwrap();
    w.write(&changed).unwrap();
    w.close().unwrap();
    let out = tapline(&archive, &["verify", "--pubkey", key.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("BROKEN at seq 3: modified"), "{text}");
}
