//! `payload_text(payload)`: a payload read as UTF-8, with anything that is not valid
//! UTF-8 shown as U+FFFD.
//!
//! Payloads are the exact wire bytes, so they are binary; an auditor grepping them
//! (`WHERE payload_text(payload) LIKE '%pg_shadow%'`) wants text without first
//! deciding what to do about the bytes that are not.

use super::values::binary_values;
use datafusion::arrow::array::{Array, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// The lossy text view of a binary value.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PayloadText {
    signature: Signature,
}

impl Default for PayloadText {
    fn default() -> Self {
        PayloadText {
            signature: Signature::uniform(
                1,
                vec![
                    DataType::Binary,
                    DataType::LargeBinary,
                    DataType::BinaryView,
                ],
                Volatility::Immutable,
            ),
        }
    }
}

/// The SQL name of the function.
pub const NAME: &str = "payload_text";

impl ScalarUDFImpl for PayloadText {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [a] = arrays.as_slice() else {
            return exec_err!("{NAME} takes one argument, a payload");
        };
        let Some(value) = binary_values(a.as_ref()) else {
            return exec_err!("{NAME} takes a binary value, not {}", a.data_type());
        };
        let mut out = StringBuilder::with_capacity(n, n * 32);
        for i in 0..n {
            if a.is_null(i) {
                out.append_null();
            } else {
                out.append_value(String::from_utf8_lossy(value(i)));
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
