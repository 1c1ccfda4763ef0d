//! The S3 side of the tests: a moto server on loopback, started by the harness or by a test that
//! needs one of its own (one that refuses every key, say).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use tempfile::TempDir;

/// The bucket the harness's server holds the raw zone in.
pub const BUCKET: &str = "lake";

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

/// The Python of the test virtualenv (beside moto_server), which also has `deltalake`.
pub fn venv_python() -> PathBuf {
    moto_server().with_file_name("python")
}

impl S3Server {
    /// Starts moto with the bucket `lake` (empty).
    pub fn start() -> Self {
        // Creating the bucket proves the server on the port is this moto.
        Self::start_retrying(&[], |server| server.create_bucket(BUCKET))
    }

    /// A second moto that checks request signatures against its (empty) IAM store, so every
    /// access key is refused: for testing bad credentials. It has no buckets.
    pub fn start_enforcing_auth() -> Self {
        Self::start_retrying(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")], |_| Ok(()))
    }

    /// Starts moto on a fresh free port until it starts and `ready` accepts it, retrying with
    /// another port when a start fails (the process exits, or nothing listens within the
    /// deadline): a port found free can be taken by another process before moto binds it.
    fn start_retrying(env: &[(&str, &str)], ready: impl Fn(&Self) -> Result<(), String>) -> Self {
        const ATTEMPTS: usize = 4;
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match Self::try_start(env).and_then(|server| ready(&server).map(|()| server)) {
                Ok(server) => return server,
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "moto_server did not start in {ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        );
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
