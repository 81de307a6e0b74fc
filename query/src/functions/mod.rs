//! SQL functions tapline registers in every archive context.
//!
//! - `splice_payload`: `tapline_payload(…)`, the stored payload put back together;
//! - `byte_length`: `octet_length` and `length` that take binary payloads too;
//! - `payload_text`: `payload_text(payload)`, a payload as lossy UTF-8;
//! - `session_url`: `session_url(session_id)`, a link `tapline replay` opens;
//! - `values`: row accessors shared by the functions above.

pub mod byte_length;
pub mod payload_text;
pub mod session_url;
pub mod splice_payload;
pub mod values;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Registers every tapline function, for the archive at `archive_url`.
pub fn register_all(ctx: &SessionContext, archive_url: &str) {
    ctx.register_udf(ScalarUDF::from(splice_payload::SplicePayload::default()));
    ctx.register_udf(ScalarUDF::from(byte_length::ByteLength::octet_length()));
    ctx.register_udf(ScalarUDF::from(byte_length::ByteLength::length()));
    ctx.register_udf(ScalarUDF::from(payload_text::PayloadText::default()));
    ctx.register_udf(ScalarUDF::from(session_url::SessionUrl::new(archive_url)));
}
