//! What lakecheck verifies. Each check kind is one file plus one line in `registry::CHECK_KINDS`.
//!
//! A check reads its options from the rule file (through [`CheckReader`]), then evaluates by
//! sending SQL to its sources through a [`Probe`], which records every query for the report.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{suggest, Figure, Location, MapReader, Rows, RuleError, Spanned, TableRef};
use crate::probe::scan::ScanNeeds;
use crate::probe::{CheckError, Probe};
use crate::sources::{Source, SourceSet};

pub(crate) mod accepted_values;
pub(crate) mod aggregate_match;
mod anomaly;
pub(crate) mod cdc_latency;
pub(crate) mod condition;
pub(crate) mod freshness;
pub(crate) mod not_null;
mod pairing;
pub(crate) mod pattern;
pub(crate) mod range;
pub(crate) mod relationships;
pub(crate) mod row_count;
pub(crate) mod row_count_match;
mod row_predicate;
pub(crate) mod schema_match;
pub(crate) mod sql;
pub(crate) mod table_match;
pub(crate) mod unique;
pub(crate) mod volume_anomaly;

/// A kind of check that a rule file can ask for with `type: <name>`.
pub struct CheckKind {
    pub name: &'static str,
    /// One line for `lakecheck validate` and docs.
    pub summary: &'static str,
    pub parse: fn(&mut CheckReader) -> Result<Arc<dyn Check>, RuleError>,
}

/// How many failing rows a result shows.
pub const SAMPLE_LIMIT: usize = 10;

/// How long a check may run when its rule states no `timeout`: long enough for a reconcile of
/// a large table, short enough that a hung server does not hold a CI job for its whole budget.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A resolved check, ready to evaluate against its sources.
#[async_trait]
pub trait Check: Send + Sync + fmt::Debug {
    /// The name used when the rule gives none, e.g. `row_count pg.orders`.
    fn default_name(&self) -> String;
    /// The tables this check reads, for reports.
    fn tables(&self) -> Vec<TableRef>;
    /// Runs the check. An `Err` means it could not run, and is reported as an error.
    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError>;
    /// The aggregates of one table this check reads first (through [`Probe::scan`]), known
    /// before it runs, so that the runner can give checks of the same table and filter one
    /// shared scan. `None` for checks that read otherwise (grouping, joins, two tables).
    fn scan(&self) -> Option<ScanNeeds> {
        None
    }
    /// When the runner stops the check (an error result, its queries cancelled), given the
    /// rule's `timeout`. A check that watches a deadline of its own (`cdc_latency` waiting for
    /// its marker) is given time past it to report what it saw by then.
    fn time_limit(&self, declared: Option<Duration>) -> Duration {
        declared.unwrap_or(DEFAULT_TIMEOUT)
    }
    /// Whether the check judges by its past runs (`Probe::past_runs`): the run reads its
    /// history before it starts only when a check does.
    fn learns_from_past(&self) -> bool {
        false
    }
    /// The figure this check's runs are followed by (a row count, a lag), charted across the
    /// runs of the history; `None` for checks whose finding is not one number.
    fn figure(&self) -> Option<Figure> {
        None
    }
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub passed: bool,
    /// What was seen, in words a data engineer reads at a glance ("3 NULLs in email").
    pub observed: String,
    /// What the rule asks for ("no NULLs").
    pub expected: String,
    /// Rows that broke the rule, where that is countable.
    pub failing_rows: Option<u64>,
    /// Up to [`SAMPLE_LIMIT`] examples of failures.
    pub samples: Option<Rows>,
    /// The failing rows kept for the run's failures files, up to [`Probe::failures_limit`]:
    /// `None` for a check whose findings are not rows, or when the run keeps none.
    pub failures: Option<Rows>,
    /// Machine-readable figures (counts, differences) for JSON consumers.
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// A passing check that crossed a warning threshold of its own (`warn_after` of
    /// `freshness`) says so here, e.g. "older than warn_after 10m": it is reported as `warn`,
    /// whatever its severity.
    pub warning: Option<String>,
}

/// How many failing rows a check reads: enough for its samples and for the run's failures
/// files.
fn rows_to_read(probe: &Probe) -> usize {
    SAMPLE_LIMIT.max(probe.failures_limit())
}

impl Evaluation {
    /// The evaluation with failing `rows` (read up to [`rows_to_read`]) as its samples, the
    /// first [`SAMPLE_LIMIT`], and as its failures, the first [`Probe::failures_limit`] when
    /// the run keeps them. No rows leave both unset.
    fn with_failing_rows(self, probe: &Probe, rows: Rows) -> Self {
        if rows.rows.is_empty() {
            return self;
        }
        let first = |n: usize| Rows {
            columns: rows.columns.clone(),
            rows: rows.rows.iter().take(n).cloned().collect(),
        };
        let limit = probe.failures_limit();
        Self {
            samples: Some(first(SAMPLE_LIMIT)),
            failures: (limit > 0).then(|| first(limit)),
            ..self
        }
    }
}

/// Reads a check's own options, resolving table references against the file's sources.
pub struct CheckReader<'a> {
    pub map: MapReader<'a>,
    /// The check's `timeout`, read by the loader for every kind (see [`Check::time_limit`]).
    pub timeout: Option<Spanned<Duration>>,
    sources: &'a SourceSet,
    what: String,
}

impl<'a> CheckReader<'a> {
    pub fn new(
        map: MapReader<'a>,
        timeout: Option<Spanned<Duration>>,
        sources: &'a SourceSet,
        what: String,
    ) -> Self {
        Self {
            map,
            timeout,
            sources,
            what,
        }
    }

    /// Rejects unknown keys; called once the kind has read its options.
    pub fn finish(self) -> Result<(), RuleError> {
        self.map.finish()
    }

    fn check_source(&self, name: &str, location: &Location) -> Result<(), RuleError> {
        if self.sources.contains(name) {
            return Ok(());
        }
        let err = RuleError::new(
            location.clone(),
            format!("unknown source `{name}` in {}", self.what),
        );
        Err(match suggest(name, self.sources.names()) {
            Some(help) => err.with_help(help),
            None => err.with_help("declare it under `sources:`"),
        })
    }

    /// A required `source.table` reference.
    pub fn table(&mut self, key: &'static str) -> Result<TableRef, RuleError> {
        let text = self.map.required_string(key, "pg.sales_order")?;
        self.table_ref(key, text)
    }

    /// `text`, written under `key` (here or in a mapping nested in the check), as a
    /// `source.table` reference to a declared source.
    pub fn table_ref(&self, key: &str, text: Spanned<String>) -> Result<TableRef, RuleError> {
        let Some((source, table)) = text
            .value
            .split_once('.')
            .filter(|(s, t)| !s.is_empty() && !t.is_empty())
        else {
            return Err(RuleError::new(
                text.location,
                format!(
                    "`{key}` in {} must be `source.table`, found `{}`",
                    self.what, text.value
                ),
            )
            .with_help(format!("e.g. `{key}: pg.sales_order`")));
        };
        self.check_source(source, &text.location)?;
        Ok(TableRef {
            source: source.to_string(),
            table: table.to_string(),
        })
    }

    /// A source the rule file declares, for checks that need more than its name at parse time.
    pub fn declared_source(&self, name: &str) -> Option<&Arc<dyn Source>> {
        self.sources.get(name)
    }

    /// A required source name.
    pub fn source(&mut self, key: &'static str) -> Result<String, RuleError> {
        let name = self.map.required_string(key, "pg")?;
        self.check_source(&name.value, &name.location)?;
        Ok(name.value)
    }

    /// An optional SQL row filter under `key` (usually `where`).
    pub fn filter(&mut self, key: &'static str) -> Result<Option<String>, RuleError> {
        Ok(self.map.string(key)?.map(|f| f.value))
    }

    /// A required list of column names.
    pub fn columns(&mut self, key: &'static str) -> Result<Vec<String>, RuleError> {
        Ok(self
            .map
            .required_string_list(key, "[customer_id, email]")?
            .into_iter()
            .map(|c| c.value)
            .collect())
    }

    pub fn what(&self) -> &str {
        &self.what
    }
}

/// Why two empty sides fail a comparing check: they agree on everything and prove nothing.
fn both_empty_finding(left: &TableRef, right: &TableRef, filtered: bool) -> String {
    format!(
        "both sides are empty ({left} and {right} hold 0 rows{}), which proves nothing; \
         set `allow_empty: true` if empty tables are expected",
        if filtered { " after their filters" } else { "" }
    )
}

/// Appends ` and <filter>` wording to a default check name.
fn name_with_filter(base: String, filter: Option<&str>) -> String {
    match filter {
        Some(f) => format!("{base} where {f}"),
        None => base,
    }
}
