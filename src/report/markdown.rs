//! Markdown summary: the verdict, the counts and every check that did not pass with its one-line
//! finding, compact enough for a CI job summary (`cat reports/summary.md >>
//! "$GITHUB_STEP_SUMMARY"`) or a pull-request comment. Passing checks are only counted.

use super::{RenderError, ReportFormat};
use crate::results::{CheckResult, RunReport, Status, EXIT_FAILED, EXIT_PASSED};

pub const FORMAT: ReportFormat = ReportFormat {
    name: "markdown",
    default_file: "summary.md",
    render,
};

/// Longest finding shown in the table; the HTML and JSON reports hold the whole text.
const FINDING_CHARS: usize = 300;

fn render(report: &RunReport) -> Result<String, RenderError> {
    let s = &report.summary;
    let verdict = match report.exit_code {
        EXIT_PASSED if s.warned > 0 => "passed with warnings",
        EXIT_PASSED => "passed",
        EXIT_FAILED => "failed",
        _ => "could not check everything",
    };
    let mut out = format!(
        "### lakecheck {verdict}\n\n{}\n",
        super::counts_line(report)
    );
    if let Some(billed) = &report.billed {
        out.push_str(&format!("\n{}\n", super::console::billed_line(billed)));
    }
    for error in &report.report_errors {
        out.push_str(&format!("\n**report not written:** {}\n", cell(error)));
    }
    // Worst first, then in file order.
    let mut notable: Vec<&CheckResult> = report
        .results()
        .filter(|r| r.status != Status::Pass)
        .collect();
    notable.sort_by_key(|r| match r.status {
        Status::Error => 0,
        Status::Fail => 1,
        _ => 2,
    });
    if !notable.is_empty() {
        out.push_str("\n| status | check | finding | declared at |\n|---|---|---|---|\n");
        for result in notable {
            out.push_str(&format!(
                "| {} | {} | {} | `{}:{}` |\n",
                label(result.status),
                cell(&result.name),
                cell(&result.message),
                result.rule_file.replace('`', "'"),
                result.line
            ));
        }
    }
    Ok(out)
}

fn label(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Warn => "⚠️ warn",
        Status::Fail => "❌ fail",
        Status::Error => "🛑 error",
    }
}

/// `text` as one table cell: on one line, cut to [`FINDING_CHARS`], with the characters
/// Markdown and HTML would read as markup escaped.
fn cell(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut shown: String = one_line.chars().take(FINDING_CHARS).collect();
    if shown.len() < one_line.len() {
        shown.push('…');
    }
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case::pipes_and_code("a | b `x`", "a \\| b \\`x\\`")]
    #[case::newlines_folded("first\n  second", "first second")]
    #[case::html("<b> & </b>", "&lt;b&gt; &amp; &lt;/b&gt;")]
    #[case::emphasis("*not_bold*", "\\*not\\_bold\\*")]
    fn cells_stay_one_cell_of_plain_text(#[case] text: &str, #[case] expected: &str) {
        assert_eq!(cell(text), expected);
    }

    #[test]
    fn long_findings_are_cut() {
        let long = "x".repeat(FINDING_CHARS + 50);
        let shown = cell(&long);
        assert_eq!(shown.chars().count(), FINDING_CHARS + 1);
        assert!(shown.ends_with('…'));
    }
}
