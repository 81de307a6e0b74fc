//! Spool files on disk: a 16-byte header, then records framed as
//! `[body length: u32 LE][CRC-32 of body: u32 LE][body]`.
//!
//! A crash can leave the last record of the newest file half written. Reading tells
//! that incomplete tail (dropped, and reported) apart from damage anywhere else (an
//! error naming the file and offset, because dropping it would lose acknowledged data).

use super::record::{LAYOUT, OLDEST_LAYOUT, SpoolRecord, decode_layout};
use crate::error::StoreError;
use std::path::Path;

/// Marks a tapline spool file, followed by the layout version and reserved bytes.
pub const HEADER: [u8; 16] = *b"TAPSPOOL\x03\0\0\0\0\0\0\0";

/// Bytes of framing in front of every record body.
pub const FRAME_OVERHEAD: usize = 8;

/// No single record is larger than this; a larger length means a torn or damaged frame.
const MAX_RECORD: usize = 1 << 30;

/// Frames one record body, appending it to `out`.
pub fn frame_into(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// Frames one record body.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + FRAME_OVERHEAD);
    frame_into(&mut out, body);
    out
}

/// The records of one spool file.
#[derive(Debug)]
pub struct FileContents {
    pub records: Vec<SpoolRecord>,
    /// Bytes after the last whole record that were dropped as an incomplete tail.
    pub dropped_tail_bytes: u64,
    /// Bytes the file held on disk.
    pub file_bytes: u64,
}

/// Reads a spool file. Only the newest file (`newest`) may end in an incomplete record,
/// which is dropped; damage anywhere else is an error.
pub fn read_file(path: &Path, newest: bool) -> Result<FileContents, StoreError> {
    let data = std::fs::read(path).map_err(|e| StoreError::Io {
        context: format!("cannot read spool file {}", path.display()),
        source: e,
    })?;
    parse(&data, newest).map_err(|(offset, reason)| StoreError::SpoolDamaged {
        path: path.to_path_buf(),
        offset,
        reason,
    })
}

fn parse(data: &[u8], newest: bool) -> Result<FileContents, (u64, String)> {
    let file_bytes = data.len() as u64;
    if data.len() < HEADER.len() {
        // A file created but not yet given its header: only possible for the newest.
        return if newest {
            Ok(FileContents {
                records: Vec::new(),
                dropped_tail_bytes: file_bytes,
                file_bytes,
            })
        } else {
            Err((0, "the file is shorter than its header".into()))
        };
    }
    if data[..8] != HEADER[..8] {
        return Err((0, "not a tapline spool file (bad magic)".into()));
    }
    let layout = data[8];
    if !(OLDEST_LAYOUT..=LAYOUT).contains(&layout) {
        return Err((
            8,
            format!(
                "spool layout version {layout} is not one this gateway reads ({OLDEST_LAYOUT} to {LAYOUT}); drain it with the gateway version that wrote it"
            ),
        ));
    }
    let mut records = Vec::new();
    let mut pos = HEADER.len();
    while pos < data.len() {
        let rest = &data[pos..];
        let torn = |reason: String| -> Result<FileContents, (u64, String)> {
            if newest {
                Ok(FileContents {
                    records: Vec::new(),
                    dropped_tail_bytes: (data.len() - pos) as u64,
                    file_bytes,
                })
            } else {
                Err((pos as u64, reason))
            }
        };
        if rest.len() < FRAME_OVERHEAD {
            let mut tail = torn("the file ends inside a record frame".into())?;
            tail.records = records;
            return Ok(tail);
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len > MAX_RECORD || rest.len() - FRAME_OVERHEAD < len {
            let mut tail = torn(format!("a record claims {len} bytes past the end"))?;
            tail.records = records;
            return Ok(tail);
        }
        let body = &rest[FRAME_OVERHEAD..FRAME_OVERHEAD + len];
        if crc32fast::hash(body) != crc {
            let mut tail = torn("a record fails its CRC check".into())?;
            tail.records = records;
            return Ok(tail);
        }
        let record = decode_layout(body, layout).map_err(|e| (pos as u64, e.0))?;
        records.push(record);
        pos += FRAME_OVERHEAD + len;
    }
    Ok(FileContents {
        records,
        dropped_tail_bytes: 0,
        file_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::super::record::encode_ended;
    use super::*;

    fn file(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        for r in records {
            frame_into(&mut out, r);
        }
        out
    }

    #[test]
    fn whole_records_are_read_back() {
        let data = file(&[encode_ended("a", 1, "x"), encode_ended("b", 2, "y")]);
        let c = parse(&data, false).unwrap();
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.dropped_tail_bytes, 0);
    }

    #[test]
    fn only_the_incomplete_tail_of_the_newest_file_is_dropped() {
        let whole = file(&[encode_ended("a", 1, "x"), encode_ended("b", 2, "y")]);
        let first_end = HEADER.len() + FRAME_OVERHEAD + encode_ended("a", 1, "x").len();
        for cut in first_end + 1..whole.len() {
            let c = parse(&whole[..cut], true).unwrap();
            assert_eq!(c.records.len(), 1, "cut at {cut}");
            assert_eq!(c.dropped_tail_bytes, (cut - first_end) as u64);
            // An older file with the same damage is an error, never a silent drop.
            let (offset, _) = parse(&whole[..cut], false).unwrap_err();
            assert_eq!(offset, first_end as u64);
        }
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let mut data = file(&[encode_ended("a", 1, "x"), encode_ended("b", 2, "y")]);
        let n = data.len();
        data[n - 2] ^= 0x40;
        assert_eq!(parse(&data, true).unwrap().records.len(), 1);
        let (_, reason) = parse(&data, false).unwrap_err();
        assert!(reason.contains("CRC"), "{reason}");
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let (_, reason) = parse(b"PAR1 not a spool file at all", true).unwrap_err();
        assert!(reason.contains("magic"), "{reason}");
    }

    #[test]
    fn a_spool_of_the_previous_layout_drains_and_an_unknown_one_is_refused() {
        let mut data = file(&[encode_ended("a", 1, "x")]);
        data[8] = OLDEST_LAYOUT;
        assert_eq!(parse(&data, false).unwrap().records.len(), 1);
        data[8] = LAYOUT + 1;
        let (offset, reason) = parse(&data, false).unwrap_err();
        assert_eq!(offset, 8);
        assert!(
            reason.contains("drain it with the gateway version"),
            "{reason}"
        );
    }
}
