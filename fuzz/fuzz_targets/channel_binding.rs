//! The DER reader behind SCRAM-SHA-256-PLUS: the gateway reads its own certificate,
//! but a certificate file is operator input and a reload may hand it anything.
//! Nothing may panic; a certificate it cannot read offers no channel binding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_fuzz::protocol::postgres::channel_binding::server_end_point;

fuzz_target!(|data: &[u8]| {
    if let Some(hash) = server_end_point(data) {
        assert!(matches!(hash.len(), 32 | 48 | 64), "a binding is a SHA-2 digest");
    }
});
