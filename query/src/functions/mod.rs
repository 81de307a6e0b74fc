//! SQL functions tapline registers in every archive context.
//!
//! - `splice_payload`: `tapline_payload(…)`, the stored payload put back together.

pub mod splice_payload;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Registers every tapline function.
pub fn register_all(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(splice_payload::SplicePayload::default()));
}
