//! The run history (`run --history`, `lakecheck history`): a Delta table every run appends to,
//! concurrent runs losing none, and a store that cannot be appended to failing the run.

use chrono::{DateTime, Duration, Utc};
use lakecheck::history::{new_run_id, History};
use lakecheck::results::{CheckResult, RunReport, Status, SuiteResult};

use crate::cli::{lakecheck, literal_sources, rule_dir, text};
use crate::harness::local_world;

/// A run of two checks at `at`: `orders` passes with `rows` rows, `emails` fails.
fn run_at(at: DateTime<Utc>, rows: i64) -> RunReport {
    let mut orders = CheckResult::new("orders", "row_count", "rules/daily.yml", 3, at);
    orders.status = Status::Pass;
    orders.message = format!("{rows} rows");
    orders.metrics.insert("row_count".into(), rows.into());
    let mut emails = CheckResult::new("emails", "not_null", "rules/daily.yml", 4, at);
    emails.status = Status::Fail;
    emails.failing_rows = Some(2);
    emails.message = "2 rows with NULLs".into();
    RunReport::new(
        at,
        at,
        vec![SuiteResult {
            rule_file: "rules/daily.yml".into(),
            results: vec![orders, emails],
        }],
    )
}

#[tokio::test]
async fn concurrent_runs_appending_to_one_history_lose_none() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("history");
    let location = location.to_str().unwrap();
    let start: DateTime<Utc> = "2026-11-21T06:00:00Z".parse().unwrap();
    // Eight runs at once, the first of them creating the table.
    let appends = (0..8).map(|day| async move {
        let at = start + Duration::days(day);
        let history = History::open(location).unwrap();
        history
            .append(&run_at(at, 1000 + day), &new_run_id(at), at)
            .await
    });
    let versions: Vec<i64> = futures::future::join_all(appends)
        .await
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    let mut sorted = versions.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 8, "each run its own commit: {versions:?}");
    let recorded = History::open(location).unwrap().read().await.unwrap();
    assert_eq!(recorded.len(), 16, "two checks a run");
    let runs: std::collections::BTreeSet<_> = recorded.iter().map(|r| &r.run_id).collect();
    assert_eq!(runs.len(), 8);
    let orders: Vec<i64> = recorded
        .iter()
        .filter(|r| r.check == "orders")
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.metrics).unwrap()["row_count"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(orders, (1000..1008).collect::<Vec<_>>(), "oldest run first");
    let emails = recorded.iter().find(|r| r.check == "emails").unwrap();
    assert_eq!(
        (
            emails.status.as_str(),
            emails.failing_rows,
            emails.rule_file.as_str()
        ),
        ("fail", Some(2), "rules/daily.yml")
    );
    let shown = lakecheck::history::render(&recorded, 5);
    assert!(shown.contains("8 runs, 2 checks"), "{shown}");
    assert!(
        shown.contains("  FFFFF  emails  (2026-11-28 06:00: 2 rows with NULLs)"),
        "{shown}"
    );
    assert!(
        shown.contains("  .....  orders  (2026-11-28 06:00: 1007 rows)"),
        "{shown}"
    );
}

#[tokio::test]
async fn runs_append_through_the_cli_and_an_unwritable_history_exits_2() {
    let world = local_world().await;
    let dir = rule_dir(
        &literal_sources(&world),
        "  - { name: parts loaded, type: row_count, table: lake.auto_parts, min: 1 }\n",
    );
    let history = dir.path().join("history");
    let history_arg = history.to_str().unwrap();
    for day in ["2026-11-21T06:00:00Z", "2026-11-22T06:00:00Z"] {
        let out = lakecheck(
            &[
                "run",
                "rules.yml",
                "--history",
                history_arg,
                "--now",
                day,
                "-q",
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("history: run 2026"), "{}", text(&out));
    }
    let shown = lakecheck(&["history", history_arg], dir.path());
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    assert!(
        text(&shown).contains("2 runs, 1 check;"),
        "{}",
        text(&shown)
    );
    assert!(
        text(&shown).contains("..  parts loaded  (2026-11-22 06:00: "),
        "{}",
        text(&shown)
    );
    // A plain file where the history folder should be: the run exits 2, every report says why.
    std::fs::write(dir.path().join("blocked"), "").unwrap();
    let out = lakecheck(
        &[
            "run",
            "rules.yml",
            "--history",
            "blocked/history",
            "--reports-dir",
            "r",
            "-q",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cannot append the run to the history at blocked/history"),
        "{}",
        text(&out)
    );
    let json = std::fs::read_to_string(dir.path().join("r/lakecheck.json")).unwrap();
    assert!(
        json.contains("cannot append the run to the history"),
        "{json}"
    );
    let missing = lakecheck(&["history", "nowhere"], dir.path());
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
}

/// Writes `batch` as the one Parquet file of table `table` under `lake`.
pub(crate) fn write_table(
    lake: &std::path::Path,
    table: &str,
    batch: datafusion::arrow::array::RecordBatch,
) {
    use datafusion::parquet::arrow::ArrowWriter;
    let dir = lake.join(table);
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Writes `rows` rows as table `loads` under `lake`.
pub(crate) fn write_loads(lake: &std::path::Path, rows: usize) {
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    let batch = RecordBatch::try_from_iter([(
        "id",
        std::sync::Arc::new(Int64Array::from_iter_values(0..rows as i64)) as _,
    )])
    .unwrap();
    write_table(lake, "loads", batch);
}

/// A folder holding `rules.yml` with the one check `check` over a lake at `<folder>/lake`.
pub(crate) fn audit_folder(check: &str) -> tempfile::TempDir {
    audit_of(&[check])
}

/// A folder holding `rules.yml` with `checks` over a lake at `<folder>/lake`.
pub(crate) fn audit_of(checks: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let checks: String = checks.iter().map(|c| format!("  - {c}\n")).collect();
    std::fs::write(
        dir.path().join("rules.yml"),
        format!(
            "sources:\n  lake: {{ type: lake, url: \"{}\" }}\nchecks:\n{checks}",
            dir.path().join("lake").display()
        ),
    )
    .unwrap();
    dir
}

/// Runs the audit in `dir` at `now`, appending to its history; the output and the first check's
/// result as the JSON report has it.
pub(crate) fn audit_at(
    dir: &std::path::Path,
    now: &str,
) -> (std::process::Output, serde_json::Value) {
    audit(dir, &["--history", "history", "--now", now])
}

/// Runs the audit in `dir` with `options`; the output and the check's result as the JSON
/// report has it.
pub(crate) fn audit(
    dir: &std::path::Path,
    options: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let mut args = vec!["run", "rules.yml"];
    args.extend_from_slice(options);
    args.extend(["--reports-dir", "r", "-q"]);
    let out = lakecheck(&args, dir);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r/lakecheck.json")).unwrap())
            .unwrap();
    (out, json["suites"][0]["results"][0].clone())
}

/// Sixteen daily runs: a week of learning, a week of normal loads, a half-size load that fails,
/// and a normal day after it judged by a band the failed day did not widen.
#[tokio::test]
async fn volume_anomaly_learns_from_daily_runs_and_leaves_a_failed_day_out() {
    let dir = audit_folder("{ name: daily load, type: volume_anomaly, table: lake.loads }");
    let lake = dir.path().join("lake");
    let daily_rows = [
        1000, 1030, 980, 1010, 995, 1020, 990, 1005, 1015, 985, 1000, 1025, 975, 1010,
    ];
    let run = |day: usize, rows: usize| {
        write_loads(&lake, rows);
        audit_at(dir.path(), &format!("2026-11-{:02}T06:00:00Z", day + 1))
    };
    for (day, rows) in daily_rows.iter().enumerate() {
        let (out, result) = run(day, *rows);
        if day < 7 {
            assert_eq!(result["status"], "warn", "day {day}: {}", text(&out));
            assert!(
                result["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("learning, {day} of 7 runs")),
                "{result}"
            );
        } else {
            assert_eq!(result["status"], "pass", "day {day}: {result}");
            assert_eq!(out.status.code(), Some(0));
        }
    }
    // A half-size load fails the build.
    let (out, result) = run(14, 500);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(result["status"], "fail", "{result}");
    assert_eq!(result["metrics"]["learned_from_runs"], 14);
    // The next normal day passes, judged by the fourteen normal days only.
    let (out, result) = run(15, 1008);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(result["status"], "pass", "{result}");
    assert_eq!(
        result["metrics"]["learned_from_runs"], 14,
        "the failed day is left out"
    );
    let low = result["metrics"]["band_low"].as_f64().unwrap();
    assert!(
        low > 900.0,
        "the failed day did not widen the band: {result}"
    );
    let shown = lakecheck(&["history", "history", "--runs", "16"], dir.path());
    assert!(
        text(&shown).contains("wwwwwww.......F.  daily load"),
        "{}",
        text(&shown)
    );
    // The reports draw the trend: the JSON's runs, and the HTML's strip and chart with the band.
    let statuses: Vec<&str> = result["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    let expected = [["warn"; 7].as_slice(), &["pass"; 7], &["fail", "pass"]].concat();
    assert_eq!(
        statuses, expected,
        "learning, normal, the half-size day, normal again"
    );
    assert_eq!(result["trend"][14]["value"], 500.0);
    assert_eq!(result["figure"]["metric"], "row_count");
    let html = std::fs::read_to_string(dir.path().join("r/lakecheck.html")).unwrap();
    assert_eq!(
        html.matches("<span class=\"run ").count(),
        16,
        "one mark a run"
    );
    assert_eq!(
        html.matches("<circle class=\"point ").count(),
        16,
        "one point a run"
    );
    assert_eq!(
        html.matches("<polygon class=\"band\"").count(),
        1,
        "judged from day 8 on"
    );
    assert!(
        html.contains("2026-11-15 06:00 UTC · fail · 500 (band "),
        "the failed day's title"
    );
}

#[rstest::rstest]
#[case::sensitivity(
    "sensitivity: -1",
    "`sensitivity` of check #1 must be a positive number"
)]
#[case::more_needed_than_learned(
    "runs: 5, min_runs: 7",
    "check #1 learns from 5 runs but needs 7 to judge"
)]
#[case::seasonality("seasonality: hourly", "unknown seasonality `hourly` in check #1")]
#[case::relearn_zero("relearn_after: 0", "`relearn_after` of check #1 must be at least 1")]
fn volume_anomaly_mistakes_are_located(#[case] options: &str, #[case] expected: &str) {
    let text = format!(
        "sources:\n  lake: {{ type: lake, url: /data/lake }}\n\
         checks:\n  - {{ type: volume_anomaly, table: lake.loads, {options} }}\n"
    );
    let errors = crate::rule_errors::errors_of(&text);
    assert!(errors.starts_with("rules/bad.yml:4:"), "{errors}");
    assert!(errors.contains(&format!("error: {expected}")), "{errors}");
}

/// Writes table `updates` under `lake`: ten rows, the newest `updated_at` at `newest`.
pub(crate) fn write_updates(lake: &std::path::Path, newest: DateTime<Utc>) {
    use datafusion::arrow::array::{RecordBatch, TimestampMicrosecondArray};
    let times: Vec<i64> = (0..10)
        .map(|i| (newest - Duration::minutes(i * 30)).timestamp_micros())
        .collect();
    let batch = RecordBatch::try_from_iter([(
        "updated_at",
        std::sync::Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")) as _,
    )])
    .unwrap();
    write_table(lake, "updates", batch);
}

/// Ten daily audits whose newest update is minutes old, then one whose newest update is six
/// hours old: the lag band learned from the normal days fails it.
#[tokio::test]
async fn freshness_anomaly_fails_a_lag_unlike_the_past_runs() {
    let dir = audit_folder(
        "{ name: updates lag, type: freshness_anomaly, table: lake.updates, column: updated_at }",
    );
    let lake = dir.path().join("lake");
    let audit = |day: i64, lag_minutes: i64| {
        let now = "2026-11-01T06:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::days(day);
        write_updates(&lake, now - Duration::minutes(lag_minutes));
        audit_at(dir.path(), &now.to_rfc3339())
    };
    for (day, lag) in [12, 9, 15, 11, 10, 14, 8, 13, 12, 10]
        .into_iter()
        .enumerate()
    {
        let (_, result) = audit(day as i64, lag);
        let expected = if day < 7 { "warn" } else { "pass" };
        assert_eq!(result["status"], expected, "day {day}: {result}");
    }
    let (out, result) = audit(10, 360);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(result["status"], "fail", "{result}");
    assert_eq!(result["metrics"]["lag_seconds"], 21600.0);
    assert_eq!(result["metrics"]["learned_from_runs"], 10);
    assert!(
        result["expected"]
            .as_str()
            .unwrap()
            .contains("over the last 10 runs"),
        "{result}"
    );
    // Without a history there is nothing to judge by: an error, not a pass.
    let out = lakecheck(
        &["run", "rules.yml", "--reports-dir", "r", "-q"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("run with `--history DIR_OR_URL`"),
        "{}",
        text(&out)
    );
}

/// A history that cannot be read is the anomaly check's error, naming why: never a pass, and
/// never "learning".
#[tokio::test]
async fn an_unreadable_history_is_the_anomaly_check_s_error() {
    let dir = audit_folder("{ name: daily load, type: volume_anomaly, table: lake.loads }");
    write_loads(&dir.path().join("lake"), 10);
    let log = dir.path().join("history/_delta_log");
    std::fs::create_dir_all(&log).unwrap();
    std::fs::write(log.join("00000000000000000000.json"), "not a delta log\n").unwrap();
    let (out, result) = audit_at(dir.path(), "2026-11-21T06:00:00Z");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(result["status"], "error", "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("it learns from the check's past runs: cannot read the history at history"),
        "{result}"
    );
}
