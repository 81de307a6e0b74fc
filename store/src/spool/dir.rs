//! The spool folder: its lock, its identity and its numbered files.
//!
//! One gateway owns a spool at a time (an exclusive lock on `LOCK`). The spool's id,
//! made once when the folder is first used, goes into every segment name together with
//! the spool file number. File numbers are claimed durably (`spool.counter`) before a
//! file is created and never handed out again, across clean stops, crashes and
//! recovery: a spool that empties on a clean stop does not start counting at 1 again,
//! so a name is never reused for other content.

use crate::error::StoreError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "LOCK";
const ID_FILE: &str = "spool.id";
const COUNTER_FILE: &str = "spool.counter";
const EXTENSION: &str = "spool";

/// File numbers are claimed this many at a time, so opening a spool file (every flush
/// interval) rarely costs the extra fsyncs of a claim. Numbers left unused by a stop
/// are skipped, which costs nothing: names must be unique, not dense.
const CLAIM_BLOCK: u64 = 64;

/// An opened, locked spool folder.
#[derive(Debug)]
pub struct SpoolDir {
    path: PathBuf,
    id: String,
    /// The highest file number claimed durably, as `spool.counter` holds it.
    claimed: std::sync::Mutex<u64>,
    _lock: File,
}

impl SpoolDir {
    /// Opens (creating if needed) and locks a spool folder.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let io = |context: String| move |e| StoreError::Io { context, source: e };
        std::fs::create_dir_all(path).map_err(io(format!(
            "cannot create spool folder {}; pick a writable folder with --spool",
            path.display()
        )))?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(io(format!("cannot open {}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
                return Err(StoreError::SpoolInUse {
                    path: path.to_path_buf(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io(format!("cannot lock {}", lock_path.display()))(e));
            }
        }
        lock.set_len(0)
            .and_then(|_| write!(lock, "pid {}", std::process::id()))
            .map_err(io(format!("cannot write {}", lock_path.display())))?;

        let id_path = path.join(ID_FILE);
        let id = match std::fs::read_to_string(&id_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_ascii_lowercase(),
            _ => {
                let id = ulid::Ulid::new().to_string().to_ascii_lowercase();
                crate::durable_file::replace_durably(path, ID_FILE, id.as_bytes())?;
                id
            }
        };
        let counter_path = path.join(COUNTER_FILE);
        let claimed = match std::fs::read_to_string(&counter_path) {
            Ok(s) => s.trim().parse::<u64>().map_err(|_| StoreError::SpoolDamaged {
                path: counter_path.clone(),
                offset: 0,
                reason: format!(
                    "`{}` is not a file number; it must hold the highest spool file number ever used",
                    s.trim()
                ),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(format!("cannot read {}", counter_path.display()))(e)),
        };
        Ok(SpoolDir {
            path: path.to_path_buf(),
            id,
            claimed: std::sync::Mutex::new(claimed),
            _lock: lock,
        })
    }

    /// The highest file number ever claimed in this spool (0 for a new spool).
    pub fn claimed(&self) -> u64 {
        *self.claimed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure file number `n` is claimed durably before its file is created, so no
    /// later run hands `n` out again.
    pub fn claim(&self, n: u64) -> Result<(), StoreError> {
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        if n <= *claimed {
            return Ok(());
        }
        let upto = n.saturating_add(CLAIM_BLOCK - 1);
        crate::durable_file::replace_durably(
            &self.path,
            COUNTER_FILE,
            upto.to_string().as_bytes(),
        )?;
        *claimed = upto;
        Ok(())
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The spool's identity, part of every segment name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The path of spool file number `n`.
    pub fn file_path(&self, n: u64) -> PathBuf {
        self.path.join(format!("{n:016}.{EXTENSION}"))
    }

    /// The spool files present, oldest first.
    pub fn files(&self) -> Result<Vec<(u64, PathBuf)>, StoreError> {
        let entries = std::fs::read_dir(&self.path).map_err(|e| StoreError::Io {
            context: format!("cannot list spool folder {}", self.path.display()),
            source: e,
        })?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            if let Some(n) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push((n, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Makes file creations and removals in the folder durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        sync_dir(&self.path)
    }
}

/// Whether another process holds the spool at `path` (for `tapline gateway status`).
pub fn spool_is_locked(path: &Path) -> bool {
    match OpenOptions::new().read(true).open(path.join(LOCK_FILE)) {
        Ok(f) => matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Io {
            context: format!("cannot sync spool folder {}", path.display()),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_is_locked_to_one_gateway_and_keeps_its_id() {
        let tmp = tempfile::tempdir().unwrap();
        let a = SpoolDir::open(tmp.path()).unwrap();
        let err = SpoolDir::open(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("another"), "{err}");
        assert!(spool_is_locked(tmp.path()));
        let id = a.id().to_string();
        drop(a);
        assert!(!spool_is_locked(tmp.path()));
        let b = SpoolDir::open(tmp.path()).unwrap();
        assert_eq!(b.id(), id);
        std::fs::write(b.file_path(2), b"").unwrap();
        std::fs::write(b.file_path(10), b"").unwrap();
        std::fs::write(tmp.path().join("notes.txt"), b"").unwrap();
        let nums: Vec<u64> = b.files().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(nums, vec![2, 10]);
    }

    #[test]
    fn claimed_file_numbers_survive_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let a = SpoolDir::open(tmp.path()).unwrap();
        assert_eq!(a.claimed(), 0);
        a.claim(1).unwrap();
        let first_block = a.claimed();
        assert!(first_block >= 1);
        a.claim(first_block).unwrap();
        assert_eq!(a.claimed(), first_block, "within the block: no new claim");
        a.claim(first_block + 1).unwrap();
        let second_block = a.claimed();
        assert!(second_block > first_block);
        drop(a);
        let b = SpoolDir::open(tmp.path()).unwrap();
        assert_eq!(b.claimed(), second_block);
    }
}
