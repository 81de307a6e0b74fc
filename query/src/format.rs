//! Printing query results as a table, CSV or JSON.
//!
//! Binary columns (payloads, hashes, signatures) are printed as hex and list columns
//! as text, so every format can carry every column.

use crate::error::QueryError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::io::Write;
use std::sync::Arc;

/// The output formats every listing command offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!("`{other}` is not a format; use table, csv or json")),
        }
    }
}

fn hex_column(array: &ArrayRef) -> ArrayRef {
    let mut b = StringBuilder::new();
    for i in 0..array.len() {
        if array.is_null(i) {
            b.append_null();
            continue;
        }
        let bytes: &[u8] = match array.data_type() {
            DataType::Binary => array.as_binary::<i32>().value(i),
            DataType::LargeBinary => array.as_binary::<i64>().value(i),
            DataType::BinaryView => array.as_binary_view().value(i),
            DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(i),
            _ => &[],
        };
        b.append_value(hex::encode(bytes));
    }
    Arc::new(b.finish())
}

fn text_column(array: &ArrayRef) -> Result<ArrayRef, QueryError> {
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
    let mut b = StringBuilder::new();
    for i in 0..array.len() {
        if array.is_null(i) {
            b.append_null();
        } else {
            b.append_value(formatter.value(i).to_string());
        }
    }
    Ok(Arc::new(b.finish()))
}

/// Rewrites binary columns as hex, and (for CSV) nested columns as text.
fn printable(batch: &RecordBatch, flatten_nested: bool) -> Result<RecordBatch, QueryError> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let converted = match field.data_type() {
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => Some(hex_column(array)),
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::Struct(_)
            | DataType::Map(_, _)
                if flatten_nested =>
            {
                Some(text_column(array)?)
            }
            _ => None,
        };
        match converted {
            Some(c) => {
                fields.push(Field::new(field.name(), DataType::Utf8, true));
                columns.push(c);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(array.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Writes batches to `out` in the given format.
pub fn write_batches(
    out: &mut dyn Write,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<(), QueryError> {
    match format {
        OutputFormat::Table => {
            let printable: Vec<RecordBatch> = batches
                .iter()
                .map(|b| printable(b, false))
                .collect::<Result<_, _>>()?;
            let rows: usize = printable.iter().map(RecordBatch::num_rows).sum();
            if printable.is_empty() || printable.iter().all(|b| b.num_columns() == 0) {
                writeln!(out, "(0 rows)")?;
                return Ok(());
            }
            writeln!(
                out,
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&printable)?
            )?;
            writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            for b in batches {
                w.write(&printable(b, true)?)?;
            }
        }
        OutputFormat::Json => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                writeln!(out, "[]")?;
                return Ok(());
            }
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut *out);
            for b in batches {
                w.write(&printable(b, false)?)?;
            }
            w.finish()?;
            drop(w);
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Writes a query's result as it streams in: CSV and JSON row by row, batch by
/// batch, so an export of a large archive never sits in memory; a table needs all
/// rows to size its columns and is collected first.
pub async fn write_stream(
    out: &mut dyn Write,
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
    format: OutputFormat,
) -> Result<(), QueryError> {
    use futures::StreamExt;
    match format {
        OutputFormat::Table => {
            let mut batches = Vec::new();
            while let Some(b) = stream.next().await {
                batches.push(b?);
            }
            write_batches(out, &batches, format)
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            let mut wrote_any = false;
            let schema = stream.schema();
            while let Some(b) = stream.next().await {
                let b = b?;
                if b.num_rows() > 0 || !wrote_any {
                    w.write(&printable(&b, true)?)?;
                    wrote_any = true;
                }
            }
            if !wrote_any {
                // No rows: still print the header, so scripts see the columns.
                w.write(&printable(&RecordBatch::new_empty(schema), true)?)?;
            }
            Ok(())
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut *out);
            let mut rows = 0;
            while let Some(b) = stream.next().await {
                let b = b?;
                rows += b.num_rows();
                if b.num_rows() > 0 {
                    w.write(&printable(&b, false)?)?;
                }
            }
            if rows > 0 {
                w.finish()?;
            }
            drop(w);
            if rows == 0 {
                write!(out, "[]")?;
            }
            writeln!(out)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{FixedSizeBinaryArray, StringArray};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("hash", DataType::FixedSizeBinary(2), false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a,b"])),
                Arc::new(
                    FixedSizeBinaryArray::try_from_iter(vec![vec![0xab, 0x01]].into_iter())
                        .unwrap(),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn csv_quotes_and_hexes() {
        let mut out = Vec::new();
        write_batches(&mut out, &[batch()], OutputFormat::Csv).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "name,hash\n\"a,b\",ab01\n");
    }

    #[test]
    fn json_is_an_array_of_objects() {
        let mut out = Vec::new();
        write_batches(&mut out, &[batch()], OutputFormat::Json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["name"], "a,b");
        assert_eq!(v[0]["hash"], "ab01");
    }

    #[test]
    fn table_counts_rows() {
        let mut out = Vec::new();
        write_batches(&mut out, &[batch()], OutputFormat::Table).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("| a,b  | ab01 |"), "{s}");
        assert!(s.ends_with("(1 row)\n"));
    }
}
