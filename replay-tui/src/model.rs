//! What the viewer shows, independent of where it was read from: rows of the session
//! browser, steps of a session's timeline, and one event in full.

pub use tapline_store::Status;

/// One row of the session browser.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub session_id: String,
    pub start_ns: i64,
    pub end_ns: Option<i64>,
    pub user: String,
    pub connection: String,
    pub protocol: String,
    pub commands: u64,
    pub errors: u64,
    pub blocked: u64,
    pub masked_values: u64,
    pub live: bool,
}

impl SessionRow {
    /// How long the session ran (so far, if live), in ns.
    pub fn duration_ns(&self, now_ns: i64) -> i64 {
        self.end_ns.unwrap_or(now_ns) - self.start_ns
    }
}

/// What the player header shows about a session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionHeader {
    pub session_id: String,
    pub user: String,
    pub groups: Vec<String>,
    pub client_addr: String,
    pub connection: String,
    pub upstream: String,
    pub database: Option<String>,
    pub start_ns: i64,
    pub end_ns: Option<i64>,
    pub end_reason: Option<String>,
    pub last_seq: u64,
    pub events: u64,
    pub commands: u64,
}

/// The word the timeline shows for a step's status; `None` is a command whose
/// completion is not recorded (yet).
pub fn status_label(status: Option<Status>) -> &'static str {
    status.map_or("…", Status::as_str)
}

/// One line of the timeline: a command with its completion, or a session boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The seq of the command (or boundary) event.
    pub seq: u64,
    pub ts_ns: i64,
    pub kind: String,
    /// The command, or a description of the boundary.
    pub label: String,
    /// How the step ended; `None` while its completion is not recorded (yet).
    pub status: Option<Status>,
    pub duration_us: Option<u64>,
    /// The seq of the event that completed the command (its result or error).
    pub result_seq: Option<u64>,
    pub masked: bool,
}

/// One event in full, as the result pane and footer show it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventDetail {
    pub seq: u64,
    pub ts_ns: i64,
    pub kind: String,
    pub direction: String,
    pub status: String,
    pub command: Option<String>,
    pub row_count: Option<u64>,
    pub duration_us: Option<u64>,
    pub masked: Vec<String>,
    pub payload: Vec<u8>,
    pub text: Option<String>,
    /// The stored chain tag (format 2), or the stored hash (format 1): what the
    /// footer shows to tie the screen to the verified record.
    pub chain: Vec<u8>,
}

/// The integrity of a session as the badge shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    NotChecked,
    Checking,
    Verified,
    Broken { seq: u64, reason: String },
}

impl Integrity {
    /// The badge text.
    pub fn badge(&self) -> String {
        match self {
            Integrity::NotChecked => "not yet checked".into(),
            Integrity::Checking => "checking…".into(),
            Integrity::Verified => "✔ verified".into(),
            Integrity::Broken { seq, reason } => format!("✘ broken at seq {seq} ({reason})"),
        }
    }
}
