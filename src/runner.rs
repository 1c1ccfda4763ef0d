//! Runs selected checks concurrently (bounded) and gathers their results in rule-file order.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::stream::{self, StreamExt};

use crate::checks::Evaluation;
use crate::probe::scan::{share_scans, SharedScan};
use crate::probe::{CheckError, Clock, PastRun, Probe};
use crate::results::{CheckResult, RunReport, Status, SuiteResult};
use crate::rules::{CheckDecl, RuleFile, Severity};
use crate::sources::SourceSet;

/// Which checks to run. Empty lists select everything.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Run checks carrying any of these tags.
    pub tags: Vec<String>,
    /// Skip checks carrying any of these tags.
    pub exclude_tags: Vec<String>,
    /// Run only checks with these exact names.
    pub names: Vec<String>,
}

impl Selection {
    fn includes(&self, check: &CheckDecl) -> bool {
        (self.tags.is_empty() || check.tags.iter().any(|t| self.tags.contains(t)))
            && !check.tags.iter().any(|t| self.exclude_tags.contains(t))
            && (self.names.is_empty() || self.names.contains(&check.name))
    }
}

/// Why a selection picks no checks to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// `--check NAME` names no check of the rule files; `help` suggests the closest name.
    #[error("no check named `{name}`{}", .help.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    UnknownCheck { name: String, help: Option<String> },
    /// The tag filters leave nothing to run.
    #[error("the filters select no checks")]
    NothingSelected,
}

/// A check picked to run, with the sources of its rule file.
#[derive(Clone)]
pub struct PlannedCheck {
    pub suite: usize,
    pub decl: Arc<CheckDecl>,
    pub sources: Arc<SourceSet>,
    /// The one aggregate query this check shares with the other checks of its rule file that
    /// read the same table under the same filter (`probe::scan`); `None` when it reads alone.
    /// Clearing it makes the check send its own query, as a lone check does.
    pub shared_scan: Option<Arc<SharedScan>>,
    /// The check's past runs in the run history, or why it could not be read; `None` when the
    /// run keeps no history.
    pub past: Option<Result<Arc<[PastRun]>, String>>,
    /// Failing rows the check keeps for the run's failures files (`--failures-limit`); 0 when
    /// the run writes none.
    pub failures_limit: usize,
}

/// Applies the selection, and groups the selected checks that read the same table under the
/// same filter into one shared scan each. Selecting nothing is an error: a CI job that silently
/// runs zero checks would pass forever.
pub fn plan(
    files: &[RuleFile],
    selection: &Selection,
) -> Result<Vec<PlannedCheck>, SelectionError> {
    for name in &selection.names {
        if !files
            .iter()
            .flat_map(|f| &f.checks)
            .any(|c| &c.name == name)
        {
            let known = files
                .iter()
                .flat_map(|f| &f.checks)
                .map(|c| c.name.as_str());
            return Err(SelectionError::UnknownCheck {
                name: name.clone(),
                help: crate::model::suggest(name, known),
            });
        }
    }
    let mut planned: Vec<PlannedCheck> = files
        .iter()
        .enumerate()
        .flat_map(|(suite, file)| {
            file.checks
                .iter()
                .filter(|c| selection.includes(c))
                .map(move |decl| PlannedCheck {
                    suite,
                    decl: decl.clone(),
                    sources: file.sources.clone(),
                    shared_scan: None,
                    past: None,
                    failures_limit: 0,
                })
        })
        .collect();
    if planned.is_empty() {
        return Err(SelectionError::NothingSelected);
    }
    // Grouped per rule file: another file may declare a source of the same name elsewhere.
    let scans: Vec<_> = planned
        .iter()
        .map(|p| {
            // A check with a scan budget of its own runs its own query under it.
            if p.decl.max_scanned.is_some() {
                return None;
            }
            let needs = p.decl.check.scan()?;
            Some((p.suite, p.decl.name.as_str(), needs))
        })
        .collect();
    let shared = share_scans(&scans);
    for (check, scan) in planned.iter_mut().zip(shared) {
        check.shared_scan = scan;
    }
    Ok(planned)
}

/// Called as each check finishes (for progress display).
pub type OnResult<'a> = dyn Fn(&CheckResult) + Send + Sync + 'a;

/// Runs the planned checks with at most `jobs` at once, each measuring ages against `clock`.
pub async fn run(
    files: &[RuleFile],
    planned: Vec<PlannedCheck>,
    jobs: usize,
    clock: Clock,
    on_result: &OnResult<'_>,
) -> RunReport {
    let started_at = Utc::now();
    let mut finished: Vec<(usize, usize, CheckResult)> =
        stream::iter(planned.into_iter().enumerate())
            .map(|(order, check)| async move {
                let suite = check.suite;
                let file = files[suite].path.display().to_string();
                (order, suite, run_one(check, file, clock).await)
            })
            .buffer_unordered(jobs.max(1))
            .inspect(|(_, _, result)| on_result(result))
            .collect()
            .await;
    finished.sort_by_key(|(order, _, _)| *order);
    let mut suites: Vec<SuiteResult> = files
        .iter()
        .map(|f| SuiteResult {
            rule_file: f.path.display().to_string(),
            results: Vec::new(),
        })
        .collect();
    for (_, suite, result) in finished {
        suites[suite].results.push(result);
    }
    suites.retain(|s| !s.results.is_empty());
    for source in files.iter().flat_map(|f| f.sources.iter()) {
        source.end_of_run().await;
    }
    RunReport::new(started_at, Utc::now(), suites)
}

async fn run_one(check: PlannedCheck, rule_file: String, clock: Clock) -> CheckResult {
    let started_at = Utc::now();
    let timer = Instant::now();
    let decl = check.decl.clone();
    let probe = Arc::new(
        Probe::new(check.sources.clone())
            .with_clock(clock)
            .with_shared_scan(check.shared_scan.clone())
            .with_max_scanned(decl.max_scanned)
            .with_past(check.past.clone())
            .with_failures_limit(check.failures_limit),
    );
    // Each check runs in its own task so a bug that panics becomes this check's error, not the
    // run's, and so a check past its time limit can be stopped: aborting the task drops its
    // query futures, which cancels the queries on the servers running them.
    let mut task = tokio::spawn({
        let probe = probe.clone();
        async move {
            let outcome = check.decl.check.evaluate(&probe).await;
            // Commit metadata of table-format tables, for audits (absent for other sources).
            // Not after an error: the table could not be read, and trying again would only
            // spend another round of retries on it.
            let mut metadata = serde_json::Map::new();
            let tables = match outcome {
                Ok(_) => check.decl.check.tables(),
                Err(_) => Vec::new(),
            };
            for table in tables {
                if let Some(source) = check.sources.get(&table.source) {
                    if let Ok(Some(facts)) = source.table_metadata(&table.table).await {
                        metadata.insert(table.to_string(), facts);
                    }
                }
            }
            (outcome, metadata)
        }
    });
    let (outcome, table_metadata) = match tokio::time::timeout(decl.time_limit, &mut task).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => (Err(CheckError::Internal(e.to_string())), Default::default()),
        Err(_) => {
            task.abort();
            // Wait for the abort to drop the check's futures (which sends their cancels),
            // then mark the queries they left running as stopped.
            let _ = task.await;
            probe.stop_unfinished();
            let limit = decl.time_limit;
            (Err(CheckError::TimedOut { limit }), Default::default())
        }
    };
    let queries = probe.queries();
    let base = CheckResult {
        severity: decl.severity,
        tags: decl.tags.clone(),
        description: decl.description.clone(),
        tables: decl
            .check
            .tables()
            .iter()
            .map(ToString::to_string)
            .collect(),
        queries,
        table_metadata,
        figure: decl.check.figure(),
        duration_ms: timer.elapsed().as_millis() as u64,
        ..CheckResult::new(
            decl.name.clone(),
            decl.kind,
            rule_file,
            decl.location.line,
            started_at,
        )
    };
    match outcome {
        Ok(evaluation) => with_evaluation(base, evaluation),
        Err(error) => CheckResult {
            message: format!("could not run: {error}"),
            error: Some(error.to_string()),
            ..base
        },
    }
}

fn with_evaluation(base: CheckResult, evaluation: Evaluation) -> CheckResult {
    let status = match (evaluation.passed, &evaluation.warning, base.severity) {
        (true, None, _) => Status::Pass,
        (true, Some(_), _) | (false, _, Severity::Warn) => Status::Warn,
        (false, _, Severity::Error) => Status::Fail,
    };
    let message = if let (true, Some(warning)) = (evaluation.passed, &evaluation.warning) {
        format!("{warning}: {}", evaluation.observed)
    } else if evaluation.passed {
        evaluation.observed.clone()
    } else {
        format!(
            "expected {}, found {}",
            evaluation.expected, evaluation.observed
        )
    };
    CheckResult {
        status,
        message,
        observed: Some(evaluation.observed),
        expected: Some(evaluation.expected),
        failing_rows: evaluation.failing_rows,
        samples: evaluation.samples.filter(|s| !s.rows.is_empty()),
        failures: evaluation.failures.filter(|f| !f.rows.is_empty()),
        metrics: evaluation.metrics,
        ..base
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rules::parse_rule_text;

    fn rule_files() -> Vec<RuleFile> {
        let text = "sources:\n  pg: { type: postgres, url: \"postgres://lakecheck@localhost/shop\" }\n\
                    checks:\n\
                    \x20 - { name: orders, type: row_count, table: pg.orders, min: 1, tags: [daily] }\n\
                    \x20 - { name: customers, type: row_count, table: pg.customers, min: 1 }\n";
        vec![parse_rule_text(Path::new("shop.yml"), text, &Default::default()).unwrap()]
    }

    fn names(planned: &[PlannedCheck]) -> Vec<&str> {
        planned.iter().map(|p| p.decl.name.as_str()).collect()
    }

    #[test]
    fn a_selection_picks_checks_in_file_order() {
        let files = rule_files();
        let all = plan(&files, &Selection::default()).unwrap();
        assert_eq!(names(&all), ["orders", "customers"]);
        let daily = Selection {
            tags: vec!["daily".into()],
            ..Selection::default()
        };
        assert_eq!(names(&plan(&files, &daily).unwrap()), ["orders"]);
    }

    #[test]
    fn an_unknown_check_name_suggests_the_closest() {
        let selection = Selection {
            names: vec!["order".into()],
            ..Selection::default()
        };
        let error = plan(&rule_files(), &selection).err().unwrap();
        assert_eq!(
            error,
            SelectionError::UnknownCheck {
                name: "order".into(),
                help: Some("did you mean `orders`?".into()),
            }
        );
        assert_eq!(
            error.to_string(),
            "no check named `order`; did you mean `orders`?"
        );
    }

    #[test]
    fn filters_that_select_nothing_are_an_error() {
        let selection = Selection {
            exclude_tags: vec!["daily".into()],
            names: vec!["orders".into()],
            ..Selection::default()
        };
        let error = plan(&rule_files(), &selection).err().unwrap();
        assert_eq!(error, SelectionError::NothingSelected);
        assert_eq!(error.to_string(), "the filters select no checks");
    }

    #[test]
    fn without_a_suggestion_the_message_ends_at_the_name() {
        let error = SelectionError::UnknownCheck {
            name: "x".into(),
            help: None,
        };
        assert_eq!(error.to_string(), "no check named `x`");
    }
}
