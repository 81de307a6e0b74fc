//! What verification says about one session: ok, or the first seq where it breaks and
//! how.

/// How a session's record is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The event's content no longer matches its hash or tag.
    Modified,
    /// An event is missing at this seq.
    Missing,
    /// The event at this seq was recorded at another position.
    Reordered,
    /// An event that the gateway never recorded sits at this seq.
    Inserted,
    /// Events the gateway sealed are gone from the end of the session.
    Truncated,
    /// A seal or ledger signature does not check out against the trusted keys.
    BadSignature,
    /// The chain was recomputed: it is self-consistent but does not match a seal.
    Rewritten,
}

impl BreakKind {
    /// One word for reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakKind::Modified => "modified",
            BreakKind::Missing => "missing",
            BreakKind::Reordered => "reordered",
            BreakKind::Inserted => "inserted",
            BreakKind::Truncated => "truncated",
            BreakKind::BadSignature => "bad signature",
            BreakKind::Rewritten => "rewritten",
        }
    }
}

/// The first place a session breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: u64,
    pub kind: BreakKind,
    pub detail: String,
}

impl Break {
    pub fn new(seq: u64, kind: BreakKind, detail: impl Into<String>) -> Self {
        Break {
            seq,
            kind,
            detail: detail.into(),
        }
    }
}

/// The verdict on one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionVerdict {
    pub session_id: String,
    pub events: u64,
    /// The highest seq covered by a valid seal.
    pub sealed_through: Option<u64>,
    /// The session carries a valid end seal.
    pub ended: bool,
    pub end_reason: Option<String>,
    pub broken: Option<Break>,
    /// How many events were removed on purpose, and how (a signed retention).
    pub retired: Option<(u64, String)>,
}

impl SessionVerdict {
    /// A verdict with nothing seen yet.
    pub fn new(session_id: impl Into<String>) -> Self {
        SessionVerdict {
            session_id: session_id.into(),
            events: 0,
            sealed_through: None,
            ended: false,
            end_reason: None,
            broken: None,
            retired: None,
        }
    }

    /// Notes that `count` more events were removed on purpose (`how`).
    pub fn retire(&mut self, count: u64, how: String) {
        match &mut self.retired {
            Some((n, _)) => *n += count,
            None => self.retired = Some((count, how)),
        }
    }

    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.broken.is_none()
    }

    /// Records a break unless an earlier one (by seq) is already known.
    pub fn break_at(&mut self, b: Break) {
        if self.broken.as_ref().is_none_or(|old| b.seq < old.seq) {
            self.broken = Some(b);
        }
    }

    /// A short status line: `ok`, `ok (live, …)`, `retired: …` or `BROKEN at seq N: …`.
    pub fn status_line(&self) -> String {
        match (&self.broken, &self.retired) {
            (None, Some((removed, how))) if self.events == 0 => {
                format!("retired: all {removed} event(s) were {how}")
            }
            (None, Some((removed, how))) => format!(
                "ok: {} event(s) left, each as the gateway's signed ledger records it; {removed} older event(s) were {how}",
                self.events
            ),
            _ => self.chain_status(),
        }
    }

    fn chain_status(&self) -> String {
        match &self.broken {
            Some(b) => format!(
                "BROKEN at seq {}: {} ({})",
                b.seq,
                b.kind.as_str(),
                b.detail
            ),
            None if self.ended => format!(
                "ok: {} events, sealed at end ({})",
                self.events,
                self.end_reason.as_deref().unwrap_or("ended")
            ),
            None => {
                let unsealed = match self.sealed_through {
                    Some(s) => self.events.saturating_sub(s + 1),
                    None => self.events,
                };
                format!(
                    "ok: {} events, live or interrupted; {} after the last checkpoint seal",
                    self.events, unsealed
                )
            }
        }
    }
}
