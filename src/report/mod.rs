//! Reports: each format is a pure function of a [`RunReport`], one file per format plus one
//! line in [`REPORT_FORMATS`].

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use crate::model::Rows;
use crate::results::{CheckResult, RunReport};

pub mod console;
pub mod failures;
mod html;
mod json;
mod junit;
mod markdown;

/// A report format written to a file.
#[derive(Debug)]
pub struct ReportFormat {
    pub name: &'static str,
    /// File name used under the reports folder when no path is given.
    pub default_file: &'static str,
    /// The whole report as the file's text.
    pub render: fn(&RunReport) -> Result<String, RenderError>,
}

/// A format's serializer failed: a bug in lakecheck or the serializer, never the data's fault,
/// and one that costs only this format's file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot render the {format} report: {reason}")]
pub struct RenderError {
    pub format: &'static str,
    pub reason: String,
}

/// Why a report file could not be written. Each makes the run exit 2 and is listed in every
/// report that was written (`RunReport::report_errors`).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be created or written (a missing permission, a full disk).
    #[error("cannot write {format} report to {}: {error}", .path.display())]
    Write {
        format: &'static str,
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// The format could not render the report.
    #[error("cannot write {} report to {}: {}", .error.format, .path.display(), .error.reason)]
    Render {
        path: PathBuf,
        #[source]
        error: RenderError,
    },
}

/// Every file format lakecheck writes.
pub static REPORT_FORMATS: &[ReportFormat] =
    &[junit::FORMAT, html::FORMAT, json::FORMAT, markdown::FORMAT];

/// The run's counts in one line: `5 checks: 2 passed, 1 warned, 1 failed, 1 error in 2.50s
/// (exit 2)`.
pub fn counts_line(report: &RunReport) -> String {
    use crate::model::plural;
    let s = &report.summary;
    format!(
        "{}: {} passed, {} warned, {} failed, {} in {:.2}s (exit {})",
        plural(s.total, "check"),
        s.passed,
        s.warned,
        s.failed,
        plural(s.errored, "error"),
        report.duration_ms as f64 / 1000.0,
        report.exit_code
    )
}

/// Looks a format up by name (`junit`, `html`, `json`).
pub fn format(name: &str) -> Option<&'static ReportFormat> {
    REPORT_FORMATS.iter().find(|f| f.name == name)
}

/// Creates (or truncates) `path`, creating parent folders.
fn create(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::File::create(path)
}

/// Writes every report, so that all of them state the exit code the process returns: each file
/// is created first, and one that cannot be is recorded in `report` (exit code 2) before any is
/// rendered. Should a write fail after that (a full disk), it is recorded too and the others
/// are written again. Returns the paths written.
pub fn write_all<'a>(
    report: &mut RunReport,
    outputs: &'a [(&'static ReportFormat, PathBuf)],
) -> Vec<(&'static ReportFormat, &'a Path)> {
    let mut files = Vec::new();
    for (format, path) in outputs {
        match create(path) {
            Ok(file) => files.push((*format, path.as_path(), file)),
            Err(error) => report.report_not_written(
                ReportError::Write {
                    format: format.name,
                    path: path.clone(),
                    error,
                }
                .to_string(),
            ),
        }
    }
    loop {
        let mut failed = None;
        for (i, (format, path, file)) in files.iter_mut().enumerate() {
            if let Err(error) = write_one(format, path, file, report) {
                failed = Some((i, error));
                break;
            }
        }
        match failed {
            // Written by every file left: each shows the same errors and exit code.
            None => break,
            Some((i, error)) => {
                files.remove(i);
                report.report_not_written(error.to_string());
            }
        }
    }
    files
        .into_iter()
        .map(|(format, path, _)| (format, path))
        .collect()
}

/// Renders `report` as `format` into `file`, replacing what it held.
fn write_one(
    format: &ReportFormat,
    path: &Path,
    file: &mut std::fs::File,
    report: &RunReport,
) -> Result<(), ReportError> {
    let text = (format.render)(report).map_err(|error| ReportError::Render {
        path: path.to_path_buf(),
        error,
    })?;
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(|error| ReportError::Write {
            format: format.name,
            path: path.to_path_buf(),
            error,
        })
}

/// Sample rows as an aligned plain-text table, for the console and JUnit failure bodies.
pub fn text_table(rows: &Rows) -> String {
    const NULL: &str = "NULL";
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| NULL.to_string());
    let mut widths: Vec<usize> = rows.columns.iter().map(|c| c.chars().count()).collect();
    for row in &rows.rows {
        for (i, value) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell(value).chars().count());
            }
        }
    }
    let line = |values: Vec<String>| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(rows.columns.clone())];
    out.push(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    for row in &rows.rows {
        out.push(line(row.iter().map(cell).collect()));
    }
    out.join("\n")
}

/// Multi-line detail of a non-passing result: observed vs expected, error, samples.
pub fn failure_detail(result: &CheckResult) -> String {
    let mut parts = Vec::new();
    if let Some(error) = &result.error {
        parts.push(format!("error: {error}"));
    }
    if let (Some(observed), Some(expected)) = (&result.observed, &result.expected) {
        parts.push(format!("expected: {expected}\nobserved: {observed}"));
    }
    if let Some(samples) = &result.samples {
        parts.push(format!(
            "sample rows ({} shown):\n{}",
            samples.rows.len(),
            text_table(samples)
        ));
    }
    parts.push(format!("declared at {}:{}", result.rule_file, result.line));
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every report written states the exit code the run returns, including the failure to
    /// write another report; the console summary says it too.
    #[test]
    fn an_unwritable_report_makes_every_other_report_say_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plain-file"), "").unwrap();
        let now = chrono::Utc::now();
        let mut run = RunReport::new(now, now, Vec::new());
        assert_eq!(run.exit_code, crate::results::EXIT_PASSED);
        let outputs = vec![
            (format("junit").unwrap(), dir.path().join("junit.xml")),
            (
                format("html").unwrap(),
                dir.path().join("plain-file/x.html"),
            ),
            (format("json").unwrap(), dir.path().join("out/run.json")),
        ];
        let written = write_all(&mut run, &outputs);
        let names: Vec<&str> = written.iter().map(|(f, _)| f.name).collect();
        assert_eq!(names, ["junit", "json"]);
        assert_eq!(run.exit_code, crate::results::EXIT_ERROR);
        assert_eq!(run.report_errors.len(), 1);
        assert!(
            run.report_errors[0].starts_with("cannot write html report to "),
            "{:?}",
            run.report_errors
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("out/run.json")).unwrap())
                .unwrap();
        assert_eq!(json["exit_code"], 2);
        assert_eq!(json["report_errors"][0], run.report_errors[0].as_str());
        let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
        assert!(junit.contains("errors=\"1\""), "{junit}");
        assert!(
            junit.contains("<testcase name=\"report not written\" classname=\"lakecheck.report\">"),
            "{junit}"
        );
        assert!(
            junit.contains(&format!("<error message=\"{}\"", run.report_errors[0])),
            "{junit}"
        );
        let console = console::render(&run, false);
        assert!(
            console.contains(&format!("error: {}\n", run.report_errors[0])),
            "{console}"
        );
        assert!(console.contains("(exit 2)"), "{console}");
        let html = (format("html").unwrap().render)(&run).unwrap();
        assert!(
            html.contains("All 0 checks passed; 1 report could not be written"),
            "{html}"
        );
    }

    static BROKEN: ReportFormat = ReportFormat {
        name: "broken",
        default_file: "broken.txt",
        render: |_| {
            Err(RenderError {
                format: "broken",
                reason: "the serializer gave up".into(),
            })
        },
    };

    /// A format that cannot render costs its own file only: the run exits 2, says why, and the
    /// other reports are written and say so too.
    #[test]
    fn a_report_that_cannot_render_is_a_report_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now();
        let mut run = RunReport::new(now, now, Vec::new());
        let outputs = vec![
            (&BROKEN, dir.path().join("broken.txt")),
            (format("json").unwrap(), dir.path().join("run.json")),
        ];
        let written = write_all(&mut run, &outputs);
        let names: Vec<&str> = written.iter().map(|(f, _)| f.name).collect();
        assert_eq!(names, ["json"]);
        assert_eq!(run.exit_code, crate::results::EXIT_ERROR);
        assert_eq!(
            run.report_errors,
            [format!(
                "cannot write broken report to {}: the serializer gave up",
                dir.path().join("broken.txt").display()
            )]
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
        assert_eq!(json["report_errors"][0], run.report_errors[0].as_str());
    }

    #[test]
    fn report_errors_keep_their_cause() {
        let error = ReportError::Write {
            format: "html",
            path: PathBuf::from("out/lakecheck.html"),
            error: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        };
        assert!(matches!(&error, ReportError::Write { format: "html", .. }));
        assert_eq!(
            error.to_string(),
            "cannot write html report to out/lakecheck.html: denied"
        );
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("denied"));
    }
}
