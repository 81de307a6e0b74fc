//! Start-up recovery: read back every spool file a previous run left, in order, and
//! turn each into the chunk the live journal would have cut from it.
//!
//! Replaying the files through one [`SessionBook`] rebuilds the chain state of every
//! session that was live at the crash; the writer then ends those sessions with
//! `gateway_crash` and a seal.

use super::backlog::Backlog;
use super::book::SessionBook;
use super::dir::SpoolDir;
use super::frame::read_file;
use super::journal::Chunk;
use super::record::SessionState;
use crate::error::StoreError;
use crate::event::Event;
use std::path::Path;

/// What a previous run left in the spool.
pub struct Recovered {
    /// One chunk per spool file, oldest first, to upload before anything new.
    pub chunks: Vec<Chunk>,
    /// Sessions that were live when the previous run stopped.
    pub interrupted: Vec<SessionState>,
    /// The book holding those sessions, for the journal to carry on with.
    pub book: SessionBook,
    /// The number the next spool file gets: above every number this spool ever used.
    pub next_file_no: u64,
}

/// Reads the spool folder and accounts what it holds in `backlog`.
pub fn recover(dir: &SpoolDir, backlog: &Backlog) -> Result<Recovered, StoreError> {
    let files = dir.files()?;
    let mut book = SessionBook::default();
    let mut chunks = Vec::new();
    let newest_no = files.last().map(|(n, _)| *n);
    for (no, path) in &files {
        let contents = read_file(path, Some(*no) == newest_no)?;
        if contents.dropped_tail_bytes > 0 {
            tracing::warn!(
                spool = %path.display(),
                bytes = contents.dropped_tail_bytes,
                "dropped an incomplete record at the end of the newest spool file (written as the previous run stopped; never acknowledged to a sync client)"
            );
        }
        let mut events: Vec<Event> = Vec::new();
        for record in contents.records {
            if let Some(e) = book.replay(record) {
                events.push(e);
            }
        }
        if let Some(first) = events.first() {
            backlog.file_started(*no, first.ts_ns);
        }
        backlog.spooled(events.len() as u64, contents.file_bytes);
        chunks.push(Chunk {
            file_no: *no,
            path: path.clone(),
            event_count: events.len() as u64,
            events: Some(events),
            checkpoints: book.cut_checkpoints(),
            file_bytes: contents.file_bytes,
            queued_bytes: 0,
        });
    }
    let interrupted = book.live_states();
    Ok(Recovered {
        chunks,
        interrupted,
        book,
        // Never a number used before: the newest file left, or the highest ever claimed
        // (a clean stop leaves no file, but its numbers are still taken).
        next_file_no: newest_no.unwrap_or(0).max(dir.claimed()) + 1,
    })
}

/// Reads the events of one spool file back (for a chunk the journal did not keep in
/// memory because the uploader was far behind).
pub fn read_events(path: &Path) -> Result<Vec<Event>, StoreError> {
    let contents = read_file(path, false)?;
    let mut book = SessionBook::default();
    Ok(contents
        .records
        .into_iter()
        .filter_map(|r| book.replay(r))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Direction, Kind, Status};
    use crate::session::{SessionCounts, SessionMeta};
    use crate::spool::frame::{HEADER, frame_into};
    use crate::spool::record::{encode_ended, encode_event, encode_opened, encode_state};
    use std::sync::Arc;

    fn meta(id: &str) -> SessionMeta {
        SessionMeta {
            session_id: Arc::from(id),
            gateway_id: Arc::from("gw"),
            connection: Arc::from("pg"),
            protocol: Arc::from("postgres"),
            user: Arc::from("alice"),
            groups: Vec::new(),
            client_addr: "127.0.0.1:1".into(),
            database: None,
            application_name: None,
            upstream: "postgres://u@h:5432".into(),
            start_ns: 1_700_000_000_000_000_000,
            issuer: None,
            token_id: None,
            tls: None,
        }
    }

    fn event(m: &SessionMeta, seq: u64) -> Event {
        Event {
            session_id: m.session_id.clone(),
            seq,
            ts_ns: m.start_ns + seq as i64,
            gateway_id: m.gateway_id.clone(),
            connection: m.connection.clone(),
            protocol: m.protocol.clone(),
            user: m.user.clone(),
            direction: Direction::Client,
            kind: Kind::Query,
            command: Some(format!("select {seq}")),
            status: Status::Ok,
            row_count: None,
            duration_us: None,
            masked: Vec::new(),
            payload: bytes::Bytes::from(vec![seq as u8; 3]),
            text: None,
            prev_hash: [seq as u8; 32],
            hash: [seq as u8 + 1; 32],
        }
    }

    fn write(dir: &SpoolDir, no: u64, records: &[Vec<u8>], tail: &[u8]) {
        let mut data = HEADER.to_vec();
        for r in records {
            frame_into(&mut data, r);
        }
        data.extend_from_slice(tail);
        std::fs::write(dir.file_path(no), data).unwrap();
    }

    #[test]
    fn files_replay_into_chunks_and_live_sessions_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SpoolDir::open(tmp.path()).unwrap();
        let (a, b) = (meta("A"), meta("B"));
        write(
            &dir,
            1,
            &[
                encode_opened(&a),
                encode_event(&event(&a, 0)),
                encode_opened(&b),
                encode_event(&event(&b, 0)),
                encode_event(&event(&a, 1)),
            ],
            b"",
        );
        let carried = |m: &SessionMeta, last: u64| {
            encode_state(&SessionState {
                meta: m.clone(),
                counts: SessionCounts {
                    events: last + 1,
                    commands: last + 1,
                    ..Default::default()
                },
                last: Some((last, [last as u8 + 1; 32])),
            })
        };
        // A crash while writing the last record of file 2 leaves 5 bytes of it.
        write(
            &dir,
            2,
            &[
                carried(&a, 1),
                carried(&b, 0),
                encode_event(&event(&b, 1)),
                encode_event(&event(&b, 2)),
                encode_ended("B", 9, "client_closed"),
            ],
            &[40, 0, 0, 0, 7],
        );
        let backlog = Backlog::new(1 << 30);
        let r = recover(&dir, &backlog).unwrap();
        assert_eq!(r.next_file_no, 3);
        assert_eq!(r.chunks.len(), 2);
        let seqs = |c: &Chunk| -> Vec<(String, u64)> {
            c.events
                .as_ref()
                .unwrap()
                .iter()
                .map(|e| (e.session_id.to_string(), e.seq))
                .collect()
        };
        assert_eq!(
            seqs(&r.chunks[0]),
            vec![("A".into(), 0), ("B".into(), 0), ("A".into(), 1)]
        );
        assert_eq!(seqs(&r.chunks[1]), vec![("B".into(), 1), ("B".into(), 2)]);
        // Chunk 1 checkpoints both sessions; chunk 2 only B, which it also ends.
        let cp1: Vec<_> = r.chunks[0]
            .checkpoints
            .iter()
            .map(|c| (c.meta.session_id.to_string(), c.last_seq))
            .collect();
        assert_eq!(cp1, vec![("A".into(), 1), ("B".into(), 0)]);
        let cp2 = &r.chunks[1].checkpoints;
        assert_eq!(cp2.len(), 1);
        assert_eq!((cp2[0].last_seq, cp2[0].counts.events), (2, 3));
        assert_eq!(
            cp2[0].end.as_ref().map(|e| e.1.as_str()),
            Some("client_closed")
        );
        // A was live when the run stopped: it is handed back with its chain head.
        assert_eq!(r.interrupted.len(), 1);
        assert_eq!(&*r.interrupted[0].meta.session_id, "A");
        assert_eq!(r.interrupted[0].last, Some((1, [2; 32])));
        assert_eq!(backlog.events(), 5);
        assert_eq!(read_events(&dir.file_path(1)).unwrap().len(), 3);
    }

    #[test]
    fn damage_before_the_newest_file_stops_recovery_with_the_file_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SpoolDir::open(tmp.path()).unwrap();
        let a = meta("A");
        write(&dir, 1, &[encode_opened(&a)], &[1, 2, 3]);
        write(&dir, 2, &[], b"");
        let err = recover(&dir, &Backlog::new(1 << 30))
            .err()
            .expect("damage must not be dropped")
            .to_string();
        assert!(err.contains("0000000000000001.spool"), "{err}");
        assert!(err.contains("move the file aside"), "{err}");
    }
}
