//! What a check sees of its sources while it runs: a [`Probe`] that sends SQL to the rule
//! file's sources and records every query for the report, and [`CheckError`], why a check could
//! not run.
//!
//! Its own layer, just above `sources`: the probe needs the `Source` trait, and both `reconcile`
//! and `checks` evaluate through it, so it can live neither in the leaf `model` nor in `checks`
//! (which `reconcile` must not import).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::model::{Column, Rows, TableRef};
use crate::sources::{Source, SourceError, SourceSet};

/// Why a check could not run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    Unexpected(String),
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
    pub async fn columns(&self, table: &TableRef) -> Result<Vec<Column>, CheckError> {
        Ok(self.source(&table.source)?.columns(&table.table).await?)
    }

    /// Every query sent so far, in order.
    pub fn into_queries(self) -> Vec<ExecutedQuery> {
        self.log.into_inner().expect("query log")
    }
}
