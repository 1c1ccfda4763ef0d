//! Run history (`lakecheck run --history DIR_OR_URL`): every run appended as rows of a Delta
//! table (one row per check) on local disk or S3, so Athena, DuckDB and Spark can query it as
//! well as `lakecheck history`. Appends are Delta commits: concurrent runs each land at their own
//! version (a writer that loses the race for a version commits at the next one), and one that
//! cannot be appended makes the run exit 2.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMicrosecondType};
use datafusion::prelude::SessionContext;
use deltalake::protocol::SaveMode;
use deltalake::DeltaTableBuilder;
use object_store::ObjectStore;
use url::Url;

use crate::probe::PastRun;
use crate::results::{CheckResult, RunReport, Status, TrendRun};

/// How often an append is tried in all when another writer keeps winning the commit race (the
/// table's creation, which Delta does not retry itself).
const APPEND_ATTEMPTS: u32 = 8;

/// A history store: a Delta table at a folder or an S3 prefix.
pub struct History {
    url: Url,
    store: Arc<dyn ObjectStore>,
}

/// One check of one run, as the history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub run_id: String,
    pub run_started_at: DateTime<Utc>,
    pub rule_file: String,
    pub check: String,
    pub kind: String,
    pub status: String,
    pub failing_rows: Option<i64>,
    pub duration_ms: i64,
    pub message: String,
    /// The check's `metrics` as JSON text.
    pub metrics: String,
    /// Bytes the check's queries scanned where a source bills them (Athena).
    pub bytes_scanned: i64,
}

impl History {
    /// The store at `location`: a path, `file:///path` or `s3://bucket/prefix` (S3 settings
    /// from the standard AWS variables: `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...).
    pub fn open(location: &str) -> Result<Self, String> {
        let url = match Url::parse(location) {
            Ok(url) if url.scheme() == "s3" || url.scheme() == "file" => url,
            Ok(url) if url.scheme().len() > 1 => {
                return Err(format!(
                    "unsupported history location `{}://`: use a folder or s3://bucket/prefix",
                    url.scheme()
                ))
            }
            _ => {
                let path = std::path::absolute(location).map_err(|e| e.to_string())?;
                Url::from_directory_path(&path)
                    .map_err(|_| format!("`{location}` is not a usable folder"))?
            }
        };
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
            _ => Arc::new(object_store::local::LocalFileSystem::new()),
        };
        crate::sources::delta::register_s3_log_store();
        Ok(Self { url, store })
    }

    /// Where the history is, for messages.
    pub fn location(&self) -> &Url {
        &self.url
    }

    fn builder(&self) -> Result<DeltaTableBuilder, String> {
        Ok(DeltaTableBuilder::from_url(self.url.clone())
            .map_err(|e| e.to_string())?
            .with_storage_backend(self.store.clone(), self.url.clone()))
    }

    /// Appends every check of `report` as one commit; returns the version it landed at.
    /// The run is recorded at `run_at` (the run's clock: `--now` when given).
    pub async fn append(
        &self,
        report: &RunReport,
        run_id: &str,
        run_at: DateTime<Utc>,
    ) -> Result<i64, String> {
        let batch = rows_of(report, run_id, run_at)?;
        if let Ok(path) = self.url.to_file_path() {
            std::fs::create_dir_all(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        }
        let mut last_error = String::new();
        for attempt in 0..APPEND_ATTEMPTS {
            if attempt > 0 {
                // Another writer created the table or won the commit: look again shortly.
                let pause = 20 * (1u64 << attempt.min(6)) + jitter(run_id, attempt);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            let mut table = self.builder()?.build().map_err(|e| e.to_string())?;
            // A table that does not exist yet is created by this append.
            let _ = table.load().await;
            match table
                .write(vec![batch.clone()])
                .with_save_mode(SaveMode::Append)
                .await
            {
                Ok(written) => return Ok(written.version().unwrap_or_default() as i64),
                Err(error) => last_error = error.to_string(),
            }
        }
        Err(format!(
            "{APPEND_ATTEMPTS} attempts to commit failed, the last with: {last_error}"
        ))
    }

    /// Whether any run was appended here yet (the table's log exists).
    pub async fn exists(&self) -> Result<bool, String> {
        use futures::TryStreamExt;
        let log = object_store::path::Path::from_url_path(self.url.path())
            .map_err(|e| e.to_string())?
            .join("_delta_log");
        let first = self.store.list(Some(&log)).try_next().await;
        match first {
            Ok(found) => Ok(found.is_some()),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(format!("cannot list the history at {}: {e}", self.url)),
        }
    }

    /// The past runs of every check, by (rule file, check name), oldest first; none for a
    /// history no run has appended to yet.
    pub async fn past_runs(&self) -> Result<PastRuns, String> {
        let mut past = PastRuns::new();
        if !self.exists().await? {
            return Ok(past);
        }
        for row in self.read().await? {
            let metrics = match serde_json::from_str(&row.metrics) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            past.entry((row.rule_file, row.check))
                .or_default()
                .push(PastRun {
                    at: row.run_started_at,
                    status: row.status,
                    metrics,
                });
        }
        Ok(past)
    }

    /// `batch` (the query's columns in [`schema`] order) in the schema's own types, whichever
    /// string and time layouts the reader chose (DataFusion reads strings as views).
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let schema = schema();
        let columns = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, column)| {
                cast(column, field.data_type()).map_err(|e| {
                    format!(
                        "the history at {} has an unexpected column `{}`: {e}",
                        self.url,
                        field.name()
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
    }

    /// Every recorded check, oldest run first.
    pub async fn read(&self) -> Result<Vec<Recorded>, String> {
        let table = self
            .builder()?
            .load()
            .await
            .map_err(|e| format!("no readable history at {}: {e}", self.url))?;
        let ctx = SessionContext::new();
        ctx.register_table(
            "history",
            table.table_provider().await.map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let batches = ctx
            .sql(
                "SELECT run_id, run_started_at, rule_file, check_name, kind, status, \
                 failing_rows, duration_ms, message, metrics, bytes_scanned FROM history \
                 ORDER BY run_started_at, run_id, rule_file, check_name",
            )
            .await
            .map_err(|e| e.to_string())?
            .collect()
            .await
            .map_err(|e| format!("cannot read the history at {}: {e}", self.url))?;
        let mut recorded = Vec::new();
        for batch in &batches {
            let batch = &self.conform(batch)?;
            let text = |i: usize| batch.column(i).as_string::<i32>();
            let number = |i: usize| {
                batch
                    .column(i)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            };
            let times = batch.column(1).as_primitive::<TimestampMicrosecondType>();
            for row in 0..batch.num_rows() {
                recorded.push(Recorded {
                    run_id: text(0).value(row).to_string(),
                    run_started_at: DateTime::from_timestamp_micros(times.value(row))
                        .unwrap_or_default(),
                    rule_file: text(2).value(row).to_string(),
                    check: text(3).value(row).to_string(),
                    kind: text(4).value(row).to_string(),
                    status: text(5).value(row).to_string(),
                    failing_rows: (!number(6).is_null(row)).then(|| number(6).value(row)),
                    duration_ms: number(7).value(row),
                    message: text(8).value(row).to_string(),
                    metrics: text(9).value(row).to_string(),
                    bytes_scanned: number(10).value(row),
                });
            }
        }
        Ok(recorded)
    }
}

/// How many runs of each check the reports show: the strip's length and the chart's width.
pub const TREND_RUNS: usize = 30;

/// Past runs of every check, by (rule file, check name), oldest first.
pub type PastRuns = BTreeMap<(String, String), Vec<PastRun>>;

/// Gives every check of `report` (run at `run_at`) its trend: its last past runs in `past`
/// and this run, at most [`TREND_RUNS`] in all.
pub fn attach_trends(report: &mut RunReport, past: &PastRuns, run_at: DateTime<Utc>) {
    for result in report.suites.iter_mut().flat_map(|s| &mut s.results) {
        let key = (result.rule_file.clone(), result.name.clone());
        let earlier = past.get(&key).map(Vec::as_slice).unwrap_or_default();
        let earlier = &earlier[earlier.len().saturating_sub(TREND_RUNS - 1)..];
        let figure = result.figure.as_ref();
        let mut trend: Vec<TrendRun> = earlier
            .iter()
            .map(|run| TrendRun::of(run.at, Status::parse(&run.status), &run.metrics, figure))
            .collect();
        trend.push(TrendRun::of(run_at, result.status, &result.metrics, figure));
        result.trend = trend;
    }
}

/// A run id unique across concurrent runs: the start time and a random suffix.
pub fn new_run_id(started_at: DateTime<Utc>) -> String {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(std::process::id()) as u32;
    format!("{}-{random:08x}", started_at.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// A pause of up to 50 ms that differs between runs, so racing writers spread out.
fn jitter(run_id: &str, attempt: u32) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one((run_id, attempt)) % 50
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new(
            "run_started_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("rule_file", DataType::Utf8, false),
        Field::new("check_name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("failing_rows", DataType::Int64, true),
        Field::new("duration_ms", DataType::Int64, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("metrics", DataType::Utf8, false),
        Field::new("bytes_scanned", DataType::Int64, false),
    ]))
}

/// The rows `report` adds to the history: one per check.
fn rows_of(report: &RunReport, run_id: &str, run_at: DateTime<Utc>) -> Result<RecordBatch, String> {
    let results: Vec<&CheckResult> = report.results().collect();
    let text = |f: &dyn Fn(&CheckResult) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(results.iter().map(|r| f(r))))
    };
    let started = run_at.timestamp_micros();
    let columns: Vec<ArrayRef> = vec![
        text(&|_| run_id.to_string()),
        Arc::new(
            TimestampMicrosecondArray::from(vec![started; results.len()]).with_timezone("UTC"),
        ),
        text(&|r| r.rule_file.clone()),
        text(&|r| r.name.clone()),
        text(&|r| r.kind.clone()),
        text(&|r| r.status.as_str().to_string()),
        Arc::new(Int64Array::from_iter(
            results.iter().map(|r| r.failing_rows.map(|n| n as i64)),
        )),
        Arc::new(Int64Array::from_iter_values(
            results.iter().map(|r| r.duration_ms as i64),
        )),
        text(&|r| r.message.clone()),
        text(&|r| serde_json::Value::Object(r.metrics.clone()).to_string()),
        Arc::new(Int64Array::from_iter_values(results.iter().map(|r| {
            r.queries
                .iter()
                .filter_map(|q| q.cost.as_ref())
                .map(|c| c.bytes_scanned as i64)
                .sum::<i64>()
        }))),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| e.to_string())
}

/// `lakecheck history`: per check (by rule file and name), the last `runs` runs as a strip
/// (`.` pass, `w` warn, `F` fail, `E` error; newest right) and the newest figures.
pub fn render(recorded: &[Recorded], runs: usize) -> String {
    let mut by_check: BTreeMap<(&str, &str), Vec<&Recorded>> = BTreeMap::new();
    for row in recorded {
        by_check
            .entry((row.rule_file.as_str(), row.check.as_str()))
            .or_default()
            .push(row);
    }
    let run_count = recorded
        .iter()
        .map(|r| r.run_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    use crate::model::plural;
    let mut out = format!(
        "{}, {}; last {runs} runs per check, newest right (. pass, w warn, F fail, E error)\n",
        plural(run_count, "run"),
        plural(by_check.len(), "check"),
    );
    let mut rule_file = "";
    for ((file, check), rows) in &by_check {
        if *file != rule_file {
            out.push_str(&format!("\n{file}\n"));
            rule_file = file;
        }
        let last = &rows[rows.len().saturating_sub(runs)..];
        let strip: String = last
            .iter()
            .map(|r| match r.status.as_str() {
                "pass" => '.',
                "warn" => 'w',
                "fail" => 'F',
                _ => 'E',
            })
            .collect();
        let newest = last.last().expect("a check has a run");
        out.push_str(&format!(
            "  {strip:>width$}  {check}  ({}: {})\n",
            newest.run_started_at.format("%Y-%m-%d %H:%M"),
            newest.message,
            width = runs
        ));
    }
    out
}
