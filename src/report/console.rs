//! What a person sees in the terminal: one line per check, details of what went wrong, a summary.

use super::failure_detail;
use crate::results::{CheckResult, RunReport, Status};

/// A check's one-line status, e.g. `FAIL  row_count pg.orders  expected ... (12 ms)`.
pub fn result_line(result: &CheckResult, color: bool) -> String {
    let (label, code) = match result.status {
        Status::Pass => ("PASS ", "32"),
        Status::Warn => ("WARN ", "33"),
        Status::Fail => ("FAIL ", "31"),
        Status::Error => ("ERROR", "35"),
    };
    let label = if color {
        format!("\x1b[1;{code}m{label}\x1b[0m")
    } else {
        label.to_string()
    };
    format!(
        "{label} {}  {} ({} ms)",
        result.name, result.message, result.duration_ms
    )
}

/// The run's billed queries in one line: `Athena: 3 queries, 30.0 MB scanned, 1.2s engine time`.
pub fn billed_line(billed: &crate::results::BilledTotals) -> String {
    format!(
        "billed queries: {}, {} scanned, {:.1}s engine time",
        billed.queries,
        crate::sources::memory::format_bytes(billed.bytes_scanned),
        billed.engine_ms as f64 / 1000.0
    )
}

/// Details of every non-passing check, then the summary line.
pub fn render(report: &RunReport, color: bool) -> String {
    let mut out = String::new();
    for result in report.results().filter(|r| r.status != Status::Pass) {
        out.push_str(&format!("\n{}\n", result_line(result, color)));
        for line in failure_detail(result).lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    if !report.report_errors.is_empty() {
        out.push('\n');
    }
    for error in &report.report_errors {
        out.push_str(&format!("error: {error}\n"));
    }
    out.push_str(&format!("\n{}\n", super::counts_line(report)));
    if let Some(billed) = &report.billed {
        out.push_str(&format!("{}\n", billed_line(billed)));
    }
    out
}
