//! A chunk's upload, written down in the spool folder before its first byte goes to the
//! archive.
//!
//! Objects are create-only, so a retry after a crash must offer exactly the bytes the
//! first attempt may already have stored. Encoding again would not: checkpoint rows
//! carry the time they were sealed and the byte counters of the moment. So the encoded
//! segments and the signed ledger entry are kept in `<file no>.staged` (written to a
//! temporary name, fsync'd, renamed) and uploaded from there until the chunk is done.
//!
//! Layout: the 16-byte header, then frames as in spool files (`[len][CRC-32][body]`):
//! the ledger entry object first, then one frame per segment holding
//! `[path length: u32 LE][path][bytes]`.

use crate::error::StoreError;
use crate::ledger::LedgerEntry;
use crate::spool::frame::{FRAME_OVERHEAD, frame_into};
use bytes::Bytes;
use std::path::{Path, PathBuf};

const STAGED_HEADER: [u8; 16] = *b"TAPSTAGE\x01\0\0\0\0\0\0\0";
const EXTENSION: &str = "staged";

/// One chunk, ready to go up: its segments and the entry that records them.
#[derive(Debug, Clone)]
pub struct ChunkUpload {
    pub file_no: u64,
    /// (path relative to the archive root, bytes), events segments first.
    pub segments: Vec<(String, Bytes)>,
    pub entry: LedgerEntry,
}

/// Where chunk `file_no`'s staged upload lives.
pub fn staged_path(spool: &Path, file_no: u64) -> PathBuf {
    spool.join(format!("{file_no:016}.{EXTENSION}"))
}

/// The staged uploads present in a spool folder, by file number.
pub fn staged_files(spool: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(spool)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(EXTENSION))
        .filter_map(|p| {
            let n = p.file_stem()?.to_str()?.parse::<u64>().ok()?;
            Some((n, p))
        })
        .collect();
    out.sort();
    out
}

impl ChunkUpload {
    /// Writes the upload down durably.
    pub fn stage(&self, spool: &Path) -> Result<(), StoreError> {
        let mut out = STAGED_HEADER.to_vec();
        frame_into(&mut out, &self.entry.to_object());
        for (p, bytes) in &self.segments {
            let mut body = Vec::with_capacity(4 + p.len() + bytes.len());
            body.extend_from_slice(&(p.len() as u32).to_le_bytes());
            body.extend_from_slice(p.as_bytes());
            body.extend_from_slice(bytes);
            frame_into(&mut out, &body);
        }
        let name = format!("{:016}.{EXTENSION}", self.file_no);
        crate::durable_file::replace_durably(spool, &name, &out)
    }

    /// Reads a staged upload back. `Ok(None)` if there is none; an error names the
    /// file if it cannot be read as one.
    pub fn load(spool: &Path, file_no: u64) -> Result<Option<Self>, StoreError> {
        let path = staged_path(spool, file_no);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Io {
                    context: format!("cannot read {}", path.display()),
                    source: e,
                });
            }
        };
        let damaged = |offset: usize, reason: &str| StoreError::SpoolDamaged {
            path: path.clone(),
            offset: offset as u64,
            reason: reason.to_string(),
        };
        if data.len() < STAGED_HEADER.len() || data[..9] != STAGED_HEADER[..9] {
            return Err(damaged(0, "not a staged upload (bad header)"));
        }
        let mut pos = STAGED_HEADER.len();
        let mut frames = Vec::new();
        while pos < data.len() {
            let rest = &data[pos..];
            if rest.len() < FRAME_OVERHEAD {
                return Err(damaged(pos, "the file ends inside a frame"));
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
            if rest.len() - FRAME_OVERHEAD < len {
                return Err(damaged(pos, "a frame runs past the end"));
            }
            let body = &rest[FRAME_OVERHEAD..FRAME_OVERHEAD + len];
            if crc32fast::hash(body) != crc {
                return Err(damaged(pos, "a frame fails its CRC check"));
            }
            frames.push((pos, body));
            pos += FRAME_OVERHEAD + len;
        }
        let Some(((_, entry_bytes), segment_frames)) = frames.split_first() else {
            return Err(damaged(pos, "no ledger entry"));
        };
        let entry = LedgerEntry::parse(entry_bytes)
            .map_err(|p| damaged(STAGED_HEADER.len(), &format!("its ledger entry is {p}")))?;
        let mut segments = Vec::new();
        for (at, body) in segment_frames {
            if body.len() < 4 {
                return Err(damaged(*at, "a segment frame is too short"));
            }
            let plen = u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize;
            if body.len() < 4 + plen {
                return Err(damaged(*at, "a segment path runs past its frame"));
            }
            let p = std::str::from_utf8(&body[4..4 + plen])
                .map_err(|_| damaged(*at, "a segment path is not UTF-8"))?;
            segments.push((p.to_string(), Bytes::copy_from_slice(&body[4 + plen..])));
        }
        Ok(Some(ChunkUpload {
            file_no,
            segments,
            entry,
        }))
    }

    /// Removes the staged upload once the archive holds all of it.
    pub fn unstage(spool: &Path, file_no: u64) -> Result<(), StoreError> {
        match std::fs::remove_file(staged_path(spool, file_no)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io {
                context: format!("cannot remove {}", staged_path(spool, file_no).display()),
                source: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{LedgerAction, LedgerBody};
    use crate::seal::GatewayKey;

    fn upload() -> ChunkUpload {
        let key = GatewayKey::generate();
        let entry = LedgerEntry::sign(
            LedgerBody {
                format: crate::ledger::entry::LEDGER_FORMAT.into(),
                gateway_id: "gw".into(),
                seq: 0,
                prev: None,
                written_ns: 5,
                key_id: key.id().0.clone(),
                action: LedgerAction::Chunk {
                    spool_id: "s".into(),
                    chunk: 3,
                    segments: vec![],
                    sessions: vec![],
                },
            },
            &key,
        );
        ChunkUpload {
            file_no: 3,
            segments: vec![
                (
                    "events/date=2026-01-01/a.parquet".into(),
                    Bytes::from_static(b"PAR1.."),
                ),
                ("sessions/date=2026-01-01/a.parquet".into(), Bytes::new()),
            ],
            entry,
        }
    }

    #[test]
    fn a_staged_upload_reads_back_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let u = upload();
        assert!(ChunkUpload::load(tmp.path(), 3).unwrap().is_none());
        u.stage(tmp.path()).unwrap();
        assert_eq!(staged_files(tmp.path()).len(), 1);
        let back = ChunkUpload::load(tmp.path(), 3).unwrap().unwrap();
        assert_eq!(back.segments, u.segments);
        assert_eq!(back.entry, u.entry);
        ChunkUpload::unstage(tmp.path(), 3).unwrap();
        assert!(staged_files(tmp.path()).is_empty());
    }

    #[test]
    fn a_damaged_staged_upload_is_reported_with_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        upload().stage(tmp.path()).unwrap();
        let path = staged_path(tmp.path(), 3);
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, data).unwrap();
        let err = ChunkUpload::load(tmp.path(), 3).unwrap_err().to_string();
        assert!(err.contains("0000000000000003.staged"), "{err}");
    }
}
