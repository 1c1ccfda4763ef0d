//! `freshness`: how old the newest data of a table is. It fails past `error_after`, warns past
//! `warn_after`, and fails when the newest time lies more than `max_skew` in the future.
//!
//! What is dated, by option (at most one; none means `commit`):
//! - `column: <name>`: the largest value of a timestamp or date column (after `where`), pushed
//!   down as `max()`. Times without a zone, and dates (as their midnight), are read in
//!   `timezone:` (an IANA name, default UTC).
//! - `commit: true`: the table's own record of its last change: a Delta or Hudi table's last
//!   commit, or for an AWS DMS raw zone its newest change file (`TableFormat::newest_change`).
//! - `arrival: true`: the newest object below the table's folder in a lake, by its last-modified
//!   time (CSV drops from DataSync).
//!
//! Ages are measured against the run's clock (`lakecheck run --now` fixes it). A newest time in
//! the future is not fresh: beyond `max_skew` (default 60s, for clocks that disagree a little) it
//! fails, naming the likely time-zone cause. The usual one is a zone: a Hudi timeline kept in the
//! writer's local time (`hoodie.table.timeline.timezone=LOCAL`) read in a zone east of it shows
//! commits hours ahead, and zone-less timestamps read in the wrong `timezone:` shift by hours;
//! either way a stalled pipeline would otherwise read as fresh. Nothing to date (no rows, no
//! commit, no file) is an error, never a pass.
//!
//! `commit_freshness`, the kind this one grew from, remains as an alias measuring `commit` with
//! `max_age` as `error_after`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::anomaly::{figures, judge as judge_learned, outcome, Learning};
use super::row_predicate::rows;
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation};
use crate::model::dating::{column_dating, parse_zone, read_time, Dating};
use crate::model::sql::quote_ident;
use crate::model::{format_duration, Figure, RuleError, TableRef, Unit};
use crate::probe::{first_i64, CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "freshness",
    summary: "the newest data of a table (a timestamp column, the last commit, the newest file) \
              is no older than error_after",
    parse,
};

/// `commit_freshness`, kept for rule files written before `freshness`: the last commit of a
/// Delta or Hudi table (or the newest change of a DMS table), `max_age` for `error_after`.
pub const COMMIT_FRESHNESS: CheckKind = CheckKind {
    name: "commit_freshness",
    summary: "alias of `freshness` dating a table by its last commit, `max_age` for error_after",
    parse: parse_commit_freshness,
};

/// `freshness_anomaly`: the same measures, judged against the band of lags learned from the
/// check's past runs (`checks/anomaly.rs`) instead of fixed limits.
pub const FRESHNESS_ANOMALY: CheckKind = CheckKind {
    name: "freshness_anomaly",
    summary: "how old a table's newest data is lies within the band learned from the check's \
              past runs (`run --history`)",
    parse: parse_freshness_anomaly,
};

/// The figure each run records, and `freshness_anomaly` learns from.
const LAG: &str = "lag_seconds";

/// Default `max_skew`: clocks of writers and readers may disagree by this much.
const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Freshness {
    /// The kind the rule named (`freshness` or its alias), for the default name.
    kind: &'static str,
    table: TableRef,
    measure: Measure,
    limits: Limits,
    /// `freshness_anomaly`: the lag is judged against a band learned from past runs.
    learned: Option<Learning>,
}

/// What a table is dated by.
#[derive(Debug, Clone, PartialEq)]
enum Measure {
    /// The largest value of a timestamp or date column, after an optional row filter.
    Column {
        column: String,
        filter: Option<String>,
        /// `timezone:` as written; `None` reads zone-less times as UTC.
        zone: Option<Tz>,
    },
    /// The table's own record: a Delta or Hudi commit, a DMS change.
    Commit,
    /// The newest object stored below the table's folder.
    Arrival,
}

impl Measure {
    fn name(&self) -> &'static str {
        match self {
            Measure::Column { .. } => "column",
            Measure::Commit => "commit",
            Measure::Arrival => "arrival",
        }
    }
}

/// The limits a lag is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    warn_after: Option<Duration>,
    error_after: Option<Duration>,
    /// How far in the future the newest time may lie (clock skew) before it is a failure.
    max_skew: Duration,
}

/// Where a lag stands against its [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Fresh,
    /// Older than `warn_after`, within `error_after`.
    Late,
    /// Older than `error_after`.
    Stale,
    /// Further in the future than `max_skew`.
    InFuture,
}

/// Judges `lag` (now minus the newest time; negative when that lies in the future). A lag equal
/// to a limit is within it.
fn judge(lag: chrono::Duration, limits: &Limits) -> Verdict {
    let exceeds = |limit: Option<Duration>, by: chrono::Duration| {
        limit.is_some_and(|limit| {
            by > chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX)
        })
    };
    if exceeds(Some(limits.max_skew), -lag) {
        Verdict::InFuture
    } else if exceeds(limits.error_after, lag) {
        Verdict::Stale
    } else if exceeds(limits.warn_after, lag) {
        Verdict::Late
    } else {
        Verdict::Fresh
    }
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let measure = read_measure(reader)?;
    let limits = read_limits(reader, "error_after")?;
    Ok(Arc::new(Freshness {
        kind: KIND.name,
        table,
        measure,
        limits,
        learned: None,
    }))
}

fn parse_freshness_anomaly(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let measure = read_measure(reader)?;
    let max_skew = reader.map.duration("max_skew")?;
    let learning = Learning::parse(reader)?;
    Ok(Arc::new(Freshness {
        kind: FRESHNESS_ANOMALY.name,
        table,
        measure,
        limits: Limits {
            warn_after: None,
            error_after: None,
            max_skew: max_skew.map_or(DEFAULT_MAX_SKEW, |s| s.value),
        },
        learned: Some(learning),
    }))
}

fn parse_commit_freshness(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    if let Some(now) = reader.map.string("now")? {
        return Err(RuleError::new(
            now.location,
            format!(
                "`now` in {} is no longer a check option: the clock is the run's",
                reader.what()
            ),
        )
        .with_help(format!(
            "remove `now` and run `lakecheck run --now {}`",
            now.value
        )));
    }
    let limits = read_limits(reader, "max_age")?;
    Ok(Arc::new(Freshness {
        kind: COMMIT_FRESHNESS.name,
        table,
        measure: Measure::Commit,
        limits,
        learned: None,
    }))
}

/// The measure option (`column`, `commit`, `arrival`; none means `commit`), with the options
/// that belong to `column` only.
fn read_measure(reader: &mut CheckReader) -> Result<Measure, RuleError> {
    let column = reader.map.string("column")?;
    let commit = reader.map.bool("commit")?;
    let arrival = reader.map.bool("arrival")?;
    let filter = reader.map.string("where")?;
    let timezone = reader.map.string("timezone")?;
    let mut named: Vec<(&str, crate::model::Location)> = Vec::new();
    if let Some(column) = &column {
        named.push(("column", column.location.clone()));
    }
    for (key, flag) in [("commit", &commit), ("arrival", &arrival)] {
        match flag {
            Some(flag) if !flag.value => {
                return Err(RuleError::new(
                    flag.location.clone(),
                    format!("`{key}: false` in {} names no measure", reader.what()),
                )
                .with_help(format!(
                    "remove it (without a measure a Delta, Hudi or DMS table is dated by its last \
                     commit), or write `{key}: true`"
                )));
            }
            Some(flag) => named.push((key, flag.location.clone())),
            None => {}
        }
    }
    if let [(first, _), (second, location), ..] = named.as_slice() {
        return Err(RuleError::new(
            location.clone(),
            format!(
                "{} names two measures, `{first}` and `{second}`",
                reader.what()
            ),
        )
        .with_help(
            "give one: `column:` dates by a timestamp column, `commit: true` by the last commit \
             or change, `arrival: true` by the newest file",
        ));
    }
    let Some(column) = column else {
        if let Some(option) = filter.as_ref().or(timezone.as_ref()) {
            let key = if filter.is_some() {
                "where"
            } else {
                "timezone"
            };
            return Err(RuleError::new(
                option.location.clone(),
                format!(
                    "`{key}` in {} applies to `column:`, and the check dates no column",
                    reader.what()
                ),
            )
            .with_help(format!(
                "add `column: <timestamp column>`, or remove `{key}`"
            )));
        }
        return Ok(if arrival.is_some() {
            Measure::Arrival
        } else {
            Measure::Commit
        });
    };
    let zone = match timezone {
        None => None,
        Some(name) => Some(parse_zone(&name, reader.what())?),
    };
    Ok(Measure::Column {
        column: column.value,
        filter: filter.map(|f| f.value),
        zone,
    })
}

/// `warn_after`, `error_after` (the alias calls it `max_age`) and `max_skew`; at least one of the
/// first two, and `warn_after` shorter than `error_after`.
fn read_limits(reader: &mut CheckReader, error_key: &'static str) -> Result<Limits, RuleError> {
    let error_after = reader.map.duration(error_key)?;
    let warn_after = reader.map.duration("warn_after")?;
    let max_skew = reader
        .map
        .duration("max_skew")?
        .map_or(DEFAULT_MAX_SKEW, |d| d.value);
    match (&warn_after, &error_after) {
        (None, None) => {
            return Err(RuleError::new(
                reader.map.location(),
                format!("{} is missing required field `{error_key}`", reader.what()),
            )
            .with_help(format!(
                "add `{error_key}: 15m` (and `warn_after: 10m` to warn first)"
            )))
        }
        (Some(warn), Some(error)) if warn.value >= error.value => {
            return Err(RuleError::new(
                warn.location.clone(),
                format!(
                    "`warn_after` ({}) in {} is not shorter than `{error_key}` ({})",
                    format_duration(warn.value),
                    reader.what(),
                    format_duration(error.value)
                ),
            )
            .with_help(format!(
                "a check warns past `warn_after` and fails past `{error_key}`: make `warn_after` \
                 the shorter"
            )))
        }
        _ => {}
    }
    Ok(Limits {
        warn_after: warn_after.map(|d| d.value),
        error_after: error_after.map(|d| d.value),
        max_skew,
    })
}

/// The newest time a table is dated by, and what a reader needs to judge it.
struct Newest {
    at: DateTime<Utc>,
    /// What is dated, in words: "newest updated_at", "last commit", "newest file".
    subject: String,
    /// Where the time was read, when that is more than the table (a file).
    origin: Option<String>,
    /// Why the time may lie in the future, for this measure.
    future_cause: String,
    /// Figures of the measure (the zone a column is read in).
    metrics: serde_json::Map<String, serde_json::Value>,
}

/// Why a newest time may lie in the future, for a column read as `dating` in `zone`.
fn column_future_cause(column: &str, dating: Dating, zone: Tz) -> String {
    match dating {
        Dating::Instant => format!(
            "`{column}` holds instants: the writer's clock runs ahead of this machine's, or it \
             stored local times as UTC; or `--now` is set before them"
        ),
        Dating::WallClock => format!(
            "`{column}` holds times without a zone, read in {zone} (`timezone:`): if they were \
             written in a zone east of it, set `timezone:` to the writer's zone; otherwise the \
             writer's clock runs ahead of this machine's, or `--now` is set before them"
        ),
        Dating::Day => format!(
            "`{column}` holds dates, read as their midnight in {zone} (`timezone:`): if the \
             writer's day starts earlier, set `timezone:` to its zone; otherwise `--now` is set \
             before them"
        ),
    }
}

/// Why a last commit may lie in the future, for the table's format (`metadata` as the source
/// reports it).
fn commit_future_cause(metadata: &serde_json::Value) -> String {
    match metadata["format"].as_str() {
        Some("hudi") => format!(
            "Hudi instants are wall-clock times in the table's timeline zone \
             (`hoodie.table.timeline.timezone`, here {}), and a LOCAL timeline is read in the zone \
             lakecheck runs in: if the writer ran in another time zone (AWS Glue writes in UTC), \
             run lakecheck with `TZ=<the writer's zone>`, or have the writer record \
             `hoodie.table.timeline.timezone=UTC`; otherwise the writer's clock runs ahead of \
             this machine's",
            metadata["timeline_timezone"].as_str().unwrap_or("LOCAL")
        ),
        _ => "the writer's clock (or the time zone it stamped commits in) runs ahead of this \
              machine's, or `--now` is set before the commit"
            .to_string(),
    }
}

/// A signed duration in rule words, whole seconds: `7m12s`, `-1h`.
fn words(duration: chrono::Duration) -> String {
    let seconds = duration.num_seconds();
    let text = format_duration(Duration::from_secs(seconds.unsigned_abs()));
    if seconds < 0 {
        format!("-{text}")
    } else {
        text
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl Freshness {
    async fn newest(&self, probe: &Probe) -> Result<Newest, CheckError> {
        match &self.measure {
            Measure::Column {
                column,
                filter,
                zone,
            } => {
                self.newest_value(probe, column, filter.as_deref(), *zone)
                    .await
            }
            Measure::Commit => self.last_commit(probe).await,
            Measure::Arrival => self.newest_object(probe).await,
        }
    }

    fn cannot_measure(&self, reason: impl Into<String>) -> CheckError {
        CheckError::CannotMeasure {
            table: self.table.clone(),
            reason: reason.into(),
        }
    }

    /// The largest value of `column`, pushed down as `max()`.
    async fn newest_value(
        &self,
        probe: &Probe,
        column: &str,
        filter: Option<&str>,
        zone: Option<Tz>,
    ) -> Result<Newest, CheckError> {
        let columns = probe.columns(&self.table).await?;
        let (dating, zone) = column_dating(
            &columns,
            column,
            zone,
            "freshness dates timestamp and date columns (text orders as text, not as time)",
        )
        .map_err(|reason| self.cannot_measure(reason))?;
        let source = &self.table.source;
        let from = probe.from_clause(&self.table, filter)?;
        let answer = probe
            .query(
                source,
                format!("SELECT max({}) AS newest FROM {from}", quote_ident(column)),
            )
            .await?;
        let Some(text) = answer.first("newest") else {
            let count = probe
                .query(source, format!("SELECT count(*) AS row_count FROM {from}"))
                .await?;
            let count = first_i64(&count, source, "row_count")?;
            let filtered = if filter.is_some() {
                " after `where`"
            } else {
                ""
            };
            return Err(self.cannot_measure(if count == 0 {
                format!("it holds no rows{filtered}, so nothing dates it")
            } else {
                format!(
                    "every `{column}` is NULL ({}{filtered}), so nothing dates it",
                    rows(count as u64)
                )
            }));
        };
        let at = read_time(text, dating, zone).map_err(|reason| {
            CheckError::unexpected_answer(source, format!("newest `{column}`: {reason}"))
        })?;
        let mut metrics = serde_json::Map::new();
        metrics.insert("column".into(), json!(column));
        if dating != Dating::Instant {
            metrics.insert("timezone".into(), json!(zone.name()));
        }
        Ok(Newest {
            at,
            subject: format!("newest {column}"),
            origin: None,
            future_cause: column_future_cause(column, dating, zone),
            metrics,
        })
    }

    /// The table's own record: a DMS raw zone's newest change, else a Delta or Hudi table's
    /// last commit.
    async fn last_commit(&self, probe: &Probe) -> Result<Newest, CheckError> {
        let source = probe.source(&self.table.source)?;
        if let Some(change) = source.newest_change(&self.table.table).await? {
            return Ok(Newest {
                at: change.at,
                subject: "newest change".into(),
                origin: Some(change.origin),
                future_cause: "DMS writes commit times and file names in UTC: the source \
                               database's or the replication instance's clock runs ahead of this \
                               machine's, or `--now` is set before the change"
                    .into(),
                metrics: serde_json::Map::new(),
            });
        }
        let Some(metadata) = source.table_metadata(&self.table.table).await? else {
            return Err(self.cannot_measure(format!(
                "source `{}` ({}) records no commits or changes of its tables; date the table by \
                 a timestamp column (`column:`) or, in a lake, by its newest file (`arrival: \
                 true`), or point at a Delta, Hudi or DMS table",
                source.name(),
                source.describe()
            )));
        };
        let at = metadata["last_commit"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| CheckError::NoCommitTime {
                table: self.table.clone(),
            })?;
        let mut metrics = serde_json::Map::new();
        if let Some(zone) = metadata.get("timeline_timezone") {
            metrics.insert("timeline_timezone".into(), zone.clone());
        }
        Ok(Newest {
            at,
            subject: "last commit".into(),
            origin: None,
            future_cause: commit_future_cause(&metadata),
            metrics,
        })
    }

    /// The newest object below the table's folder.
    async fn newest_object(&self, probe: &Probe) -> Result<Newest, CheckError> {
        let source = probe.source(&self.table.source)?;
        let Some(object) = source.newest_object(&self.table.table).await? else {
            return Err(self.cannot_measure(format!(
                "source `{}` ({}) keeps no files; `arrival` dates a lake table folder by its newest \
                 file",
                source.name(),
                source.kind()
            )));
        };
        Ok(Newest {
            at: object.at,
            subject: "newest file".into(),
            origin: Some(object.origin),
            future_cause: "the storage stamps last-modified times with its own clock, which runs \
                           ahead of this machine's, or `--now` is set before the arrival"
                .into(),
            metrics: serde_json::Map::new(),
        })
    }

    /// What the rule asks for, in words.
    fn expected(&self, subject: &str) -> String {
        let Limits {
            warn_after,
            error_after,
            max_skew,
        } = self.limits;
        let age = match (warn_after, error_after) {
            (Some(warn), Some(error)) => format!(
                "no older than {} (warn past {})",
                format_duration(error),
                format_duration(warn)
            ),
            (None, Some(error)) => format!("no older than {}", format_duration(error)),
            (Some(warn), None) => format!("no older than {} (warn only)", format_duration(warn)),
            (None, None) => "of any age".into(),
        };
        format!(
            "{subject} {age}, and no more than {} in the future",
            format_duration(max_skew)
        )
    }
}

#[async_trait]
impl Check for Freshness {
    fn default_name(&self) -> String {
        let base = format!("{} {}", self.kind, self.table);
        match &self.measure {
            Measure::Column { column, filter, .. } => {
                name_with_filter(format!("{base} by {column}"), filter.as_deref())
            }
            Measure::Arrival => format!("{base} by arrival"),
            Measure::Commit => base,
        }
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    fn learns_from_past(&self) -> bool {
        self.learned.is_some()
    }

    fn figure(&self) -> Option<Figure> {
        let seconds = |limit: Option<Duration>| limit.map(|d| d.as_secs_f64());
        Some(
            Figure::new("lag_seconds", "lag", Unit::Seconds)
                .limit("warn_after", seconds(self.limits.warn_after))
                .limit("error_after", seconds(self.limits.error_after)),
        )
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        // Before measuring: without a history there is nothing to judge by.
        let past = match self.learned {
            Some(_) => Some(probe.past_runs()?),
            None => None,
        };
        let newest = self.newest(probe).await?;
        let now = probe.now();
        let lag = now - newest.at;
        let verdict = judge(lag, &self.limits);
        let at = match &newest.origin {
            Some(origin) => format!("{}, {origin}", rfc3339(newest.at)),
            None => rfc3339(newest.at),
        };
        let skew = format_duration(self.limits.max_skew);
        let subject = &newest.subject;
        let observed = if verdict == Verdict::InFuture {
            format!(
                "{subject} {} in the future ({at}, now {}), beyond max_skew {skew}: {}",
                words(-lag),
                rfc3339(now),
                newest.future_cause
            )
        } else if lag < chrono::Duration::zero() {
            format!(
                "{subject} {} in the future ({at}), within max_skew {skew}",
                words(-lag)
            )
        } else {
            format!("{subject} {} old ({at})", words(lag))
        };
        let mut metrics = serde_json::Map::new();
        metrics.insert("measure".into(), json!(self.measure.name()));
        // `newest` right before `lag_seconds`, names stable: run histories read them.
        metrics.insert("newest".into(), json!(rfc3339(newest.at)));
        metrics.insert(
            "lag_seconds".into(),
            json!(lag.num_milliseconds() as f64 / 1000.0),
        );
        metrics.insert("now".into(), json!(rfc3339(now)));
        if let Some(origin) = &newest.origin {
            metrics.insert("origin".into(), json!(origin));
        }
        let limits = [
            ("warn_after_seconds", self.limits.warn_after),
            ("error_after_seconds", self.limits.error_after),
            ("max_skew_seconds", Some(self.limits.max_skew)),
        ];
        for (key, limit) in limits {
            if let Some(limit) = limit {
                metrics.insert(key.into(), json!(limit.as_secs_f64()));
            }
        }
        metrics.insert("in_future".into(), json!(verdict == Verdict::InFuture));
        metrics.extend(newest.metrics);
        if let (Some(learning), Some(past)) = (&self.learned, past) {
            let lag_seconds = lag.num_milliseconds() as f64 / 1000.0;
            let judged = judge_learned(&figures(past, LAG), lag_seconds, now, learning);
            let (within, expected, warning) = outcome(
                &judged,
                learning,
                |s| words(chrono::Duration::seconds(s.round() as i64)),
                &mut metrics,
            );
            return Ok(Evaluation {
                passed: within && verdict != Verdict::InFuture,
                expected: format!("{subject} aged {expected}"),
                observed,
                metrics,
                warning,
                ..Evaluation::default()
            });
        }
        Ok(Evaluation {
            passed: matches!(verdict, Verdict::Fresh | Verdict::Late),
            expected: self.expected(subject),
            observed,
            failing_rows: None,
            samples: None,
            failures: None,
            metrics,
            warning: (verdict == Verdict::Late).then(|| {
                format!(
                    "older than warn_after {}",
                    format_duration(self.limits.warn_after.unwrap_or_default())
                )
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn limits(warn: Option<u64>, error: Option<u64>, skew: u64) -> Limits {
        Limits {
            warn_after: warn.map(Duration::from_secs),
            error_after: error.map(Duration::from_secs),
            max_skew: Duration::from_secs(skew),
        }
    }

    #[rstest]
    #[case::fresh(60, Verdict::Fresh)]
    #[case::at_warn_after(600, Verdict::Fresh)]
    #[case::past_warn_after(601, Verdict::Late)]
    #[case::at_error_after(900, Verdict::Late)]
    #[case::past_error_after(901, Verdict::Stale)]
    #[case::zero(0, Verdict::Fresh)]
    #[case::within_skew(-60, Verdict::Fresh)]
    #[case::beyond_skew(-61, Verdict::InFuture)]
    #[case::hours_ahead(-3 * 3600, Verdict::InFuture)]
    fn lags_are_judged_against_the_limits(#[case] lag: i64, #[case] verdict: Verdict) {
        let limits = limits(Some(600), Some(900), 60);
        assert_eq!(judge(chrono::Duration::seconds(lag), &limits), verdict);
    }

    #[test]
    fn a_limit_left_out_is_never_crossed() {
        let warn_only = limits(Some(600), None, 60);
        assert_eq!(
            judge(chrono::Duration::days(400), &warn_only),
            Verdict::Late
        );
        let error_only = limits(None, Some(900), 60);
        assert_eq!(
            judge(chrono::Duration::seconds(899), &error_only),
            Verdict::Fresh
        );
        assert_eq!(
            judge(chrono::Duration::seconds(901), &error_only),
            Verdict::Stale
        );
        let no_skew = limits(None, Some(900), 0);
        assert_eq!(
            judge(chrono::Duration::milliseconds(-1), &no_skew),
            Verdict::InFuture
        );
    }

    #[rstest]
    #[case(0, "0s")]
    #[case(432, "7m12s")]
    #[case(3600 + 5 * 60 + 3, "1h5m3s")]
    #[case(2 * 86_400 + 3600, "2d1h")]
    #[case(-90, "-1m30s")]
    fn lags_read_as_rule_durations(#[case] seconds: i64, #[case] expected: &str) {
        assert_eq!(words(chrono::Duration::seconds(seconds)), expected);
    }

    #[test]
    fn a_future_hudi_commit_names_the_timeline_zone_and_tz() {
        let cause = commit_future_cause(&json!({
            "format": "hudi",
            "timeline_timezone": "LOCAL (TZ=Etc/GMT-14, UTC+14:00)"
        }));
        assert!(
            cause.contains(
                "`hoodie.table.timeline.timezone`, here LOCAL (TZ=Etc/GMT-14, UTC+14:00)"
            ),
            "{cause}"
        );
        assert!(cause.contains("`TZ=<the writer's zone>`"), "{cause}");
        let delta = commit_future_cause(&json!({ "format": "delta" }));
        assert!(delta.contains("time zone"), "{delta}");
        assert!(!delta.contains("hoodie"), "{delta}");
    }

    #[test]
    fn a_future_wall_clock_names_the_zone_it_was_read_in() {
        let cause = column_future_cause("updated_at", Dating::WallClock, chrono_tz::UTC);
        assert!(
            cause.contains("read in UTC (`timezone:`)")
                && cause.contains("set `timezone:` to the writer's zone"),
            "{cause}"
        );
    }
}
