//! Reading the archive for the viewer. Every read is a small query that names the
//! session and a seq range, so DataFusion prunes to the row groups and pages that hold
//! it (files are sorted by (session_id, seq) with page statistics, page indexes and a
//! bloom filter on session_id): opening a session of millions of events reads a window
//! of it, and seeking reads another, never the session from the start.

use crate::columns::Columns;
use crate::error::ReplayError;
use crate::model::{EventDetail, Integrity, SessionHeader, Status, Step};
use crate::session_index::SessionIndex;
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::collections::HashSet;
use tapline_query::sessions::{SessionFilter, literal};
use tapline_store::Archive;

/// Events read per timeline window; the player keeps at most a few windows.
pub const WINDOW_EVENTS: u64 = 2048;

/// The kinds that make timeline lines (commands and session boundaries).
const STEP_KINDS: &str = "'session_start', 'auth', 'query', 'policy', 'session_end'";

/// The archive, opened for the viewer.
pub struct ArchiveSource {
    ctx: SessionContext,
    archive: Archive,
}

impl ArchiveSource {
    /// Registers the archive's tables; fails with a clear message if it cannot be read.
    pub async fn open(archive: Archive) -> Result<Self, ReplayError> {
        let ctx = tapline_query::open_context(&archive).await?;
        Ok(ArchiveSource { ctx, archive })
    }

    /// The archive this source reads.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    async fn rows(&self, sql: &str) -> Result<Vec<RecordBatch>, ReplayError> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }

    /// The `seq` of a query's first row (queries asking for one seq: a max or a min).
    async fn seq_of(&self, sql: &str) -> Result<Option<u64>, ReplayError> {
        for batch in self.rows(sql).await? {
            let mut c = Columns::new(&batch);
            if !c.is_empty() {
                return Ok(c.u64("seq", 0));
            }
        }
        Ok(None)
    }

    /// Every session the flags select, as the browser's index. One pass over the
    /// `sessions` view, read batch by batch into the compact index.
    pub async fn session_index(&self, filter: &SessionFilter) -> Result<SessionIndex, ReplayError> {
        let listed_at = tapline_store::event::now_ns();
        let sql = format!(
            "SELECT session_id, start_ts, end_ts, \"user\", connection, protocol, commands, errors, \
             blocked, masked_values, state FROM sessions {}",
            filter.where_clause()
        );
        let mut index = SessionIndex::default();
        let mut stream = self.ctx.sql(&sql).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let mut c = Columns::new(&batch);
            let (Some(ids), Some(users), Some(conns), Some(protos), Some(states)) = (
                c.utf8("session_id"),
                c.utf8("user"),
                c.utf8("connection"),
                c.utf8("protocol"),
                c.utf8("state"),
            ) else {
                continue;
            };
            for i in 0..c.len() {
                index.push_parts(
                    ids.value(i),
                    c.i64("start_ts", i).unwrap_or_default(),
                    (states.value(i) != "live")
                        .then(|| c.i64("end_ts", i))
                        .flatten(),
                    users.value(i),
                    conns.value(i),
                    protos.value(i),
                    [
                        c.u64("commands", i).unwrap_or_default(),
                        c.u64("errors", i).unwrap_or_default(),
                        c.u64("blocked", i).unwrap_or_default(),
                        c.u64("masked_values", i).unwrap_or_default(),
                    ],
                );
            }
        }
        index.set_listed_at(listed_at);
        index.finish();
        Ok(index)
    }

    /// The sessions with a command containing `needle` (case-insensitive): the part
    /// of the browser's filter that needs the events.
    pub async fn command_hits(
        &self,
        filter: &SessionFilter,
        needle: &str,
    ) -> Result<HashSet<String>, ReplayError> {
        let mut conds = vec![
            "kind = 'query'".to_string(),
            format!(
                "strpos(lower(command), {}) > 0",
                literal(&needle.to_lowercase())
            ),
        ];
        if let Some(since) = &filter.since {
            conds.push(format!(
                "date >= '{}'",
                since.date_naive().format("%Y-%m-%d")
            ));
        }
        if let Some(until) = &filter.until {
            conds.push(format!(
                "date <= '{}'",
                until.date_naive().format("%Y-%m-%d")
            ));
        }
        let sql = format!(
            "SELECT DISTINCT session_id FROM events WHERE {}",
            conds.join(" AND ")
        );
        let mut hits = HashSet::new();
        for batch in self.rows(&sql).await? {
            let mut c = Columns::new(&batch);
            for i in 0..c.len() {
                if let Some(id) = c.str("session_id", i) {
                    hits.insert(id);
                }
            }
        }
        Ok(hits)
    }

    /// The header facts of one session; `None` if the archive has no such session.
    pub async fn header(&self, session_id: &str) -> Result<Option<SessionHeader>, ReplayError> {
        let sql = format!(
            "SELECT session_id, \"user\", groups, client_addr, connection, upstream, database, \
             start_ts, end_ts, end_reason, last_seq, events, commands \
             FROM sessions WHERE session_id = {}",
            literal(session_id)
        );
        for batch in self.rows(&sql).await? {
            let mut c = Columns::new(&batch);
            if c.is_empty() {
                continue;
            }
            return Ok(Some(SessionHeader {
                session_id: c.str("session_id", 0).unwrap_or_default(),
                user: c.str("user", 0).unwrap_or_default(),
                groups: c.strings("groups", 0),
                client_addr: c.str("client_addr", 0).unwrap_or_default(),
                connection: c.str("connection", 0).unwrap_or_default(),
                upstream: c.str("upstream", 0).unwrap_or_default(),
                database: c.str("database", 0),
                start_ns: c.i64("start_ts", 0).unwrap_or_default(),
                end_ns: c.i64("end_ts", 0),
                end_reason: c.str("end_reason", 0),
                last_seq: c.u64("last_seq", 0).unwrap_or_default(),
                events: c.u64("events", 0).unwrap_or_default(),
                commands: c.u64("commands", 0).unwrap_or_default(),
            }));
        }
        Ok(None)
    }

    /// The highest seq stored for a session (grows while it is live).
    pub async fn last_seq(&self, session_id: &str) -> Result<Option<u64>, ReplayError> {
        let sql = format!(
            "SELECT max(seq) AS seq FROM events WHERE session_id = {}",
            literal(session_id)
        );
        self.seq_of(&sql).await
    }

    /// The timeline steps whose command events lie in `[from, to]`, with each command
    /// paired to the completion that follows it. Completions arrive in command order
    /// (the protocol guarantees it), so pairing is first-in, first-out; completions are
    /// looked for a little past `to`, so the last commands of a window are paired too.
    pub async fn steps(
        &self,
        session_id: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Step>, ReplayError> {
        let sql = format!(
            "SELECT seq, ts, kind, command, status, duration_us, text, cardinality(masked) AS n_masked \
             FROM events WHERE session_id = {} AND seq BETWEEN {from} AND {} \
             AND (kind IN ({STEP_KINDS}) OR ((kind = 'result' OR kind = 'error') AND command IS NOT NULL)) \
             ORDER BY seq",
            literal(session_id),
            to.saturating_add(WINDOW_EVENTS / 4)
        );
        let mut steps: Vec<Step> = Vec::new();
        let mut pending: std::collections::VecDeque<usize> = Default::default();
        for batch in self.rows(&sql).await? {
            let mut c = Columns::new(&batch);
            for i in 0..c.len() {
                let seq = c.u64("seq", i).unwrap_or_default();
                let kind = c.str("kind", i).unwrap_or_default();
                let status = c
                    .str("status", i)
                    .and_then(|s| Status::parse(&s))
                    .unwrap_or(Status::Ok);
                let masked = c.u64("n_masked", i).unwrap_or(0) > 0;
                if kind == "result" || kind == "error" {
                    if let Some(at) = pending.pop_front() {
                        let s = &mut steps[at];
                        s.status = Some(status);
                        s.duration_us = c.u64("duration_us", i);
                        s.result_seq = Some(seq);
                        s.masked |= masked;
                    }
                    continue;
                }
                if seq > to {
                    continue;
                }
                let label = match kind.as_str() {
                    "query" => c.str("command", i).unwrap_or_default(),
                    _ => c.str("text", i).unwrap_or_else(|| kind.replace('_', " ")),
                };
                let is_query = kind == "query";
                steps.push(Step {
                    seq,
                    ts_ns: c.i64("ts", i).unwrap_or_default(),
                    kind,
                    label,
                    // A command runs until its completion says how it ended; a held
                    // or blocked one shows that until then.
                    status: if is_query && status == Status::Ok {
                        None
                    } else {
                        Some(status)
                    },
                    duration_us: c.u64("duration_us", i),
                    result_seq: None,
                    masked,
                });
                // Every command has exactly one completion (a refused or held one too:
                // its error, or the result once approved), so every command waits in
                // line for its own.
                if is_query {
                    pending.push_back(steps.len() - 1);
                }
            }
        }
        Ok(steps)
    }

    /// One event in full.
    pub async fn event(
        &self,
        session_id: &str,
        seq: u64,
    ) -> Result<Option<EventDetail>, ReplayError> {
        Ok(self
            .events(session_id, &[seq], usize::MAX)
            .await?
            .into_iter()
            .next())
    }

    /// Several events of one session in one read: the step under the cursor and the
    /// ones ahead of it. A payload larger than `payload_limit` is left out (those
    /// events are not returned), so a prefetch never pulls in a run of huge results;
    /// the first seq is always returned whole.
    pub async fn events(
        &self,
        session_id: &str,
        seqs: &[u64],
        payload_limit: usize,
    ) -> Result<Vec<EventDetail>, ReplayError> {
        let (Some(&first), Some(lo), Some(hi)) =
            (seqs.first(), seqs.iter().min(), seqs.iter().max())
        else {
            return Ok(Vec::new());
        };
        let list = seqs
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        // DataFusion 55's octet_length takes no binary: the hex form is twice the size.
        let limit = payload_limit.min(i64::MAX as usize / 2) * 2;
        // The seq range lets the page index prune; the IN list picks the events.
        let sql = format!(
            "SELECT seq, ts, kind, direction, status, command, row_count, duration_us, masked, \
             CASE WHEN seq = {first} OR length(encode(payload, 'hex')) <= {limit} THEN payload END AS payload, \
             text, tag, hash FROM events WHERE session_id = {} AND seq BETWEEN {lo} AND {hi} \
             AND seq IN ({list})",
            literal(session_id)
        );
        let mut out = Vec::new();
        for batch in self.rows(&sql).await? {
            let mut c = Columns::new(&batch);
            for i in 0..c.len() {
                let Some(payload) = c.bytes("payload", i) else {
                    continue; // too large to prefetch; read when the cursor gets there
                };
                out.push(EventDetail {
                    seq: c.u64("seq", i).unwrap_or_default(),
                    ts_ns: c.i64("ts", i).unwrap_or_default(),
                    kind: c.str("kind", i).unwrap_or_default(),
                    direction: c.str("direction", i).unwrap_or_default(),
                    status: c.str("status", i).unwrap_or_default(),
                    command: c.str("command", i),
                    row_count: c.u64("row_count", i),
                    duration_us: c.u64("duration_us", i),
                    masked: c.strings("masked", i),
                    payload,
                    text: c.str("text", i),
                    chain: c
                        .bytes("tag", i)
                        .or_else(|| c.bytes("hash", i))
                        .unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// The next (or previous) command whose text or result contains `needle`
    /// (case-insensitive), strictly after (or before) `seq`: the seq of its command.
    /// A hit in a result belongs to the command it completed, the last command at or
    /// before it.
    pub async fn search(
        &self,
        session_id: &str,
        needle: &str,
        seq: u64,
        forward: bool,
    ) -> Result<Option<u64>, ReplayError> {
        let id = literal(session_id);
        let n = literal(&needle.to_lowercase());
        let (cmp, order) = if forward { (">", "ASC") } else { ("<", "DESC") };
        let mut bound = seq;
        loop {
            // Results after `seq` may still belong to the command at `seq`, so
            // forward searches start one command's results early and skip those.
            let sql = format!(
                "SELECT seq, kind FROM events WHERE session_id = {id} \
                 AND kind IN ('query', 'result', 'error') AND seq {cmp} {bound} \
                 AND strpos(lower(coalesce(command, '') || chr(10) || coalesce(text, '')), {n}) > 0 \
                 ORDER BY seq {order} LIMIT 64"
            );
            let mut hits = Vec::new();
            for batch in self.rows(&sql).await? {
                let mut c = Columns::new(&batch);
                for i in 0..c.len() {
                    hits.push((
                        c.u64("seq", i).unwrap_or(0),
                        c.str("kind", i).unwrap_or_default(),
                    ));
                }
            }
            if hits.is_empty() {
                return Ok(None);
            }
            for (hit, kind) in &hits {
                let owner = if kind == "query" {
                    Some(*hit)
                } else {
                    self.command_at_or_before(session_id, *hit).await?
                };
                if let Some(o) = owner
                    && ((forward && o > seq) || (!forward && o < seq))
                {
                    return Ok(Some(o));
                }
            }
            bound = hits.last().map_or(bound, |h| h.0);
        }
    }

    async fn command_at_or_before(
        &self,
        session_id: &str,
        seq: u64,
    ) -> Result<Option<u64>, ReplayError> {
        let sql = format!(
            "SELECT max(seq) AS seq FROM events WHERE session_id = {} AND kind = 'query' AND seq <= {seq}",
            literal(session_id)
        );
        self.seq_of(&sql).await
    }

    /// The first command at or after a point in time.
    pub async fn seq_at(&self, session_id: &str, ts_ns: i64) -> Result<Option<u64>, ReplayError> {
        let sql = format!(
            "SELECT min(seq) AS seq FROM events WHERE session_id = {} AND kind IN ({STEP_KINDS}) \
             AND ts >= to_timestamp_nanos({ts_ns})",
            literal(session_id)
        );
        self.seq_of(&sql).await
    }

    /// Recomputes the session's chain and checks its seals.
    pub async fn verify(&self, session_id: &str) -> Result<Integrity, ReplayError> {
        let keys = self.archive.published_keys().await?;
        let v = tapline_query::verify::verify_session(&self.ctx, session_id, &keys).await?;
        Ok(match &v.broken {
            Some(b) => Integrity::Broken {
                seq: b.seq,
                reason: b.kind.as_str().to_string(),
            },
            None => Integrity::Verified,
        })
    }
}
