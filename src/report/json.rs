//! JSON report: the serialized [`RunReport`], documented in README ("JSON report").

use super::ReportFormat;
use crate::results::RunReport;

pub const FORMAT: ReportFormat = ReportFormat {
    name: "json",
    default_file: "lakecheck.json",
    render,
};

fn render(report: &RunReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("reports serialize");
    text.push('\n');
    text
}
