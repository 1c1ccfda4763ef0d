//! The shared world: AutoCorp in a throwaway Postgres, a local lake and an S3 lake, started on
//! first use and stopped when the last test holding it finishes.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use lakecheck::demo::autocorp::{self, TableData};
use lakecheck::demo::{self, ThrowawayPostgres};
use lakecheck::probe::Clock;
use lakecheck::results::{CheckResult, RunReport, Status};
use lakecheck::rules::{parse_rule_text, RuleFile, Vars};
use lakecheck::runner::{self, Selection};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use tempfile::TempDir;

pub const BUCKET: &str = "lake";

/// Everything a test can check against.
pub struct World {
    pub pg: ThrowawayPostgres,
    pub lake_dir: TempDir,
    pub s3: S3Server,
    pub tables: Vec<TableData>,
}

static WORLD: tokio::sync::Mutex<Weak<World>> = tokio::sync::Mutex::const_new(Weak::new());

/// The shared world, started if no running test holds it.
pub async fn world() -> Arc<World> {
    let mut slot = WORLD.lock().await;
    if let Some(world) = slot.upgrade() {
        return world;
    }
    let tables = autocorp::generate();
    let pg = demo::start_autocorp_postgres(&tables)
        .await
        .expect("throwaway postgres");
    let lake_dir = tempfile::Builder::new()
        .prefix("lakecheck-test-lake-")
        .tempdir()
        .expect("temp dir");
    demo::write_local_lake(lake_dir.path(), &tables)
        .await
        .expect("local lake");
    let s3 = S3Server::start();
    autocorp::write_lake(&s3.store(), &StorePath::default(), &tables)
        .await
        .expect("s3 lake");
    let world = Arc::new(World {
        pg,
        lake_dir,
        s3,
        tables,
    });
    *slot = Arc::downgrade(&world);
    world
}

impl World {
    /// Variables the test rule files use.
    pub fn vars(&self) -> Arc<Vars> {
        let mut vars = Vars::new();
        vars.insert("PG_URL".into(), self.pg.url("autocorp"));
        vars.insert("LAKE_URL".into(), self.lake_url());
        vars.insert("S3_ENDPOINT".into(), self.s3.endpoint.clone());
        Arc::new(vars)
    }

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

    /// The `sources:` block every inline test rule file starts with.
    pub fn sources_yaml(&self) -> String {
        r#"sources:
  pg:   { type: postgres, url: "${PG_URL}", schema: autocorp, statement_timeout: 30s }
  lake: { type: lake, url: "${LAKE_URL}/raw/database/autocorp", format: parquet }
  csv:  { type: lake, url: "${LAKE_URL}/raw/csv", format: csv }
  s3:
    type: lake
    url: s3://lake/raw/database/autocorp
    storage: { endpoint: "${S3_ENDPOINT}", allow_http: "true", region: us-east-1, access_key_id: test, secret_access_key: test }
"#
        .to_string()
    }

    /// Parses `checks` (YAML list items) under the standard sources.
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

/// A moto S3 server on a free loopback port, killed on drop.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    _dir: TempDir,
}

fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("LAKECHECK_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/lakecheck/venv/bin/moto_server");
    if cached.is_file() {
        return cached;
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("moto_server")).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "moto_server (the S3 server the tests use) is not installed: run ./scripts/test, which installs it \
                 into ~/.cache/lakecheck/venv, or set LAKECHECK_MOTO_SERVER"
            )
        })
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

/// Asserts every check passed.
pub fn assert_all_pass(report: &RunReport) {
    assert_statuses(report, |_| Status::Pass);
}

/// The Python of the test virtualenv (beside moto_server), which also has `deltalake`.
pub fn venv_python() -> PathBuf {
    moto_server().with_file_name("python")
}

impl S3Server {
    /// Starts moto on a fresh free port, retrying with another port when a start fails (the
    /// process exits, or nothing listens within the deadline): a port found free can be taken
    /// by another process before moto binds it.
    pub fn start() -> Self {
        const ATTEMPTS: usize = 4;
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            // Creating the bucket proves the server on the port is this moto.
            match Self::try_start(&[])
                .and_then(|server| server.create_bucket(BUCKET).map(|()| server))
            {
                Ok(server) => return server,
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "moto_server did not start in {ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        );
    }

    /// A second moto that checks request signatures against its (empty) IAM store, so every
    /// access key is refused: for testing bad credentials. It has no buckets.
    pub fn start_enforcing_auth() -> Self {
        let mut failures = Vec::new();
        for _ in 0..4 {
            match Self::try_start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]) {
                Ok(server) => return server,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("moto_server did not start:\n{}", failures.join("\n"));
    }

    fn try_start(env: &[(&str, &str)]) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start moto_server");
        // Dropped (and killed) on every failure below.
        let mut server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let log_tail = || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(5)..].join("\n")
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "moto_server on port {port} exited ({status}):\n{}",
                    log_tail()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "moto_server did not listen on {port} within 60 s:\n{}",
                    log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// Creates a bucket with a bare HTTP request (object_store has no bucket API); an error
    /// says what answered instead.
    fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        use std::io::{Read, Write};
        let address = self.endpoint.trim_start_matches("http://");
        let mut response = String::new();
        TcpStream::connect(address)
            .and_then(|mut stream| {
                write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                stream.read_to_string(&mut response)
            })
            .map_err(|e| format!("create bucket on {address}: {e}"))?;
        if response.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(format!("create bucket on {address}: {response}"))
        }
    }

    pub fn store(&self) -> object_store::aws::AmazonS3 {
        AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap()
    }
}

/// Copies every file under `folder` to `s3://lake/<prefix>/...`, keeping relative paths.
pub async fn upload_folder(s3: &S3Server, folder: &Path, prefix: &str) {
    use object_store::{ObjectStoreExt, PutPayload};
    let store = s3.store();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path
                    .strip_prefix(folder)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                let key = StorePath::from(format!("{prefix}/{relative}"));
                store
                    .put(&key, PutPayload::from(std::fs::read(&path).unwrap()))
                    .await
                    .unwrap();
            }
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
