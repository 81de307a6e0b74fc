//! Replacing a small file so that a crash at any moment leaves either the old content or
//! the new, never a torn mix: write a temporary file, fsync it, rename it over the old
//! one, fsync the folder.

use crate::error::StoreError;
use std::path::Path;

/// Replaces `dir/name` with `bytes`, durably.
pub fn replace_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let io = |e| StoreError::Io {
        context: format!("cannot write {}", path.display()),
        source: e,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_is_left() {
        let tmp = tempfile::tempdir().unwrap();
        replace_durably(tmp.path(), "f", b"one").unwrap();
        replace_durably(tmp.path(), "f", b"two").unwrap();
        assert_eq!(std::fs::read(tmp.path().join("f")).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }
}
