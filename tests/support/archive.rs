//! An archive location as the CLI takes it, with the environment that reaches it
//! (none for a local folder; the Azurite settings for az://).

use super::tapline_bin;
use std::path::Path;
use std::process::{Command, Output};

/// Where an archive is and how to reach it.
#[derive(Clone, Debug, Default)]
pub struct ArchiveRef {
    pub location: String,
    pub env: Vec<(String, String)>,
}

impl ArchiveRef {
    /// A local archive folder.
    pub fn local(path: &Path) -> Self {
        ArchiveRef {
            location: path.display().to_string(),
            env: Vec::new(),
        }
    }

    /// Runs `tapline ARGS --archive LOCATION`.
    pub fn tapline(&self, args: &[&str]) -> Output {
        Command::new(tapline_bin())
            .args(args)
            .arg("--archive")
            .arg(&self.location)
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run tapline")
    }

    /// Runs `tapline query SQL --format json` and parses the rows.
    pub fn query_json(&self, sql: &str) -> Vec<serde_json::Value> {
        let out = self.tapline(&["query", sql, "--format", "json"]);
        assert!(
            out.status.success(),
            "tapline query failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sql
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "query output is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        v.as_array().cloned().unwrap_or_default()
    }

    /// One number from a query whose single row has a column `n`.
    pub fn count(&self, sql: &str) -> i64 {
        let rows = self.query_json(sql);
        rows.first()
            .and_then(|r| r["n"].as_i64())
            .unwrap_or_else(|| panic!("no `n` in {rows:?} for {sql}"))
    }
}
