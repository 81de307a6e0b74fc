//! The event: one thing that crossed the gateway, or one thing the gateway decided.
//!
//! Every protocol maps onto this one model so that SQL, verification and replay never
//! need to know which protocol a session spoke.

use bytes::Bytes;
use std::sync::Arc;

/// Who sent the bytes an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the caller towards the upstream.
    Client,
    /// From the upstream towards the caller.
    Server,
    /// Produced by the gateway itself (a decision, a session boundary).
    Gateway,
}

impl Direction {
    /// The text stored in the `direction` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Client => "client",
            Direction::Server => "server",
            Direction::Gateway => "gateway",
        }
    }
}

/// What an event is about; the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    SessionStart,
    Auth,
    Query,
    Result,
    Error,
    Input,
    Output,
    Resize,
    Request,
    Response,
    Policy,
    SessionEnd,
}

impl Kind {
    /// The text stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SessionStart => "session_start",
            Kind::Auth => "auth",
            Kind::Query => "query",
            Kind::Result => "result",
            Kind::Error => "error",
            Kind::Input => "input",
            Kind::Output => "output",
            Kind::Resize => "resize",
            Kind::Request => "request",
            Kind::Response => "response",
            Kind::Policy => "policy",
            Kind::SessionEnd => "session_end",
        }
    }
}

/// The outcome recorded with an event; the `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Error,
    Blocked,
    Held,
    Approved,
    Denied,
}

impl Status {
    /// Every status, in column-text order.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Error,
        Status::Blocked,
        Status::Held,
        Status::Approved,
        Status::Denied,
    ];

    /// Reads the `status` column's text back; `None` for text no tapline wrote.
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The text stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Blocked => "blocked",
            Status::Held => "held",
            Status::Approved => "approved",
            Status::Denied => "denied",
        }
    }
}

/// What a protocol tap knows about an event before the recorder numbers, stamps and
/// chains it. Keeping this separate means a tap can never forge a seq or a hash.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub direction: Direction,
    pub kind: Kind,
    pub command: Option<String>,
    pub status: Status,
    pub row_count: Option<u64>,
    pub duration_us: Option<u64>,
    pub masked: Vec<String>,
    pub payload: Bytes,
    pub text: Option<String>,
    /// When the event happened, in ns since the Unix epoch; `None` means "now".
    pub ts_ns: Option<i64>,
}

impl EventDraft {
    /// A draft with no optional fields set; callers fill in what they know.
    pub fn new(direction: Direction, kind: Kind) -> Self {
        EventDraft {
            direction,
            kind,
            command: None,
            status: Status::Ok,
            row_count: None,
            duration_us: None,
            masked: Vec::new(),
            payload: Bytes::new(),
            text: None,
            ts_ns: None,
        }
    }

    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }

    pub fn status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    pub fn payload(mut self, payload: impl Into<Bytes>) -> Self {
        self.payload = payload.into();
        self
    }

    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn row_count(mut self, rows: u64) -> Self {
        self.row_count = Some(rows);
        self
    }

    pub fn duration_us(mut self, us: u64) -> Self {
        self.duration_us = Some(us);
        self
    }

    pub fn at(mut self, ts_ns: i64) -> Self {
        self.ts_ns = Some(ts_ns);
        self
    }
}

/// One row of the `events` table, complete with its place in the hash chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub session_id: Arc<str>,
    pub seq: u64,
    pub ts_ns: i64,
    pub gateway_id: Arc<str>,
    pub connection: Arc<str>,
    pub protocol: Arc<str>,
    pub user: Arc<str>,
    pub direction: Direction,
    pub kind: Kind,
    pub command: Option<String>,
    pub status: Status,
    pub row_count: Option<u64>,
    pub duration_us: Option<u64>,
    pub masked: Vec<String>,
    pub payload: Bytes,
    pub text: Option<String>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl Event {
    /// Bytes this event holds in memory, used to bound writer buffers.
    pub fn approx_size(&self) -> usize {
        160 + self.payload.len()
            + self.command.as_ref().map_or(0, String::len)
            + self.text.as_ref().map_or(0, String::len)
            + self.masked.iter().map(String::len).sum::<usize>()
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}
