//! Shared evaluation for checks whose failures are rows: count them where the data lives, and
//! fetch examples only when there are some.

use super::SAMPLE_LIMIT;
use crate::model::Rows;
use crate::model::TableRef;
use crate::probe::{first_i64, CheckError, Probe};

/// Failing rows: how many, and up to [`SAMPLE_LIMIT`] examples.
pub(super) struct FailingRows {
    pub count: u64,
    pub samples: Rows,
}

/// Counts the rows of `table` (within `filter`) for which `failing` holds, and samples them.
pub(super) async fn failing_rows(
    probe: &Probe,
    table: &TableRef,
    filter: Option<&str>,
    failing: &str,
) -> Result<FailingRows, CheckError> {
    let from = probe.from_clause(table, None)?;
    let condition = match filter {
        Some(filter) => format!("({filter}) AND ({failing})"),
        None => format!("({failing})"),
    };
    count_then_sample(
        probe,
        &table.source,
        format!("SELECT count(*) AS failing_rows FROM {from} WHERE {condition}"),
        // Ordered by the first column (the key, as tables usually start) so samples are stable.
        format!("SELECT * FROM {from} WHERE {condition} ORDER BY 1 LIMIT {SAMPLE_LIMIT}"),
    )
    .await
}

/// Runs `count_sql` (one `failing_rows` column) and, only when it finds failures, `sample_sql`.
pub(super) async fn count_then_sample(
    probe: &Probe,
    source: &str,
    count_sql: String,
    sample_sql: String,
) -> Result<FailingRows, CheckError> {
    let counted = probe.query(source, count_sql).await?;
    let count = first_i64(&counted, source, "failing_rows")? as u64;
    let samples = if count > 0 {
        probe.query(source, sample_sql).await?
    } else {
        Rows::default()
    };
    Ok(FailingRows { count, samples })
}

/// "1 row" / "12 rows".
pub(super) fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_string()
    } else {
        format!("{n} rows")
    }
}
