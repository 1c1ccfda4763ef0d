//! Arrow columns from plain values, as every part of AutoCorp builds them: text, UTC timestamps,
//! and a table's rows with the columns a writer adds around them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};

/// A text column; `None` is NULL.
pub(super) fn text<S: AsRef<str>>(values: Vec<Option<S>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(
        values.iter().map(|v| v.as_ref().map(|s| s.as_ref())),
    ))
}

/// A `timestamptz` column: microseconds since the epoch, in UTC.
pub(super) fn timestamps(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

/// `rows` with `first` put before its columns and `last` after them: DMS writes `Op` first and
/// its commit time last; the ETL appends its `etl_timestamp`.
pub(super) fn framed(
    first: Vec<(&str, ArrayRef)>,
    rows: &RecordBatch,
    last: Vec<(&str, ArrayRef)>,
) -> RecordBatch {
    let own = rows
        .schema()
        .fields()
        .iter()
        .zip(rows.columns())
        .map(|(field, column)| (field.name().clone(), column.clone()))
        .collect::<Vec<_>>();
    let columns = first
        .into_iter()
        .map(|(name, column)| (name.to_string(), column))
        .chain(own)
        .chain(
            last.into_iter()
                .map(|(name, column)| (name.to_string(), column)),
        );
    RecordBatch::try_from_iter(columns).expect("consistent columns")
}
