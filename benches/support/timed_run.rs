//! What every benchmark harness shares: the `lakecheck` binary built with the bench's own
//! profile, and a timed run of it (wall time, peak RSS through `/usr/bin/time`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Runs `lakecheck run` on `rules` and returns (wall seconds, peak RSS in MB, exit code).
pub fn measure(binary: &Path, rules: &Path, out: &Path) -> (f64, f64, i32) {
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(binary)
        .args(["run", "-q", "--reports-dir"])
        .arg(out)
        .arg(rules)
        .output()
        .expect("run lakecheck under /usr/bin/time (Debian package `time`)");
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rss_kb: f64 = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(f64::NAN);
    (wall, rss_kb / 1024.0, output.status.code().unwrap_or(-1))
}

/// The `lakecheck` binary next to this bench: target/<profile>/deps/<bench>-<hash> →
/// target/<profile>/lakecheck.
pub fn lakecheck_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .unwrap()
        .join("lakecheck")
}
