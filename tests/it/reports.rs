//! Every report format, snapshotted from one synthetic run built in code (as cargo-nextest tests
//! its reporters from fixed events): two rule files, a check of every status with observed,
//! expected, metrics, samples, queries and table metadata, fixed times and durations. No
//! servers, nothing to redact. Reports are pure functions of the results, so what a real run
//! yields is the check fixtures' business (`fixtures.rs`), and this file's is only how each
//! format shows it.

use chrono::{DateTime, Utc};
use lakecheck::model::Rows;
use lakecheck::probe::ExecutedQuery;
use lakecheck::report::{self, console, REPORT_FORMATS};
use lakecheck::results::{CheckResult, RunReport, Status, SuiteResult};
use lakecheck::rules::Severity;
use regex::Regex;
use serde_json::json;

/// A point in time on the synthetic run's day.
fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-11-22T{time}Z"))
        .unwrap()
        .to_utc()
}

fn query(source: &str, sql: &str, duration_ms: u64, error: Option<&str>) -> ExecutedQuery {
    ExecutedQuery {
        source: source.into(),
        sql: sql.into(),
        duration_ms,
        error: error.map(Into::into),
        shared_by: Vec::new(),
        cost: None,
    }
}

fn rows(columns: &[&str], rows: &[&[Option<&str>]]) -> Option<Rows> {
    Some(Rows {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: rows
            .iter()
            .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
            .collect(),
    })
}

fn metrics(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().unwrap().clone()
}

/// A result with what every check has; each check below sets what it found.
fn check(name: &str, kind: &str, rule_file: &str, line: usize, started: &str) -> CheckResult {
    CheckResult {
        status: Status::Pass,
        ..CheckResult::new(name, kind, rule_file, line, at(started))
    }
}

const CUTOVER: &str = "rules/cutover.yml";
const QUALITY: &str = "rules/quality.yml";

/// Two rule files; one check passes, one warns, one fails and one could not run, plus a pass
/// on a Delta table with its commit metadata. Texts carry `<`, `&`, quotes and non-ASCII, which
/// every format must escape or keep.
fn synthetic_run() -> RunReport {
    let arrived = CheckResult {
        status: Status::Pass,
        tags: vec!["ci".into(), "cutover".into()],
        tables: vec!["pg.customers".into(), "raw.customers".into()],
        message: "pg.customers: 1149, raw.customers: 1149 (difference +0, +0.00%)".into(),
        observed: Some("pg.customers: 1149, raw.customers: 1149 (difference +0, +0.00%)".into()),
        expected: Some("equal row counts".into()),
        failing_rows: Some(0),
        metrics: metrics(json!({ "left_count": 1149, "right_count": 1149, "difference": 0 })),
        queries: vec![
            query(
                "pg",
                r#"SELECT count(*) AS row_count FROM "autocorp"."customers""#,
                4,
                None,
            ),
            query(
                "raw",
                r#"SELECT count(*) AS row_count FROM "customers""#,
                11,
                None,
            ),
        ],
        duration_ms: 15,
        ..check(
            "customers arrived",
            "row_count_match",
            CUTOVER,
            6,
            "08:00:00.010",
        )
    };
    let orders = CheckResult {
        status: Status::Fail,
        tags: vec!["cutover".into()],
        tables: vec!["pg.sales_order".into(), "curated.sales_order".into()],
        message: "expected every row of pg.sales_order in curated.sales_order with equal values, \
                  found 1000 rows compared: 997 matched, 1 missing in target, 0 extra in target, 2 changed"
            .into(),
        observed: Some(
            "1000 rows compared: 997 matched, 1 missing in target, 0 extra in target, 2 changed".into(),
        ),
        expected: Some("every row of pg.sales_order in curated.sales_order with equal values".into()),
        failing_rows: Some(3),
        samples: rows(
            &["difference", "key", "column", "pg.sales_order", "curated.sales_order"],
            &[
                &[Some("missing"), Some("order_id=7"), None, None, None],
                &[Some("changed"), Some("order_id=12"), Some("status"), Some("PAID"), Some("SHIPPED")],
                &[Some("changed"), Some("order_id=40"), Some("total_amount"), Some("12.50"), Some("12.5 & tax")],
            ],
        ),
        metrics: metrics(json!({
            "matched": 997,
            "missing_in_target": 1,
            "changed": 2,
            "missing_keys": ["order_id=7"],
            "changed_keys": ["order_id=12", "order_id=40"],
        })),
        queries: vec![
            query("pg", r#"SELECT min("order_id") AS lo, max("order_id") AS hi FROM "autocorp"."sales_order""#, 3, None),
            query("curated", r#"SELECT min("order_id") AS lo, max("order_id") AS hi FROM "sales_order""#, 40, None),
            // A billed query: Athena reports what it scanned and how long its engine ran.
            ExecutedQuery {
                cost: Some(lakecheck::sources::QueryCost {
                    execution_id: "5f0c2a1e-8d4b-4c59-9a7e-0b1d2c3e4f5a".into(),
                    bytes_scanned: 10_485_760,
                    engine_ms: 1_234,
                }),
                ..query("athena", r#"SELECT count(*) AS row_count FROM "autocorp_curated"."sales_order""#, 1_900, None)
            },
        ],
        table_metadata: metrics(json!({
            "curated.sales_order": {
                "format": "delta", "version": 3, "last_commit": "2026-11-22T07:45:00+00:00",
                "commits": 4, "files": 2, "bytes": 1_234_567
            }
        })),
        duration_ms: 1250,
        ..check("orders equal in curated", "table_match", CUTOVER, 9, "08:00:00.030")
    };
    let ghost_error = "source `raw` (lake s3://lake/raw/): table `ghosts` not found: no .parquet \
                       files in s3://lake/raw/ghosts/ (tables here: customers, sales_order)";
    let ghost = CheckResult {
        status: Status::Error,
        tags: vec!["ci".into()],
        tables: vec!["raw.ghosts".into()],
        message: format!("could not run: {ghost_error}"),
        error: Some(ghost_error.into()),
        queries: vec![query(
            "raw",
            r#"SELECT count(*) AS row_count FROM "ghosts""#,
            2,
            Some("table `ghosts` not found"),
        )],
        duration_ms: 2,
        ..check("ghost table", "row_count", CUTOVER, 12, "08:00:01.300")
    };
    let emails = CheckResult {
        status: Status::Warn,
        severity: Severity::Warn,
        tags: vec!["quality".into()],
        description: Some("CRM backfill pending <until Q1>".into()),
        tables: vec!["raw.customers".into()],
        message: "expected no NULLs, found 2 rows with NULLs (email: 2)".into(),
        observed: Some("2 rows with NULLs (email: 2)".into()),
        expected: Some("no NULLs".into()),
        failing_rows: Some(2),
        samples: rows(
            &["customer_id", "first_name", "email"],
            &[
                &[Some("47"), Some("Zoë"), None],
                &[Some("94"), Some("O'Brien"), None],
            ],
        ),
        metrics: metrics(json!({ "nulls.email": 2 })),
        queries: vec![
            // One scan of the table served this check and another of the same file.
            ExecutedQuery {
                shared_by: vec!["emails present".into(), "customers <1M>".into()],
                ..query(
                    "raw",
                    r#"SELECT sum(CASE WHEN "email" IS NULL THEN 1 ELSE 0 END) AS agg_0, count(CASE WHEN ("email" IS NULL) THEN 1 END) AS agg_1, count(*) AS agg_2 FROM "customers""#,
                    6,
                    None,
                )
            },
            query(
                "raw",
                r#"SELECT * FROM "customers" WHERE ("email" IS NULL) ORDER BY 1 LIMIT 10"#,
                9,
                None,
            ),
        ],
        duration_ms: 15,
        ..check("emails present", "not_null", QUALITY, 4, "08:00:01.310")
    };
    let fresh = CheckResult {
        status: Status::Pass,
        tags: vec!["freshness".into()],
        tables: vec!["curated.auto_parts".into()],
        message: "last commit 15m ago (2026-11-22T07:45:00+00:00)".into(),
        observed: Some("last commit 15m ago (2026-11-22T07:45:00+00:00)".into()),
        expected: Some("a commit within 1h (and no more than 1m in the future)".into()),
        metrics: metrics(json!({ "age_seconds": 900.0, "in_future": false })),
        table_metadata: metrics(json!({
            "curated.auto_parts": {
                "format": "delta", "version": 1, "last_commit": "2026-11-22T07:45:00+00:00",
                "commits": 2, "files": 2, "bytes": 19_655
            }
        })),
        duration_ms: 8,
        ..check(
            "auto_parts fresh",
            "commit_freshness",
            QUALITY,
            7,
            "08:00:01.320",
        )
    };
    let suites = vec![
        SuiteResult {
            rule_file: CUTOVER.into(),
            results: vec![arrived, orders, ghost],
        },
        SuiteResult {
            rule_file: QUALITY.into(),
            results: vec![emails, fresh],
        },
    ];
    let mut run = RunReport::new(at("08:00:00"), at("08:00:02.500"), suites);
    // The crate version would change every snapshot on each release.
    run.lakecheck_version = "0.0.0-test".into();
    run
}

/// HTML a reviewer can read in a diff: the fixed CSS and JS left out, one element a line,
/// indented by depth; an element holding only text stays on one line (its further lines, as in
/// multi-line SQL, indented one step deeper).
fn readable_html(html: &str) -> String {
    let html = Regex::new(r"(?s)<style>.*?</style>")
        .unwrap()
        .replace(html, "<style>[fixed CSS]</style>");
    let html = Regex::new(r"(?s)<script>.*?</script>")
        .unwrap()
        .replace(&html, "<script>[fixed JS]</script>");
    let tokens: Vec<&str> = Regex::new(r"<[^>]*>|[^<]+")
        .unwrap()
        .find_iter(&html)
        .map(|m| m.as_str())
        .filter(|t| !t.trim().is_empty())
        .collect();
    let opens = |t: &str| t.starts_with('<') && !t.starts_with("</") && !t.starts_with("<!");
    let void = |t: &str| {
        let name = t[1..].split([' ', '>']).next().unwrap_or("");
        matches!(name, "meta" | "input" | "br" | "hr" | "img" | "link")
    };
    let mut out = String::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        let line = |text: &str, depth: usize| format!("{}{}\n", "  ".repeat(depth), text);
        if token.starts_with("</") {
            depth = depth.saturating_sub(1);
            out.push_str(&line(token, depth));
        } else if opens(token) && !void(token) {
            // `<x>text</x>` and `<x></x>` stay on one line.
            let inline = match (tokens.get(i + 1), tokens.get(i + 2)) {
                (Some(next), _) if next.starts_with("</") => Some(2),
                (Some(text), Some(close)) if !text.starts_with('<') && close.starts_with("</") => {
                    Some(3)
                }
                _ => None,
            };
            match inline {
                Some(n) => {
                    let continued = format!("\n{}", "  ".repeat(depth + 1));
                    let joined = tokens[i..i + n].concat().replace('\n', &continued);
                    out.push_str(&line(&joined, depth));
                    i += n - 1;
                }
                None => {
                    out.push_str(&line(token, depth));
                    depth += 1;
                }
            }
        } else {
            out.push_str(&line(token.trim(), depth));
        }
        i += 1;
    }
    out
}

#[test]
fn the_synthetic_run_has_every_status() {
    let run = synthetic_run();
    let s = run.summary;
    assert_eq!(
        (s.total, s.passed, s.warned, s.failed, s.errored),
        (5, 2, 1, 1, 1)
    );
    assert_eq!(run.exit_code, lakecheck::results::EXIT_ERROR);
    assert_eq!(run.duration_ms, 2500);
}

/// Each file format (a new one is snapshotted as soon as it is registered) and the console.
#[test]
fn every_report_of_the_synthetic_run() {
    let run = synthetic_run();
    for format in REPORT_FORMATS {
        let text = (format.render)(&run).unwrap();
        let text = match format.name {
            "html" => readable_html(&text),
            _ => text,
        };
        insta::assert_snapshot!(format!("report_{}", format.name), text);
    }
    insta::assert_snapshot!("report_console", console::render(&run, false));
}

#[test]
fn the_console_colours_each_status_label() {
    let run = synthetic_run();
    let labels: Vec<String> = run
        .results()
        .map(|r| console::result_line(r, true))
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        labels,
        [
            "\x1b[1;32mPASS",
            "\x1b[1;31mFAIL",
            "\x1b[1;35mERROR\x1b[0m",
            "\x1b[1;33mWARN",
            "\x1b[1;32mPASS"
        ]
    );
}

#[test]
fn the_json_report_round_trips_with_its_schema_version() {
    let run = synthetic_run();
    let json: serde_json::Value =
        serde_json::from_str(&(report::format("json").unwrap().render)(&run).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["exit_code"], 2);
    assert_eq!(json["summary"]["failed"], 1);
    let statuses: Vec<&str> = json["suites"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["results"].as_array().unwrap())
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pass", "fail", "error", "warn", "pass"]);
    let failed = &json["suites"][0]["results"][1];
    assert_eq!(failed["name"], "orders equal in curated");
    assert_eq!(failed["samples"]["rows"][0][3], serde_json::Value::Null);
    assert_eq!(
        failed["table_metadata"]["curated.sales_order"]["version"],
        3
    );
}

/// The pretty-printer keeps text, nesting and attributes, and leaves the fixed blocks out.
#[test]
fn readable_html_indents_by_depth_and_leaves_out_css_and_js() {
    let html = "<!DOCTYPE html><html><head><style>a{b:c}</style><meta charset=\"utf-8\"></head>\
                <body><div class=\"x\"><span>one</span><p></p>two<pre>a\nb</pre></div>\
                <script>go()</script></body></html>";
    assert_eq!(
        readable_html(html),
        "<!DOCTYPE html>\n<html>\n  <head>\n    <style>[fixed CSS]</style>\n    \
         <meta charset=\"utf-8\">\n  </head>\n  <body>\n    <div class=\"x\">\n      \
         <span>one</span>\n      <p></p>\n      two\n      <pre>a\n        b</pre>\n    </div>\n    \
         <script>[fixed JS]</script>\n  </body>\n</html>\n"
    );
}
