//! The outcome of a run: one struct per check, grouped per rule file. Reports are pure functions
//! of [`RunReport`]; its JSON form is the documented, versioned schema.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::figure::{BAND_HIGH, BAND_LOW};
use crate::model::{Figure, Rows};
use crate::probe::ExecutedQuery;
use crate::rules::Severity;

/// Version of the JSON report layout. Bumped only on incompatible changes.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Exit code when every check passed (warnings allowed).
pub const EXIT_PASSED: u8 = 0;
/// Exit code when a check of severity `error` failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when a check could not run, the rule files are invalid or a report could not be
/// written.
pub const EXIT_ERROR: u8 = 2;

/// Final state of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Failed, but the check's severity is `warn`.
    Warn,
    Fail,
    /// Could not run (source down, table missing, SQL error). Never counted as a pass.
    Error,
}

impl Status {
    /// The status a history recorded as text; anything unknown reads as `error`, never a pass.
    pub fn parse(text: &str) -> Self {
        match text {
            "pass" => Status::Pass,
            "warn" => Status::Warn,
            "fail" => Status::Fail,
            _ => Status::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// Everything known about one check's run.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: String,
    pub status: Status,
    pub severity: Severity,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Rule file and line where the check is declared.
    pub rule_file: String,
    pub line: usize,
    /// Tables read, as `source.table`.
    pub tables: Vec<String>,
    /// One line saying what happened.
    pub message: String,
    pub observed: Option<String>,
    pub expected: Option<String>,
    pub failing_rows: Option<u64>,
    /// Up to 10 example failures.
    pub samples: Option<Rows>,
    /// The failing rows kept for the run's failures files (`--failures-dir`, up to
    /// `--failures-limit`); not part of the reports.
    #[serde(skip)]
    pub failures: Option<Rows>,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// Why the check could not run (status `error`).
    pub error: Option<String>,
    pub queries: Vec<ExecutedQuery>,
    /// Commit metadata of table-format tables read (version, last commit, commits, files,
    /// bytes), keyed by `source.table`.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub table_metadata: serde_json::Map<String, serde_json::Value>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The figure the check is followed by across runs, where it has one (`Check::figure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figure: Option<Figure>,
    /// With `run --history`: the check's last runs, oldest first, this run last.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trend: Vec<TrendRun>,
}

/// One run of a check, as the history recorded it: for the pass/fail strip and the figure's
/// chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendRun {
    pub at: DateTime<Utc>,
    pub status: Status,
    /// The check's figure in that run, when it recorded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The band that run judged by (anomaly checks once learned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<(f64, f64)>,
}

impl TrendRun {
    /// The run as `figure` reads it from the run's recorded `metrics`.
    pub fn of(
        at: DateTime<Utc>,
        status: Status,
        metrics: &serde_json::Map<String, serde_json::Value>,
        figure: Option<&Figure>,
    ) -> Self {
        let number = |name: &str| metrics.get(name).and_then(serde_json::Value::as_f64);
        Self {
            at,
            status,
            value: figure.and_then(|f| number(f.metric)),
            band: number(BAND_LOW).zip(number(BAND_HIGH)),
        }
    }
}

impl CheckResult {
    /// A result that found nothing yet: status `error` (not evaluated), severity `error`, no
    /// findings, queries or figures. Callers set what they know with struct update syntax.
    pub fn new(
        name: impl Into<String>,
        kind: impl Into<String>,
        rule_file: impl Into<String>,
        line: usize,
        started_at: DateTime<Utc>,
    ) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            status: Status::Error,
            severity: Severity::Error,
            tags: Vec::new(),
            description: None,
            rule_file: rule_file.into(),
            line,
            tables: Vec::new(),
            message: String::new(),
            observed: None,
            expected: None,
            failing_rows: None,
            samples: None,
            failures: None,
            metrics: serde_json::Map::new(),
            error: None,
            queries: Vec::new(),
            table_metadata: serde_json::Map::new(),
            started_at,
            duration_ms: 0,
            figure: None,
            trend: Vec::new(),
        }
    }
}

/// The results of one rule file.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    pub rule_file: String,
    pub results: Vec<CheckResult>,
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub warned: usize,
    pub failed: usize,
    pub errored: usize,
}

/// What the run's billed queries cost together (each execution once, however many checks
/// shared it): present when a source bills by the query (Athena).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BilledTotals {
    pub queries: usize,
    pub bytes_scanned: u64,
    pub engine_ms: u64,
}

impl BilledTotals {
    fn of<'a>(results: impl Iterator<Item = &'a CheckResult>) -> Option<Self> {
        let mut seen = std::collections::HashSet::new();
        let mut totals = Self::default();
        for cost in results
            .flat_map(|r| &r.queries)
            .filter_map(|q| q.cost.as_ref())
        {
            if seen.insert(cost.execution_id.as_str()) {
                totals.queries += 1;
                totals.bytes_scanned += cost.bytes_scanned;
                totals.engine_ms += cost.engine_ms;
            }
        }
        (totals.queries > 0).then_some(totals)
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub lakecheck_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub summary: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billed: Option<BilledTotals>,
    /// The code the process exits with, including a report that could not be written.
    pub exit_code: u8,
    /// Reports that could not be written (`cannot write html report to ...: ...`), each of
    /// which makes the exit code 2. Absent from JSON when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub report_errors: Vec<String>,
    pub suites: Vec<SuiteResult>,
}

impl RunReport {
    pub fn new(
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        suites: Vec<SuiteResult>,
    ) -> Self {
        let mut summary = Summary::default();
        for result in suites.iter().flat_map(|s| &s.results) {
            summary.total += 1;
            match result.status {
                Status::Pass => summary.passed += 1,
                Status::Warn => summary.warned += 1,
                Status::Fail => summary.failed += 1,
                Status::Error => summary.errored += 1,
            }
        }
        let exit_code = if summary.errored > 0 {
            EXIT_ERROR
        } else if summary.failed > 0 {
            EXIT_FAILED
        } else {
            EXIT_PASSED
        };
        Self {
            schema_version: REPORT_SCHEMA_VERSION,
            lakecheck_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at,
            finished_at,
            duration_ms: (finished_at - started_at).num_milliseconds().max(0) as u64,
            summary,
            billed: BilledTotals::of(suites.iter().flat_map(|s| &s.results)),
            exit_code,
            report_errors: Vec::new(),
            suites,
        }
    }

    /// Records a report that could not be written: the run exits with [`EXIT_ERROR`], and every
    /// report rendered afterwards says so.
    pub fn report_not_written(&mut self, message: String) {
        self.report_errors.push(message);
        self.exit_code = EXIT_ERROR;
    }

    pub fn results(&self) -> impl Iterator<Item = &CheckResult> {
        self.suites.iter().flat_map(|s| &s.results)
    }
}
