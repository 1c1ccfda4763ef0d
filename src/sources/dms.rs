//! The raw zone as AWS DMS writes it, rebuilt into the table's current state.
//!
//! DMS writes a table to `<folder>/<schema>/<table>/`: full-load files `LOAD00000001.parquet`
//! (hex counter, no `Op` column by default), then CDC files named by UTC time
//! (`20261121-080000123.parquet`) whose first column `Op` is `I`, `U` or `D`, optionally under
//! date folders (`2026/11/21/`). The current state is: full-load rows as inserts, then CDC rows
//! in (file name, row) order, `I`/`U` upserting on the key and `D` deleting.
//!
//! The rebuilt table is held in memory (decoded Arrow), so this suits raw tables that fit in
//! memory; a later version can stream the second pass.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

/// The operation column DMS writes first in CDC files.
pub const OP_COLUMN: &str = "Op";

/// DMS options of a lake source.
#[derive(Debug, Clone, Default)]
pub struct DmsOptions {
    /// Key columns per table, needed to apply updates and deletes.
    pub keys: HashMap<String, Vec<String>>,
    /// The DMS `TimestampColumnName` column (`yyyy-MM-dd HH:mm:ss.SSSSSS`, source commit time).
    pub timestamp_column: Option<String>,
    /// Rebuild the state as of this commit time.
    pub as_of: Option<DateTime<Utc>>,
}

/// What the files of one table say about how it can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeCapture {
    /// Only full-load files.
    FullLoadOnly,
    /// CDC files with an `Op` column: updates and deletes are applied.
    WithOperations,
    /// CDC files without `Op` (DMS `CdcInsertsOnly`): updates and deletes are not visible.
    InsertsOnly,
}

/// A table's current state and how it was obtained.
pub struct Rebuilt {
    pub batch: RecordBatch,
    pub capture: ChangeCapture,
    pub files: usize,
}

/// Full-load files first (by name), then CDC files by name: DMS names both in write order.
fn file_order(path: &StorePath) -> (bool, String) {
    let name = path.filename().unwrap_or_default().to_string();
    (!name.starts_with("LOAD"), name)
}

/// The UTC time a CDC file name encodes (`20261121-080000123`), if it is one.
fn file_time(path: &StorePath) -> Option<DateTime<Utc>> {
    let stem = path.filename()?.strip_suffix(".parquet")?;
    NaiveDateTime::parse_from_str(stem, "%Y%m%d-%H%M%S%3f")
        .ok()
        .map(|t| t.and_utc())
}

fn parse_commit_time(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
        .or_else(|| {
            DateTime::parse_from_rfc3339(text.trim())
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
}

/// Reads every Parquet file under `prefix` and applies the changes.
pub async fn rebuild(
    store: &dyn ObjectStore,
    prefix: &StorePath,
    table: &str,
    options: &DmsOptions,
) -> Result<Rebuilt, String> {
    use futures::TryStreamExt;
    let mut files: Vec<StorePath> = store
        .list(Some(prefix))
        .map_ok(|meta| meta.location)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|p| p.as_ref().ends_with(".parquet"))
        .collect();
    files.sort_by_key(file_order);
    if files.is_empty() {
        return Err(format!("no .parquet files under {prefix}"));
    }
    let mut batches: Vec<(bool, RecordBatch)> = Vec::new();
    for path in &files {
        let is_load = path.filename().is_some_and(|n| n.starts_with("LOAD"));
        if !is_load {
            if let (Some(as_of), None, Some(written)) =
                (options.as_of, &options.timestamp_column, file_time(path))
            {
                // Without commit times, a file written after `as_of` holds only later commits.
                if written > as_of {
                    continue;
                }
            }
        }
        let bytes = store
            .get(path)
            .await
            .map_err(|e| e.to_string())?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| format!("{path}: {e}"))?;
        for batch in reader {
            batches.push((is_load, batch.map_err(|e| format!("{path}: {e}"))?));
        }
    }
    let has_op = batches
        .iter()
        .any(|(_, b)| b.schema().column_with_name(OP_COLUMN).is_some());
    let has_cdc = files
        .iter()
        .any(|p| !p.filename().unwrap_or_default().starts_with("LOAD"));
    let capture = match (has_cdc, has_op) {
        (false, _) => ChangeCapture::FullLoadOnly,
        (true, true) => ChangeCapture::WithOperations,
        (true, false) => ChangeCapture::InsertsOnly,
    };
    let schema = unified_schema(&batches);
    let mut rows = Vec::with_capacity(batches.len());
    let mut ops: Vec<Option<String>> = Vec::new();
    for (is_load, batch) in &batches {
        let aligned = align(batch, &schema)?;
        let op = batch
            .column_by_name(OP_COLUMN)
            .map(|c| cast(c, &DataType::Utf8))
            .transpose()
            .map_err(|e| e.to_string())?;
        for row in 0..batch.num_rows() {
            ops.push(match (&op, is_load) {
                (Some(op), _) if !op.is_null(row) => {
                    Some(op.as_string::<i32>().value(row).to_string())
                }
                _ => None,
            });
        }
        rows.push(aligned);
    }
    let all = concat_batches(&schema, &rows).map_err(|e| e.to_string())?;
    let mut keep: Vec<bool> = vec![true; all.num_rows()];
    if let (Some(as_of), Some(column)) = (options.as_of, &options.timestamp_column) {
        let times = all.column_by_name(column).ok_or_else(|| {
            format!("timestamp column `{column}` is not in the files of `{table}`")
        })?;
        let times = cast(times, &DataType::Utf8).map_err(|e| e.to_string())?;
        let times = times.as_string::<i32>();
        for (row, kept) in keep.iter_mut().enumerate() {
            let at = (!times.is_null(row))
                .then(|| parse_commit_time(times.value(row)))
                .flatten();
            if at.is_some_and(|t| t > as_of) {
                *kept = false;
            }
        }
    }
    let key = options.keys.get(table);
    match (key, &capture) {
        (Some(key), _) => {
            let columns: Vec<ArrayRef> = key
                .iter()
                .map(|k| all.column_by_name(k).cloned().ok_or_else(|| format!("key column `{k}` is not in the files of `{table}`")))
                .collect::<Result<_, _>>()?;
            let converter = RowConverter::new(columns.iter().map(|c| SortField::new(c.data_type().clone())).collect())
                .map_err(|e| e.to_string())?;
            let keys = converter.convert_columns(&columns).map_err(|e| e.to_string())?;
            let mut latest: HashMap<Vec<u8>, usize> = HashMap::with_capacity(all.num_rows());
            for (row, kept) in keep.iter().enumerate() {
                if *kept {
                    latest.insert(keys.row(row).as_ref().to_vec(), row);
                }
            }
            let mut winners: Vec<u32> = latest
                .into_values()
                .filter(|row| ops[*row].as_deref() != Some("D"))
                .map(|row| row as u32)
                .collect();
            winners.sort_unstable();
            let indices = UInt32Array::from(winners);
            let columns = all.columns().iter().map(|c| take(c, &indices, None)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
            Ok(Rebuilt { batch, capture, files: files.len() })
        }
        (None, ChangeCapture::FullLoadOnly | ChangeCapture::InsertsOnly) => {
            let indices = UInt32Array::from((0..all.num_rows() as u32).filter(|r| keep[*r as usize]).collect::<Vec<_>>());
            let columns = all.columns().iter().map(|c| take(c, &indices, None)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
            Ok(Rebuilt { batch, capture, files: files.len() })
        }
        (None, ChangeCapture::WithOperations) => Err(format!(
            "DMS table `{table}` has CDC files: give its key under `keys:` of the source (e.g. `keys: {{ {table}: [id] }}`) so changes can be applied"
        )),
    }
}

/// Data columns of all files (the `Op` column dropped), first appearance order, first type.
fn unified_schema(batches: &[(bool, RecordBatch)]) -> SchemaRef {
    let mut fields: Vec<Field> = Vec::new();
    for (_, batch) in batches {
        for field in batch.schema().fields() {
            if field.name() != OP_COLUMN && !fields.iter().any(|f| f.name() == field.name()) {
                fields.push(field.as_ref().clone().with_nullable(true));
            }
        }
    }
    Arc::new(Schema::new(fields))
}

/// A batch with the unified columns: cast where types differ, NULL where a file lacks one.
fn align(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Ok(column.clone()),
            Some(column) => cast(column, field.data_type())
                .map_err(|e| format!("column `{}`: {e}", field.name())),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_load_files_before_cdc_files_by_name() {
        let mut files: Vec<StorePath> = [
            "t/2026/11/21/20261121-080000123.parquet",
            "t/LOAD00000002.parquet",
            "t/20261120-235959999.parquet",
            "t/LOAD00000001.parquet",
        ]
        .into_iter()
        .map(StorePath::from)
        .collect();
        files.sort_by_key(file_order);
        let names: Vec<&str> = files.iter().map(|p| p.filename().unwrap()).collect();
        assert_eq!(
            names,
            [
                "LOAD00000001.parquet",
                "LOAD00000002.parquet",
                "20261120-235959999.parquet",
                "20261121-080000123.parquet"
            ]
        );
    }

    #[test]
    fn reads_times_from_file_names_and_commit_columns() {
        assert_eq!(
            file_time(&StorePath::from("t/20261121-080000123.parquet"))
                .unwrap()
                .to_rfc3339(),
            "2026-11-21T08:00:00.123+00:00"
        );
        assert_eq!(file_time(&StorePath::from("t/LOAD00000001.parquet")), None);
        assert_eq!(
            parse_commit_time("2026-11-21 08:00:00.123456")
                .unwrap()
                .timestamp_micros()
                % 1_000_000,
            123_456
        );
    }
}
