//! Reading query results by column name, whatever physical type DataFusion chose
//! (strings may come back as views, timestamps as timestamps): every column is cast
//! once to the plain type the viewer wants.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, UInt64Type};
use std::collections::HashMap;

/// One batch's columns, cast to plain types on first use.
pub struct Columns<'a> {
    batch: &'a RecordBatch,
    cache: HashMap<&'static str, ArrayRef>,
}

impl<'a> Columns<'a> {
    pub fn new(batch: &'a RecordBatch) -> Self {
        Columns {
            batch,
            cache: HashMap::new(),
        }
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.batch.num_rows() == 0
    }

    fn column(&mut self, name: &'static str, to: &DataType) -> Option<ArrayRef> {
        if let Some(c) = self.cache.get(name) {
            return Some(c.clone());
        }
        let raw = self.batch.column_by_name(name)?;
        let c = if raw.data_type() == to {
            raw.clone()
        } else {
            cast(raw, to).ok()?
        };
        self.cache.insert(name, c.clone());
        Some(c)
    }

    /// A whole string column (for reading many rows without a copy per value).
    pub fn utf8(&mut self, name: &'static str) -> Option<datafusion::arrow::array::StringArray> {
        let c = self.column(name, &DataType::Utf8)?;
        Some(c.as_string::<i32>().clone())
    }

    pub fn str(&mut self, name: &'static str, i: usize) -> Option<String> {
        let c = self.column(name, &DataType::Utf8)?;
        let a = c.as_string::<i32>();
        (!a.is_null(i)).then(|| a.value(i).to_string())
    }

    pub fn u64(&mut self, name: &'static str, i: usize) -> Option<u64> {
        let c = self.column(name, &DataType::UInt64)?;
        let a = c.as_primitive::<UInt64Type>();
        (!a.is_null(i)).then(|| a.value(i))
    }

    pub fn i64(&mut self, name: &'static str, i: usize) -> Option<i64> {
        let c = self.column(name, &DataType::Int64)?;
        let a = c.as_primitive::<Int64Type>();
        (!a.is_null(i)).then(|| a.value(i))
    }

    pub fn bytes(&mut self, name: &'static str, i: usize) -> Option<Vec<u8>> {
        let c = self.column(name, &DataType::Binary)?;
        let a = c.as_binary::<i32>();
        (!a.is_null(i)).then(|| a.value(i).to_vec())
    }

    /// A list of strings (e.g. `masked`, `groups`).
    pub fn strings(&mut self, name: &'static str, i: usize) -> Vec<String> {
        let Some(raw) = self.batch.column_by_name(name) else {
            return Vec::new();
        };
        let Some(list) = raw.as_list_opt::<i32>() else {
            return Vec::new();
        };
        if list.is_null(i) {
            return Vec::new();
        }
        let values = list.value(i);
        let Ok(values) = cast(&values, &DataType::Utf8) else {
            return Vec::new();
        };
        let s = values.as_string::<i32>();
        (0..s.len())
            .filter(|&j| !s.is_null(j))
            .map(|j| s.value(j).to_string())
            .collect()
    }
}
