//! The spool folder: its lock, its identity and its numbered files.
//!
//! One gateway owns a spool at a time (an exclusive lock on `LOCK`). The spool's id,
//! made once when the folder is first used, goes into every segment name together with
//! the spool file number, so a re-upload after a crash overwrites the same object and a
//! fresh spool can never overwrite an older one's segments.

use crate::error::StoreError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "LOCK";
const ID_FILE: &str = "spool.id";
const EXTENSION: &str = "spool";

/// An opened, locked spool folder.
#[derive(Debug)]
pub struct SpoolDir {
    path: PathBuf,
    id: String,
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
                let tmp = path.join(format!("{ID_FILE}.tmp"));
                std::fs::write(&tmp, &id)
                    .and_then(|_| File::open(&tmp)?.sync_all())
                    .and_then(|_| std::fs::rename(&tmp, &id_path))
                    .map_err(io(format!("cannot write {}", id_path.display())))?;
                sync_dir(path)?;
                id
            }
        };
        Ok(SpoolDir {
            path: path.to_path_buf(),
            id,
            _lock: lock,
        })
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
}
