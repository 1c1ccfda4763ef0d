//! Shared evaluation for checks whose failures are rows: count them where the data lives (in
//! the table's shared scan when other checks read it too), and fetch examples only when there
//! are some.

use super::rows_to_read;
use crate::model::Rows;
use crate::model::TableRef;
use crate::probe::scan::{within, ScanNeeds};
use crate::probe::{first_i64, CheckError, Probe};

/// Failing rows: how many, and the first of them (up to [`rows_to_read`]), for samples and
/// the run's failures files.
pub(super) struct FailingRows {
    pub count: u64,
    pub rows: Rows,
}

/// The alias under which [`counting`] reads its count.
pub(super) const FAILING_ROWS: &str = "failing_rows";

/// A scan of `table` (within `filter`) counting the rows for which `failing` holds.
pub(super) fn counting(table: &TableRef, filter: Option<&str>, failing: &str) -> ScanNeeds {
    ScanNeeds::new(table, filter).count_where(FAILING_ROWS, failing.to_string())
}

/// Counts the rows of `table` (within `filter`) for which `failing` holds, and samples them.
pub(super) async fn failing_rows(
    probe: &Probe,
    table: &TableRef,
    filter: Option<&str>,
    failing: &str,
) -> Result<FailingRows, CheckError> {
    let figures = probe.scan(&counting(table, filter, failing)).await?;
    counted_failing_rows(probe, &figures, table, filter, failing).await
}

/// The failing rows a scan counted under [`FAILING_ROWS`] among its `figures`, with up to
/// [`rows_to_read`] of them read only when there are some.
pub(super) async fn counted_failing_rows(
    probe: &Probe,
    figures: &Rows,
    table: &TableRef,
    filter: Option<&str>,
    failing: &str,
) -> Result<FailingRows, CheckError> {
    let count = first_i64(figures, &table.source, FAILING_ROWS)? as u64;
    let from = probe.from_clause(table, None)?;
    let rows = if count > 0 {
        // Ordered by the first column (the key, as tables usually start) so samples are stable.
        probe
            .query(
                &table.source,
                format!(
                    "SELECT * FROM {from} WHERE {} ORDER BY 1 LIMIT {}",
                    within(filter, failing),
                    rows_to_read(probe)
                ),
            )
            .await?
    } else {
        Rows::default()
    };
    Ok(FailingRows { count, rows })
}

/// Runs `count_sql` (one `failing_rows` column) and, only when it finds failures, `sample_sql`.
pub(super) async fn count_then_sample(
    probe: &Probe,
    source: &str,
    count_sql: String,
    sample_sql: String,
) -> Result<FailingRows, CheckError> {
    let counted = probe.query(source, count_sql).await?;
    let count = first_i64(&counted, source, FAILING_ROWS)? as u64;
    let rows = if count > 0 {
        probe.query(source, sample_sql).await?
    } else {
        Rows::default()
    };
    Ok(FailingRows { count, rows })
}

/// "1 row" / "12 rows".
pub(super) fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_string()
    } else {
        format!("{n} rows")
    }
}
