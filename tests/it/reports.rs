//! Snapshots of the JUnit, JSON and HTML reports for a fixed run with every status.

use lakecheck::report;
use lakecheck::results::RunReport;

use crate::harness::world;

const CHECKS: &str = concat!(
    "  - { name: customers arrived, type: row_count_match, left: pg.customers, right: lake.customers, tags: [ci, cutover] }\n",
    "  - { name: order ids unique, type: unique, table: s3.sales_order, columns: [order_id], tags: [ci] }\n",
    "  - { name: emails present, type: not_null, table: lake.customers, columns: [email], severity: warn, tags: [quality], description: CRM backfill pending }\n",
    "  - { name: only paid orders, type: accepted_values, table: pg.sales_order, column: status, values: [PAID], tags: [ci] }\n",
    "  - { name: ghost table, type: row_count, table: lake.ghosts, min: 1, tags: [ci] }\n",
);

/// Times, durations, ports and temp paths change on every run; everything else must not.
fn stable(text: String, report: &RunReport, lake_url: &str) -> String {
    let mut text = text.replace(lake_url, "[lake]");
    for stamp in [report.started_at, report.finished_at]
        .into_iter()
        .chain(report.results().map(|r| r.started_at))
    {
        for form in [
            stamp.to_rfc3339(),
            stamp.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            stamp.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ] {
            text = text.replace(&form, "[time]");
        }
    }
    let patterns = [
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#),
        (r#"time="[0-9.]+""#, r#"time="[s]""#),
        (r#"timestamp="[^"]+""#, r#"timestamp="[time]""#),
        (r"\b\d+(\.\d+)? (ms|s)\b", "[duration]"),
        (r"lakecheck \d+\.\d+\.\d+", "lakecheck [version]"),
        (
            r#""lakecheck_version": "[^"]+""#,
            r#""lakecheck_version": "[version]""#,
        ),
    ];
    for (pattern, replacement) in patterns {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, replacement)
            .to_string();
    }
    text
}

#[tokio::test]
async fn reports_are_stable() {
    let world = world().await;
    let run = world.run(CHECKS).await;
    assert_eq!(run.summary.total, 5);
    assert_eq!(
        (
            run.summary.passed,
            run.summary.warned,
            run.summary.failed,
            run.summary.errored
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(run.exit_code, 2);
    for name in ["junit", "json", "html"] {
        let format = report::format(name).unwrap();
        let text = stable((format.render)(&run).unwrap(), &run, &world.lake_url());
        insta::assert_snapshot!(format!("report_{name}"), text);
    }
}

#[tokio::test]
async fn json_report_round_trips_with_schema_version() {
    let world = world().await;
    let run = world.run(CHECKS).await;
    let json: serde_json::Value =
        serde_json::from_str(&(report::format("json").unwrap().render)(&run).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["summary"]["failed"], 1);
    let results = json["suites"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    let failed = results.iter().find(|r| r["status"] == "fail").unwrap();
    assert_eq!(failed["name"], "only paid orders");
    assert_eq!(
        failed["samples"]["columns"],
        serde_json::json!(["unexpected_value", "row_count"])
    );
}
