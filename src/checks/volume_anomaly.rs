//! `volume_anomaly`: a table's row count lies within the band learned from its past
//! (`checks/anomaly.rs`: median ± 3.5 scaled MADs of the last `runs`, judged after `min_runs`).
//! It counts in one of two ways:
//!
//! - **Per run** (no `bucket:`): the table's row count (under `where:`, e.g. today's partition),
//!   judged against the counts this check recorded in its past runs in the run history. It
//!   cannot run without `run --history`.
//! - **Per time bucket** (`bucket: { column: created_at, every: day }`, `every` one of `hour`,
//!   `day`, `week`; weeks start on Monday): one query counts the rows of every bucket
//!   (`date_trunc`), and the newest complete bucket before the run's clock is judged (a daily
//!   audit at 06:00 judges yesterday) against the `runs` buckets before it. The check learns
//!   from the table itself, so it needs no history:
//!   - A bucket without rows counts 0: a lost day of loads is judged and learned as 0, never
//!     skipped. The series starts at the oldest bucket with rows (before it the table had no
//!     data) and reaches back at most 4 × `runs` buckets (× 7 with `seasonality`).
//!   - Buckets are hours, days or weeks in UTC for a column of instants (`timestamptz`); for
//!     times without a zone and dates, wall-clock ones in `timezone:` (as `freshness` reads
//!     them; an hour that daylight saving time skips is no bucket unless it holds rows).
//!   - The bucket the clock is in is still filling: neither judged nor learned from. Rows in
//!     buckets that start after the clock (clock skew, a zone misread) are neither either: the
//!     finding names them and a passing check warns. Rows whose column is NULL fall in no
//!     bucket: the finding names them.
//!   - When the run keeps a history (`--history`), buckets that a past run of the check judged
//!     and failed (its `bucket_start`) are left out of the band as failed runs are, and
//!     `relearn_after` counts them; without one every bucket is learned from. A history that
//!     cannot be read is the check's error. `seasonality: day_of_week` learns from buckets on
//!     the judged bucket's weekday (so not with weekly buckets).
//!
//! Each run records `row_count` (per bucket: the judged bucket's), and per bucket
//! `bucket_start` (RFC 3339, in the bucket's zone), `bucket_every` and `buckets` (the rows of
//! the `runs` buckets before the judged one, oldest first).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::anomaly::{figures, judge, outcome, outcome_over, Learning, PastFigure};
use super::row_predicate::rows;
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation};
use crate::model::dating::{column_dating, in_zone, parse_zone, read_wall_clock, Dating};
use crate::model::sql::quote_ident;
use crate::model::{suggest, Figure, MapReader, Rows, RuleError, TableRef, Unit};
use crate::probe::scan::ScanNeeds;
use crate::probe::{first_i64, CheckError, PastRun, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "volume_anomaly",
    summary: "a table's row count, per run or per hour, day or week of a timestamp column \
              (`bucket:`), lies within the band learned from its past",
    parse,
};

/// The figure each run records, and a band per run learns from.
const FIGURE: &str = "row_count";

/// How many buckets per learned one the series reaches back: room for buckets left out as
/// failed, without reading back to the oldest row of a table that dates one row to 1900.
const LOOKBACK_ROOM: usize = 4;

#[derive(Debug)]
struct VolumeAnomaly {
    table: TableRef,
    filter: Option<String>,
    learning: Learning,
    /// `bucket:`: count per time bucket of a column instead of per run.
    bucket: Option<Bucketing>,
}

/// The rule's `bucket:`.
#[derive(Debug, Clone, PartialEq)]
struct Bucketing {
    column: String,
    every: Every,
    /// `timezone:` as written; `None` reads zone-less times and dates as UTC.
    zone: Option<Tz>,
}

/// How long a bucket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Every {
    Hour,
    Day,
    /// From Monday, as `date_trunc('week', ..)` in PostgreSQL, DataFusion and Trino.
    Week,
}

impl Every {
    const ALL: [Every; 3] = [Every::Hour, Every::Day, Every::Week];

    /// As rules write it, and as `date_trunc` names it.
    fn name(self) -> &'static str {
        match self {
            Every::Hour => "hour",
            Every::Day => "day",
            Every::Week => "week",
        }
    }

    fn adjective(self) -> &'static str {
        match self {
            Every::Hour => "hourly",
            Every::Day => "daily",
            Every::Week => "weekly",
        }
    }

    /// A bucket's length in wall-clock time.
    fn length(self) -> chrono::Duration {
        match self {
            Every::Hour => chrono::Duration::hours(1),
            Every::Day => chrono::Duration::days(1),
            Every::Week => chrono::Duration::weeks(1),
        }
    }

    /// The start of the bucket that holds wall-clock time `at`.
    fn floor(self, at: NaiveDateTime) -> NaiveDateTime {
        let day = at.date();
        match self {
            Every::Hour => day.and_hms_opt(at.hour(), 0, 0).expect("a whole hour"),
            Every::Day => day.and_time(chrono::NaiveTime::MIN),
            Every::Week => (day
                - chrono::Duration::days(day.weekday().num_days_from_monday().into()))
            .and_time(chrono::NaiveTime::MIN),
        }
    }

    /// A bucket's start in words: `2026-11-20`, `2026-11-20 05:00`.
    fn label(self, start: NaiveDateTime) -> String {
        match self {
            Every::Hour => start.format("%Y-%m-%d %H:%M").to_string(),
            Every::Day | Every::Week => start.format("%Y-%m-%d").to_string(),
        }
    }
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let filter = reader.filter("where")?;
    let learning = Learning::parse(reader)?;
    let bucket = read_bucket(reader, &learning)?;
    Ok(Arc::new(VolumeAnomaly {
        table,
        filter,
        learning,
        bucket,
    }))
}

/// `bucket: { column, every, timezone }`, if given.
fn read_bucket(
    reader: &mut CheckReader,
    learning: &Learning,
) -> Result<Option<Bucketing>, RuleError> {
    let Some(node) = reader.map.node("bucket") else {
        return Ok(None);
    };
    let what = format!("`bucket` of {}", reader.what());
    let mut map = MapReader::new(reader.map.context(), node, what.clone())
        .map_err(|e| e.with_help("e.g. `bucket: { column: created_at, every: day }`"))?;
    let column = map.required_string("column", "created_at")?;
    let every = map.required_string("every", "day")?;
    let every = Every::ALL
        .into_iter()
        .find(|e| e.name() == every.value.trim())
        .ok_or_else(|| {
            let names = Every::ALL.map(Every::name);
            RuleError::new(
                every.location.clone(),
                format!("unknown bucket length `{}` in {what}", every.value),
            )
            .with_help(
                suggest(&every.value, names)
                    .unwrap_or_else(|| "write `every: hour`, `day` or `week`".into()),
            )
        })?;
    let zone = match map.string("timezone")? {
        Some(name) => Some(parse_zone(&name, &what)?),
        None => None,
    };
    map.finish()?;
    if every == Every::Week && learning.by_weekday {
        return Err(RuleError::new(
            reader.map.location_of("seasonality"),
            format!(
                "`seasonality: day_of_week` in {} learns from buckets on the judged one's \
                 weekday, and weekly buckets all start on a Monday",
                reader.what()
            ),
        )
        .with_help("remove `seasonality`, or count `every: day`"));
    }
    Ok(Some(Bucketing {
        column: column.value,
        every,
        zone,
    }))
}

impl VolumeAnomaly {
    fn needs(&self) -> ScanNeeds {
        ScanNeeds::new(&self.table, self.filter.as_deref())
            .expression("row_count", "count(*)".into())
    }

    fn cannot_measure(&self, reason: impl Into<String>) -> CheckError {
        CheckError::CannotMeasure {
            table: self.table.clone(),
            reason: reason.into(),
        }
    }

    /// The table's row count against the counts of the check's past runs.
    async fn per_run(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let past = probe.past_runs()?;
        let result = probe.scan(&self.needs()).await?;
        let count = first_i64(&result, &self.table.source, "row_count")?;
        let mut metrics = serde_json::Map::new();
        metrics.insert(FIGURE.into(), json!(count));
        let judged = judge(
            &figures(past, FIGURE),
            count as f64,
            probe.now(),
            &self.learning,
        );
        let (passed, expected, warning) = outcome(&judged, &self.learning, words, &mut metrics);
        Ok(Evaluation {
            passed,
            observed: rows(count as u64),
            expected,
            metrics,
            warning,
            ..Evaluation::default()
        })
    }

    /// The rows of the newest complete bucket against the buckets before it.
    async fn per_bucket(
        &self,
        probe: &Probe,
        bucketing: &Bucketing,
    ) -> Result<Evaluation, CheckError> {
        // Before querying: a history that cannot be read is the check's error.
        let past = probe.past_runs_if_kept()?;
        let Bucketing {
            column,
            every,
            zone,
        } = bucketing;
        let every = *every;
        let columns = probe.columns(&self.table).await?;
        let (dating, zone) = column_dating(
            &columns,
            column,
            *zone,
            "`bucket` counts rows by timestamp and date columns (text orders as text, not as \
             time)",
        )
        .map_err(|reason| self.cannot_measure(reason))?;
        let source = &self.table.source;
        let from = probe.from_clause(&self.table, self.filter.as_deref())?;
        let answer = probe
            .query(
                source,
                format!(
                    "SELECT date_trunc('{}', {}) AS bucket, count(*) AS row_count FROM {from} \
                     GROUP BY 1",
                    every.name(),
                    quote_ident(column)
                ),
            )
            .await?;
        let counts = read_counts(&answer, dating, every, zone)
            .map_err(|reason| CheckError::unexpected_answer(source, reason))?;
        let filtered = if self.filter.is_some() {
            " after `where`"
        } else {
            ""
        };
        if counts.by_start.is_empty() {
            return Err(self.cannot_measure(if counts.undated == 0 {
                format!("it holds no rows{filtered}, so no bucket has rows to learn from")
            } else {
                format!(
                    "every `{column}` is NULL ({}{filtered}), so no row falls in a bucket",
                    rows(counts.undated)
                )
            }));
        }
        let now = probe.now();
        let series = series(
            &counts.by_start,
            every,
            now.with_timezone(&zone).naive_local(),
            zone,
            lookback(&self.learning),
        );
        let failed = past.map_or_else(HashSet::new, |past| failed_buckets(past, every, zone));
        // Buckets are judged by their wall-clock starts, so that `seasonality` reads the
        // bucket's weekday in its own zone.
        let learned: Vec<PastFigure> = series
            .learned
            .iter()
            .map(|bucket| PastFigure {
                at: bucket.start.and_utc(),
                figure: bucket.rows as f64,
                failed: failed.contains(&bucket.start),
            })
            .collect();
        let judged = judge(
            &learned,
            series.judged.rows as f64,
            series.judged.start.and_utc(),
            &self.learning,
        );
        let mut metrics = serde_json::Map::new();
        metrics.insert(FIGURE.into(), json!(series.judged.rows));
        metrics.insert(
            "bucket_start".into(),
            json!(bucket_start(series.judged.start, zone)),
        );
        metrics.insert("bucket_every".into(), json!(every.name()));
        if dating != Dating::Instant {
            metrics.insert("timezone".into(), json!(zone.name()));
        }
        let recent = &series.learned[series.learned.len().saturating_sub(self.learning.runs)..];
        metrics.insert(
            "buckets".into(),
            json!(recent.iter().map(|b| b.rows).collect::<Vec<_>>()),
        );
        let (passed, expected, learning) = outcome_over(
            &format!("{} buckets", every.adjective()),
            &judged,
            &self.learning,
            words,
            &mut metrics,
        );
        let zone_words = match dating {
            Dating::Instant => String::new(),
            Dating::WallClock | Dating::Day => format!(", {}", zone.name()),
        };
        let mut observed = format!(
            "{} on {} ({}{zone_words})",
            rows(series.judged.rows),
            every.label(series.judged.start),
            every.name()
        );
        let mut warnings: Vec<String> = learning.into_iter().collect();
        let future_rows: u64 = series.future.iter().map(|b| b.rows).sum();
        if future_rows > 0 {
            let newest = series
                .future
                .last()
                .map_or(series.judged.start, |b| b.start);
            let future = format!(
                "{} in {} after the run's clock ({}), the newest on {}: clock skew, or \
                 `{column}` read in the wrong zone; not learned from",
                rows(future_rows),
                crate::model::plural(series.future.len(), &format!("{} bucket", every.name())),
                now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                every.label(newest),
            );
            observed.push_str(&format!("; {future}"));
            warnings.push(format!("{} dated after now", rows(future_rows)));
            metrics.insert("future_rows".into(), json!(future_rows));
        }
        if counts.undated > 0 {
            observed.push_str(&format!(
                "; {} with no `{column}`, in no bucket",
                rows(counts.undated)
            ));
            metrics.insert("undated_rows".into(), json!(counts.undated));
        }
        Ok(Evaluation {
            passed,
            observed,
            expected,
            metrics,
            warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
            ..Evaluation::default()
        })
    }
}

/// A figure of rows in words.
fn words(n: f64) -> String {
    rows(n.max(0.0).round() as u64)
}

/// How many buckets before the judged one can matter to its band.
fn lookback(learning: &Learning) -> usize {
    let learned = learning.runs.max(learning.relearn_after.unwrap_or(0));
    LOOKBACK_ROOM * learned * if learning.by_weekday { 7 } else { 1 }
}

/// A bucket's start as runs record it: RFC 3339 in the bucket's zone (`Z` in UTC).
fn bucket_start(start: NaiveDateTime, zone: Tz) -> String {
    start_instant(start, zone)
        .with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The instant a bucket starts; an hour that daylight saving time skips (it holds rows only
/// when the zone is wrong) is taken an hour later.
fn start_instant(start: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    in_zone(start, zone)
        .or_else(|| in_zone(start + chrono::Duration::hours(1), zone))
        .unwrap_or_else(|| start.and_utc())
}

/// The buckets (by wall-clock start) that past runs judged and failed, counting as long as
/// this one.
fn failed_buckets(past: &[PastRun], every: Every, zone: Tz) -> HashSet<NaiveDateTime> {
    past.iter()
        .filter(|run| run.status == "fail")
        .filter(|run| {
            run.metrics.get("bucket_every").and_then(|e| e.as_str()) == Some(every.name())
        })
        .filter_map(|run| run.metrics.get("bucket_start")?.as_str())
        .filter_map(|start| DateTime::parse_from_rfc3339(start).ok())
        .map(|start| start.with_timezone(&zone).naive_local())
        .collect()
}

/// The rows per bucket a source counted.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    /// By bucket start, wall-clock in the bucket's zone.
    by_start: BTreeMap<NaiveDateTime, u64>,
    /// Rows whose column is NULL: in no bucket.
    undated: u64,
}

/// The answer of the bucket query, each bucket checked to start one in `zone`: an engine that
/// truncated in another zone (a column of instants whose type carries a zone other than UTC)
/// would otherwise count hours into the wrong day.
fn read_counts(answer: &Rows, dating: Dating, every: Every, zone: Tz) -> Result<Counts, String> {
    let index = |name: &str| {
        answer
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| format!("query returned no `{name}` column"))
    };
    let (bucket, row_count) = (index("bucket")?, index("row_count")?);
    let mut counts = Counts::default();
    for row in &answer.rows {
        let n = match row.get(row_count).cloned().flatten() {
            None => 0,
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| format!("`row_count` is not a count: `{text}`"))?,
        };
        let Some(text) = row.get(bucket).cloned().flatten() else {
            counts.undated += n;
            continue;
        };
        let start = read_wall_clock(&text, dating).map_err(|reason| format!("bucket {reason}"))?;
        if every.floor(start) != start {
            return Err(format!(
                "bucket `{text}` is not the start of a{} {} in {zone}; the engine truncated \
                 `date_trunc` in another zone",
                if every == Every::Hour { "n" } else { "" },
                every.name()
            ));
        }
        *counts.by_start.entry(start).or_default() += n;
    }
    Ok(counts)
}

/// One bucket: its start (wall-clock in the bucket's zone) and its rows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    start: NaiveDateTime,
    rows: u64,
}

/// What a run judges and learns from, against its clock.
#[derive(Debug, PartialEq)]
struct Series {
    /// The newest complete bucket before the run's clock.
    judged: Bucket,
    /// The buckets before it, oldest first: from the oldest with rows, at most `lookback`
    /// back, those without rows as 0.
    learned: Vec<Bucket>,
    /// Buckets with rows that start after the run's clock, oldest first.
    future: Vec<Bucket>,
}

/// The series of `counts` (by bucket start) at wall-clock time `now` in `zone`.
fn series(
    counts: &BTreeMap<NaiveDateTime, u64>,
    every: Every,
    now: NaiveDateTime,
    zone: Tz,
    lookback: usize,
) -> Series {
    let length = every.length();
    // A bucket is one when it holds rows, or its start occurs in the zone: an hour that
    // daylight saving time skips holds no rows to lose.
    let is_bucket = |start: NaiveDateTime| {
        every != Every::Hour || counts.contains_key(&start) || in_zone(start, zone).is_some()
    };
    let bucket = |start: NaiveDateTime| Bucket {
        start,
        rows: counts.get(&start).copied().unwrap_or(0),
    };
    let mut judged = every.floor(now) - length;
    while !is_bucket(judged) {
        judged -= length;
    }
    let oldest = counts.keys().next().copied().unwrap_or(judged);
    let mut start = oldest.max(judged - length * lookback as i32);
    let mut learned = Vec::new();
    while start < judged {
        if is_bucket(start) {
            learned.push(bucket(start));
        }
        start += length;
    }
    Series {
        judged: bucket(judged),
        learned,
        future: counts
            .range(now..)
            .filter(|(s, _)| **s > now)
            .map(|(s, _)| bucket(*s))
            .collect(),
    }
}

#[async_trait]
impl Check for VolumeAnomaly {
    fn default_name(&self) -> String {
        let base = format!("volume_anomaly {}", self.table);
        let base = match &self.bucket {
            Some(bucket) => format!("{base} per {} of {}", bucket.every.name(), bucket.column),
            None => base,
        };
        name_with_filter(base, self.filter.as_deref())
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    fn scan(&self) -> Option<ScanNeeds> {
        // Per bucket the count is a query of its own, not a figure of a shared scan.
        self.bucket.is_none().then(|| self.needs())
    }

    /// Per run, the band is the past runs'; per bucket the history is read when the run
    /// keeps one, to leave out buckets past runs failed, and not needed otherwise.
    fn learns_from_past(&self) -> bool {
        true
    }

    /// Per bucket: the judged bucket's count, so the chart follows what each run judged.
    fn figure(&self) -> Option<Figure> {
        Some(Figure::new(FIGURE, "row count", Unit::Rows))
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        match &self.bucket {
            Some(bucketing) => self.per_bucket(probe, bucketing).await,
            None => self.per_run(probe).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::anomaly::Judgement;
    use chrono::NaiveDate;
    use rstest::rstest;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .or_else(|_| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(Default::default()))
            })
            .unwrap()
    }

    fn counts(entries: &[(&str, u64)]) -> BTreeMap<NaiveDateTime, u64> {
        entries.iter().map(|(s, n)| (at(s), *n)).collect()
    }

    fn starts(buckets: &[Bucket]) -> Vec<(String, u64)> {
        buckets
            .iter()
            .map(|b| (b.start.format("%Y-%m-%d %H:%M").to_string(), b.rows))
            .collect()
    }

    #[rstest]
    // A daily audit at 06:00 judges yesterday.
    #[case::day("2026-11-21 06:00", Every::Day, "2026-11-20 00:00")]
    // At midnight yesterday has just completed.
    #[case::day_at_midnight("2026-11-21 00:00", Every::Day, "2026-11-20 00:00")]
    #[case::hour("2026-11-21 06:59", Every::Hour, "2026-11-21 05:00")]
    // 2026-11-21 is a Saturday: the week before the one from Monday 2026-11-16.
    #[case::week("2026-11-21 06:00", Every::Week, "2026-11-09 00:00")]
    #[case::week_on_monday("2026-11-16 00:00", Every::Week, "2026-11-09 00:00")]
    fn the_newest_complete_bucket_before_now_is_judged(
        #[case] now: &str,
        #[case] every: Every,
        #[case] judged: &str,
    ) {
        let series = series(&counts(&[("2026-01-05", 1)]), every, at(now), Tz::UTC, 120);
        assert_eq!(
            series.judged.start.format("%Y-%m-%d %H:%M").to_string(),
            judged
        );
    }

    #[test]
    fn days_without_rows_count_as_zero() {
        let series = series(
            &counts(&[
                ("2026-11-15", 10),
                ("2026-11-16", 12),
                ("2026-11-18", 11),
                ("2026-11-20", 9),
            ]),
            Every::Day,
            at("2026-11-22 06:00"),
            Tz::UTC,
            120,
        );
        assert_eq!(
            starts(&series.learned),
            [
                ("2026-11-15 00:00".into(), 10),
                ("2026-11-16 00:00".into(), 12),
                ("2026-11-17 00:00".into(), 0),
                ("2026-11-18 00:00".into(), 11),
                ("2026-11-19 00:00".into(), 0),
                ("2026-11-20 00:00".into(), 9),
            ]
        );
        // The lost day itself is judged, with 0 rows.
        assert_eq!(
            series.judged,
            Bucket {
                start: at("2026-11-21"),
                rows: 0
            }
        );
        assert!(series.future.is_empty());
    }

    #[test]
    fn the_series_starts_at_the_oldest_rows_and_reaches_back_at_most_lookback() {
        let data = counts(&[("1900-01-01", 1), ("2026-11-01", 5)]);
        let old = series(&data, Every::Day, at("2026-11-21 06:00"), Tz::UTC, 8);
        assert_eq!(old.learned.len(), 8);
        assert_eq!(old.learned[0].start, at("2026-11-12"));
        // A table whose first rows came after the judged bucket has nothing learned.
        let data = counts(&[("2026-11-21", 5)]);
        let young = series(&data, Every::Day, at("2026-11-21 06:00"), Tz::UTC, 8);
        assert!(young.learned.is_empty());
        assert_eq!(young.judged.rows, 0);
    }

    #[test]
    fn weekly_and_hourly_buckets_step_by_their_length() {
        let weekly = series(
            &counts(&[("2026-10-26", 70), ("2026-11-09", 71)]),
            Every::Week,
            at("2026-11-25 12:00"),
            Tz::UTC,
            120,
        );
        assert_eq!(
            starts(&weekly.learned),
            [
                ("2026-10-26 00:00".into(), 70),
                ("2026-11-02 00:00".into(), 0),
                ("2026-11-09 00:00".into(), 71),
            ]
        );
        assert_eq!(weekly.judged.start, at("2026-11-16"));
        let hourly = series(
            &counts(&[("2026-11-21 01:00", 3), ("2026-11-21 03:00", 4)]),
            Every::Hour,
            at("2026-11-21 05:30"),
            Tz::UTC,
            120,
        );
        assert_eq!(
            starts(&hourly.learned),
            [
                ("2026-11-21 01:00".into(), 3),
                ("2026-11-21 02:00".into(), 0),
                ("2026-11-21 03:00".into(), 4),
            ]
        );
        assert_eq!(hourly.judged.start, at("2026-11-21 04:00"));
    }

    #[test]
    fn an_hour_daylight_saving_time_skips_is_no_bucket() {
        // Chicago skips 02:00-03:00 on 2026-03-08.
        let hourly = series(
            &counts(&[("2026-03-08 00:00", 3)]),
            Every::Hour,
            at("2026-03-08 04:10"),
            chrono_tz::America::Chicago,
            120,
        );
        assert_eq!(
            starts(&hourly.learned),
            [
                ("2026-03-08 00:00".into(), 3),
                ("2026-03-08 01:00".into(), 0)
            ]
        );
        assert_eq!(hourly.judged.start, at("2026-03-08 03:00"));
        let just_after = series(
            &counts(&[("2026-03-08 00:00", 3)]),
            Every::Hour,
            at("2026-03-08 03:10"),
            chrono_tz::America::Chicago,
            120,
        );
        assert_eq!(just_after.judged.start, at("2026-03-08 01:00"));
    }

    #[test]
    fn buckets_after_now_are_future_and_the_current_one_is_neither() {
        let series = series(
            &counts(&[
                ("2026-11-19", 10),
                ("2026-11-20", 11),
                ("2026-11-21", 4),
                ("2026-11-22", 7),
                ("2026-11-25", 1),
            ]),
            Every::Day,
            at("2026-11-21 06:00"),
            Tz::UTC,
            120,
        );
        assert_eq!(series.judged.rows, 11);
        assert_eq!(starts(&series.learned), [("2026-11-19 00:00".into(), 10)]);
        assert_eq!(
            starts(&series.future),
            [
                ("2026-11-22 00:00".into(), 7),
                ("2026-11-25 00:00".into(), 1)
            ]
        );
    }

    fn answer(rows: &[(Option<&str>, &str)]) -> Rows {
        Rows {
            columns: vec!["bucket".into(), "row_count".into()],
            rows: rows
                .iter()
                .map(|(b, n)| vec![b.map(String::from), Some(n.to_string())])
                .collect(),
        }
    }

    #[test]
    fn answers_read_as_counts_by_start_with_undated_rows_apart() {
        let read = read_counts(
            &answer(&[
                (Some("2026-11-20 00:00:00+00"), "5"),
                (None, "2"),
                (Some("2026-11-19 00:00:00+00"), "3"),
            ]),
            Dating::Day,
            Every::Day,
            Tz::UTC,
        )
        .unwrap();
        assert_eq!(
            read.by_start,
            counts(&[("2026-11-19", 3), ("2026-11-20", 5)])
        );
        assert_eq!(read.undated, 2);
    }

    #[rstest]
    #[case::off_the_grid(
        "2026-11-19T22:00:00Z",
        "bucket `2026-11-19T22:00:00Z` is not the start of a day in UTC"
    )]
    #[case::not_a_time("soon", "bucket `soon` is not a timestamp with a zone")]
    fn answers_that_are_no_bucket_are_errors(#[case] bucket: &str, #[case] message: &str) {
        let error = read_counts(
            &answer(&[(Some(bucket), "1")]),
            Dating::Instant,
            Every::Day,
            Tz::UTC,
        )
        .unwrap_err();
        assert!(error.contains(message), "{error}");
    }

    #[test]
    fn failed_runs_name_the_buckets_they_judged() {
        let run = |status: &str, every: &str, start: &str| PastRun {
            at: Utc::now(),
            status: status.into(),
            metrics: [
                ("bucket_every".to_string(), json!(every)),
                ("bucket_start".to_string(), json!(start)),
            ]
            .into_iter()
            .collect(),
        };
        let past = [
            run("fail", "day", "2026-11-19T00:00:00-06:00"),
            run("pass", "day", "2026-11-20T00:00:00-06:00"),
            run("fail", "hour", "2026-11-18T00:00:00-06:00"),
        ];
        let failed = failed_buckets(&past, Every::Day, chrono_tz::America::Chicago);
        assert_eq!(failed, HashSet::from([at("2026-11-19")]));
        assert_eq!(
            bucket_start(at("2026-11-19"), chrono_tz::America::Chicago),
            "2026-11-19T00:00:00-06:00"
        );
        assert_eq!(
            bucket_start(at("2026-11-19"), Tz::UTC),
            "2026-11-19T00:00:00Z"
        );
    }

    /// A lost day of loads among normal ones fails; a half-size day fails; a normal day
    /// passes; a failed day is left out of what the next days learn.
    #[test]
    fn a_zero_day_fails_and_a_failed_day_is_left_out() {
        let normal = [1000, 1030, 980, 1010, 995, 1020, 990, 1005, 1015, 985];
        let learning = Learning::default();
        let day = |n: i64| at("2026-11-01") + chrono::Duration::days(n);
        let mut data: BTreeMap<NaiveDateTime, u64> = normal
            .iter()
            .enumerate()
            .map(|(i, n)| (day(i as i64), *n))
            .collect();
        data.insert(day(11), 1000); // day 10 lost
        let judged =
            |now: NaiveDateTime, data: &BTreeMap<NaiveDateTime, u64>, failed: &[NaiveDateTime]| {
                let series = series(data, Every::Day, now, Tz::UTC, lookback(&learning));
                let learned: Vec<PastFigure> = series
                    .learned
                    .iter()
                    .map(|b| PastFigure {
                        at: b.start.and_utc(),
                        figure: b.rows as f64,
                        failed: failed.contains(&b.start),
                    })
                    .collect();
                judge(
                    &learned,
                    series.judged.rows as f64,
                    series.judged.start.and_utc(),
                    &learning,
                )
            };
        let lost = judged(day(11) + chrono::Duration::hours(6), &data, &[]);
        assert!(matches!(lost, Judgement::Outside(_)), "{lost:?}");
        let next = judged(day(12) + chrono::Duration::hours(6), &data, &[day(10)]);
        let Judgement::Within(band) = next else {
            panic!("{next:?}")
        };
        assert_eq!(band.runs, 10, "the failed zero day is not learned from");
    }
}
