//! The worlds the tests run against, built from the same AutoCorp data as the demo.
//!
//! Every world has the generated tables and the local lake written from them (sources `lake` and
//! `csv`); on its own that is files only, and starts no server. PostgreSQL (AutoCorp in database
//! `autocorp`, source `pg`) and the S3 server (moto, the raw zone in bucket `lake`, source `s3`)
//! are layered on top for the tests that name them:
//!
//! | world            | sources               | starts             |
//! |------------------|-----------------------|--------------------|
//! | `local_world()`  | lake, csv             | nothing            |
//! | `pg_world()`     | pg, lake, csv         | PostgreSQL         |
//! | `s3_world()`     | lake, csv, s3         | moto               |
//! | `world()`        | pg, lake, csv, s3     | both               |
//!
//! `world_with(&["pg", src])` picks by source name, for tests parameterised by source. Each piece
//! starts on first use and is then shared by every test of the binary until it exits.

mod fault_proxy;
mod s3;
mod shared;

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use lakecheck::demo::autocorp::{self, TableData};
use lakecheck::demo::{self, ThrowawayPostgres};
use lakecheck::probe::Clock;
use lakecheck::results::{CheckResult, RunReport, Status};
use lakecheck::rules::{parse_rule_text, RuleFile, Vars};
use lakecheck::runner::{self, Selection};
use object_store::path::Path as StorePath;
use tempfile::TempDir;

pub use fault_proxy::{Fault, FaultProxy};
pub use s3::{upload_folder, venv_python, S3Server};
use shared::Shared;

/// The generated AutoCorp tables and the raw zone written from them to a local folder.
pub struct LocalLake {
    pub tables: Vec<TableData>,
    pub lake_dir: TempDir,
    /// When the lake's files were written: the test that first asked for the lake may have
    /// started minutes before the one reading their times.
    pub written_at: chrono::DateTime<chrono::Utc>,
}

/// What a test runs against: the local lake, and the servers it asked for.
///
/// It dereferences to the [`LocalLake`], so `world.tables` and `world.table(..)` work on every
/// world; `world.pg` and `world.s3` dereference to their server, and panic in a world without it.
pub struct World {
    lake: Arc<LocalLake>,
    pub pg: Layer<ThrowawayPostgres>,
    pub s3: Layer<S3Server>,
}

/// A server layered on the local lake: shared with every test that asked for it, or absent
/// from this test's world.
pub struct Layer<T> {
    source: &'static str,
    server: Option<Arc<T>>,
}

const PG_SOURCE: &str = r#"  pg:   { type: postgres, url: "${PG_URL}", schema: autocorp, statement_timeout: 30s }
"#;
const LOCAL_SOURCES: &str = r#"  lake: { type: lake, url: "${LAKE_URL}/raw/database/autocorp", format: parquet }
  csv:  { type: lake, url: "${LAKE_URL}/raw/csv", format: csv }
"#;
const S3_SOURCE: &str = r#"  s3:
    type: lake
    url: s3://lake/raw/database/autocorp
    storage: { endpoint: "${S3_ENDPOINT}", allow_http: "true", region: us-east-1, access_key_id: test, secret_access_key: test }
"#;

static LAKE: Shared<LocalLake> = Shared::new();
static PG: Shared<ThrowawayPostgres> = Shared::new();
static S3: Shared<S3Server> = Shared::new();

/// The local lake alone: sources `lake` and `csv`, no server started.
pub async fn local_world() -> Arc<World> {
    world_with(&[]).await
}

/// The local lake and AutoCorp in PostgreSQL (sources `pg`, `lake`, `csv`).
pub async fn pg_world() -> Arc<World> {
    world_with(&["pg"]).await
}

/// The local lake and the raw zone on S3 (sources `lake`, `csv`, `s3`).
pub async fn s3_world() -> Arc<World> {
    world_with(&["s3"]).await
}

/// Everything: PostgreSQL, the local lake and S3 (sources `pg`, `lake`, `csv`, `s3`).
pub async fn world() -> Arc<World> {
    world_with(&["pg", "s3"]).await
}

/// A world with the servers behind `sources`, named as in the test rule files: `pg` starts
/// PostgreSQL, `s3` the S3 server; `lake` and `csv` are always there.
pub async fn world_with(sources: &[&str]) -> Arc<World> {
    if let Some(unknown) = sources
        .iter()
        .find(|s| !["pg", "lake", "csv", "s3"].contains(s))
    {
        panic!("the test worlds have sources pg, lake, csv and s3, not `{unknown}`");
    }
    let lake = LAKE.get_or_start(start_local_lake).await;
    let wants = |source: &str| sources.contains(&source);
    let (pg, s3) = tokio::join!(
        Layer::start_if(wants("pg"), "pg", &PG, || start_postgres(&lake.tables)),
        Layer::start_if(wants("s3"), "s3", &S3, || start_s3(&lake.tables)),
    );
    Arc::new(World { lake, pg, s3 })
}

async fn start_local_lake() -> LocalLake {
    let written_at = chrono::Utc::now();
    let tables = autocorp::generate();
    let lake_dir = tempfile::Builder::new()
        .prefix("lakecheck-test-lake-")
        .tempdir()
        .expect("temp dir");
    demo::write_local_lake(lake_dir.path(), &tables)
        .await
        .expect("local lake");
    LocalLake {
        tables,
        lake_dir,
        written_at,
    }
}

async fn start_postgres(tables: &[TableData]) -> ThrowawayPostgres {
    demo::start_autocorp_postgres(tables)
        .await
        .expect("throwaway postgres")
}

async fn start_s3(tables: &[TableData]) -> S3Server {
    // Off the runtime's thread: it waits for moto to listen.
    let s3 = tokio::task::spawn_blocking(S3Server::start)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    autocorp::write_lake(&s3.store(), &StorePath::default(), tables)
        .await
        .expect("s3 lake");
    s3
}

impl<T: Send + Sync + 'static> Layer<T> {
    async fn start_if<F: std::future::Future<Output = T>>(
        wanted: bool,
        source: &'static str,
        shared: &'static Shared<T>,
        start: impl FnOnce() -> F,
    ) -> Self {
        let server = if wanted {
            Some(shared.get_or_start(start).await)
        } else {
            None
        };
        Self { source, server }
    }
}

impl<T> Deref for Layer<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.server.as_deref().unwrap_or_else(|| {
            panic!(
                "this test's world has no `{0}` server: start it with `world_with(&[\"{0}\"])` or `world()`",
                self.source
            )
        })
    }
}

impl Deref for World {
    type Target = LocalLake;

    fn deref(&self) -> &LocalLake {
        &self.lake
    }
}

impl LocalLake {
    /// `file:///...` of the local lake root, without a trailing slash.
    pub fn lake_url(&self) -> String {
        url::Url::from_directory_path(self.lake_dir.path())
            .unwrap()
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }

    pub fn table(&self, name: &str) -> &TableData {
        self.tables
            .iter()
            .find(|t| t.name == name)
            .expect("known table")
    }
}

impl World {
    /// Variables the test rule files use: `LAKE_URL`, and `PG_URL` and `S3_ENDPOINT` when the
    /// world has those servers.
    pub fn vars(&self) -> Arc<Vars> {
        let mut vars = Vars::new();
        if let Some(pg) = &self.pg.server {
            vars.insert("PG_URL".into(), pg.url("autocorp"));
        }
        vars.insert("LAKE_URL".into(), self.lake_url());
        if let Some(s3) = &self.s3.server {
            vars.insert("S3_ENDPOINT".into(), s3.endpoint.clone());
        }
        Arc::new(vars)
    }

    /// The `sources:` block every inline test rule file starts with: the world's sources.
    pub fn sources_yaml(&self) -> String {
        let mut yaml = String::from("sources:\n");
        if self.pg.server.is_some() {
            yaml.push_str(PG_SOURCE);
        }
        yaml.push_str(LOCAL_SOURCES);
        if self.s3.server.is_some() {
            yaml.push_str(S3_SOURCE);
        }
        yaml
    }

    /// Parses `checks` (YAML list items) under the world's sources.
    pub fn rules(&self, checks: &str) -> RuleFile {
        let text = format!("{}checks:\n{checks}", self.sources_yaml());
        parse_rules("tests/inline.yml", &text, &self.vars())
    }

    /// Runs `checks` and returns the report.
    pub async fn run(&self, checks: &str) -> RunReport {
        self.run_at(checks, Clock::System).await
    }

    /// Runs `checks` with the run's clock at `clock`.
    pub async fn run_at(&self, checks: &str, clock: Clock) -> RunReport {
        let file = self.rules(checks);
        run_files_at(&[file], clock).await
    }
}

/// Parses a rule file's text, panicking with every error it has.
pub fn parse_rules(path: &str, text: &str, vars: &Arc<Vars>) -> RuleFile {
    parse_rule_text(Path::new(path), text, vars).unwrap_or_else(|errors| {
        panic!(
            "rules should parse:\n{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// Runs every check of `files`.
pub async fn run_files(files: &[RuleFile]) -> RunReport {
    run_files_at(files, Clock::System).await
}

/// Runs every check of `files` with the run's clock at `clock` (`lakecheck run --now`).
pub async fn run_files_at(files: &[RuleFile], clock: Clock) -> RunReport {
    let planned = runner::plan(files, &Selection::default()).expect("checks selected");
    runner::run(files, planned, 4, clock, &|_| {}).await
}

/// The clock fixed at an RFC 3339 time.
pub fn fixed_clock(at: &str) -> Clock {
    Clock::Fixed(
        chrono::DateTime::parse_from_rfc3339(at)
            .unwrap_or_else(|e| panic!("`{at}`: {e}"))
            .to_utc(),
    )
}

/// Asserts each result's status is `expected(name)`, naming the check and its message if not.
pub fn assert_statuses(report: &RunReport, expected: impl Fn(&str) -> Status) {
    for result in report.results() {
        assert_eq!(
            result.status,
            expected(&result.name),
            "{}: {} {:?}",
            result.name,
            result.message,
            result.error
        );
    }
}

/// The result of the check `name`.
pub fn result<'a>(report: &'a RunReport, name: &str) -> &'a CheckResult {
    report
        .results()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result named {name}"))
}

/// Asserts the check ended `status`, naming its message and error if not.
pub fn assert_status(result: &CheckResult, status: Status) {
    assert_eq!(
        result.status, status,
        "{}: {} (error: {:?})",
        result.name, result.message, result.error
    );
}

/// The error of the check `name`, asserting it could not run.
pub fn error_of<'a>(report: &'a RunReport, name: &str) -> &'a str {
    let result = result(report, name);
    assert_status(result, Status::Error);
    result.error.as_deref().unwrap()
}

/// Asserts `text` (an error, a message) contains every one of `parts`.
pub fn assert_names(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
}

/// Asserts every check passed.
pub fn assert_all_pass(report: &RunReport) {
    assert_statuses(report, |_| Status::Pass);
}

/// The curated Hudi tables the demo writes (hudi-rs, orders with `total_amount <= 0` dropped,
/// the CDC inserts and updates upserted) under a fresh folder, and the YAML line declaring them
/// as source `hudi`.
pub async fn curated_hudi(world: &World) -> (tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    let changes = autocorp::cdc_changes(&world.tables);
    autocorp::write_curated_hudi(root.path(), &world.tables, &changes)
        .await
        .unwrap();
    let source = format!(
        "  hudi: {{ type: hudi, url: \"{}\" }}\n",
        root.path().display()
    );
    (root, source)
}

/// The runtime a property test drives its async runs with (proptest's cases are synchronous).
pub fn property_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A proptest runner for a property checked against real servers: `PROPTEST_CASES` cases
/// (default `default_cases`, each case a real run), no failure-persistence files.
pub fn property_runner(default_cases: u32) -> proptest::test_runner::TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })
}
