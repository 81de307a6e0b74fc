//! Notices and notifications: masked like rows, recorded with the command in progress
//! or, between commands, as `output` events of their own.

use super::super::error_response::ErrorFields;
use super::super::io::TapError;
use super::super::session_state::SessionState;
use super::super::wire::Reader;
use super::BackendState;
use crate::policy::mask::tally::Tally;
use bytes::Bytes;
use tapline_store::{Direction, EventDraft, Kind};

impl BackendState {
    /// A NoticeResponse, masked; part of the result in progress when there is one.
    pub(super) fn notice(
        &mut self,
        state: &SessionState,
        raw: &[u8],
    ) -> Result<Option<Bytes>, TapError> {
        let enc = state.encoding.client();
        let mut tally = Tally::default();
        let m = state.masking.notice(&mut tally, raw, enc)?;
        let recorded = m.for_record().unwrap_or(raw);
        let notice = format!(
            "NOTICE: {}",
            ErrorFields::parse(b'N', &recorded[5..], enc)?.render()
        );
        match self.current(state) {
            Some(r) => {
                r.append(recorded);
                r.line(&notice);
                r.masking.tally.merge(tally);
            }
            None => state.record(output_event(recorded, notice, tally))?,
        }
        Ok(m.client)
    }
}

/// A NotificationResponse (LISTEN/NOTIFY), masked, recorded on its own: it belongs
/// to no command.
pub(super) fn notification(state: &SessionState, raw: &[u8]) -> Result<Option<Bytes>, TapError> {
    let enc = state.encoding.client();
    let mut tally = Tally::default();
    let m = state.masking.notification(&mut tally, raw, enc)?;
    let recorded = m.for_record().unwrap_or(raw);
    let mut r = Reader::in_encoding(b'A', &recorded[5..], enc);
    let pid = r.i32()?;
    let channel = r.cstr()?;
    let payload = r.cstr()?;
    let text = format!("NOTIFY {channel}: {payload} (from backend {pid})");
    state.record(output_event(recorded, text, tally))?;
    Ok(m.client)
}

/// A server message no command claims (a notice between commands, a notification),
/// recorded as it was masked.
fn output_event(recorded: &[u8], text: String, tally: Tally) -> EventDraft {
    let mut draft = EventDraft::new(Direction::Server, Kind::Output)
        .payload(Bytes::copy_from_slice(recorded))
        .text(text);
    draft.masked = tally.into_entries();
    draft
}
