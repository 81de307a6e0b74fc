//! The result of one command, assembled from the upstream's messages until the
//! command completes: the exact bytes (up to the recording cap), a readable rendering,
//! the row count, the error if it failed, and what masking changed.

use super::super::error_response::ErrorFields;
use super::super::masking::ResultMasking;
use super::super::row::{Column, tag_row_count};
use crate::text_format;
use bytes::BytesMut;
use std::time::Instant;
use tapline_store::{Direction, EventDraft, Kind, Status};

/// The readable rendering of one result is capped here; rows past it are counted.
pub(super) const TEXT_CAP: usize = 1 << 20;

/// The result being assembled for the command at the head of the pipeline.
pub(super) struct ResultBuilder {
    pub command: String,
    started: Instant,
    /// A simple query, which ends at ReadyForQuery rather than at its CommandComplete.
    pub simple: bool,
    /// Run after a person approved it.
    pub approved: bool,
    pub cols: Option<Vec<Column>>,
    payload: BytesMut,
    payload_cap: usize,
    bytes_not_recorded: u64,
    pub text: String,
    pub rows_not_rendered: u64,
    tag_rows: Option<u64>,
    pub data_rows: u64,
    pub error: Option<ErrorFields>,
    /// Column plans, COPY plan and counts of what was masked.
    pub masking: ResultMasking,
}

impl ResultBuilder {
    pub fn new(
        command: String,
        started: Instant,
        simple: bool,
        cols: Option<Vec<Column>>,
        cap: usize,
    ) -> Self {
        ResultBuilder {
            command,
            started,
            simple,
            approved: false,
            cols,
            payload: BytesMut::new(),
            payload_cap: cap,
            bytes_not_recorded: 0,
            text: String::new(),
            rows_not_rendered: 0,
            tag_rows: None,
            data_rows: 0,
            error: None,
            masking: ResultMasking::default(),
        }
    }

    /// Keeps a message's bytes for the payload, or counts them past the cap.
    pub fn append(&mut self, raw: &[u8]) {
        if self.payload.len() + raw.len() <= self.payload_cap {
            self.payload.extend_from_slice(raw);
        } else {
            self.bytes_not_recorded += raw.len() as u64;
        }
    }

    /// Adds a line to the readable rendering while it is under its cap.
    pub fn line(&mut self, s: &str) {
        if self.text.len() < TEXT_CAP {
            self.text.push_str(s);
            self.text.push('\n');
        }
    }

    /// Takes in a CommandComplete tag: its row count, and the tag itself as a line
    /// for commands whose rows do not already describe them.
    pub fn add_tag(&mut self, tag: &str) {
        if let Some(n) = tag_row_count(tag) {
            *self.tag_rows.get_or_insert(0) += n;
        }
        // Row-returning commands are already described by their rows.
        if !(tag.starts_with("SELECT") || tag.starts_with("FETCH") || tag.is_empty()) {
            self.line(tag);
        }
    }

    /// The finished result as the event to record.
    pub fn into_draft(mut self) -> EventDraft {
        if self.rows_not_rendered > 0 {
            let note = text_format::rows_not_rendered(self.rows_not_rendered);
            self.text.push_str(&note);
            self.text.push('\n');
        }
        if self.bytes_not_recorded > 0 {
            let note = text_format::recording_truncated(self.bytes_not_recorded);
            self.text.push_str(&note);
            self.text.push('\n');
        }
        let duration = self.started.elapsed().as_micros() as u64;
        let rows = self.tag_rows.unwrap_or(self.data_rows);
        let masked = std::mem::take(&mut self.masking.tally).into_entries();
        let (kind, status, text) = match &self.error {
            Some(e) => (
                Kind::Error,
                Status::Error,
                format!("{}\n{}", e.render(), self.text),
            ),
            None if self.approved => (Kind::Result, Status::Approved, self.text),
            None => (Kind::Result, Status::Ok, self.text),
        };
        let mut draft = EventDraft::new(Direction::Server, kind)
            .command(self.command)
            .status(status)
            .row_count(rows)
            .duration_us(duration)
            .payload(self.payload.freeze())
            .text(text.trim_end().to_string());
        draft.masked = masked;
        draft
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_past_the_cap_is_counted_and_noted() {
        let mut r = ResultBuilder::new("select".into(), Instant::now(), true, None, 8);
        r.append(b"12345");
        r.append(b"6789");
        r.add_tag("SELECT 2");
        let draft = r.into_draft();
        assert_eq!(draft.payload.as_ref(), b"12345");
        assert_eq!(draft.row_count, Some(2));
        assert_eq!(
            draft.text.as_deref(),
            Some(text_format::recording_truncated(4).trim_end())
        );
    }

    #[test]
    fn tags_of_commands_without_rows_are_rendered() {
        let mut r = ResultBuilder::new("insert".into(), Instant::now(), true, None, 1024);
        r.add_tag("INSERT 0 3");
        r.add_tag("SELECT 1");
        let draft = r.into_draft();
        assert_eq!(draft.row_count, Some(4));
        assert_eq!(draft.text.as_deref(), Some("INSERT 0 3"));
    }
}
