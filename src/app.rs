//! The `run` job shared by the CLI and the demo: plan, run with progress, print, write reports.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::history::History;
use crate::model::plural;
use crate::probe::Clock;
use crate::report::failures::{self, FailuresDir};
use crate::report::{self, console, ReportFormat, REPORT_FORMATS};
use crate::results::{RunReport, EXIT_ERROR};
use crate::rules::RuleFile;
use crate::runner::{self, Selection};

/// How to run loaded rule files.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub selection: Selection,
    /// Checks running at once.
    pub jobs: usize,
    /// Report files to write.
    pub outputs: Vec<(&'static ReportFormat, PathBuf)>,
    /// Print a line per finished check (progress bar on a terminal).
    pub verbose: bool,
    /// What checks measure ages against (`--now`): the machine's clock unless fixed.
    pub clock: Clock,
    /// Where to append the run (`--history`): a folder or `s3://bucket/prefix`.
    pub history: Option<String>,
    /// Where to write each failing check's failing rows (`--failures-dir`), and how many.
    pub failures: Option<FailuresDir>,
}

/// Report paths: explicit ones where given, else the format's default file under `dir`.
pub fn report_outputs(
    dir: &Path,
    explicit: &[(&str, Option<PathBuf>)],
) -> Vec<(&'static ReportFormat, PathBuf)> {
    REPORT_FORMATS
        .iter()
        .map(|format| {
            let chosen = explicit
                .iter()
                .find(|(name, _)| *name == format.name)
                .and_then(|(_, p)| p.clone());
            (
                format,
                chosen.unwrap_or_else(|| dir.join(format.default_file)),
            )
        })
        .collect()
}

/// Runs the selected checks of `files`, prints results, writes reports, returns the exit code.
pub async fn execute(files: &[RuleFile], options: &RunOptions) -> (u8, Option<RunReport>) {
    let mut planned = match runner::plan(files, &options.selection) {
        Ok(planned) => planned,
        Err(error) => {
            eprintln!("error: {error}");
            return (EXIT_ERROR, None);
        }
    };
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let bar = if options.verbose && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(planned.len() as u64);
        // A template that does not parse keeps indicatif's default style: progress is a nicety.
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} checks",
        ) {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let on_result = |result: &crate::results::CheckResult| {
        if !options.verbose {
            return;
        }
        let line = console::result_line(result, color);
        match &bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => println!("{line}"),
        }
    };
    let run_at = options.clock.now();
    // Read once before the run: checks that learn from it get their own past runs, or why the
    // history could not be read (their error, never a pass); the reports draw every check's
    // trend from it.
    let past = match &options.history {
        Some(location) => Some(
            match History::open(location) {
                Ok(history) => history.past_runs().await,
                Err(error) => Err(error),
            }
            .map_err(|e| format!("cannot read the history at {location}: {e}")),
        ),
        None => None,
    };
    if let Some(read) = &past {
        for check in planned
            .iter_mut()
            .filter(|c| c.decl.check.learns_from_past())
        {
            let key = (
                files[check.suite].path.display().to_string(),
                check.decl.name.clone(),
            );
            check.past = Some(match read {
                Ok(past) => Ok(past.get(&key).cloned().unwrap_or_default().into()),
                Err(error) => Err(error.clone()),
            });
        }
    }
    if let Some(kept) = &options.failures {
        for check in &mut planned {
            check.failures_limit = kept.limit;
        }
    }
    let mut report = runner::run(files, planned, options.jobs, options.clock, &on_result).await;
    match &past {
        Some(Ok(past)) => crate::history::attach_trends(&mut report, past, run_at),
        Some(Err(error)) => eprintln!("lakecheck: the reports show no trends: {error}"),
        None => {}
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // The history before the reports: a run that cannot be appended exits 2, and every report
    // says why.
    let appended = match &options.history {
        Some(location) => match append_history(location, &report, run_at).await {
            Ok(line) => Some(line),
            Err(error) => {
                report.report_not_written(error);
                None
            }
        },
        None => None,
    };
    // Failures files before the reports too: one that cannot be written is a report error.
    let failure_files = match &options.failures {
        Some(kept) => {
            let (written, errors) = failures::write_all(&report, &kept.dir);
            for error in errors {
                report.report_not_written(error.to_string());
            }
            Some((written.len(), &kept.dir))
        }
        None => None,
    };
    // Reports first: one that cannot be written changes the exit code that every report and
    // the console summary state.
    let written = report::write_all(&mut report, &options.outputs);
    print!("{}", console::render(&report, color));
    for (format, path) in written {
        println!("{} report: {}", format.name, path.display());
    }
    if let Some((count, dir)) = failure_files {
        println!(
            "failing rows: {} in {}",
            plural(count, "file"),
            dir.display()
        );
    }
    if let Some(line) = appended {
        println!("{line}");
    }
    (report.exit_code, Some(report))
}

/// Appends `report` (run at `run_at`, the clock's time) to the history at `location`.
async fn append_history(
    location: &str,
    report: &RunReport,
    run_at: chrono::DateTime<chrono::Utc>,
) -> Result<String, String> {
    let failed = |e: String| format!("cannot append the run to the history at {location}: {e}");
    let history = History::open(location).map_err(failed)?;
    let run_id = crate::history::new_run_id(run_at);
    let version = history
        .append(report, &run_id, run_at)
        .await
        .map_err(failed)?;
    Ok(format!(
        "history: run {run_id} appended to {} (version {version})",
        history.location()
    ))
}
