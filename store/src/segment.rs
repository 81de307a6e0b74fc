//! The Parquet segment format: how a batch of events or checkpoints becomes a file.
//!
//! Segments are zstd-compressed, sorted by (session_id, seq) and carry row-group
//! statistics, a page index and a bloom filter on session_id, so a reader that wants
//! one session skips every row group and page that cannot hold it.

use crate::error::StoreError;
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::metadata::{KeyValue, SortingColumn};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

/// The segment format this build writes. Format 1 stored a full `prev_hash` and `hash`
/// per event; format 2 stores an 8-byte `tag` per event and says its version in the
/// file's key-value metadata under [`FORMAT_KEY`].
pub const FORMAT_VERSION: u32 = 2;

/// The Parquet key-value metadata key naming a segment's format version; a file
/// without it is format 1.
pub const FORMAT_KEY: &str = "tapline.format";

/// The Parquet key-value metadata key naming the table a segment belongs to.
pub const TABLE_KEY: &str = "tapline.table";

/// Rows per row group: small enough that one session is a small read, large enough
/// for good compression.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Columns of opaque bytes in either table: a dictionary never pays off and min/max
/// statistics on them prune nothing.
const OPAQUE_COLUMNS: &[&str] = &[
    "payload",
    "tag",
    "prev_hash",
    "hash",
    "head_hash",
    "seal_signature",
];

/// Integer columns that grow steadily along the sort order: delta encoding stores the
/// small differences instead of the large values.
const DELTA_COLUMNS: &[&str] = &["seq", "ts", "last_seq", "start_ts", "end_ts", "sealed_at"];

/// Text columns whose neighbours share long prefixes (a session's statements differ in
/// their literals): delta-length prefix encoding stores each value as what it adds to
/// the one before, which beats a dictionary when most values are distinct.
const PREFIX_DELTA_COLUMNS: &[&str] = &["command"];

/// The table a segment holds; each has its own sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `events/`: sorted by (session_id, seq).
    Events,
    /// `sessions/` (checkpoints): sorted by (session_id, last_seq).
    Sessions,
}

impl Table {
    /// The folder name under the archive root, also the `tapline.table` metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Sessions => "sessions",
        }
    }

    /// Column indices of the sort key in the table's schema.
    fn sort_key(self) -> [u32; 2] {
        match self {
            Table::Events => [0, 1],
            Table::Sessions => [0, 12],
        }
    }
}

/// Writer settings of format 2.
fn properties(table: Table) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // Commands repeat (a pool's statements, a session's retries): a dictionary of a
        // row group's distinct values beats storing each again, so give it room.
        .set_dictionary_page_size_limit(4 << 20)
        .set_key_value_metadata(Some(vec![
            KeyValue::new(FORMAT_KEY.to_string(), FORMAT_VERSION.to_string()),
            KeyValue::new(TABLE_KEY.to_string(), table.as_str().to_string()),
        ]));
    for column in OPAQUE_COLUMNS {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(*column), false)
            .set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
    }
    for column in PREFIX_DELTA_COLUMNS {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(*column), false)
            .set_column_encoding(ColumnPath::from(*column), Encoding::DELTA_BYTE_ARRAY);
    }
    for column in DELTA_COLUMNS {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(*column), false)
            .set_column_encoding(ColumnPath::from(*column), Encoding::DELTA_BINARY_PACKED);
    }
    builder
        .set_column_bloom_filter_enabled(ColumnPath::from("session_id"), true)
        .set_sorting_columns(Some(
            table
                .sort_key()
                .iter()
                .map(|&column_idx| SortingColumn {
                    column_idx: column_idx as i32,
                    descending: false,
                    nulls_first: false,
                })
                .collect(),
        ))
        .set_created_by(format!("tapline {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Encodes a sorted batch of `table` as one Parquet file of the current format.
pub fn encode(batch: &RecordBatch, table: Table) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 4 + 1024);
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(properties(table)))
        .map_err(|e| StoreError::segment("parquet writer", e))?;
    writer
        .write(batch)
        .map_err(|e| StoreError::segment("parquet write", e))?;
    writer
        .close()
        .map_err(|e| StoreError::segment("parquet close", e))?;
    Ok(out)
}

/// The format version a segment's footer metadata declares (1 when it declares none).
pub fn format_version(metadata: &datafusion::parquet::file::metadata::ParquetMetaData) -> u32 {
    metadata
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == FORMAT_KEY))
        .and_then(|k| k.value.as_deref())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The day of the `date=YYYY-MM-DD` partition an archive path lies in
/// (`events/date=2026-11-21/…`), if it lies in one.
pub fn partition_day(path: &str) -> Option<chrono::NaiveDate> {
    let part = path.split('/').nth(1)?.strip_prefix("date=")?;
    chrono::NaiveDate::parse_from_str(part, "%Y-%m-%d").ok()
}

/// The partition folder for a day: `date=YYYY-MM-DD`.
pub fn date_partition(ts_ns: i64) -> String {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let date = chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    format!("date={}", date.format("%Y-%m-%d"))
}

/// `<table>/date=YYYY-MM-DD/<gateway>-<spool id>-<spool file>.parquet`, relative to
/// the archive root. The spool id is made once per spool folder and the file number is
/// never reused within a spool (it survives restarts, see `SpoolDir`), so no two
/// uploads of different content ever share a name: a re-upload after a crash finds its
/// own, identical object, and several gateways never collide.
pub fn segment_path(
    table: &str,
    ts_ns: i64,
    gateway_id: &str,
    spool_id: &str,
    file_no: u64,
) -> String {
    format!(
        "{table}/{}/{gateway_id}-{spool_id}-{file_no:016}.parquet",
        date_partition(ts_ns)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_fixed_by_gateway_and_spool_position() {
        let ts = 1_763_769_600_000_000_000; // 2025-11-22
        let p = segment_path("events", ts, "gw-eu-1", "01jabc", 42);
        assert_eq!(
            p,
            "events/date=2025-11-22/gw-eu-1-01jabc-0000000000000042.parquet"
        );
        assert_eq!(p, segment_path("events", ts, "gw-eu-1", "01jabc", 42));
        assert_ne!(p, segment_path("events", ts, "gw-eu-2", "01jabc", 42));
    }

    #[test]
    fn segments_are_zstd_sorted_with_page_index_and_bloom_filter() {
        use crate::batch::events_to_batch;
        use crate::event::{Direction, Event, Kind, Status};
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        use datafusion::parquet::file::serialized_reader::ReadOptionsBuilder;
        let events: Vec<Event> = (0..3)
            .map(|seq| Event {
                session_id: "s".into(),
                seq,
                ts_ns: 0,
                gateway_id: "g".into(),
                connection: "c".into(),
                protocol: "postgres".into(),
                user: "u".into(),
                direction: Direction::Client,
                kind: Kind::Query,
                command: Some("select 1".into()),
                status: Status::Ok,
                row_count: None,
                duration_us: None,
                masked: vec![],
                payload: bytes::Bytes::from_static(b"Q"),
                text: None,
                prev_hash: [0; 32],
                hash: [1; 32],
            })
            .collect();
        let bytes = encode(
            &events_to_batch(&events.iter().collect::<Vec<_>>()).unwrap(),
            Table::Events,
        )
        .unwrap();
        let options = ReadOptionsBuilder::new().with_page_index().build();
        let reader =
            SerializedFileReader::new_with_options(bytes::Bytes::from(bytes), options).unwrap();
        let meta = reader.metadata();
        let rg = meta.row_group(0);
        assert!(matches!(rg.column(0).compression(), Compression::ZSTD(_)));
        assert!(
            rg.column(0).bloom_filter_offset().is_some(),
            "bloom filter on session_id"
        );
        assert!(rg.column(0).statistics().is_some());
        assert!(
            meta.column_index().is_some() && meta.offset_index().is_some(),
            "page index"
        );
        let sorting = rg.sorting_columns().expect("sorting columns declared");
        assert_eq!(
            sorting.iter().map(|c| c.column_idx).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(format_version(meta), FORMAT_VERSION);
        let seq = rg.column(1);
        assert!(
            seq.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED),
            "seq is delta-encoded: {:?}",
            seq.encodings().collect::<Vec<_>>()
        );
    }

    #[test]
    fn partitions_are_hive_style_days_in_utc() {
        // 2026-11-21T23:59:59Z
        assert_eq!(date_partition(1_795_305_599_000_000_000), "date=2026-11-21");
        assert_eq!(
            partition_day("events/date=2026-11-21/gw-s-0000000000000001.parquet"),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
        );
        assert_eq!(partition_day("ledger/gw/00000000000000000001.json"), None);
        assert_eq!(partition_day("events/date=2026-13-01/x.parquet"), None);
        assert_eq!(date_partition(1_795_305_600_000_000_000), "date=2026-11-22");
    }
}
