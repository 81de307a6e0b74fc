//! The recorder's parsers of untrusted bytes, built from the recorder's own source
//! files (not copies) in the same module layout, so the fuzz targets exercise exactly
//! the code the gateway runs without building the archive's dependencies.
#![allow(dead_code, unused_imports)]

/// The archive's text contract, which the parsers write their renderings in.
#[path = "../../store/src/text_format.rs"]
pub mod text_format;

#[path = "../../recorder/src/protocol"]
pub mod protocol {
    pub mod postgres {
        pub mod backend;
        pub mod channel_binding;
        pub mod encoding;
        pub mod error_response;
        pub mod frame;
        pub mod frontend;
        pub mod parameter_status;
        pub mod row;
        pub mod startup;
        pub mod wire;
    }
}

#[path = "../../recorder/src/policy"]
pub mod policy {
    pub mod guard;
    pub mod mask;
    pub mod sql;
}

#[path = "../../recorder/src/config"]
pub mod config {
    pub mod error;
    pub use error::{ConfigError, KeyPrefix};
}

#[path = "../../recorder/src/approvals"]
pub mod approvals {
    pub mod shape;
}

/// Splits fuzz input into whole tagged messages, as the pumps do: the first byte
/// picks a client encoding, the rest is the byte stream.
pub fn messages(data: &[u8], mut each: impl FnMut(u8, &[u8], protocol::postgres::encoding::PgEncoding)) {
    use protocol::postgres::encoding::PgEncoding;
    const ENCODINGS: &[&str] = &[
        "UTF8", "SQL_ASCII", "LATIN1", "LATIN5", "WIN1252", "EUC_JP", "SJIS", "GB18030", "BIG5",
        "EUC_TW",
    ];
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let enc = PgEncoding::by_name(ENCODINGS[pick as usize % ENCODINGS.len()])
        .unwrap_or(protocol::postgres::encoding::UTF8);
    while let Ok(Some(len)) = protocol::postgres::frame::peek_message_len(rest, 1 << 20) {
        let (msg, tail) = rest.split_at(len);
        each(msg[0], &msg[5..], enc);
        rest = tail;
    }
}
