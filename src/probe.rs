//! What a check sees of its sources while it runs: a [`Probe`] that sends SQL to the rule
//! file's sources and records every query for the report, and [`CheckError`], why a check could
//! not run.
//!
//! Its own layer, just above `sources`: the probe needs the `Source` trait, and both `reconcile`
//! and `checks` evaluate through it, so it can live neither in the leaf `model` nor in `checks`
//! (which `reconcile` must not import).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::model::{Column, Rows, TableRef};
use crate::sources::changes::HeartbeatMarker;
use crate::sources::{QueryCost, ScanLimit, Source, SourceError, SourceSet};

pub mod scan;

use scan::{ScanNeeds, SharedAnswer, SharedScan};

/// One past run of a check, from the run history (`lakecheck run --history`).
#[derive(Debug, Clone, PartialEq)]
pub struct PastRun {
    /// When it ran (the run's clock).
    pub at: DateTime<Utc>,
    /// `pass`, `warn`, `fail` or `error`.
    pub status: String,
    /// The figures it recorded.
    pub metrics: serde_json::Map<String, serde_json::Value>,
}

/// Why a check could not run. Each variant carries what a user needs to act on it; its message
/// is what reports show after `could not run: `. A check that could not run is an `error`
/// result, never a pass, and the run goes on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    /// A source could not answer: unreachable, a missing table, a query it refused.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The check names a source its rule file does not declare.
    #[error("source `{name}` is not declared")]
    UndeclaredSource { name: String },
    /// The table can be read but not reconciled row for row (e.g. insert-only change data,
    /// which hides updates and deletes): reconciling would report false mismatches.
    #[error("cannot reconcile {table}: {reason}")]
    CannotReconcile { table: TableRef, reason: String },
    /// Rows cannot be paired: the rule names no key and neither table has one lakecheck reads.
    #[error(
        "no key to match rows on: neither {left} nor {right} has a primary key lakecheck can \
         read; name one with `key: [...]`"
    )]
    NoKey { left: TableRef, right: TableRef },
    /// The columns of two tables do not pair up, or a pair has no exact comparison.
    #[error(
        "cannot {} {left} {} {right}: {} (exclude such columns or fix the mapping)",
        .comparing.verb(),
        .comparing.preposition(),
        ColumnProblem::list(.problems)
    )]
    Mapping {
        left: TableRef,
        right: TableRef,
        comparing: Comparing,
        problems: Vec<ColumnProblem>,
    },
    /// What the check measures cannot be read from the table: no rows, no newest value, no
    /// record of changes or files to date it by.
    #[error("cannot measure {table}: {reason}")]
    CannotMeasure { table: TableRef, reason: String },
    /// The table's history holds no commit time.
    #[error("{table} has no commit time in its history")]
    NoCommitTime { table: TableRef },
    /// A source answered, but not with what the check asked for (a missing column, a count
    /// that is not a number).
    #[error("unexpected answer from source `{source_name}`: {reason}")]
    UnexpectedAnswer { source_name: String, reason: String },
    /// A stage of a change pipeline whose table does not exist: the pipeline does not carry the
    /// table there, which no amount of waiting mends.
    #[error("stage `{stage}` ({table}): {cause}; {help}")]
    MissingStage {
        stage: String,
        table: TableRef,
        cause: String,
        help: String,
    },
    /// The check ran past its `timeout` and was stopped; its queries were cancelled on the
    /// servers that run them.
    #[error(
        "did not finish within its timeout of {}: stopped, and its running queries cancelled; \
         raise `timeout:` on the check if it needs longer",
        crate::model::format_duration(*.limit)
    )]
    TimedOut { limit: std::time::Duration },
    /// The check's `max_scanned` is spent: its next query on a source that bills by bytes
    /// scanned did not start.
    #[error(
        "its `max_scanned` of {} is spent ({} scanned), so its next query on source \
         `{source_name}` did not start; raise `max_scanned` on the check or narrow it \
         (`where:`, a partition filter)",
        crate::model::format_size(*.limit),
        crate::model::format_size(*.spent)
    )]
    ScanBudgetSpent {
        source_name: String,
        limit: u64,
        spent: u64,
    },
    /// The check learns from past runs, and the run keeps no history.
    #[error(
        "it learns from the check's past runs, and this run keeps no history: run with \
         `--history DIR_OR_URL` (the same store every run)"
    )]
    NoHistory,
    /// The check learns from past runs, and the history could not be read.
    #[error("it learns from the check's past runs: {cause}")]
    HistoryUnreadable { cause: String },
    /// A bug in lakecheck: a check panicked or an invariant broke.
    #[error("internal error (please report): {0}")]
    Internal(String),
}

impl CheckError {
    /// An answer of `source` that the check cannot use, e.g. a count that is not a number.
    pub fn unexpected_answer(source: &str, reason: impl Into<String>) -> Self {
        Self::UnexpectedAnswer {
            source_name: source.to_string(),
            reason: reason.into(),
        }
    }
}

/// What a check compares two tables' columns for, which words its [`CheckError::Mapping`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparing {
    /// Row by row (`table_match`).
    Rows,
    /// Column profiles: counts, min, max, sums (`aggregate_match`).
    Profiles,
}

impl Comparing {
    fn verb(self) -> &'static str {
        match self {
            Comparing::Rows => "compare",
            Comparing::Profiles => "profile",
        }
    }

    fn preposition(self) -> &'static str {
        match self {
            Comparing::Rows => "with",
            Comparing::Profiles => "against",
        }
    }
}

/// One column that keeps two tables from being compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnProblem {
    /// A column the rule names that the table lacks.
    #[error("`{column}` is not a column of {table}")]
    NotAColumn { column: String, table: TableRef },
    /// A key column the table lacks.
    #[error("key `{column}` is not a column of {table}")]
    KeyNotAColumn { column: String, table: TableRef },
    /// The column's types on the two sides have no exact comparison; `reason` names both
    /// types (`model::canon`).
    #[error("{reason}")]
    Incomparable { column: String, reason: String },
}

impl ColumnProblem {
    /// The problems in one line, `; `-separated.
    fn list(problems: &[ColumnProblem]) -> String {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One query a check sent, kept so a failure can be reproduced by hand.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecutedQuery {
    pub source: String,
    pub sql: String,
    pub duration_ms: u64,
    /// Present when the query failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The checks (by name, this one among them) whose figures came from this one query: one
    /// scan of a table served them all (`probe::scan`). Empty for a query of this check alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_by: Vec<String>,
    /// What the engine billed for it (Athena: execution id, bytes scanned, engine time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<QueryCost>,
}

/// What a query still running when its check was stopped (its `timeout`) reads as: the runner
/// dropped it, which cancels it on the server.
const STOPPED: &str = "stopped before it finished (the check's timeout)";

/// An entry of the probe's log: the query, and when it started while it still runs.
struct Logged {
    query: ExecutedQuery,
    running_since: Option<Instant>,
}

/// The first row's `column` of an answer from `source`, as an integer (NULL reads as 0).
pub fn first_i64(rows: &Rows, source: &str, column: &str) -> Result<i64, CheckError> {
    rows.first_i64(column)
        .map_err(|reason| CheckError::unexpected_answer(source, reason))
}

/// The time checks measure ages against: this machine's clock, or a moment fixed for the whole
/// run (`lakecheck run --now`), for tests and for auditing a past moment again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The machine's clock, read when a check asks.
    #[default]
    System,
    /// Every check sees this moment.
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(at) => *at,
        }
    }
}

/// A check's access to its sources during evaluation.
pub struct Probe {
    sources: Arc<SourceSet>,
    clock: Clock,
    /// The scan this check shares with others of its table, if any.
    shared_scan: Option<Arc<SharedScan>>,
    /// This check's past runs in the run history, or why it could not be read; `None` when the
    /// run keeps none.
    past: Option<Result<Arc<[PastRun]>, String>>,
    /// The check's `max_scanned`, and what its queries have scanned so far.
    max_scanned: Option<u64>,
    scanned: std::sync::atomic::AtomicU64,
    /// Failing rows the run keeps per check (`--failures-limit`); 0 when it keeps none.
    failures_limit: usize,
    log: Mutex<Vec<Logged>>,
}

impl Probe {
    pub fn new(sources: Arc<SourceSet>) -> Self {
        Self {
            sources,
            clock: Clock::System,
            shared_scan: None,
            past: None,
            max_scanned: None,
            scanned: Default::default(),
            failures_limit: 0,
            log: Mutex::new(Vec::new()),
        }
    }

    /// The probe with the check's past runs from the run history.
    pub fn with_past(self, past: Option<Result<Arc<[PastRun]>, String>>) -> Self {
        Self { past, ..self }
    }

    /// This check's past runs (oldest first), for checks that learn from them; an error when
    /// the run keeps no history.
    pub fn past_runs(&self) -> Result<&[PastRun], CheckError> {
        self.past_runs_if_kept()?.ok_or(CheckError::NoHistory)
    }

    /// This check's past runs (oldest first) when the run keeps a history, `None` when it keeps
    /// none: for checks that judge without one but read it when given (`volume_anomaly` with
    /// `bucket:` leaves buckets failed in past runs out of its band). An error when the history
    /// could not be read: what it would have said is unknown.
    pub fn past_runs_if_kept(&self) -> Result<Option<&[PastRun]>, CheckError> {
        match &self.past {
            Some(Ok(past)) => Ok(Some(past)),
            Some(Err(cause)) => Err(CheckError::HistoryUnreadable {
                cause: cause.clone(),
            }),
            None => Ok(None),
        }
    }

    /// The probe with the check's queries limited to `max_scanned` bytes in all.
    pub fn with_max_scanned(self, max_scanned: Option<u64>) -> Self {
        Self {
            max_scanned,
            ..self
        }
    }

    /// What the check's next query may scan: `None` without a limit, an error once spent.
    fn scan_limit(&self, source: &str) -> Result<Option<ScanLimit>, CheckError> {
        let Some(limit) = self.max_scanned else {
            return Ok(None);
        };
        let spent = self.scanned.load(std::sync::atomic::Ordering::Relaxed);
        if spent >= limit {
            return Err(CheckError::ScanBudgetSpent {
                source_name: source.to_string(),
                limit,
                spent,
            });
        }
        Ok(Some(ScanLimit {
            bytes: limit - spent,
            owner: "the check's `max_scanned`".into(),
        }))
    }

    /// The probe with the check reading its scan figures from `scan`, shared with other checks.
    pub fn with_shared_scan(self, scan: Option<Arc<SharedScan>>) -> Self {
        Self {
            shared_scan: scan,
            ..self
        }
    }

    /// The probe with the check keeping up to `limit` failing rows for the run's failures
    /// files (`--failures-dir`), besides its samples.
    pub fn with_failures_limit(self, limit: usize) -> Self {
        Self {
            failures_limit: limit,
            ..self
        }
    }

    /// How many failing rows the check keeps for the run's failures files: 0 when the run
    /// writes none. A check reads as many as this and its samples need.
    pub fn failures_limit(&self) -> usize {
        self.failures_limit
    }

    /// The probe with every check seeing `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// The run's time: what ages are measured against.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn source(&self, name: &str) -> Result<&Arc<dyn Source>, CheckError> {
        self.sources
            .get(name)
            .ok_or_else(|| CheckError::UndeclaredSource {
                name: name.to_string(),
            })
    }

    /// Makes the next read of `table` see its current state (see `Source::refresh`).
    pub async fn refresh(&self, table: &TableRef) -> Result<(), CheckError> {
        self.source(&table.source)?.refresh(&table.table).await;
        Ok(())
    }

    /// `FROM`-clause text for a table, with an optional row filter.
    pub fn from_clause(
        &self,
        table: &TableRef,
        filter: Option<&str>,
    ) -> Result<String, CheckError> {
        let source = self.source(&table.source)?;
        let mut text = source.table_sql(&table.table);
        if let Some(filter) = filter {
            text.push_str(&format!(" WHERE ({filter})"));
        }
        Ok(text)
    }

    /// Runs `sql` on the named source and records it. Queries are logged in the order they
    /// start, so reports list them the same way on every run even when they run concurrently.
    pub async fn query(&self, source: &str, sql: String) -> Result<Rows, CheckError> {
        let target = self.source(source)?.clone();
        let limit = self.scan_limit(source)?;
        let slot = self.start(source, sql.clone(), Vec::new());
        let answer = target.costed_query(&sql, limit.as_ref()).await;
        if let Ok((_, Some(cost))) = &answer {
            self.scanned
                .fetch_add(cost.bytes_scanned, std::sync::atomic::Ordering::Relaxed);
        }
        let error = answer.as_ref().err().map(|e| e.cause.clone());
        self.finish(slot, None, error);
        let (rows, cost) = answer?;
        self.log()[slot].query.cost = cost;
        Ok(rows)
    }

    /// Writes a heartbeat marker of probe `probe_id` to the named source
    /// (`Source::write_heartbeat`, the only write lakecheck makes) and records the SQL it runs
    /// like a query.
    pub async fn write_heartbeat(
        &self,
        source: &str,
        probe_id: &str,
    ) -> Result<HeartbeatMarker, CheckError> {
        let target = self.source(source)?.clone();
        let sql = target.heartbeat_sql(probe_id).unwrap_or_default();
        self.logged(source, sql, target.write_heartbeat(probe_id))
            .await
    }

    /// The figures `needs` asks for, one row under the aliases it names. From the scan the
    /// check shares with others of its table when it has one; from a query of its own when it
    /// has none, or when the shared query failed (a column one of the group names that the
    /// table lacks), so that the error is the check's own and its group mates still run.
    pub async fn scan(&self, needs: &ScanNeeds) -> Result<Rows, CheckError> {
        let source = &needs.table.source;
        let target = self.source(source)?.clone();
        let table_sql = target.table_sql(&needs.table.table);
        if let Some(shared) = self.shared_scan.as_ref().filter(|s| s.serves(needs)) {
            let sql = shared.sql(&table_sql);
            let slot = self.start(source, sql.clone(), shared.checks().to_vec());
            let (target, shared_sql) = (&target, &sql);
            let answer = shared
                .answer(|| async move {
                    let started = Instant::now();
                    // Checks with a `max_scanned` of their own never share a scan.
                    let answer = target.costed_query(shared_sql, None).await;
                    let (rows, cost) = match answer {
                        Ok((rows, cost)) => (Ok(rows), cost),
                        Err(error) => (Err(error), None),
                    };
                    SharedAnswer {
                        rows,
                        cost,
                        duration_ms: started.elapsed().as_millis() as u64,
                    }
                })
                .await;
            let error = answer.rows.as_ref().err().map(|e| e.cause.clone());
            self.finish(slot, Some(answer.duration_ms), error);
            self.log()[slot].query.cost = answer.cost.clone();
            if let Ok(rows) = &answer.rows {
                return shared
                    .figures(needs, rows)
                    .map_err(|reason| CheckError::unexpected_answer(source, reason));
            }
        }
        self.query(source, needs.own_sql(&table_sql)).await
    }

    /// Records `sql` for `source`, then its duration and error once `work` (which runs it) ends.
    async fn logged<T>(
        &self,
        source: &str,
        sql: String,
        work: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, CheckError> {
        let slot = self.start(source, sql, Vec::new());
        let result = work.await;
        self.finish(slot, None, result.as_ref().err().map(|e| e.cause.clone()));
        Ok(result?)
    }

    /// Logs `sql` as running from now; returns its place in the log for [`Self::finish`].
    fn start(&self, source: &str, sql: String, shared_by: Vec<String>) -> usize {
        let mut log = self.log();
        log.push(Logged {
            query: ExecutedQuery {
                source: source.to_string(),
                sql,
                duration_ms: 0,
                error: None,
                shared_by,
                cost: None,
            },
            running_since: Some(Instant::now()),
        });
        log.len() - 1
    }

    /// Records that the query at `slot` ended, with `error` if it failed. It ran for
    /// `duration_ms` when given (a shared query another check may have run), else for as long
    /// as this check waited for it.
    fn finish(&self, slot: usize, duration_ms: Option<u64>, error: Option<String>) {
        let mut log = self.log();
        let entry = &mut log[slot];
        if let Some(started) = entry.running_since.take() {
            entry.query.duration_ms =
                duration_ms.unwrap_or_else(|| started.elapsed().as_millis() as u64);
        }
        entry.query.error = error;
    }

    /// The columns of a table, from its source.
    pub async fn columns(&self, table: &TableRef) -> Result<Vec<Column>, CheckError> {
        Ok(self.source(&table.source)?.columns(&table.table).await?)
    }

    /// Every query sent so far, in order.
    pub fn into_queries(self) -> Vec<ExecutedQuery> {
        self.log
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .into_iter()
            .map(|logged| logged.query)
            .collect()
    }

    /// Every query sent so far, in order, while the probe may still be shared.
    pub fn queries(&self) -> Vec<ExecutedQuery> {
        self.log()
            .iter()
            .map(|logged| logged.query.clone())
            .collect()
    }

    /// Marks the queries still running as stopped, with how long they ran: the runner stopped
    /// the check at its timeout. (A query dropped because another of its check's queries
    /// failed first is left as it was: the check's error says what happened.)
    pub fn stop_unfinished(&self) {
        for logged in self.log().iter_mut() {
            if let Some(started) = logged.running_since.take() {
                logged.query.duration_ms = started.elapsed().as_millis() as u64;
                logged.query.error = Some(STOPPED.to_string());
            }
        }
    }

    /// The query log. A check that panicked while holding it left whole entries behind (each
    /// is written in one step), so a poisoned lock is read as it is.
    fn log(&self) -> MutexGuard<'_, Vec<Logged>> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn table(text: &str) -> TableRef {
        let (source, table) = text.split_once('.').unwrap();
        TableRef {
            source: source.into(),
            table: table.into(),
        }
    }

    #[test]
    fn an_undeclared_source_is_named() {
        let probe = Probe::new(Arc::new(SourceSet::default()));
        let error = probe.source("warehouse").unwrap_err();
        assert!(
            matches!(&error, CheckError::UndeclaredSource { name } if name == "warehouse"),
            "{error:?}"
        );
        let error = probe.from_clause(&table("pg.orders"), None).unwrap_err();
        assert!(
            matches!(&error, CheckError::UndeclaredSource { name } if name == "pg"),
            "{error:?}"
        );
    }

    #[rstest]
    #[case::no_such_column(Rows { columns: vec!["n".into()], rows: vec![vec![Some("1".into())]] }, "query returned no `row_count` value")]
    #[case::no_row(Rows { columns: vec!["row_count".into()], rows: vec![] }, "query returned no `row_count` value")]
    #[case::not_a_number(Rows { columns: vec!["row_count".into()], rows: vec![vec![Some("many".into())]] }, "`row_count` is not a number: `many`")]
    fn answers_without_a_count_name_their_source(#[case] rows: Rows, #[case] expected: &str) {
        match first_i64(&rows, "lake", "row_count") {
            Err(CheckError::UnexpectedAnswer {
                source_name,
                reason,
            }) => {
                assert_eq!(source_name, "lake");
                assert_eq!(reason, expected);
            }
            other => panic!("expected an unexpected answer, got {other:?}"),
        }
    }

    #[test]
    fn a_null_count_reads_as_zero() {
        let rows = Rows {
            columns: vec!["failing_rows".into()],
            rows: vec![vec![None]],
        };
        assert_eq!(first_i64(&rows, "pg", "failing_rows").unwrap(), 0);
    }

    /// What reports show of each error: unchanged from when these were free text.
    #[rstest]
    #[case::undeclared(
        CheckError::UndeclaredSource { name: "pg".into() },
        "source `pg` is not declared"
    )]
    #[case::cannot_reconcile(
        CheckError::CannotReconcile { table: table("raw.items"), reason: "insert-only".into() },
        "cannot reconcile raw.items: insert-only"
    )]
    #[case::no_key(
        CheckError::NoKey { left: table("pg.a"), right: table("lake.a") },
        "no key to match rows on: neither pg.a nor lake.a has a primary key lakecheck can read; \
         name one with `key: [...]`"
    )]
    #[case::mapping_rows(
        CheckError::Mapping {
            left: table("pg.t"),
            right: table("lake.t"),
            comparing: Comparing::Rows,
            problems: vec![
                ColumnProblem::NotAColumn { column: "x".into(), table: table("pg.t") },
                ColumnProblem::KeyNotAColumn { column: "id".into(), table: table("lake.t") },
                ColumnProblem::Incomparable { column: "addr".into(), reason: "`addr` is inet".into() },
            ],
        },
        "cannot compare pg.t with lake.t: `x` is not a column of pg.t; key `id` is not a column \
         of lake.t; `addr` is inet (exclude such columns or fix the mapping)"
    )]
    #[case::mapping_profiles(
        CheckError::Mapping {
            left: table("pg.t"),
            right: table("lake.t"),
            comparing: Comparing::Profiles,
            problems: vec![ColumnProblem::NotAColumn { column: "x".into(), table: table("pg.t") }],
        },
        "cannot profile pg.t against lake.t: `x` is not a column of pg.t (exclude such columns \
         or fix the mapping)"
    )]
    #[case::cannot_measure(
        CheckError::CannotMeasure { table: table("pg.orders"), reason: "it holds no rows".into() },
        "cannot measure pg.orders: it holds no rows"
    )]
    #[case::no_commit_time(
        CheckError::NoCommitTime { table: table("delta.orders") },
        "delta.orders has no commit time in its history"
    )]
    #[case::unexpected_answer(
        CheckError::unexpected_answer("lake", "bad row hash `x`"),
        "unexpected answer from source `lake`: bad row hash `x`"
    )]
    #[case::internal(
        CheckError::Internal("task 3 panicked".into()),
        "internal error (please report): task 3 panicked"
    )]
    fn errors_read_as_before(#[case] error: CheckError, #[case] expected: &str) {
        assert_eq!(error.to_string(), expected);
    }
}
