//! Row accessors over Arrow's several layouts of one logical type, so each function
//! handles strings (Utf8, LargeUtf8, Utf8View) or binary values (Binary, LargeBinary,
//! BinaryView) once rather than once per layout.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;

/// Row `i`'s string, for any string layout; `None` for another type.
pub fn string_values<'a>(a: &'a dyn Array) -> Option<Box<dyn Fn(usize) -> &'a str + 'a>> {
    Some(match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            Box::new(move |i| s.value(i))
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            Box::new(move |i| s.value(i))
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            Box::new(move |i| s.value(i))
        }
        _ => return None,
    })
}

/// Row `i`'s bytes, for any binary layout; `None` for another type.
pub fn binary_values<'a>(a: &'a dyn Array) -> Option<Box<dyn Fn(usize) -> &'a [u8] + 'a>> {
    Some(match a.data_type() {
        DataType::Binary => {
            let b = a.as_binary::<i32>();
            Box::new(move |i| b.value(i))
        }
        DataType::LargeBinary => {
            let b = a.as_binary::<i64>();
            Box::new(move |i| b.value(i))
        }
        DataType::BinaryView => {
            let b = a.as_binary_view();
            Box::new(move |i| b.value(i))
        }
        _ => return None,
    })
}
