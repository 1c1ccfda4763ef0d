//! The `lakecheck` command: parse arguments, call the library, map the outcome to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use lakecheck::app::{self, RunOptions};
use lakecheck::probe::Clock;
use lakecheck::registry::CHECK_KINDS;
use lakecheck::report::failures::{FailuresDir, DEFAULT_FAILURES_LIMIT};
use lakecheck::results::{EXIT_ERROR, EXIT_PASSED};
use lakecheck::rules::{self, Vars};
use lakecheck::runner::Selection;
use lakecheck::sources::memory::MemoryLimit;
use lakecheck::sources::RunResources;

/// Prove a data lake matches its source.
///
/// Exit codes: 0 every check passed (warnings allowed), 1 a check failed,
/// 2 a check could not run, the rule files are invalid or a report could not be written.
#[derive(Parser)]
#[command(name = "lakecheck", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run checks from rule files or folders and write reports.
    Run(Box<RunArgs>),
    /// Show the run history: per check, a strip of its last runs and its newest finding.
    History {
        /// The history folder or s3://bucket/prefix given to `run --history`.
        location: String,
        /// How many runs each strip shows.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Parse and resolve rule files without connecting to anything.
    Validate {
        /// Rule files or folders (default: rules/).
        rules: Vec<PathBuf>,
    },
    /// Start a throwaway Postgres and local lake with AutoCorp data, run rules/autocorp.yml, write reports.
    Demo {
        /// Folder for the reports.
        #[arg(long, default_value = "reports")]
        reports_dir: PathBuf,
        /// Rule file to run instead of rules/autocorp.yml.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Keep the generated lake in this folder.
        #[arg(long)]
        lake_dir: Option<PathBuf>,
        /// Checks running at once.
        #[arg(long, short = 'j', default_value_t = 4)]
        jobs: usize,
        /// Generate N times the AutoCorp rows (same distributions; every check still passes).
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u64).range(1..=lakecheck::demo::MAX_SCALE as u64))]
        scale: u64,
        #[command(flatten)]
        memory: MemoryArg,
    },
}

/// `--memory-limit`, on `run` and `demo`.
#[derive(Args)]
struct MemoryArg {
    /// Memory every lake source of the run shares (one DataFusion pool; sorts and aggregates
    /// spill to the temp directory beyond it): a size (`512MiB`, `8GiB`) or a share of RAM
    /// (`25%`). Default: 50% of physical memory (4 GiB where it cannot be read).
    #[arg(long, value_name = "SIZE", value_parser = MemoryLimit::parse)]
    memory_limit: Option<MemoryLimit>,
}

impl MemoryArg {
    fn resources(&self) -> RunResources {
        self.memory_limit
            .map(RunResources::with_memory_limit)
            .unwrap_or_default()
    }
}

#[derive(Args)]
struct RunArgs {
    /// Rule files or folders (default: rules/).
    rules: Vec<PathBuf>,
    /// Run only checks with this tag (repeatable; any tag matches).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Skip checks with this tag (repeatable).
    #[arg(long = "exclude-tag", value_name = "TAG")]
    exclude_tags: Vec<String>,
    /// Run only the check with this name (repeatable).
    #[arg(long = "check", value_name = "NAME")]
    checks: Vec<String>,
    /// Checks running at once.
    #[arg(long, short = 'j', default_value_t = 4)]
    jobs: usize,
    /// Folder for reports without an explicit path.
    #[arg(long, default_value = "reports")]
    reports_dir: PathBuf,
    /// JUnit XML report path (default: <reports-dir>/junit.xml).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// HTML report path (default: <reports-dir>/lakecheck.html).
    #[arg(long)]
    html: Option<PathBuf>,
    /// JSON report path (default: <reports-dir>/lakecheck.json).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Markdown summary path, for a CI job summary or a pull-request comment (default:
    /// <reports-dir>/summary.md).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Print only the summary, not a line per check.
    #[arg(long, short)]
    quiet: bool,
    /// Measure ages (freshness) against this moment instead of the machine's clock, for tests
    /// and for auditing a past moment again: an RFC 3339 time, e.g. 2026-12-02T10:15:00Z.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    now: Option<DateTime<Utc>>,
    /// Append the run to the history at this folder or s3://bucket/prefix (a Delta table).
    #[arg(long, value_name = "DIR_OR_URL")]
    history: Option<String>,
    /// Write the failing rows of each check that fails (or warns) with failing rows to a
    /// Parquet file named after the check in this folder.
    #[arg(long, value_name = "DIR")]
    failures_dir: Option<PathBuf>,
    /// Failing rows each check keeps for --failures-dir.
    #[arg(long, value_name = "N", requires = "failures_dir",
          default_value_t = DEFAULT_FAILURES_LIMIT as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    failures_limit: u64,
    #[command(flatten)]
    memory: MemoryArg,
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}); write e.g. 2026-12-02T10:15:00Z"))
}

fn rule_paths(given: Vec<PathBuf>) -> Vec<PathBuf> {
    if given.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        given
    }
}

fn load(paths: Vec<PathBuf>, resources: &RunResources) -> Result<Vec<rules::RuleFile>, u8> {
    rules::load_paths_with(&rule_paths(paths), &Arc::new(Vars::new()), resources).map_err(
        |errors| {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("{} error(s) in rule files", errors.len());
            EXIT_ERROR
        },
    )
}

async fn run(args: RunArgs) -> u8 {
    let files = match load(args.rules, &args.memory.resources()) {
        Ok(files) => files,
        Err(code) => return code,
    };
    let options = RunOptions {
        selection: Selection {
            tags: args.tags,
            exclude_tags: args.exclude_tags,
            names: args.checks,
        },
        jobs: args.jobs,
        outputs: app::report_outputs(
            &args.reports_dir,
            &[
                ("junit", args.junit),
                ("html", args.html),
                ("json", args.json),
                ("markdown", args.markdown),
            ],
        ),
        verbose: !args.quiet,
        clock: args.now.map_or(Clock::System, Clock::Fixed),
        history: args.history,
        failures: args.failures_dir.map(|dir| FailuresDir {
            dir,
            limit: usize::try_from(args.failures_limit).unwrap_or(usize::MAX),
        }),
    };
    app::execute(&files, &options).await.0
}

async fn history(location: &str, runs: usize) -> u8 {
    let read = match lakecheck::history::History::open(location) {
        Ok(history) => history.read().await,
        Err(error) => Err(error),
    };
    match read {
        Ok(recorded) => {
            print!("{}", lakecheck::history::render(&recorded, runs.max(1)));
            EXIT_PASSED
        }
        Err(error) => {
            eprintln!("error: {error}");
            EXIT_ERROR
        }
    }
}

fn validate(paths: Vec<PathBuf>) -> u8 {
    match load(paths, &RunResources::default()) {
        Ok(files) => {
            for file in &files {
                let count = |n: usize, what: &str| match n {
                    1 => format!("1 {what}"),
                    n => format!("{n} {what}s"),
                };
                println!(
                    "{}: {}, {}",
                    file.path.display(),
                    count(file.sources.iter().count(), "source"),
                    count(file.checks.len(), "check")
                );
                for check in &file.checks {
                    println!("  {:<16} {}", check.kind, check.name);
                }
            }
            println!(
                "rules are valid ({} check kinds known: {})",
                CHECK_KINDS.len(),
                CHECK_KINDS
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            EXIT_PASSED
        }
        Err(code) => code,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => run(*args).await,
        Command::Validate { rules } => validate(rules),
        Command::History { location, runs } => history(&location, runs).await,
        Command::Demo {
            reports_dir,
            rules,
            lake_dir,
            jobs,
            scale,
            memory,
        } => {
            let options = lakecheck::demo::DemoOptions {
                reports_dir,
                rules,
                jobs,
                lake_dir,
                memory_limit: memory.memory_limit,
                // Within MAX_SCALE, which is a usize: the parser checked the range.
                scale: scale as usize,
            };
            // Boxed: the demo future is deep (Delta and Hudi writers) and large on the stack.
            match Box::pin(lakecheck::demo::run(options)).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: demo failed: {e:#}");
                    EXIT_ERROR
                }
            }
        }
    };
    ExitCode::from(code)
}
