//! `volume_anomaly` per time bucket (`bucket:`), through the CLI: daily audits of a lake table
//! whose rows carry their load time, judging yesterday against the days before it.

use chrono::{DateTime, Duration, Utc};

use crate::cli::{lakecheck, text};
use crate::history::{audit, audit_at, audit_folder, write_table};

/// The first day of loads.
const FIRST_DAY: &str = "2026-11-01T00:00:00Z";

fn day(n: i64) -> DateTime<Utc> {
    FIRST_DAY.parse::<DateTime<Utc>>().unwrap() + Duration::days(n)
}

/// Writes table `loads` under `lake`: for each day from [`FIRST_DAY`], its rows, spread over
/// the day by `loaded_at`; then `extra` rows at the times given (`None`: NULL).
fn write_loads(lake: &std::path::Path, daily: &[usize], extra: &[Option<DateTime<Utc>>]) {
    use datafusion::arrow::array::{RecordBatch, TimestampMicrosecondArray};
    let mut times: Vec<Option<i64>> = Vec::new();
    for (n, rows) in daily.iter().enumerate() {
        let step = 86_400_000_000 / (*rows as i64).max(1);
        times.extend((0..*rows as i64).map(|i| Some(day(n as i64).timestamp_micros() + i * step)));
    }
    times.extend(extra.iter().map(|t| t.map(|t| t.timestamp_micros())));
    let batch = RecordBatch::try_from_iter([(
        "loaded_at",
        std::sync::Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")) as _,
    )])
    .unwrap();
    write_table(lake, "loads", batch);
}

/// Twenty daily audits at 06:00, each judging the day before, the table holding the loads up to
/// it: a week of learning, normal days passing, a half-size day failing, a day with no rows at
/// all failing (never skipped), each failed day left out of what later days learn (the history
/// names the bucket it failed), and without a history every day learned from.
#[tokio::test]
async fn daily_buckets_fail_a_half_size_day_and_a_lost_day() {
    let dir = audit_folder(
        "{ name: daily loads, type: volume_anomaly, table: lake.loads, \
         bucket: { column: loaded_at, every: day } }",
    );
    let lake = dir.path().join("lake");
    let mut daily = vec![
        1000, 1030, 980, 1010, 995, 1020, 990, 1005, 1015, 985, 1000, 1025, 975, 1010,
    ];
    // Day 14 loads half, day 17 nothing at all.
    daily.extend([500, 1008, 992, 0, 1003, 997]);
    let audit_day = |judged: usize| {
        write_loads(&lake, &daily[..=judged], &[]);
        let now = day(judged as i64 + 1) + Duration::hours(6);
        audit_at(dir.path(), &now.to_rfc3339())
    };
    for (judged, rows) in daily.iter().enumerate() {
        let (out, result) = audit_day(judged);
        let metrics = &result["metrics"];
        assert_eq!(metrics["row_count"], *rows, "day {judged}: {result}");
        assert_eq!(
            metrics["bucket_start"],
            day(judged as i64).format("%Y-%m-%dT%H:%M:%SZ").to_string()
        );
        assert_eq!(metrics["bucket_every"], "day");
        let status = result["status"].as_str().unwrap();
        match judged {
            0..=6 => {
                assert_eq!(status, "warn", "day {judged}: {result}");
                let message = result["message"].as_str().unwrap();
                assert!(
                    message.contains(&format!("learning, {judged} of 7 daily buckets")),
                    "{result}"
                );
            }
            14 | 17 => {
                assert_eq!(status, "fail", "day {judged}: {result}");
                assert_eq!(out.status.code(), Some(1), "{}", text(&out));
                assert!(
                    result["observed"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("{rows} rows on 2026-11-{:02} (day)", judged + 1)),
                    "{result}"
                );
            }
            _ => {
                assert_eq!(status, "pass", "day {judged}: {result}");
                assert_eq!(out.status.code(), Some(0), "{}", text(&out));
                // Every day before is learned from, but the failed ones.
                let failed_before = [14, 17].iter().filter(|d| **d < judged).count();
                assert_eq!(
                    metrics["learned_from_runs"],
                    judged - failed_before,
                    "day {judged}: {result}"
                );
                assert!(metrics["band_low"].as_f64().unwrap() > 900.0, "{result}");
            }
        }
    }
    let shown = lakecheck(&["history", "history", "--runs", "20"], dir.path());
    assert!(
        text(&shown).contains("wwwwwww.......F..F..  daily loads"),
        "{}",
        text(&shown)
    );

    // Without a history the check still runs, learning from every day, the failed ones too.
    let (out, result) = audit(dir.path(), &["--now", "2026-11-21T06:00:00Z"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(result["status"], "pass", "{result}");
    assert_eq!(result["metrics"]["learned_from_runs"], 19, "{result}");
}

/// Rows dated after the run's clock are neither judged nor learned from: a passing check warns
/// naming them. A NULL time is in no bucket, and named.
#[tokio::test]
async fn rows_after_the_clock_warn_and_undated_rows_are_named() {
    let dir = audit_folder(
        "{ name: daily loads, type: volume_anomaly, table: lake.loads, \
         bucket: { column: loaded_at, every: day } }",
    );
    let daily = [1000, 1030, 980, 1010, 995, 1020, 990, 1005, 1015, 985];
    let ahead = day(12) + Duration::hours(3);
    write_loads(
        &dir.path().join("lake"),
        &daily,
        &[Some(ahead), Some(ahead), None],
    );
    let (out, result) = audit_at(dir.path(), "2026-11-11T06:00:00Z");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(result["status"], "warn", "{result}");
    assert_eq!(result["metrics"]["future_rows"], 2, "{result}");
    assert_eq!(result["metrics"]["row_count"], 985, "{result}");
    let message = result["message"].as_str().unwrap();
    assert!(message.contains("2 rows dated after now"), "{result}");
    let observed = result["observed"].as_str().unwrap();
    assert!(
        observed.contains(
            "2 rows in 1 day bucket after the run's clock (2026-11-11T06:00:00Z), the newest on \
             2026-11-13"
        ),
        "{result}"
    );
    assert!(
        observed.ends_with("; 1 row with no `loaded_at`, in no bucket"),
        "{result}"
    );
    assert_eq!(result["metrics"]["undated_rows"], 1, "{result}");
}
