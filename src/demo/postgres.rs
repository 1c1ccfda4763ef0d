//! A throwaway PostgreSQL cluster: `initdb` + `pg_ctl` from the installed server binaries, on a
//! free loopback port, removed when dropped. Used by `lakecheck demo` and by the test suite.
//!
//! PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres`
//! user (the owner Debian's package creates) and its folder is handed to that user.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The superuser of a throwaway cluster; trust auth on loopback only, so it has no password.
pub const SUPERUSER: &str = "lakecheck";

/// Why the throwaway cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ThrowawayError {
    #[error("PostgreSQL server binaries not found (looked in $LAKECHECK_PG_BIN, `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH); install the `postgresql` package or set LAKECHECK_PG_BIN")]
    BinariesNotFound,
    #[error("running as root, but there is no `postgres` user to run the server as: {0}")]
    NoServerUser(String),
    #[error("{step} failed: {detail}")]
    Command { step: String, detail: String },
    #[error("cannot prepare the cluster folder: {0}")]
    Io(#[from] std::io::Error),
}

/// A running throwaway cluster. Stops and deletes itself when dropped.
pub struct ThrowawayPostgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    running: bool,
}

impl ThrowawayPostgres {
    /// Creates and starts a cluster on a free port of 127.0.0.1.
    pub fn start() -> Result<Self, ThrowawayError> {
        Self::start_with(&[])
    }

    /// Like [`ThrowawayPostgres::start`], with extra server settings (`-c name=value`), e.g.
    /// `("wal_level", "logical")` for a cluster whose changes can be decoded.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Self, ThrowawayError> {
        let bin = find_binaries().ok_or(ThrowawayError::BinariesNotFound)?;
        let run_as = if is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("lakecheck-pg-").tempdir()?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            run_as,
            running: false,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            Command::new(cluster.bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]),
        )?;
        // Another process may grab the port between our probe and the server's bind: retry.
        let mut last_error = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            let mut options = format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                cluster.port,
                cluster.dir.path().display()
            );
            for (name, value) in settings {
                options.push_str(&format!(" -c {name}={value}"));
            }
            let log = cluster.dir.path().join("server.log");
            let started = cluster.run(
                "pg_ctl start",
                Command::new(cluster.bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(&log)
                    .args(["-w", "-t", "60", "-o", &options, "start"]),
            );
            match started {
                Ok(()) => {
                    cluster.running = true;
                    return Ok(cluster);
                }
                Err(e) => {
                    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
                    last_error = Some(ThrowawayError::Command {
                        step: "pg_ctl start".into(),
                        detail: format!(
                            "{e}; server log: {}",
                            server_log
                                .lines()
                                .rev()
                                .take(5)
                                .collect::<Vec<_>>()
                                .join(" | ")
                        ),
                    });
                }
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, step: &str, command: &mut Command) -> Result<(), ThrowawayError> {
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command.env("LC_ALL", "C").current_dir(self.dir.path());
        let output: Output = command.output().map_err(|e| ThrowawayError::Command {
            step: step.into(),
            detail: e.to_string(),
        })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ThrowawayError::Command {
                step: step.into(),
                detail: format!(
                    "{}; {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            })
        }
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.run(
                "pg_ctl stop",
                Command::new(self.bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&data)
                    .args(["-m", "immediate", "-w", "stop"]),
            );
            self.running = false;
        }
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn postgres_user() -> Result<(u32, u32), ThrowawayError> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| ThrowawayError::NoServerUser(e.to_string()))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == "postgres")
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| ThrowawayError::NoServerUser("no `postgres` entry in /etc/passwd".into()))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn find_binaries() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("LAKECHECK_PG_BIN").map(PathBuf::from) {
        return has_initdb(&dir).then_some(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has_initdb(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).find(|p| has_initdb(p)))
}
