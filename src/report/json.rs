//! JSON report: the serialized [`RunReport`], documented in README ("JSON report").

use super::{RenderError, ReportFormat};
use crate::results::RunReport;

pub const FORMAT: ReportFormat = ReportFormat {
    name: "json",
    default_file: "lakecheck.json",
    render,
};

fn render(report: &RunReport) -> Result<String, RenderError> {
    let mut text = serde_json::to_string_pretty(report).map_err(|e| RenderError {
        format: FORMAT.name,
        reason: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}
