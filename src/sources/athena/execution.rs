//! One Athena query, start to finish: StartQueryExecution, GetQueryExecution polled with a
//! growing pause, StopQueryExecution when the caller gives up (the future is dropped: a check's
//! timeout) or the scan budget runs out, then GetQueryResults page by page.
//!
//! Throttling (`TooManyRequestsException`, `ThrottlingException`) is retried by the SDK's standard
//! retry strategy with exponential backoff (see `client.rs`); what is left is an error naming
//! the call.

use std::time::Duration;

use aws_sdk_athena::types::{
    QueryExecution, QueryExecutionContext, QueryExecutionState, ResultConfiguration,
};
use aws_sdk_athena::Client;

use super::values::{header_row, AthenaColumn};
use crate::model::Rows;
use crate::sources::ScanLimit;

/// What one finished execution cost: its QueryExecutionId, `DataScannedInBytes` and
/// `EngineExecutionTimeInMillis`.
pub use crate::sources::QueryCost as ExecutionCost;

/// Where and how queries run.
#[derive(Debug, Clone)]
pub struct QueryPlace {
    pub workgroup: String,
    pub catalog: String,
    pub database: String,
    /// `None`: the workgroup's own result location.
    pub output_location: Option<String>,
}

/// How long to wait between polls: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }
    }
}

/// Why an execution gave no rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionError {
    /// A call to Athena failed (after the SDK's retries).
    Call { call: &'static str, cause: String },
    /// Athena ran the query and it failed or was cancelled.
    Ended {
        execution_id: String,
        state: String,
        reason: String,
    },
    /// The scan budget (`max_scanned`) would be exceeded: the query was stopped.
    OverBudget {
        execution_id: String,
        scanned: u64,
        limit: ScanLimit,
    },
}

impl std::fmt::Display for ExecutionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Call { call, cause } => write!(f, "Athena {call} failed: {cause}"),
            Self::Ended {
                execution_id,
                state,
                reason,
            } => write!(f, "Athena query {execution_id} {state}: {reason}"),
            Self::OverBudget {
                execution_id,
                scanned,
                limit,
            } => write!(
                f,
                "stopped Athena query {execution_id}: it had scanned {} and {} allows {} more; \
                 raise `max_scanned` or narrow the check (`where:`, a partition filter)",
                crate::model::format_size(*scanned),
                limit.owner,
                crate::model::format_size(limit.bytes)
            ),
        }
    }
}

/// Stops the execution when dropped before it finished: a check past its timeout is aborted,
/// which drops this future, and the query must not keep scanning (and billing) after it.
struct StopOnDrop {
    client: Client,
    execution_id: String,
    finished: bool,
    stops: PendingStops,
}

/// StopQueryExecution calls sent from a drop, which cannot wait: the source waits for them when
/// the run ends ([`PendingStops::wait`]), or the process could exit before they reach Athena.
#[derive(Debug, Clone, Default)]
pub struct PendingStops(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>);

impl PendingStops {
    fn push(&self, stop: tokio::task::JoinHandle<()>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(stop);
    }

    /// Waits (up to `within`) for every stop sent so far.
    pub async fn wait(&self, within: Duration) {
        let stops: Vec<_> = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::time::timeout(within, futures::future::join_all(stops)).await;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let stop = self
                .client
                .stop_query_execution()
                .query_execution_id(self.execution_id.clone());
            self.stops.push(runtime.spawn(async move {
                let _ = stop.send().await;
            }));
        }
    }
}

/// Runs `sql` and reads every row. `budget` is how many bytes it may scan (`None`: no limit);
/// past it the query is stopped and the answer is [`ExecutionError::OverBudget`]. The cost is
/// returned with the error too, so a stopped query is still counted.
pub async fn run(
    client: &Client,
    place: &QueryPlace,
    polling: Polling,
    budget: Option<&ScanLimit>,
    stops: &PendingStops,
    sql: &str,
) -> Result<(Rows, ExecutionCost), (ExecutionError, Option<ExecutionCost>)> {
    let mut context = QueryExecutionContext::builder()
        .catalog(&place.catalog)
        .database(&place.database);
    if place.catalog.is_empty() {
        context = context.set_catalog(None);
    }
    let mut start = client
        .start_query_execution()
        .query_string(sql)
        .work_group(&place.workgroup)
        .query_execution_context(context.build());
    if let Some(location) = &place.output_location {
        start = start.result_configuration(
            ResultConfiguration::builder()
                .output_location(location)
                .build(),
        );
    }
    let started = start.send().await.map_err(|e| {
        (
            ExecutionError::Call {
                call: "StartQueryExecution",
                cause: super::client::describe_error(&e),
            },
            None,
        )
    })?;
    let Some(execution_id) = started.query_execution_id().map(str::to_string) else {
        let error = ExecutionError::Call {
            call: "StartQueryExecution",
            cause: "the answer carries no QueryExecutionId".into(),
        };
        return Err((error, None));
    };
    let mut guard = StopOnDrop {
        client: client.clone(),
        execution_id: execution_id.clone(),
        finished: false,
        stops: stops.clone(),
    };
    let mut pause = polling.first;
    let execution = loop {
        let polled = client
            .get_query_execution()
            .query_execution_id(&execution_id)
            .send()
            .await
            .map_err(|e| {
                (
                    ExecutionError::Call {
                        call: "GetQueryExecution",
                        cause: super::client::describe_error(&e),
                    },
                    None,
                )
            })?;
        let Some(execution) = polled.query_execution().cloned() else {
            let error = ExecutionError::Call {
                call: "GetQueryExecution",
                cause: format!("the answer for {execution_id} carries no QueryExecution"),
            };
            return Err((error, None));
        };
        let cost = cost_of(&execution_id, &execution);
        let state = execution
            .status()
            .and_then(|s| s.state())
            .cloned()
            .unwrap_or(QueryExecutionState::Queued);
        match state {
            QueryExecutionState::Succeeded => break (execution, cost),
            QueryExecutionState::Failed | QueryExecutionState::Cancelled => {
                guard.finished = true;
                return Err((ended(&execution_id, &execution, &state), Some(cost)));
            }
            _ => {}
        }
        if let Some(limit) = budget.filter(|b| cost.bytes_scanned > b.bytes) {
            // Dropping the guard stops the query; wait for the stop so nothing scans on.
            guard.finished = true;
            let _ = client
                .stop_query_execution()
                .query_execution_id(&execution_id)
                .send()
                .await;
            let error = ExecutionError::OverBudget {
                execution_id: execution_id.clone(),
                scanned: cost.bytes_scanned,
                limit: limit.clone(),
            };
            return Err((error, Some(cost)));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(polling.max);
    };
    guard.finished = true;
    let (_, cost) = execution;
    if let Some(limit) = budget.filter(|b| cost.bytes_scanned > b.bytes) {
        // It finished within one poll: it is spent, but its answer is not used, so a check
        // never passes on a query that broke the budget.
        let error = ExecutionError::OverBudget {
            execution_id: execution_id.clone(),
            scanned: cost.bytes_scanned,
            limit: limit.clone(),
        };
        return Err((error, Some(cost)));
    }
    let rows = results(client, &execution_id)
        .await
        .map_err(|e| (e, Some(cost.clone())))?;
    Ok((rows, cost))
}

fn cost_of(execution_id: &str, execution: &QueryExecution) -> ExecutionCost {
    let statistics = execution.statistics();
    let figure = |value: Option<i64>| value.unwrap_or(0).max(0) as u64;
    ExecutionCost {
        execution_id: execution_id.to_string(),
        bytes_scanned: figure(statistics.and_then(|s| s.data_scanned_in_bytes())),
        engine_ms: figure(statistics.and_then(|s| s.engine_execution_time_in_millis())),
    }
}

/// A failed or cancelled execution, with Athena's own reason and error category.
fn ended(
    execution_id: &str,
    execution: &QueryExecution,
    state: &QueryExecutionState,
) -> ExecutionError {
    let status = execution.status();
    let mut reason = status
        .and_then(|s| s.state_change_reason())
        .unwrap_or("Athena gave no reason")
        .to_string();
    if let Some(error) = status.and_then(|s| s.athena_error()) {
        if let Some(kind) = error.error_type() {
            reason.push_str(&format!(" (error type {kind}"));
            if let Some(category) = error.error_category() {
                let category = match category {
                    1 => "system",
                    2 => "user",
                    _ => "other",
                };
                reason.push_str(&format!(", {category} error"));
            }
            if error.retryable() {
                reason.push_str(", retryable");
            }
            reason.push(')');
        }
    }
    ExecutionError::Ended {
        execution_id: execution_id.to_string(),
        state: state.as_str().to_lowercase(),
        reason,
    }
}

/// Every row of a finished execution, page by page. The first row of the first page is the
/// header Athena puts before a SELECT's rows; values are read by the types of the result
/// metadata (see `values.rs`).
async fn results(client: &Client, execution_id: &str) -> Result<Rows, ExecutionError> {
    let mut rows = Rows::default();
    let mut columns: Vec<AthenaColumn> = Vec::new();
    let mut token: Option<String> = None;
    let mut first_page = true;
    loop {
        let page = client
            .get_query_results()
            .query_execution_id(execution_id)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| ExecutionError::Call {
                call: "GetQueryResults",
                cause: super::client::describe_error(&e),
            })?;
        let Some(set) = page.result_set() else {
            break;
        };
        if first_page {
            columns = set
                .result_set_metadata()
                .map(|m| m.column_info().iter().map(AthenaColumn::from).collect())
                .unwrap_or_default();
            rows.columns = columns.iter().map(|c| c.name.clone()).collect();
        }
        let mut data = set.rows().iter();
        if first_page && header_row(set.rows().first(), &columns) {
            data.next();
        }
        first_page = false;
        for row in data {
            let values = row.data();
            if values.len() != columns.len() {
                return Err(ExecutionError::Call {
                    call: "GetQueryResults",
                    cause: format!(
                        "a row of {} values for {} columns",
                        values.len(),
                        columns.len()
                    ),
                });
            }
            let parsed = values
                .iter()
                .zip(&columns)
                .map(|(datum, column)| column.read(datum.var_char_value()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|cause| ExecutionError::Call {
                    call: "GetQueryResults",
                    cause,
                })?;
            rows.rows.push(parsed);
        }
        match page.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    Ok(rows)
}
