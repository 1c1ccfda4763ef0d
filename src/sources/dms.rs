//! The raw zone as AWS DMS writes it, rebuilt into the table's current state.
//!
//! DMS writes a table to `<folder>/<schema>/<table>/`: full-load files `LOAD00000001.parquet`
//! (hex counter, no `Op` column by default), then CDC files whose first column `Op` is `I`, `U`
//! or `D`, flat or under date folders (`2026/11/21/`). A CDC file is named by the UTC time it was
//! written: `yyyyMMdd-HHmmss` and 0 to 9 fraction digits (`20261121-080000123.parquet`, AWS's
//! documented `20141029-1134010000`, `20261121-080000`).
//!
//! The contract:
//! - **Order.** Full-load rows come first (files by name, then row), then CDC rows. CDC rows are
//!   ordered by the sequence column when there is one: `sequence_column` of the source, or by
//!   default DMS's change-sequence header `AR_H_CHANGE_SEQ` (added by a transformation rule: a
//!   35-digit string, commit time then sequence, that orders as text) when the files have it.
//!   Values compare by the column's type; a row with NULL there, or from a file without the
//!   column, counts as older than every row that has a value; equal values (and NULLs among
//!   themselves) keep file/row order. Without a sequence column the order is file name, then row.
//!   Along that order `I`/`U` upsert on the key and `D` deletes: the last change of a key wins.
//! - **Columns.** The `Op` column is dropped; every other column, including the commit-time column
//!   and `AR_H_CHANGE_SEQ`, stays visible as a data column. Columns missing from a file are NULL.
//! - **`as_of` with `timestamp_column`** (DMS `TimestampColumnName`) keeps rows committed at or
//!   before `as_of`. Every row read needs a commit time, full-load rows too: DMS fills the column
//!   for them with the load time, so a missing column, a NULL or a value that is not a time is an
//!   error naming the file and its row (counted from 1), never a row silently kept. Typed
//!   timestamps are instants (a zone-less timestamp is UTC, as DMS writes it); strings are
//!   `yyyy-MM-dd HH:mm:ss[.ffffff]` (UTC) or RFC 3339.
//! - **`as_of` without `timestamp_column`** keeps the CDC files written at or before `as_of` by
//!   their file-name time, and every full-load file (their names carry no time). This is
//!   approximate: DMS buffers changes before writing a file, so commits made shortly before `as_of`
//!   may sit in a later file and are left out. A CDC file whose name is not a DMS time is then an
//!   error; without `as_of` such a file is read and ordered by its name.
//! - **Newest change** (`freshness`): the newest file (the last CDC file by name, else the last
//!   full-load file) dated by its largest `timestamp_column` value (every row needs one, as for
//!   `as_of`), else by the time in its name (a full-load name carries none: an error). Read from
//!   that one file, without rebuilding the table, so no `keys` are needed.
//!
//! - **Full-load duplicates.** The full load is a copy of a table that has the key, so two
//!   full-load rows with one key are data the user should see (a `unique` check finds them), not
//!   changes: both stay, unless a CDC change of the key replaces them all. A CDC key's changes
//!   collapse to its last one.
//!
//! **Memory.** The table is never held whole: opening it reads the files' footers and, in a
//! first pass, only the CDC files' key, `Op`, sequence and commit-time columns, keeping the last
//! change of each changed key ([`changed`], counted against `--memory-limit`). Queries then
//! stream the files ([`scan`]): full-load rows whose key did not change, then the CDC rows that
//! won, a file at a time per partition (at most `target_partitions` of them, whatever the number
//! of files). Memory is O(distinct changed keys) plus one file reader per partition, whatever
//! the size of the full load or the number of files. Errors in rows (a commit time
//! that is not one, a value that does not convert, a damaged file) surface when a query reads
//! them, naming the file and row as they would at open.

mod changed;
mod scan;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    new_null_array, Array, ArrowPrimitiveType, AsArray, RecordBatch, RecordBatchOptions,
};
use datafusion::arrow::compute::{can_cast_types, cast};
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::temporal_conversions::as_datetime;
use datafusion::execution::memory_pool::MemoryReservation;
use object_store::path::Path as StorePath;
use object_store::{ObjectMeta, ObjectStore};

use self::changed::{ChangedKeys, LastChanges};
use self::scan::{key_schema, CommitCut, DmsFile, DmsTable, Rebuild};
use super::changes::{Arrival, ChangeCursor, ChangePosition, Changes};
use super::pin::Pin;
use super::table_format::{
    read_parquet, NewestTime, OpenedTable, TableChanges, TableError, TableFolder, TableFormat,
    TableFormatKind,
};
use crate::model::{MapReader, RuleError};

/// The operation column DMS writes first in CDC files.
pub const OP_COLUMN: &str = "Op";

/// DMS's change-sequence header column (a transformation rule adds it): a 35-digit string,
/// commit time then a sequence number, that orders changes when compared as text.
pub const CHANGE_SEQUENCE_COLUMN: &str = "AR_H_CHANGE_SEQ";

/// DMS options of a lake source.
#[derive(Debug, Clone, Default)]
pub struct DmsOptions {
    /// Key columns per table, needed to apply updates and deletes.
    pub keys: HashMap<String, Vec<String>>,
    /// The DMS `TimestampColumnName` column (source commit time; load time for full-load rows):
    /// a timestamp, or a string `yyyy-MM-dd HH:mm:ss[.ffffff]` (UTC) or RFC 3339.
    pub timestamp_column: Option<String>,
    /// Rebuild the state as of this commit time.
    pub as_of: Option<DateTime<Utc>>,
    /// The column whose greatest value is a key's last CDC change; `None`: `AR_H_CHANGE_SEQ`
    /// when the files have it, else file/row order.
    pub sequence_column: Option<String>,
}

/// `format: dms` (or `layout: dms`): a folder of AWS DMS full-load and CDC files per table,
/// rebuilt into the table's current state.
pub const FORMAT: TableFormatKind = TableFormatKind {
    name: "dms",
    own_source_type: false,
    options: &["keys", "timestamp_column", "as_of", "sequence_column"],
    parse: |_, options| Ok(Arc::new(DmsFormat(parse_options(options)?))),
    // To Glue a DMS folder is Parquet: a rule names this format with `layout: dms`.
    in_catalog: super::table_format::never_in_catalog,
};

fn parse_options(options: &mut MapReader) -> Result<DmsOptions, RuleError> {
    let keys = options.string_list_map("keys")?;
    let timestamp_column = options.string("timestamp_column")?;
    let sequence_column = options.string("sequence_column")?;
    let as_of = options.time("as_of")?.map(|t| t.value);
    Ok(DmsOptions {
        keys: keys.into_iter().collect(),
        timestamp_column: timestamp_column.map(|t| t.value),
        as_of,
        sequence_column: sequence_column.map(|s| s.value),
    })
}

#[derive(Debug)]
struct DmsFormat(DmsOptions);

#[async_trait]
impl TableFormat for DmsFormat {
    fn name(&self) -> &'static str {
        FORMAT.name
    }

    fn marker(&self) -> String {
        ".parquet files (DMS full load `LOAD*.parquet` or CDC changes)".into()
    }

    async fn exists(&self, folder: &TableFolder<'_>) -> Result<bool, TableError> {
        folder.has_below("").await
    }

    async fn open(&self, folder: &TableFolder<'_>) -> Result<OpenedTable, TableError> {
        let mut options = self.0.clone();
        match folder.pin {
            Some(Pin::Time(at)) => options.as_of = Some(*at),
            Some(Pin::Version(_)) => {
                return Err(TableError::Unsupported {
                    reference: folder.name.to_string(),
                    reason: "DMS tables are pinned by time (`@2026-11-22T00:00:00Z`), not version"
                        .into(),
                })
            }
            None => {}
        }
        let opened = open_rebuild(folder, &options).await?;
        let mut table = OpenedTable::new(Arc::new(DmsTable(Arc::new(opened.rebuild))));
        // The changed keys stay in memory while the source caches the table: they count.
        table.held = opened.held;
        table.caveat = (opened.capture == ChangeCapture::InsertsOnly).then(|| {
            format!(
                "`{}` holds insert-only DMS change data (CDC files without an `{OP_COLUMN}` column): updates and deletes \
                 cannot be reconciled; enable DMS `IncludeOpForFullLoad`/`CdcInsertsAndUpdates` or compare counts only",
                folder.name
            )
        });
        Ok(table)
    }

    async fn changes(&self, folder: &TableFolder<'_>, from: &ChangePosition) -> TableChanges {
        changes_after(folder, from).await
    }

    /// The newest file (by the order changes apply in: the last CDC file, else the last
    /// full-load file) dated by its largest `timestamp_column` value when the source names one,
    /// else by the time in its name.
    async fn newest_change(
        &self,
        folder: &TableFolder<'_>,
    ) -> Result<Option<NewestTime>, TableError> {
        if folder.pin.is_some() {
            return Err(TableError::Unsupported {
                reference: folder.name.to_string(),
                reason: "the newest change is read from the table as it is now: remove the pin \
                         (`lakecheck run --now` sets the moment ages are measured against)"
                    .into(),
            });
        }
        let files = parquet_files(folder.store.as_ref(), folder.prefix)
            .await
            .map_err(|e| folder.unreachable(e))?;
        let Some(newest) = files.last().map(|meta| &meta.location) else {
            return Err(folder.unreadable("DMS", format!("no .parquet files under {}", folder.url)));
        };
        let url = folder.file_url(newest);
        let dated = match &self.0.timestamp_column {
            Some(column) => newest_commit_time(folder.store.as_ref(), newest, column)
                .await
                .map(|at| (at, format!("`{column}` of {url}"))),
            None => file_time(newest)
                .map(|at| (at, format!("the name of {url}")))
                .ok_or_else(|| unnamed_newest_file(newest)),
        };
        let (at, origin) = dated.map_err(|cause| TableError::Unreadable {
            format: "DMS",
            table: folder.name.to_string(),
            file: Some(url.clone()),
            cause,
        })?;
        Ok(Some(NewestTime { at, origin }))
    }
}

/// Why the newest file of a table without `timestamp_column` gives no time.
fn unnamed_newest_file(path: &StorePath) -> String {
    if is_full_load(path) {
        "the table holds only full-load files, whose names carry no time; set `timestamp_column` \
         (the DMS `TimestampColumnName`) to date changes by their commit time, or date the table \
         by its files' arrival"
            .into()
    } else {
        "the newest file is not named by the time DMS wrote it (`20261121-080000123.parquet`); \
         set `timestamp_column` (the DMS `TimestampColumnName`) to date changes by their commit \
         time, or move the file out of the table folder"
            .into()
    }
}

/// The largest commit time in `column` of the file at `path`. Every row needs one: a NULL, a
/// value that is not a time or a file without rows is an error naming the row, never skipped.
async fn newest_commit_time(
    store: &dyn ObjectStore,
    path: &StorePath,
    column: &str,
) -> Result<DateTime<Utc>, String> {
    let mut newest: Option<DateTime<Utc>> = None;
    let mut row = 0;
    for batch in read_parquet(store, path).await? {
        let Some(times) = batch.column_by_name(column) else {
            return Err(format!(
                "no column `{column}` (the `timestamp_column`); its columns are {}",
                column_list(&batch)
            ));
        };
        for time in commit_times(times.as_ref()).map_err(|e| format!("column `{column}` {e}"))? {
            row += 1;
            match time {
                Ok(at) => newest = newest.max(Some(at)),
                Err(BadCommitTime::Null) => {
                    return Err(format!(
                    "row {row}: commit time `{column}` is NULL, so the newest change is unknown; \
                         DMS fills `TimestampColumnName` for every full-load and CDC row"
                ))
                }
                Err(BadCommitTime::NotATime(value)) => {
                    return Err(format!(
                        "row {row}: commit time `{column}` = `{value}` is not a time; expected \
                         `yyyy-MM-dd HH:mm:ss[.ffffff]` (UTC, as DMS writes it), RFC 3339 or a \
                         timestamp column"
                    ))
                }
            }
        }
    }
    newest.ok_or_else(|| "the newest file holds no rows, so it dates no change".to_string())
}

/// The names of a batch's columns, for messages: `` `a`, `b` ``.
fn column_list(batch: &RecordBatch) -> String {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every Parquet file under `prefix`, at any depth, in the order changes apply
/// ([`file_order`]).
async fn parquet_files(
    store: &dyn ObjectStore,
    prefix: &StorePath,
) -> Result<Vec<ObjectMeta>, String> {
    use futures::TryStreamExt;
    let mut files: Vec<ObjectMeta> = store
        .list(Some(prefix))
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|meta| meta.location.as_ref().ends_with(".parquet"))
        .collect();
    files.sort_by_key(|meta| file_order(&meta.location));
    Ok(files)
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

/// Full-load files are named `LOAD<hex counter>.parquet`; every other Parquet file is CDC.
fn is_full_load(path: &StorePath) -> bool {
    path.filename().is_some_and(|n| n.starts_with("LOAD"))
}

/// Full-load files first (by name), then CDC files by name: DMS names both in write order, and
/// a CDC name (fixed-width date and time, then fraction digits) sorts as its time does.
fn file_order(path: &StorePath) -> (bool, String, String) {
    let name = path.filename().unwrap_or_default().to_string();
    (!is_full_load(path), name, path.to_string())
}

/// The UTC time a CDC file name encodes: `yyyyMMdd-HHmmss` then 0 to 9 fraction digits
/// (`20261121-080000123`, `20141029-1134010000`), if it is one.
fn file_time(path: &StorePath) -> Option<DateTime<Utc>> {
    let stem = path.filename()?.strip_suffix(".parquet")?;
    let (date, time) = stem.split_once('-')?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if date.len() != 8 || !(6..=15).contains(&time.len()) || !digits(date) || !digits(time) {
        return None;
    }
    let number = |s: &str| s.parse::<u32>().ok();
    let (hms, fraction) = time.split_at(6);
    let nanos = if fraction.is_empty() {
        0
    } else {
        number(fraction)? * 10u32.pow(9 - fraction.len() as u32)
    };
    let day = NaiveDate::from_ymd_opt(
        date[..4].parse().ok()?,
        number(&date[4..6])?,
        number(&date[6..])?,
    )?;
    day.and_hms_nano_opt(
        number(&hms[..2])?,
        number(&hms[2..4])?,
        number(&hms[4..])?,
        nanos,
    )
    .map(|t| t.and_utc())
}

/// A commit time written as text: `yyyy-MM-dd HH:mm:ss[.ffffff]` (UTC, as DMS writes it) or
/// RFC 3339 with its offset.
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

/// Why one row's commit time could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BadCommitTime {
    Null,
    /// The value as written.
    NotATime(String),
}

/// The commit time of each row of a column: typed timestamps as the instants they hold (a
/// zone-less timestamp is UTC, as DMS writes it), strings parsed by [`parse_commit_time`].
/// `Err` for a column of any other type.
fn commit_times(column: &dyn Array) -> Result<Vec<Result<DateTime<Utc>, BadCommitTime>>, String> {
    fn instants<T: ArrowPrimitiveType<Native = i64>>(
        column: &dyn Array,
    ) -> Vec<Result<DateTime<Utc>, BadCommitTime>> {
        column
            .as_primitive::<T>()
            .iter()
            .map(|value| {
                let value = value.ok_or(BadCommitTime::Null)?;
                as_datetime::<T>(value)
                    .map(|t| t.and_utc())
                    .ok_or_else(|| BadCommitTime::NotATime(format!("{value} ({})", T::DATA_TYPE)))
            })
            .collect()
    }
    Ok(match column.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => instants::<TimestampSecondType>(column),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            instants::<TimestampMillisecondType>(column)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            instants::<TimestampMicrosecondType>(column)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => instants::<TimestampNanosecondType>(column),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
            text.as_string::<i32>()
                .iter()
                .map(|value| {
                    let value = value.ok_or(BadCommitTime::Null)?;
                    parse_commit_time(value).ok_or_else(|| BadCommitTime::NotATime(value.into()))
                })
                .collect()
        }
        other => {
            return Err(format!(
            "is {other}; commit times must be timestamps or strings (`yyyy-MM-dd HH:mm:ss.ffffff`)"
        ))
        }
    })
}

/// Which rows of one file's batch were committed at or before `as_of`; an error naming the file,
/// the row (counted from 1 within the file) and the value when a row has no readable commit time.
fn committed_by(
    batch: &RecordBatch,
    path: &StorePath,
    first_row: usize,
    column: &str,
    as_of: DateTime<Utc>,
) -> Result<Vec<bool>, String> {
    let Some(times) = batch.column_by_name(column) else {
        return Err(format!(
            "`{path}` has no column `{column}` (the `timestamp_column`), so `as_of` cannot tell when its \
             rows were committed; its columns are {}. Check the name against the DMS endpoint's \
             `TimestampColumnName` (DMS writes it to full-load and CDC files alike), reload the table \
             with it set, or remove `as_of`",
            column_list(batch)
        ));
    };
    let times =
        commit_times(times.as_ref()).map_err(|e| format!("`{path}`: column `{column}` {e}"))?;
    times
        .into_iter()
        .enumerate()
        .map(|(i, time)| {
            let row = first_row + i + 1;
            match time {
                Ok(time) => Ok(time <= as_of),
                Err(BadCommitTime::Null) => Err(format!(
                    "`{path}`, row {row}: commit time `{column}` is NULL, so `as_of` cannot tell whether \
                     the row was committed before {as_of}; DMS fills `TimestampColumnName` for every \
                     full-load and CDC row. Fix or rewrite the file, or remove `as_of`"
                )),
                Err(BadCommitTime::NotATime(value)) => Err(format!(
                    "`{path}`, row {row}: commit time `{column}` = `{value}` is not a time; expected \
                     `yyyy-MM-dd HH:mm:ss[.ffffff]` (UTC, as DMS writes it), RFC 3339 \
                     (`2026-11-21T08:00:00Z`) or a timestamp column. Fix the value, point \
                     `timestamp_column` at the DMS `TimestampColumnName`, or remove `as_of`"
                )),
            }
        })
        .collect()
}

/// Rows per batch of the first pass, which reads only keys, `Op`, sequence and commit time.
const FIRST_PASS_BATCH_ROWS: usize = 8192;

/// How many file footers are read at once when a table is opened.
const FOOTERS_AT_ONCE: usize = 16;

/// A table opened for the streamed rebuild: what its scan reads, how its changes were
/// captured, and the memory its changed keys hold.
struct Opened {
    rebuild: Rebuild,
    capture: ChangeCapture,
    held: Option<MemoryReservation>,
}

/// Lists the table's files, reads their footers (the unified columns, the checks of types and
/// columns), then the first pass: the last change of each key the CDC files touch. The rows
/// themselves are read by the scan ([`scan`]).
async fn open_rebuild(
    folder: &TableFolder<'_>,
    options: &DmsOptions,
) -> Result<Opened, TableError> {
    use futures::{StreamExt, TryStreamExt};
    let unreadable = |e: String| folder.unreadable("DMS", e);
    let table = folder.name;
    let listed = parquet_files(folder.store.as_ref(), folder.prefix)
        .await
        .map_err(unreadable)?;
    if listed.is_empty() {
        return Err(unreadable(format!(
            "no .parquet files under {}",
            folder.prefix
        )));
    }
    // Without commit times, `as_of` can only go by the time a CDC file was written; a file
    // written after it is never read, not even its footer.
    let as_of_by_file_time = options.as_of.filter(|_| options.timestamp_column.is_none());
    let mut applying = Vec::with_capacity(listed.len());
    for meta in listed {
        let is_full_load = is_full_load(&meta.location);
        if let (false, Some(as_of)) = (is_full_load, as_of_by_file_time) {
            match file_time(&meta.location) {
                // Every commit in a file was made before it was written.
                Some(written) if written > as_of => continue,
                Some(_) => {}
                None => {
                    return Err(unreadable(format!(
                        "`{}` is neither a full-load file (`LOAD00000001.parquet`) nor named by the \
                         time DMS wrote it (`20261121-080000123.parquet`), so `as_of` cannot tell which \
                         commits it holds; move it out of the table folder, or set `timestamp_column` \
                         (the DMS `TimestampColumnName`) so rows are cut by commit time",
                        meta.location
                    )))
                }
            }
        }
        applying.push((meta, is_full_load));
    }
    let files: Vec<DmsFile> = futures::stream::iter(applying)
        .map(|(meta, is_full_load)| DmsFile::open(&folder.store, meta, is_full_load))
        .buffered(FOOTERS_AT_ONCE)
        .try_collect()
        .await
        .map_err(unreadable)?;
    let has_op = files
        .iter()
        .any(|f| f.schema().column_with_name(OP_COLUMN).is_some());
    let has_cdc = files.iter().any(|f| !f.is_full_load);
    let capture = match (has_cdc, has_op) {
        (false, _) => ChangeCapture::FullLoadOnly,
        (true, true) => ChangeCapture::WithOperations,
        (true, false) => ChangeCapture::InsertsOnly,
    };
    let schema = unified_schema(files.iter().map(DmsFile::schema));
    refuse_type_clashes(&files, &schema).map_err(unreadable)?;
    let sequence_column = sequence_column(&files, &schema, table, options).map_err(unreadable)?;
    let cut = match (options.as_of, &options.timestamp_column) {
        (Some(as_of), Some(column)) => Some(CommitCut {
            column: column.clone(),
            as_of,
        }),
        _ => None,
    };
    if let Some(cut) = &cut {
        // Every file needs the commit-time column, of a time type: asked of no rows, the
        // per-row check reports exactly that, before any row is read.
        for file in &files {
            committed_by(
                &RecordBatch::new_empty(file.schema().clone()),
                &file.path,
                0,
                &cut.column,
                cut.as_of,
            )
            .map_err(unreadable)?;
        }
    }
    let key = match (options.keys.get(table), &capture) {
        (Some(key), _) => key_schema(&schema, key, table).map_err(unreadable)?,
        (None, ChangeCapture::FullLoadOnly | ChangeCapture::InsertsOnly) => {
            Arc::new(Schema::empty())
        }
        (None, ChangeCapture::WithOperations) => return Err(unreadable(format!(
            "DMS table `{table}` has CDC files: give its key under `keys:` of the source (e.g. `keys: {{ {table}: [id] }}`) so changes can be applied"
        ))),
    };
    let mut held = None;
    let changed = match key.fields().is_empty() || !has_cdc {
        true => None,
        false => {
            let reservation = folder.hold_memory("DMS", 0)?;
            let changes = LastChanges::new(
                key.fields().iter().map(|f| f.data_type().clone()).collect(),
                sequence_column
                    .map(|c| schema.field_with_name(c).map(|f| f.data_type().clone()))
                    .transpose()
                    .map_err(|e| unreadable(e.to_string()))?,
            )
            .map_err(unreadable)?;
            let first_pass = FirstPass {
                folder,
                files: &files,
                key: &key,
                sequence_column,
                cut: cut.as_ref(),
            };
            let changed = first_pass.run(changes, &reservation).await?;
            held = Some(reservation);
            Some(changed)
        }
    };
    Ok(Opened {
        rebuild: Rebuild {
            table: table.to_string(),
            store: folder.store.clone(),
            schema,
            files,
            key,
            changed,
            cut,
        },
        capture,
        held,
    })
}

/// The first pass over a table's CDC files (see [`changed`]).
struct FirstPass<'a> {
    folder: &'a TableFolder<'a>,
    files: &'a [DmsFile],
    key: &'a SchemaRef,
    sequence_column: Option<&'a str>,
    cut: Option<&'a CommitCut>,
}

impl FirstPass<'_> {
    /// Reads every CDC file's keys, `Op`, sequence and commit time into `changes`, counting the
    /// map in `held` after each file (an error as soon as the changed keys pass the limit).
    async fn run(
        &self,
        mut changes: LastChanges,
        held: &MemoryReservation,
    ) -> Result<ChangedKeys, TableError> {
        use futures::StreamExt;
        let unreadable = |e: String| self.folder.unreadable("DMS", e);
        let mut columns: Vec<&str> = self
            .key
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        columns.push(OP_COLUMN);
        columns.extend(self.sequence_column);
        columns.extend(self.cut.map(|c| c.column.as_str()));
        for (index, file) in self.files.iter().enumerate() {
            if file.is_full_load {
                continue;
            }
            let mut batches = file
                .read(&self.folder.store, &columns, None, FIRST_PASS_BATCH_ROWS)
                .map_err(unreadable)?;
            let mut first_row = 0;
            while let Some(batch) = batches.next().await {
                let batch = batch.map_err(|e| unreadable(file.error(e)))?;
                let committed = self
                    .cut
                    .map(|c| committed_by(&batch, &file.path, first_row, &c.column, c.as_of))
                    .transpose()
                    .map_err(unreadable)?;
                let keys = align(&batch, self.key).map_err(|e| unreadable(file.error(e)))?;
                changes
                    .observe(
                        index,
                        first_row,
                        keys.columns(),
                        self.sequence_column.and_then(|c| batch.column_by_name(c)),
                        batch.column_by_name(OP_COLUMN),
                        committed.as_deref(),
                    )
                    .map_err(|e| unreadable(file.error(e)))?;
                first_row += batch.num_rows();
            }
            self.folder.resize_held("DMS", held, changes.bytes())?;
        }
        let changed = changes.finish(self.files.len());
        self.folder.resize_held("DMS", held, changed.bytes())?;
        Ok(changed)
    }
}

/// The column that orders CDC changes, if any (see the module docs), of one type in every file.
fn sequence_column<'a>(
    files: &[DmsFile],
    schema: &SchemaRef,
    table: &str,
    options: &'a DmsOptions,
) -> Result<Option<&'a str>, String> {
    let column = match &options.sequence_column {
        Some(column) if schema.column_with_name(column).is_none() => {
            return Err(format!(
                "sequence column `{column}` is not in the files of `{table}`; check `sequence_column` of the source, \
                 or remove it to order changes by `{CHANGE_SEQUENCE_COLUMN}` when present, else by file and row"
            ))
        }
        Some(column) => column.as_str(),
        None if schema.column_with_name(CHANGE_SEQUENCE_COLUMN).is_some() => CHANGE_SEQUENCE_COLUMN,
        None => return Ok(None),
    };
    let expected = schema.field_with_name(column).map_err(|e| e.to_string())?;
    for file in files {
        if let Some((_, found)) = file
            .schema()
            .column_with_name(column)
            .filter(|(_, f)| f.data_type() != expected.data_type())
        {
            return Err(format!(
                "`{}`: sequence column `{column}` is {} here but {} in earlier files; values of \
                 different types do not order. Rewrite the file with one type",
                file.path,
                found.data_type(),
                expected.data_type()
            ));
        }
    }
    Ok(Some(column))
}

/// A column whose type in a file does not convert to its type in the table (the first file's)
/// is refused when the table is opened; a value that does not convert fails the scan.
fn refuse_type_clashes(files: &[DmsFile], schema: &SchemaRef) -> Result<(), String> {
    for file in files {
        for field in file.schema().fields() {
            let Ok(table) = schema.field_with_name(field.name()) else {
                continue; // the `Op` column
            };
            if !can_cast_types(field.data_type(), table.data_type()) {
                return Err(format!(
                    "`{}`: column `{}` is {} here but {} in earlier files, and one does not convert \
                     to the other. Rewrite the file with the table's type",
                    file.path,
                    field.name(),
                    field.data_type(),
                    table.data_type()
                ));
            }
        }
    }
    Ok(())
}

/// The CDC files written after `from`, each read whole; full-load files are not changes. A CDC
/// file's name is the time DMS wrote it, so from a cursor (the last file read) only the names
/// after it are listed (`list_with_offset`), and from a time only the names from that second on
/// (see [`listing_offset`]).
async fn changes_after(folder: &TableFolder<'_>, from: &ChangePosition) -> TableChanges {
    use futures::TryStreamExt;
    let store = folder.store.as_ref();
    let (offset, since) = match from {
        ChangePosition::After(cursor) => {
            let last = StorePath::parse(&cursor.0).map_err(|e| folder.unreadable("DMS", e))?;
            (Some(last), None)
        }
        ChangePosition::Since(at) => (listing_offset(folder, *at).await?, Some(*at)),
    };
    let listing = match &offset {
        Some(offset) => store.list_with_offset(Some(folder.prefix), offset),
        None => store.list(Some(folder.prefix)),
    };
    let listed: Vec<_> = listing
        .try_collect()
        .await
        .map_err(|e| folder.unreachable(e))?;
    let mut files: Vec<(DateTime<Utc>, StorePath)> = Vec::new();
    for path in listed.into_iter().map(|meta| meta.location) {
        if !path.as_ref().ends_with(".parquet") || is_full_load(&path) {
            continue;
        }
        let written = file_time(&path).ok_or_else(|| {
            folder.unreadable(
                "DMS",
                format!(
                    "`{path}` is neither a full-load file (`LOAD00000001.parquet`) nor named by the \
                     time DMS wrote it (`20261121-080000123.parquet`), so it cannot be placed among \
                     the changes; move it out of the table folder"
                ),
            )
        })?;
        if since.is_none_or(|since| written >= since) {
            files.push((written, path));
        }
    }
    files.sort();
    let mut arrivals = Vec::with_capacity(files.len());
    for (written, path) in &files {
        let batches = read_parquet(store, path)
            .await
            .map_err(|e| folder.unreadable("DMS", e))?;
        arrivals.push(Arrival {
            found_in: folder.file_url(path),
            landed_at: *written,
            rows: batches,
        });
    }
    // Names sort as their times in the layouts `listing_offset` places; in others every file is
    // listed each time, from just after the last one's time.
    let next = match (files.last(), &offset) {
        (None, _) => from.clone(),
        (Some((_, path)), Some(_)) => ChangePosition::After(ChangeCursor(path.to_string())),
        (Some((written, _)), None) => {
            ChangePosition::Since(*written + chrono::Duration::nanoseconds(1))
        }
    };
    Ok(Changes { arrivals, next })
}

/// Where to list from for the CDC files written at or after `at`: the name DMS gives a file
/// written in that second (without fraction digits, so it sorts before every such file), inside
/// the table's date folders (`2026/11/21/`) as a CDC file already there shows them. `None` (list
/// the whole folder) when the table has no CDC file yet, or when its date folders do not sort by
/// time (DMS `DatePartitionSequence` `MMYYYYDD`, `DDMMYYYY`).
async fn listing_offset(
    folder: &TableFolder<'_>,
    at: DateTime<Utc>,
) -> Result<Option<StorePath>, TableError> {
    use futures::StreamExt;
    let mut listing = folder.store.list(Some(folder.prefix));
    while let Some(meta) = listing.next().await {
        let path = meta.map_err(|e| folder.unreachable(e))?.location;
        if is_full_load(&path) || file_time(&path).is_none() {
            continue;
        }
        let Some(parts) = path.prefix_match(folder.prefix) else {
            continue;
        };
        let parts: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
        let Some((name, folders)) = parts.split_last() else {
            continue;
        };
        return Ok(offset_parts(folders, name, at).map(|parts| {
            parts
                .iter()
                .fold(folder.prefix.clone(), |path, part| path.join(part.as_str()))
        }));
    }
    Ok(None)
}

/// The offset of [`listing_offset`] below the table folder, from a CDC file already there (its
/// date folders and name): the folders with their digits replaced by those of `at`, then
/// `yyyyMMdd-HHmmss` of `at`. `None` when the folders' digits are not the leading digits of the
/// file's name, i.e. do not sort as its time.
fn offset_parts(folders: &[String], name: &str, at: DateTime<Utc>) -> Option<Vec<String>> {
    let digits = |text: &str| -> String { text.chars().filter(char::is_ascii_digit).collect() };
    let in_folders: String = folders.iter().map(|f| digits(f)).collect();
    let at_digits = at.format("%Y%m%d%H%M%S").to_string();
    if !digits(name).starts_with(&in_folders) || in_folders.len() > at_digits.len() {
        return None;
    }
    let mut replacement = at_digits.chars();
    let mut parts: Vec<String> = folders
        .iter()
        .map(|f| {
            f.chars()
                .map(|c| match c.is_ascii_digit() {
                    true => replacement.next().unwrap_or(c),
                    false => c,
                })
                .collect()
        })
        .collect();
    parts.push(at.format("%Y%m%d-%H%M%S").to_string());
    Some(parts)
}

/// Data columns of all files (the `Op` column dropped), first appearance order, first type.
fn unified_schema<'a>(files: impl Iterator<Item = &'a SchemaRef>) -> SchemaRef {
    let mut fields: Vec<Field> = Vec::new();
    for schema in files {
        for field in schema.fields() {
            if field.name() != OP_COLUMN && !fields.iter().any(|f| f.name() == field.name()) {
                fields.push(field.as_ref().clone().with_nullable(true));
            }
        }
    }
    Arc::new(Schema::new(fields))
}

/// A batch with the columns of `schema` (all unified columns, or some of them): cast where
/// types differ, NULL where a file lacks one; the batch's other columns are left out.
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
    // A scan may ask for no column at all (`count(*)`): the rows still count.
    let rows = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &rows).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
        TimestampNanosecondArray,
    };
    use rstest::rstest;

    /// The offset changes are listed from, for a time, in the folders of a file already there.
    #[rstest]
    #[case::flat(&[], Some(&["20261121-080000"][..]))]
    #[case::date_folders(&["2026", "11", "21"], Some(&["2026", "11", "20", "20261120-235959"][..]))]
    #[case::hour_folders(&["2026", "11", "21", "08"], Some(&["2026", "11", "20", "23", "20261120-235959"][..]))]
    #[case::one_folder_with_dashes(&["2026-11-21"], Some(&["2026-11-20", "20261120-235959"][..]))]
    #[case::month_first(&["11", "2026", "21"], None)]
    #[case::not_digits(&["archive"], Some(&["archive", "20261120-235959"][..]))]
    fn cdc_listing_starts_at_the_name_dms_gives_that_second(
        #[case] folders: &[&str],
        #[case] expected: Option<&[&str]>,
    ) {
        let folders: Vec<String> = folders.iter().map(|f| f.to_string()).collect();
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        let (name, time) = match folders.is_empty() {
            true => ("20261121-080002153.parquet", at("2026-11-21T08:00:00.900Z")),
            false => ("20261121-080002153.parquet", at("2026-11-20T23:59:59.500Z")),
        };
        let expected: Option<Vec<String>> =
            expected.map(|parts| parts.iter().map(|p| p.to_string()).collect());
        assert_eq!(offset_parts(&folders, name, time), expected);
    }

    #[test]
    fn orders_load_files_before_cdc_files_by_name() {
        let mut files: Vec<StorePath> = [
            "t/2026/11/21/20261121-080000123.parquet",
            "t/LOAD00000002.parquet",
            "t/20261120-235959999.parquet",
            "t/20141029-1134010000.parquet",
            "t/20141029-113401500.parquet",
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
                "20141029-1134010000.parquet",
                "20141029-113401500.parquet",
                "20261120-235959999.parquet",
                "20261121-080000123.parquet"
            ]
        );
        let times: Vec<Option<DateTime<Utc>>> = files[2..].iter().map(file_time).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    }

    #[rstest]
    #[case::millis("t/20261121-080000123.parquet", Some("2026-11-21T08:00:00.123+00:00"))]
    #[case::aws_documented("t/20141029-1134010000.parquet", Some("2014-10-29T11:34:01+00:00"))]
    #[case::four_digits(
        "t/20141029-1134012345.parquet",
        Some("2014-10-29T11:34:01.234500+00:00")
    )]
    #[case::seconds("t/20261121-080000.parquet", Some("2026-11-21T08:00:00+00:00"))]
    #[case::one_digit("t/20261121-0800005.parquet", Some("2026-11-21T08:00:00.500+00:00"))]
    #[case::micros(
        "t/20261121-080000123456.parquet",
        Some("2026-11-21T08:00:00.123456+00:00")
    )]
    #[case::nanos(
        "t/20261121-080000123456789.parquet",
        Some("2026-11-21T08:00:00.123456789+00:00")
    )]
    #[case::date_folders(
        "t/2026/11/21/20261121-235959999.parquet",
        Some("2026-11-21T23:59:59.999+00:00")
    )]
    #[case::ten_fraction_digits("t/20261121-0800001234567890.parquet", None)]
    #[case::no_seconds("t/20261121-0800.parquet", None)]
    #[case::no_dash("t/20261121080000123.parquet", None)]
    #[case::month_13("t/20261321-080000.parquet", None)]
    #[case::hour_25("t/20261121-250000.parquet", None)]
    #[case::signed("t/20261121-+80000.parquet", None)]
    #[case::suffix("t/20261121-080000123-1.parquet", None)]
    #[case::full_load("t/LOAD00000001.parquet", None)]
    #[case::other("t/part-00000-c000.snappy.parquet", None)]
    fn reads_the_time_a_cdc_file_name_encodes(#[case] path: &str, #[case] time: Option<&str>) {
        assert_eq!(
            file_time(&StorePath::from(path)).map(|t| t.to_rfc3339()),
            time.map(str::to_string)
        );
    }

    #[rstest]
    #[case::dms_micros("2026-11-21 08:00:00.123456", Some("2026-11-21T08:00:00.123456+00:00"))]
    #[case::dms_millis("2026-11-21 08:00:00.123", Some("2026-11-21T08:00:00.123+00:00"))]
    #[case::dms_seconds("2026-11-21 08:00:00", Some("2026-11-21T08:00:00+00:00"))]
    #[case::rfc3339_utc("2026-11-21T08:00:00Z", Some("2026-11-21T08:00:00+00:00"))]
    #[case::rfc3339_offset("2026-11-21T10:00:00.5+02:00", Some("2026-11-21T08:00:00.500+00:00"))]
    #[case::padded(" 2026-11-21 08:00:00 ", Some("2026-11-21T08:00:00+00:00"))]
    #[case::zone_less_t("2026-11-21T08:00:00", None)]
    #[case::date_only("2026-11-21", None)]
    #[case::empty("", None)]
    #[case::words("yesterday", None)]
    fn parses_commit_times_written_as_text(#[case] text: &str, #[case] time: Option<&str>) {
        assert_eq!(
            parse_commit_time(text).map(|t| t.to_rfc3339()),
            time.map(str::to_string)
        );
    }

    /// 2026-11-21T08:00:00.123456Z in microseconds since 1970.
    const AT_MICROS: i64 = 1_795_248_000_123_456;

    #[rstest]
    #[case::micros_naive(Arc::new(TimestampMicrosecondArray::from(vec![AT_MICROS])) as ArrayRef, "2026-11-21T08:00:00.123456+00:00")]
    #[case::micros_utc(Arc::new(TimestampMicrosecondArray::from(vec![AT_MICROS]).with_timezone("UTC")) as ArrayRef, "2026-11-21T08:00:00.123456+00:00")]
    #[case::micros_offset(Arc::new(TimestampMicrosecondArray::from(vec![AT_MICROS]).with_timezone("+02:00")) as ArrayRef, "2026-11-21T08:00:00.123456+00:00")]
    #[case::millis_utc(Arc::new(TimestampMillisecondArray::from(vec![AT_MICROS / 1000]).with_timezone("UTC")) as ArrayRef, "2026-11-21T08:00:00.123+00:00")]
    #[case::millis_naive(Arc::new(TimestampMillisecondArray::from(vec![AT_MICROS / 1000])) as ArrayRef, "2026-11-21T08:00:00.123+00:00")]
    #[case::nanos_utc(Arc::new(TimestampNanosecondArray::from(vec![AT_MICROS * 1000 + 789]).with_timezone("UTC")) as ArrayRef, "2026-11-21T08:00:00.123456789+00:00")]
    #[case::nanos_naive(Arc::new(TimestampNanosecondArray::from(vec![AT_MICROS * 1000])) as ArrayRef, "2026-11-21T08:00:00.123456+00:00")]
    #[case::text(Arc::new(StringArray::from(vec!["2026-11-21 08:00:00.123456"])) as ArrayRef, "2026-11-21T08:00:00.123456+00:00")]
    fn reads_typed_commit_times_as_instants(#[case] column: ArrayRef, #[case] time: &str) {
        let times = commit_times(column.as_ref()).unwrap();
        assert_eq!(
            times,
            vec![Ok(DateTime::parse_from_rfc3339(time).unwrap().to_utc())]
        );
    }

    #[test]
    fn a_commit_time_that_is_null_or_not_a_time_is_reported_per_row() {
        let text = StringArray::from(vec![Some("2026-11-21 08:00:00"), None, Some("21/11/2026")]);
        let times = commit_times(&text).unwrap();
        assert!(times[0].is_ok());
        assert_eq!(times[1], Err(BadCommitTime::Null));
        assert_eq!(times[2], Err(BadCommitTime::NotATime("21/11/2026".into())));
        let typed = TimestampMicrosecondArray::from(vec![None, Some(AT_MICROS)]);
        assert_eq!(commit_times(&typed).unwrap()[0], Err(BadCommitTime::Null));
        let error = commit_times(&Int64Array::from(vec![1])).unwrap_err();
        assert!(
            error.starts_with("is Int64; commit times must be timestamps or strings"),
            "{error}"
        );
    }

    #[test]
    fn committed_by_names_the_file_and_the_row_counted_from_one() {
        let batch = RecordBatch::try_from_iter([(
            "commit_ts",
            Arc::new(StringArray::from(vec![
                Some("2026-11-21 08:00:00"),
                Some("soon"),
            ])) as ArrayRef,
        )])
        .unwrap();
        let path = StorePath::from("raw/items/20261121-080000000.parquet");
        let as_of = DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z")
            .unwrap()
            .to_utc();
        // The second batch of the file: its rows follow the first batch's 10.
        let error = committed_by(&batch, &path, 10, "commit_ts", as_of).unwrap_err();
        assert!(
            error.starts_with("`raw/items/20261121-080000000.parquet`, row 12: commit time `commit_ts` = `soon` is not a time"),
            "{error}"
        );
        assert!(error.contains("or remove `as_of`"), "{error}");
        let kept = committed_by(&batch.slice(0, 1), &path, 0, "commit_ts", as_of).unwrap();
        assert_eq!(kept, vec![true]);
        let error = committed_by(&batch, &path, 0, "ts", as_of).unwrap_err();
        assert!(
            error.starts_with("`raw/items/20261121-080000000.parquet` has no column `ts` (the `timestamp_column`)")
                && error.contains("its columns are `commit_ts`"),
            "{error}"
        );
    }
}
