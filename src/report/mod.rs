//! Reports: each format is a pure function of a [`RunReport`], one file per format plus one
//! line in [`REPORT_FORMATS`].

use std::path::Path;

use crate::results::{CheckResult, RunReport};
use crate::sources::Rows;

pub mod console;
mod html;
mod json;
mod junit;

/// A report format written to a file.
#[derive(Debug)]
pub struct ReportFormat {
    pub name: &'static str,
    /// File name used under the reports folder when no path is given.
    pub default_file: &'static str,
    pub render: fn(&RunReport) -> String,
}

/// Every file format lakecheck writes.
pub static REPORT_FORMATS: &[ReportFormat] = &[junit::FORMAT, html::FORMAT, json::FORMAT];

/// Looks a format up by name (`junit`, `html`, `json`).
pub fn format(name: &str) -> Option<&'static ReportFormat> {
    REPORT_FORMATS.iter().find(|f| f.name == name)
}

/// Renders `report` and writes it to `path`, creating parent folders.
pub fn write(report: &RunReport, format: &ReportFormat, path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, (format.render)(report))
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
