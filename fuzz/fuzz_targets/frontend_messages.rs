//! Client messages: framing, decoding in every encoding, and the recorded rendering of
//! bound parameters. Nothing may panic; malformed input is an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_fuzz::protocol::postgres::frontend::{Bind, FrontendMessage, render_param};
use tapline_fuzz::protocol::postgres::startup::StartupPacket;

fuzz_target!(|data: &[u8]| {
    let _ = StartupPacket::parse(data);
    tapline_fuzz::messages(data, |tag, body, enc| {
        if let Ok(FrontendMessage::Bind(Bind {
            param_formats,
            params,
            ..
        })) = FrontendMessage::parse(tag, body, enc)
        {
            for (i, p) in params.iter().enumerate() {
                let binary = param_formats.get(i).copied().unwrap_or(0) == 1;
                for oid in [0, 16, 20, 21, 23, 25, 700, 701, 3802] {
                    let _ = render_param(p.as_deref(), binary, oid, enc);
                }
            }
        }
    });
});
