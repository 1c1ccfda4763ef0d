//! The `lakecheck` binary: exit codes, filters, messages, and the demo end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{local_world, world, World};

pub fn lakecheck(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lakecheck"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run lakecheck")
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes a rule file with the harness's sources and `checks`, returning its folder.
pub fn rule_dir(sources: &str, checks: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        format!("{sources}checks:\n{checks}"),
    )
    .unwrap();
    dir
}

/// The world's `sources:` block with its variables written out, for a rule file on disk.
pub fn literal_sources(world: &World) -> String {
    let mut yaml = world.sources_yaml();
    for (name, value) in world.vars().iter() {
        yaml = yaml.replace(&format!("${{{name}}}"), value);
    }
    yaml
}

#[tokio::test]
async fn exit_codes_follow_the_worst_result() {
    let world = world().await;
    let checks = "  - { name: ok, type: row_count, table: pg.customers, equals: 1149, tags: [ci] }\n\
                  \x20 - { name: soft, type: not_null, table: lake.customers, columns: [email], severity: warn, tags: [ci] }\n\
                  \x20 - { name: hard, type: row_count, table: s3.customers, equals: 1, tags: [strict] }\n\
                  \x20 - { name: broken, type: row_count, table: lake.nothing_here, min: 1, tags: [broken] }\n";
    let dir = rule_dir(&literal_sources(&world), checks);
    let reports = dir.path().join("out");
    let reports_arg = reports.to_str().unwrap();

    let passed = lakecheck(
        &[
            "run",
            "rules.yml",
            "--tag",
            "ci",
            "--reports-dir",
            reports_arg,
        ],
        dir.path(),
    );
    assert_eq!(passed.status.code(), Some(0), "{}", text(&passed));
    assert!(
        text(&passed).contains("2 checks: 1 passed, 1 warned, 0 failed, 0 errors"),
        "{}",
        text(&passed)
    );
    for file in [
        "junit.xml",
        "lakecheck.html",
        "lakecheck.json",
        "summary.md",
    ] {
        assert!(reports.join(file).is_file(), "{file} written");
    }

    let failed = lakecheck(
        &[
            "run",
            "rules.yml",
            "--exclude-tag",
            "broken",
            "-q",
            "--reports-dir",
            reports_arg,
        ],
        dir.path(),
    );
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(
        text(&failed).contains("FAIL  hard  expected exactly 1 row, found 1149 rows"),
        "{}",
        text(&failed)
    );

    let errored = lakecheck(
        &["run", "rules.yml", "--reports-dir", reports_arg],
        dir.path(),
    );
    assert_eq!(errored.status.code(), Some(2), "{}", text(&errored));

    let one = lakecheck(
        &[
            "run",
            "rules.yml",
            "--check",
            "ok",
            "--json",
            "one.json",
            "--reports-dir",
            reports_arg,
        ],
        dir.path(),
    );
    assert_eq!(one.status.code(), Some(0), "{}", text(&one));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("one.json")).unwrap()).unwrap();
    assert_eq!(json["summary"]["total"], 1);

    let unknown = lakecheck(
        &[
            "run",
            "rules.yml",
            "--check",
            "okk",
            "--reports-dir",
            reports_arg,
        ],
        dir.path(),
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown).contains("no check named `okk`; did you mean `ok`?"),
        "{}",
        text(&unknown)
    );

    let none = lakecheck(
        &[
            "run",
            "rules.yml",
            "--tag",
            "nonexistent",
            "--reports-dir",
            reports_arg,
        ],
        dir.path(),
    );
    assert_eq!(none.status.code(), Some(2));
    assert!(text(&none).contains("the filters select no checks"));
}

#[test]
fn unreachable_postgres_is_exit_2_naming_the_source_without_the_password() {
    // Port 1 (tcpmux) is privileged and unused: nothing listens there, and no other test can
    // take it, as a port freed by a dropped listener could be.
    let port = 1;
    let sources = format!(
        "sources:\n  warehouse: {{ type: postgres, url: \"postgres://auditor:hunter2secret@127.0.0.1:{port}/autocorp\", connect_timeout: 5s }}\n"
    );
    let dir = rule_dir(
        &sources,
        "  - { type: row_count, table: warehouse.sales_order, min: 1 }\n",
    );
    let out = lakecheck(&["run", "--reports-dir", "r"], dir.path()); // default: rules/ ... here the folder
                                                                     // No rules/ folder here: that is itself a rule error with exit 2.
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("rules:1:1: error: no such rule file or folder"),
        "{}",
        text(&out)
    );

    let out = lakecheck(&["run", "rules.yml", "--reports-dir", "r"], dir.path());
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains(&format!(
            "source `warehouse` (postgres 127.0.0.1:{port}/autocorp): cannot connect"
        )),
        "{all}"
    );
    let mut written = all.clone();
    for file in [
        "junit.xml",
        "lakecheck.html",
        "lakecheck.json",
        "summary.md",
    ] {
        written.push_str(&std::fs::read_to_string(dir.path().join("r").join(file)).unwrap());
    }
    assert!(!written.contains("hunter2secret"), "the password leaked");
}

#[test]
fn bad_rule_files_exit_2_with_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "sources:\n  pg: { type: postgres, url: \"postgres://x@127.0.0.1/db\" }\nchecks:\n  - { type: row_cont, table: pg.orders }\n",
    )
    .unwrap();
    for command in ["run", "validate"] {
        let out = lakecheck(&[command, "bad.yml"], dir.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out).contains("bad.yml:4:13: error: unknown check type `row_cont` in check #1\n  help: did you mean `row_count`?"), "{}", text(&out));
    }
}

#[test]
fn validate_accepts_the_shipped_rules_without_connecting() {
    let out = Command::new(env!("CARGO_BIN_EXE_lakecheck"))
        .args(["validate", "rules"])
        .current_dir(repo())
        .env("LAKECHECK_PG_URL", "postgres://nobody@127.0.0.1:1/autocorp")
        .env("LAKECHECK_LAKE_URL", "s3://no-such-bucket/lake")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("rules/autocorp.yml: 5 sources, 53 checks")
            && text(&out).contains("rules/autocorp-latency.yml: 3 sources, 1 check\n"),
        "{}",
        text(&out)
    );
}

/// The checks of `rules/autocorp.yml` that warn in the demo: a CRM backlog and zero-value orders
/// by design, and the source's and raw zone's fixed-time data (see the README).
const DEMO_WARNINGS: [&str; 4] = [
    "customers without an email",
    "zero-value orders the curated ETL will drop",
    "source sales_order is being updated",
    "raw sales_order changes are recent",
];

/// The demo end to end, at the reference size and at `--scale 3`: the same 53 checks, the same
/// four warnings, nothing else but passes, and every table 3x (plus the same CDC edits).
#[rstest::rstest]
#[case::reference(1)]
#[case::scale_3(3)]
fn demo_runs_end_to_end(#[case] scale: usize) {
    use lakecheck::demo::autocorp::ROW_COUNTS;
    let reports = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lakecheck"))
        .args(["demo", "--reports-dir", reports.path().to_str().unwrap()])
        .args(["--scale", &scale.to_string()])
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .env_remove("AUTOCORP_SALES_ORDER_ROWS")
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("53 checks: 49 passed, 4 warned, 0 failed, 0 errors"),
        "{all}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.path().join("lakecheck.json")).unwrap())
            .unwrap();
    assert_eq!(json["summary"]["total"], 53);
    let results: Vec<&serde_json::Value> = json["suites"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|suite| suite["results"].as_array().unwrap())
        .collect();
    let result = |name: &str| {
        *results
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no result `{name}`"))
    };
    let mut warned: Vec<&str> = results
        .iter()
        .filter(|r| r["status"] != "pass")
        .map(|r| {
            assert_eq!(r["status"], "warn", "{r}");
            r["name"].as_str().unwrap()
        })
        .collect();
    warned.sort_unstable();
    let mut expected_warnings = DEMO_WARNINGS.to_vec();
    expected_warnings.sort_unstable();
    assert_eq!(warned, expected_warnings);
    // Every table holds `scale` times the reference rows, plus the CDC edits made after the
    // full load (3 orders inserted, 2 order services deleted), on both sides.
    for (table, rows) in ROW_COUNTS {
        let cdc = match table {
            "sales_order" => 3,
            "sales_order_services" => -2,
            _ => 0,
        };
        let expected = (scale * rows) as i64 + cdc;
        let metrics = &result(&format!("{table} arrived in raw"))["metrics"];
        assert_eq!(metrics["left_count"], expected, "{table}: {metrics}");
        assert_eq!(metrics["right_count"], expected, "{table}: {metrics}");
    }
    // The CSV drop holds the generated orders, and the rule's expected count followed the scale.
    let csv = result("every sales order CSV row landed");
    assert_eq!(csv["metrics"]["row_count"], 1000 * scale, "{csv}");
    assert_eq!(
        csv["expected"],
        format!("exactly {} rows", 1000 * scale),
        "{csv}"
    );
    let junit = std::fs::read_to_string(reports.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuite name=\"rules/autocorp.yml\" tests=\"53\""),
        "{junit}"
    );
    let html = std::fs::read_to_string(reports.path().join("lakecheck.html")).unwrap();
    assert!(html.contains("All 53 checks passed, 4 with warnings"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the HTML report is self-contained"
    );
}

#[test]
fn demo_refuses_scale_0() {
    let out = lakecheck(&["demo", "--scale", "0"], &repo());
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("--scale"), "{all}");
    assert!(all.contains("1..=10000"), "{all}");
}

/// A report that cannot be written makes the run exit 2, and the reports that are written and
/// the console summary say exit code 2 and which report failed, never the 0 of the checks alone.
#[tokio::test]
async fn an_unwritable_report_is_exit_2_in_every_report_and_the_console() {
    let world = local_world().await;
    let checks = "  - { name: ok, type: row_count, table: lake.customers, equals: 1149 }\n";
    let dir = rule_dir(&literal_sources(&world), checks);
    // A path under a regular file can never be created.
    std::fs::write(dir.path().join("plain-file"), "not a folder").unwrap();
    let out = lakecheck(
        &[
            "run",
            "rules.yml",
            "--json",
            "out/run.json",
            "--junit",
            "out/junit.xml",
            "--html",
            "plain-file/report.html",
        ],
        dir.path(),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("1 check: 1 passed, 0 warned, 0 failed, 0 errors in "),
        "{all}"
    );
    assert!(all.contains("(exit 2)"), "{all}");
    assert!(
        all.contains("error: cannot write html report to plain-file/report.html: "),
        "{all}"
    );
    assert!(all.contains("json report: out/run.json"), "{all}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/run.json")).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 2);
    assert_eq!(json["summary"]["passed"], 1);
    let errors = json["report_errors"].as_array().expect("report_errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .starts_with("cannot write html report to plain-file/report.html: "),
        "{errors:?}"
    );
    let junit = std::fs::read_to_string(dir.path().join("out/junit.xml")).unwrap();
    assert!(
        junit.contains("<error message=\"cannot write html report to plain-file/report.html: "),
        "{junit}"
    );
    assert!(!dir.path().join("plain-file/report.html").exists());
}
