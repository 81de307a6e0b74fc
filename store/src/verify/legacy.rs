//! Format 1 segments, written before gateways kept a ledger: each event stores its
//! full `prev_hash` and `hash`, so a session is checked by walking all its rows and
//! holding the heads against its checkpoint seals. Nothing lists these segments, so a
//! whole one deleted cannot be noticed; the report counts them so nobody assumes more.

use super::report::ArchiveProblem;
use super::segment_read::{decode, seals_of};
use super::session_check::{SessionCheck, StoredSeal};
use super::verdict::SessionVerdict;
use crate::batch::EventColumns;
use crate::error::StoreError;
use crate::seal::TrustedKeys;
use bytes::Bytes;
use std::collections::BTreeMap;

/// Totals of the legacy check.
#[derive(Debug, Default)]
pub struct LegacyOutcome {
    pub events: u64,
    pub segments: u64,
    pub bytes: u64,
    pub problems: Vec<ArchiveProblem>,
}

/// Checks format 1 segments (path, bytes): `events/…` and `sessions/…` alike.
pub fn verify_segments(
    files: Vec<(String, Bytes)>,
    keys: &TrustedKeys,
    report: &mut impl FnMut(&SessionVerdict),
) -> Result<LegacyOutcome, StoreError> {
    let mut out = LegacyOutcome::default();
    let mut batches = Vec::new();
    let mut seals: BTreeMap<String, Vec<StoredSeal>> = BTreeMap::new();
    for (path, bytes) in files {
        out.segments += 1;
        out.bytes += bytes.len() as u64;
        let decoded = match decode(bytes) {
            Ok(d) => d,
            Err(e) => {
                out.problems.push(ArchiveProblem::SegmentAltered {
                    path,
                    detail: format!("it cannot be read ({e})"),
                });
                continue;
            }
        };
        if path.starts_with("sessions/") {
            for b in &decoded.batches {
                for s in seals_of(b)? {
                    seals.entry(s.seal.session_id.clone()).or_default().push(s);
                }
            }
        } else {
            batches.extend(decoded.batches);
        }
    }
    let columns: Vec<EventColumns<'_>> = batches
        .iter()
        .map(EventColumns::new)
        .collect::<Result<_, _>>()?;
    let mut rows: BTreeMap<&str, Vec<(u64, usize, usize)>> = BTreeMap::new();
    for (b, c) in columns.iter().enumerate() {
        out.events += c.len() as u64;
        for r in 0..c.len() {
            rows.entry(c.session_id(r))
                .or_default()
                .push((c.seq(r), b, r));
        }
    }
    let mut ids: Vec<String> = rows.keys().map(|s| s.to_string()).collect();
    ids.extend(seals.keys().cloned());
    ids.sort();
    ids.dedup();
    for id in ids {
        let mut check = SessionCheck::new(&id, seals.remove(&id).unwrap_or_default(), keys);
        let mut list = rows.remove(id.as_str()).unwrap_or_default();
        list.sort();
        // Consecutive rows of one batch are walked together.
        for run in list.chunk_by(|a, b| a.1 == b.1) {
            let indices: Vec<usize> = run.iter().map(|x| x.2).collect();
            check.feed(&columns[run[0].1], &indices);
        }
        report(&check.finish());
    }
    Ok(out)
}
