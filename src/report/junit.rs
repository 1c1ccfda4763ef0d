//! JUnit XML: one testsuite per rule file, one testcase per check. Warnings pass with the
//! finding in system-out, so CI dashboards stay green while the note stays visible.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{failure_detail, RenderError, ReportFormat};
use crate::results::{RunReport, Status};

pub const FORMAT: ReportFormat = ReportFormat {
    name: "junit",
    default_file: "junit.xml",
    render,
};

fn render(report: &RunReport) -> Result<String, RenderError> {
    let mut junit = Report::new("lakecheck");
    junit.set_timestamp(report.started_at.fixed_offset());
    junit.set_time(Duration::from_millis(report.duration_ms));
    for suite in &report.suites {
        let mut test_suite = TestSuite::new(suite.rule_file.as_str());
        test_suite.set_timestamp(report.started_at.fixed_offset());
        for result in &suite.results {
            let status = match result.status {
                Status::Pass | Status::Warn => TestCaseStatus::success(),
                Status::Fail | Status::Error => {
                    let kind = if result.status == Status::Fail {
                        NonSuccessKind::Failure
                    } else {
                        NonSuccessKind::Error
                    };
                    let mut status = TestCaseStatus::non_success(kind);
                    status.set_message(result.message.as_str());
                    status.set_type(result.kind.as_str());
                    status.set_description(failure_detail(result));
                    status
                }
            };
            let mut case = TestCase::new(result.name.as_str(), status);
            case.set_classname(format!("lakecheck.{}", result.kind));
            case.set_time(Duration::from_millis(result.duration_ms));
            case.set_timestamp(result.started_at.fixed_offset());
            case.add_property(Property::new(
                "severity",
                format!("{:?}", result.severity).to_lowercase(),
            ));
            case.add_property(Property::new("status", result.status.as_str()));
            if !result.tags.is_empty() {
                case.add_property(Property::new("tags", result.tags.join(",")));
            }
            if !result.tables.is_empty() {
                case.add_property(Property::new("tables", result.tables.join(",")));
            }
            if result.status == Status::Warn {
                case.set_system_out(format!(
                    "warning: {}\n{}",
                    result.message,
                    failure_detail(result)
                ));
            }
            test_suite.add_test_case(case);
        }
        junit.add_test_suite(test_suite);
    }
    if !report.report_errors.is_empty() {
        // A report that could not be written makes the run exit 2: CI shows it as an error.
        let mut suite = TestSuite::new("lakecheck reports");
        suite.set_timestamp(report.started_at.fixed_offset());
        for error in &report.report_errors {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(error.as_str());
            status.set_type("report");
            let mut case = TestCase::new("report not written", status);
            case.set_classname("lakecheck.report");
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().map_err(|e| RenderError {
        format: FORMAT.name,
        reason: e.to_string(),
    })
}
