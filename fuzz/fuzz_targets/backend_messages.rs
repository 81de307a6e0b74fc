//! Upstream messages: the typed decoder the backend pump dispatches on, data rows
//! rendered for the record with the columns they were described with, errors and
//! notices, notifications, in every encoding. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_fuzz::protocol::postgres::backend::BackendMessage;
use tapline_fuzz::protocol::postgres::error_response::ErrorFields;
use tapline_fuzz::protocol::postgres::row::{Column, render_data_row, render_header};
use tapline_fuzz::protocol::postgres::wire::Reader;

fuzz_target!(|data: &[u8]| {
    let mut cols: Option<Vec<Column>> = None;
    tapline_fuzz::messages(data, |tag, body, enc| match BackendMessage::parse(tag, body, enc) {
        Ok(BackendMessage::RowDescription(c)) => {
            let mut out = String::new();
            render_header(&c, &mut out);
            cols = Some(c);
        }
        Ok(BackendMessage::DataRow) => {
            let mut out = String::new();
            let _ = render_data_row(body, cols.as_deref(), enc, &mut out);
        }
        Ok(BackendMessage::ErrorResponse | BackendMessage::NoticeResponse) => {
            if let Ok(f) = ErrorFields::parse(tag, body, enc) {
                let _ = f.render();
            }
        }
        Ok(BackendMessage::NotificationResponse) => {
            let mut r = Reader::in_encoding(tag, body, enc);
            let _ = (r.i32(), r.cstr(), r.cstr());
        }
        _ => {}
    });
});
