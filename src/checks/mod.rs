//! What lakecheck verifies. Each check kind is one file plus one line in [`CHECK_KINDS`].
//!
//! A check reads its options from the rule file (through [`CheckReader`]), then evaluates by
//! sending SQL to its sources through a [`Probe`], which records every query for the report.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;

use crate::rules::{Location, MapReader, RuleError};
use crate::sources::{Rows, Source, SourceError, SourceSet};

mod accepted_values;
mod aggregate_match;
mod commit_freshness;
mod condition;
mod not_null;
mod pairing;
mod range;
mod row_count;
mod row_count_match;
mod row_predicate;
mod schema_match;
mod sql;
mod table_match;
mod unique;

/// A kind of check that a rule file can ask for with `type: <name>`.
pub struct CheckKind {
    pub name: &'static str,
    /// One line for `lakecheck validate` and docs.
    pub summary: &'static str,
    pub parse: fn(&mut CheckReader) -> Result<Arc<dyn Check>, RuleError>,
}

/// Every check kind lakecheck knows, in the order the docs list them.
pub static CHECK_KINDS: &[CheckKind] = &[
    row_count::KIND,
    row_count_match::KIND,
    not_null::KIND,
    unique::KIND,
    accepted_values::KIND,
    range::KIND,
    condition::KIND,
    sql::KIND,
    schema_match::KIND,
    table_match::KIND,
    aggregate_match::KIND,
    commit_freshness::KIND,
];

/// How many failing rows a result shows.
pub const SAMPLE_LIMIT: usize = 10;

/// A resolved check, ready to evaluate against its sources.
#[async_trait]
pub trait Check: Send + Sync + fmt::Debug {
    /// The name used when the rule gives none, e.g. `row_count pg.orders`.
    fn default_name(&self) -> String;
    /// The tables this check reads, for reports.
    fn tables(&self) -> Vec<TableRef>;
    /// Runs the check. An `Err` means it could not run, and is reported as an error.
    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError>;
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
    /// Machine-readable figures (counts, differences) for JSON consumers.
    pub metrics: serde_json::Map<String, serde_json::Value>,
}

/// Why a check could not run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Unexpected(String),
}

/// `source.table` as written in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableRef {
    pub source: String,
    pub table: String,
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.source, self.table)
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
}

/// A check's access to its sources during evaluation.
pub struct Probe {
    sources: Arc<SourceSet>,
    log: Mutex<Vec<ExecutedQuery>>,
}

impl Probe {
    pub fn new(sources: Arc<SourceSet>) -> Self {
        Self {
            sources,
            log: Mutex::new(Vec::new()),
        }
    }

    pub fn source(&self, name: &str) -> Result<&Arc<dyn Source>, CheckError> {
        self.sources
            .get(name)
            .ok_or_else(|| CheckError::Unexpected(format!("source `{name}` is not declared")))
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
        let slot = {
            let mut log = self.log.lock().expect("query log");
            log.push(ExecutedQuery {
                source: source.to_string(),
                sql: sql.clone(),
                duration_ms: 0,
                error: None,
            });
            log.len() - 1
        };
        let started = Instant::now();
        let result = target.query(&sql).await;
        let mut log = self.log.lock().expect("query log");
        log[slot].duration_ms = started.elapsed().as_millis() as u64;
        log[slot].error = result.as_ref().err().map(|e| e.cause.clone());
        Ok(result?)
    }

    /// The columns of a table, from its source.
    pub async fn columns(
        &self,
        table: &TableRef,
    ) -> Result<Vec<crate::sources::Column>, CheckError> {
        Ok(self.source(&table.source)?.columns(&table.table).await?)
    }

    /// Every query sent so far, in order.
    pub fn into_queries(self) -> Vec<ExecutedQuery> {
        self.log.into_inner().expect("query log")
    }
}

/// Reads a check's own options, resolving table references against the file's sources.
pub struct CheckReader<'a> {
    pub map: MapReader<'a>,
    sources: &'a SourceSet,
    what: String,
}

impl<'a> CheckReader<'a> {
    pub fn new(map: MapReader<'a>, sources: &'a SourceSet, what: String) -> Self {
        Self { map, sources, what }
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
        Err(match crate::rules::suggest(name, self.sources.names()) {
            Some(help) => err.with_help(help),
            None => err.with_help("declare it under `sources:`"),
        })
    }

    /// A required `source.table` reference.
    pub fn table(&mut self, key: &'static str) -> Result<TableRef, RuleError> {
        let text = self.map.required_string(key, "pg.sales_order")?;
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
