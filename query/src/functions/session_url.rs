//! `session_url(session_id)`: the `tapline://replay/…` link that opens a session of
//! this archive in `tapline replay` (see [`crate::session_link`]).

use super::values::string_values;
use crate::session_link::link;
use datafusion::arrow::array::{Array, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// Links sessions of one archive.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SessionUrl {
    /// The archive's root URL, which every link carries.
    archive_url: String,
    signature: Signature,
}

impl SessionUrl {
    /// Links into the archive at `archive_url`.
    pub fn new(archive_url: &str) -> Self {
        SessionUrl {
            archive_url: archive_url.to_string(),
            signature: Signature::uniform(
                1,
                vec![DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View],
                Volatility::Immutable,
            ),
        }
    }
}

/// The SQL name of the function.
pub const NAME: &str = "session_url";

impl ScalarUDFImpl for SessionUrl {
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
            return exec_err!("{NAME} takes one argument, a session id");
        };
        let Some(id) = string_values(a.as_ref()) else {
            return exec_err!("{NAME} takes a session id, not {}", a.data_type());
        };
        let mut out = StringBuilder::with_capacity(n, n * 96);
        for i in 0..n {
            if a.is_null(i) {
                out.append_null();
            } else {
                out.append_value(link(&self.archive_url, id(i)));
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
