//! Reading the archive for the viewer. Every read is a small query that names the
//! session and a seq range, so DataFusion prunes to the row groups and pages that hold
//! it (files are sorted by (session_id, seq) with page statistics, page indexes and a
//! bloom filter on session_id): opening a session of millions of events reads a window
//! of it, and seeking reads another, never the session from the start.

use crate::columns::Columns;
use crate::error::ReplayError;
use crate::model::{EventDetail, Integrity, SessionHeader, SessionRow, Step, StepStatus};
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use tapline_query::sessions::{SessionFilter, literal};
use tapline_store::Archive;

/// Events read per timeline window; the player keeps at most a few windows.
pub const WINDOW_EVENTS: u64 = 2048;

/// The kinds that make timeline lines (commands and session boundaries).
const STEP_KINDS: &str = "'session_start', 'auth', 'query', 'policy', 'session_end'";

/// How the browser orders sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Start,
    User,
    Connection,
    Protocol,
    Duration,
    Commands,
    Errors,
    Blocked,
    Masked,
}

impl SortKey {
    /// Every key, in column order.
    pub const ALL: [SortKey; 9] = [
        SortKey::Start,
        SortKey::User,
        SortKey::Connection,
        SortKey::Protocol,
        SortKey::Duration,
        SortKey::Commands,
        SortKey::Errors,
        SortKey::Blocked,
        SortKey::Masked,
    ];

    fn sql(self) -> &'static str {
        match self {
            SortKey::Start => "start_ts",
            SortKey::User => "\"user\"",
            SortKey::Connection => "connection",
            SortKey::Protocol => "protocol",
            SortKey::Duration => "coalesce(end_ts, now()) - start_ts",
            SortKey::Commands => "commands",
            SortKey::Errors => "errors",
            SortKey::Blocked => "blocked",
            SortKey::Masked => "masked_values",
        }
    }
}

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

    /// One page of the session browser.
    pub async fn sessions(
        &self,
        filter: &SessionFilter,
        typed: &str,
        sort: SortKey,
        descending: bool,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<SessionRow>, ReplayError> {
        let mut where_clause = filter.where_clause();
        if !typed.is_empty() {
            let t = literal(&typed.to_lowercase());
            let cond = format!(
                "(strpos(lower(\"user\"), {t}) > 0 OR strpos(lower(connection), {t}) > 0 OR session_id IN \
                 (SELECT DISTINCT session_id FROM events WHERE kind = 'query' AND strpos(lower(command), {t}) > 0))"
            );
            where_clause = if where_clause.is_empty() {
                format!("WHERE {cond}")
            } else {
                format!("{where_clause} AND {cond}")
            };
        }
        let dir = if descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT session_id, start_ts, end_ts, \"user\", connection, protocol, commands, errors, \
             blocked, masked_values, state FROM sessions {where_clause} \
             ORDER BY {} {dir}, session_id LIMIT {limit} OFFSET {offset}",
            sort.sql()
        );
        let mut out = Vec::new();
        for batch in self.rows(&sql).await? {
            let mut c = Columns::new(&batch);
            for i in 0..c.len() {
                out.push(SessionRow {
                    session_id: c.str("session_id", i).unwrap_or_default(),
                    start_ns: c.i64("start_ts", i).unwrap_or_default(),
                    end_ns: c.i64("end_ts", i),
                    user: c.str("user", i).unwrap_or_default(),
                    connection: c.str("connection", i).unwrap_or_default(),
                    protocol: c.str("protocol", i).unwrap_or_default(),
                    commands: c.u64("commands", i).unwrap_or_default(),
                    errors: c.u64("errors", i).unwrap_or_default(),
                    blocked: c.u64("blocked", i).unwrap_or_default(),
                    masked_values: c.u64("masked_values", i).unwrap_or_default(),
                    live: c.str("state", i).as_deref() == Some("live"),
                });
            }
        }
        Ok(out)
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
        for batch in self.rows(&sql).await? {
            let mut c = Columns::new(&batch);
            if !c.is_empty() {
                return Ok(c.u64("seq", 0));
            }
        }
        Ok(None)
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
                let status = StepStatus::parse(&c.str("status", i).unwrap_or_default());
                let masked = c.u64("n_masked", i).unwrap_or(0) > 0;
                if kind == "result" || kind == "error" {
                    if let Some(at) = pending.pop_front() {
                        let s = &mut steps[at];
                        s.status = status;
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
                    status: if is_query && status == StepStatus::Ok {
                        StepStatus::Pending
                    } else {
                        status
                    },
                    duration_us: c.u64("duration_us", i),
                    result_seq: None,
                    masked,
                });
                if is_query && status == StepStatus::Ok {
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
        let sql = format!(
            "SELECT seq, ts, kind, direction, status, command, row_count, duration_us, masked, \
             payload, text, hash FROM events WHERE session_id = {} AND seq = {seq}",
            literal(session_id)
        );
        for batch in self.rows(&sql).await? {
            let mut c = Columns::new(&batch);
            if c.is_empty() {
                continue;
            }
            let mut hash = [0u8; 32];
            if let Some(h) = c.bytes("hash", 0)
                && h.len() == 32
            {
                hash.copy_from_slice(&h);
            }
            return Ok(Some(EventDetail {
                seq,
                ts_ns: c.i64("ts", 0).unwrap_or_default(),
                kind: c.str("kind", 0).unwrap_or_default(),
                direction: c.str("direction", 0).unwrap_or_default(),
                status: c.str("status", 0).unwrap_or_default(),
                command: c.str("command", 0),
                row_count: c.u64("row_count", 0),
                duration_us: c.u64("duration_us", 0),
                masked: c.strings("masked", 0),
                payload: c.bytes("payload", 0).unwrap_or_default(),
                text: c.str("text", 0),
                hash,
            }));
        }
        Ok(None)
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
        for batch in self.rows(&sql).await? {
            let mut c = Columns::new(&batch);
            if !c.is_empty() {
                return Ok(c.u64("seq", 0));
            }
        }
        Ok(None)
    }

    /// The first command at or after a point in time.
    pub async fn seq_at(&self, session_id: &str, ts_ns: i64) -> Result<Option<u64>, ReplayError> {
        let sql = format!(
            "SELECT min(seq) AS seq FROM events WHERE session_id = {} AND kind IN ({STEP_KINDS}) \
             AND ts >= to_timestamp_nanos({ts_ns})",
            literal(session_id)
        );
        for batch in self.rows(&sql).await? {
            let mut c = Columns::new(&batch);
            if !c.is_empty() {
                return Ok(c.u64("seq", 0));
            }
        }
        Ok(None)
    }

    /// Recomputes the session's chain and checks its seals.
    pub async fn verify(&self, session_id: &str) -> Result<Integrity, ReplayError> {
        let keys = self.archive.published_keys().await?;
        let verdicts =
            tapline_query::verify::verify_archive(&self.ctx, Some(session_id), &keys, |_| {})
                .await?;
        Ok(match verdicts.first() {
            None => Integrity::NotChecked,
            Some(v) if v.is_ok() => Integrity::Verified,
            Some(v) => match &v.broken {
                Some(b) => Integrity::Broken {
                    seq: b.seq,
                    reason: b.kind.as_str().to_string(),
                },
                None => Integrity::Verified,
            },
        })
    }
}
