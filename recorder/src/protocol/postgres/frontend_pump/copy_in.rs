//! COPY FROM STDIN: the client's rows recorded as `input` events, in chunks that
//! never split a row, tied to the command that started the COPY.

use super::super::copy_rows::split_after_last_row;
use super::super::io::TapError;
use super::super::session_state::SessionState;
use super::FrontendState;
use tapline_store::{Direction, EventDraft, Kind};

/// COPY FROM STDIN data is recorded in chunks of at most this many bytes.
const COPY_CHUNK: usize = 256 * 1024;

impl FrontendState {
    /// A CopyData message: kept, and the rows so far recorded once a chunk is full.
    pub(super) fn copy_data(&mut self, state: &SessionState, raw: &[u8]) -> Result<(), TapError> {
        self.copy.extend_from_slice(raw);
        self.copy_text
            .push_str(&state.encoding.client().decode(&raw[5..]));
        if self.copy.len() >= COPY_CHUNK {
            self.record_copy_rows(state)?;
        }
        Ok(())
    }

    /// CopyDone, or CopyFail with the client's reason: the rest is recorded.
    pub(super) fn copy_end(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        failed: Option<String>,
    ) -> Result<(), TapError> {
        self.copy.extend_from_slice(raw);
        self.record_copy(state, failed)
    }

    /// Records the whole rows of a long COPY FROM STDIN so far as an `input` event,
    /// and keeps the row in progress for the next one: a value is never split
    /// between two events, where masking could not see it whole.
    fn record_copy_rows(&mut self, state: &SessionState) -> Result<(), TapError> {
        let Some((head, tail)) = split_after_last_row(&self.copy) else {
            return self.record_copy(state, None);
        };
        let carry_text = match self.copy_text.rfind('\n') {
            Some(nl) => self.copy_text.split_off(nl + 1),
            None => String::new(),
        };
        self.copy = head;
        self.record_copy(state, None)?;
        self.copy = tail;
        self.copy_text = carry_text;
        Ok(())
    }

    /// Records buffered COPY FROM STDIN data as an `input` event.
    fn record_copy(
        &mut self,
        state: &SessionState,
        failed: Option<String>,
    ) -> Result<(), TapError> {
        if self.copy.is_empty() {
            return Ok(());
        }
        let payload = std::mem::take(&mut self.copy).freeze();
        let mut text = std::mem::take(&mut self.copy_text);
        if let Some(reason) = failed {
            text.push_str(&format!("\n-- COPY aborted by the client: {reason}"));
        }
        let mut draft = EventDraft::new(Direction::Client, Kind::Input)
            .payload(payload)
            .text(text);
        draft.command = self.last_simple.clone();
        state.record(draft)?;
        Ok(())
    }
}
