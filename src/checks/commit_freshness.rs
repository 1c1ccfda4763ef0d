//! `commit_freshness`: the last commit of a table-format table (Delta, Hudi) is recent
//! enough. `now` can be fixed in the rule, for tests and for auditing a past moment.
//!
//! A last commit in the future is not fresh: beyond `max_skew` (default 60s, for clocks that
//! disagree a little) it fails. The usual cause is a time zone: a Hudi timeline kept in the
//! writer's local time (`hoodie.table.timeline.timezone=LOCAL`) read in a zone east of it shows
//! commits hours ahead, and a stalled pipeline would otherwise read as fresh.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Check, CheckKind, CheckReader, Evaluation};
use crate::model::RuleError;
use crate::model::TableRef;
use crate::probe::{CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "commit_freshness",
    summary: "a Delta or Hudi table's last commit is no older than max_age",
    parse,
};

#[derive(Debug)]
struct CommitFreshness {
    table: TableRef,
    max_age: Duration,
    /// How far in the future a commit may lie (clock skew) before it is a failure.
    max_skew: Duration,
    now: Option<DateTime<Utc>>,
}

/// Default `max_skew`: clocks of writers and readers may disagree by this much.
const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(60);

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let max_age = reader.map.duration("max_age")?.ok_or_else(|| {
        RuleError::new(
            reader.map.location(),
            format!("{} is missing required field `max_age`", reader.what()),
        )
        .with_help("add `max_age: 15m`")
    })?;
    let max_skew = reader
        .map
        .duration("max_skew")?
        .map_or(DEFAULT_MAX_SKEW, |d| d.value);
    let now = match reader.map.string("now")? {
        None => None,
        Some(text) => Some(
            DateTime::parse_from_rfc3339(&text.value)
                .map_err(|e| {
                    RuleError::new(
                        text.location.clone(),
                        format!("`now` is not an RFC 3339 time: {e}"),
                    )
                })?
                .with_timezone(&Utc),
        ),
    };
    Ok(Arc::new(CommitFreshness {
        table,
        max_age: max_age.value,
        max_skew,
        now,
    }))
}

/// Why a commit may lie in the future, for the table's format (`metadata` as the source reports
/// it).
fn future_commit_cause(metadata: &serde_json::Value) -> String {
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
              machine's, or `now:` is set before the commit"
            .to_string(),
    }
}

/// `1h 5m 3s` style.
fn human(duration: chrono::Duration) -> String {
    let total = duration.num_seconds();
    let (sign, total) = if total < 0 {
        ("-", -total)
    } else {
        ("", total)
    };
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    format!("{sign}{}", parts.join(" "))
}

#[async_trait]
impl Check for CommitFreshness {
    fn default_name(&self) -> String {
        format!("commit_freshness {}", self.table)
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let source = probe.source(&self.table.source)?;
        let metadata = source
            .table_metadata(&self.table.table)
            .await?
            .ok_or_else(|| CheckError::NoCommitHistory {
                source_name: source.name().to_string(),
                kind: source.kind(),
                check: KIND.name,
            })?;
        let last = metadata["last_commit"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| CheckError::NoCommitTime {
                table: self.table.clone(),
            })?;
        let now = self.now.unwrap_or_else(Utc::now);
        let age = now - last;
        let max_age = chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX);
        let max_skew = chrono::Duration::from_std(self.max_skew).unwrap_or(chrono::Duration::MAX);
        let ahead = -age;
        let in_future = ahead > max_skew;
        let observed = if in_future {
            format!(
                "last commit {} in the future ({}, now {}), beyond max_skew {}: {}",
                human(ahead),
                last.to_rfc3339(),
                now.to_rfc3339(),
                human(max_skew),
                future_commit_cause(&metadata)
            )
        } else if age < chrono::Duration::zero() {
            format!(
                "last commit {} in the future ({}), within max_skew {}",
                human(ahead),
                last.to_rfc3339(),
                human(max_skew)
            )
        } else {
            format!("last commit {} ago ({})", human(age), last.to_rfc3339())
        };
        let mut metrics = serde_json::Map::new();
        metrics.insert("last_commit".into(), json!(last.to_rfc3339()));
        metrics.insert(
            "age_seconds".into(),
            json!(age.num_milliseconds() as f64 / 1000.0),
        );
        metrics.insert("max_age_seconds".into(), json!(self.max_age.as_secs_f64()));
        metrics.insert(
            "max_skew_seconds".into(),
            json!(self.max_skew.as_secs_f64()),
        );
        metrics.insert("in_future".into(), json!(in_future));
        if let Some(zone) = metadata.get("timeline_timezone") {
            metrics.insert("timeline_timezone".into(), zone.clone());
        }
        metrics.insert("now".into(), json!(now.to_rfc3339()));
        metrics.insert("table".into(), metadata);
        Ok(Evaluation {
            passed: age <= max_age && !in_future,
            observed,
            expected: format!(
                "a commit within {} (and no more than {} in the future)",
                human(max_age),
                human(max_skew)
            ),
            failing_rows: None,
            samples: None,
            metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(0, "0s")]
    #[case(59, "59s")]
    #[case(3600 + 5 * 60 + 3, "1h 5m 3s")]
    #[case(2 * 86_400 + 3600, "2d 1h")]
    #[case(-90, "-1m 30s")]
    fn durations_read_as_words(#[case] seconds: i64, #[case] expected: &str) {
        assert_eq!(human(chrono::Duration::seconds(seconds)), expected);
    }

    #[test]
    fn a_future_hudi_commit_names_the_timeline_zone_and_tz() {
        let cause = future_commit_cause(&json!({
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
        let delta = future_commit_cause(&json!({ "format": "delta" }));
        assert!(delta.contains("time zone"), "{delta}");
        assert!(!delta.contains("hoodie"), "{delta}");
    }
}
