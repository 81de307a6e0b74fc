//! `tapline_payload(payload, payload_splice, command)`: an event's payload as it
//! crossed the gateway.
//!
//! Format 2 segments store a query's SQL once, in `command`, and cut it out of the
//! stored payload at `payload_splice`; this puts it back, so the `events` view shows
//! the exact bytes whatever the segment format. Rows without a cut pass through as
//! they are stored.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder};
use datafusion::arrow::datatypes::{DataType, UInt32Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;
use tapline_store::canonical::Payload;

/// The function that reassembles stored payloads.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SplicePayload {
    signature: Signature,
}

impl Default for SplicePayload {
    fn default() -> Self {
        SplicePayload {
            signature: Signature::exact(
                vec![DataType::Binary, DataType::UInt32, DataType::Utf8],
                Volatility::Immutable,
            ),
        }
    }
}

/// The SQL name of the function.
pub const NAME: &str = "tapline_payload";

impl ScalarUDFImpl for SplicePayload {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [payload, splice, command] = arrays.as_slice() else {
            return exec_err!("{NAME} takes (payload, payload_splice, command)");
        };
        let payload = payload.as_binary::<i32>();
        let splice = splice.as_primitive::<UInt32Type>();
        let command = command.as_string::<i32>();
        let mut out = BinaryBuilder::with_capacity(n, payload.value_data().len());
        for i in 0..n {
            if payload.is_null(i) {
                out.append_null();
                continue;
            }
            let stored = payload.value(i);
            if splice.is_null(i) || command.is_null(i) {
                out.append_value(stored);
                continue;
            }
            let whole = Payload::Spliced {
                stored,
                at: splice.value(i) as usize,
                insert: command.value(i).as_bytes(),
            };
            out.append_value(whole.to_vec());
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}
