//! Upstream messages: row descriptions, data rows rendered for the record with the
//! columns they were described with, errors and notices, parameter status, in every
//! encoding. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_fuzz::protocol::postgres::error_response::ErrorFields;
use tapline_fuzz::protocol::postgres::row::{Column, parse_row_description, render_data_row, render_header};
use tapline_fuzz::protocol::postgres::wire::Reader;

fuzz_target!(|data: &[u8]| {
    let mut cols: Option<Vec<Column>> = None;
    tapline_fuzz::messages(data, |tag, body, enc| match tag {
        b'T' => {
            if let Ok(c) = parse_row_description(body, enc) {
                let mut out = String::new();
                render_header(&c, &mut out);
                cols = Some(c);
            }
        }
        b'D' => {
            let mut out = String::new();
            let _ = render_data_row(body, cols.as_deref(), enc, &mut out);
        }
        b'E' | b'N' => {
            if let Ok(f) = ErrorFields::parse(tag, body, enc) {
                let _ = f.render();
            }
        }
        b'S' => {
            let _ = tapline_fuzz::protocol::postgres::parameter_status::parse(body);
        }
        b'A' => {
            let mut r = Reader::in_encoding(tag, body, enc);
            let _ = (r.i32(), r.cstr(), r.cstr());
        }
        _ => {}
    });
});
