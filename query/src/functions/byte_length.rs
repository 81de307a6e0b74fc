//! `octet_length(x)` and `length(x)` that take the archive's binary columns too.
//!
//! DataFusion's own versions accept only strings, so an auditor asking how many bytes
//! a session returned (`sum(octet_length(payload))`) got a planning error. These
//! replace them: on strings they answer exactly as before (bytes for `octet_length`,
//! characters for `length`); on binary both count bytes, as PostgreSQL does for
//! `bytea`.

use super::values::{binary_values, string_values};
use datafusion::arrow::array::{Array, ArrayRef, Int32Builder, Int64Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// What a function counts in a string (binary values always count bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Unit {
    Bytes,
    Chars,
}

/// `octet_length` or `length`, over strings and binary alike.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ByteLength {
    name: &'static str,
    unit: Unit,
    signature: Signature,
}

/// The types both functions take; anything else is coerced to a string first, as the
/// built-in functions do.
fn accepted() -> Vec<DataType> {
    vec![
        DataType::Utf8,
        DataType::LargeUtf8,
        DataType::Utf8View,
        DataType::Binary,
        DataType::LargeBinary,
        DataType::BinaryView,
    ]
}

impl ByteLength {
    /// `octet_length(x)`: the size in bytes.
    pub fn octet_length() -> Self {
        ByteLength {
            name: "octet_length",
            unit: Unit::Bytes,
            signature: Signature::uniform(1, accepted(), Volatility::Immutable),
        }
    }

    /// `length(x)`: characters of a string, bytes of a binary value.
    pub fn length() -> Self {
        ByteLength {
            name: "length",
            unit: Unit::Chars,
            signature: Signature::uniform(1, accepted(), Volatility::Immutable),
        }
    }
}

/// Each row's length (`None` for null) as an Int32 or, when `wide`, an Int64 column.
fn lengths<'a>(
    n: usize,
    wide: bool,
    value: impl Fn(usize) -> Option<usize> + 'a,
) -> Result<ArrayRef> {
    if wide {
        let mut b = Int64Builder::with_capacity(n);
        for i in 0..n {
            b.append_option(value(i).map(|v| v as i64));
        }
        return Ok(Arc::new(b.finish()));
    }
    let mut b = Int32Builder::with_capacity(n);
    for i in 0..n {
        match value(i) {
            Some(v) => match i32::try_from(v) {
                Ok(v) => b.append_value(v),
                Err(_) => return exec_err!("a value of {v} bytes is too long for Int32"),
            },
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

impl ScalarUDFImpl for ByteLength {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match args.first() {
            Some(DataType::LargeUtf8 | DataType::LargeBinary) => DataType::Int64,
            _ => DataType::Int32,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [a] = arrays.as_slice() else {
            return exec_err!("{} takes one argument", self.name);
        };
        let valid = |i: usize| a.is_valid(i);
        let chars = self.unit == Unit::Chars;
        let count = |s: &str| if chars { s.chars().count() } else { s.len() };
        let wide = matches!(a.data_type(), DataType::LargeUtf8 | DataType::LargeBinary);
        let out = if let Some(s) = string_values(a.as_ref()) {
            lengths(n, wide, |i| valid(i).then(|| count(s(i))))?
        } else if let Some(b) = binary_values(a.as_ref()) {
            lengths(n, wide, |i| valid(i).then(|| b(i).len()))?
        } else {
            return exec_err!("{} does not take {}", self.name, a.data_type());
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
    use datafusion::logical_expr::ScalarUDF;
    use datafusion::prelude::SessionContext;

    async fn one(sql: &str) -> (DataType, Option<i64>) {
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::from(super::ByteLength::octet_length()));
        ctx.register_udf(ScalarUDF::from(super::ByteLength::length()));
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let col = batches[0].column(0);
        let value = match col.data_type() {
            _ if col.is_null(0) => None,
            DataType::Int32 => Some(i64::from(col.as_primitive::<Int32Type>().value(0))),
            DataType::Int64 => Some(col.as_primitive::<Int64Type>().value(0)),
            other => panic!("{other}"),
        };
        (col.data_type().clone(), value)
    }

    #[tokio::test]
    async fn every_layout_counts_and_large_ones_answer_int64() {
        let cases = [
            ("SELECT octet_length(X'0102ff')", DataType::Int32, Some(3)),
            ("SELECT length(X'0102ff')", DataType::Int32, Some(3)),
            (
                "SELECT octet_length(arrow_cast(X'0102', 'LargeBinary'))",
                DataType::Int64,
                Some(2),
            ),
            (
                "SELECT octet_length(arrow_cast(X'0102', 'BinaryView'))",
                DataType::Int32,
                Some(2),
            ),
            ("SELECT length('héllo')", DataType::Int32, Some(5)),
            ("SELECT octet_length('héllo')", DataType::Int32, Some(6)),
            (
                "SELECT length(arrow_cast('héllo', 'LargeUtf8'))",
                DataType::Int64,
                Some(5),
            ),
            (
                "SELECT length(arrow_cast('héllo', 'Utf8View'))",
                DataType::Int32,
                Some(5),
            ),
            (
                "SELECT octet_length(CAST(NULL AS BYTEA))",
                DataType::Int32,
                None,
            ),
        ];
        for (sql, ty, want) in cases {
            assert_eq!(one(sql).await, (ty, want), "{sql}");
        }
    }
}
