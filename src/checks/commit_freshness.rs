//! `commit_freshness`: the last commit of a table-format table (Delta, Hudi) is recent
//! enough. `now` can be fixed in the rule, for tests and for auditing a past moment.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Check, CheckError, CheckKind, CheckReader, Evaluation, Probe, TableRef};
use crate::rules::RuleError;

pub const KIND: CheckKind = CheckKind {
    name: "commit_freshness",
    summary: "a Delta or Hudi table's last commit is no older than max_age",
    parse,
};

#[derive(Debug)]
struct CommitFreshness {
    table: TableRef,
    max_age: Duration,
    now: Option<DateTime<Utc>>,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let max_age = reader.map.duration("max_age")?.ok_or_else(|| {
        RuleError::new(
            reader.map.location(),
            format!("{} is missing required field `max_age`", reader.what()),
        )
        .with_help("add `max_age: 15m`")
    })?;
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
        now,
    }))
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
        let metadata = source.table_metadata(&self.table.table).await?.ok_or_else(|| {
            CheckError::Unexpected(format!(
                "source `{}` ({}) keeps no commit history for its tables; commit_freshness needs a delta or hudi source",
                source.name(),
                source.kind()
            ))
        })?;
        let last = metadata["last_commit"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                CheckError::Unexpected(format!("{} has no commit time in its history", self.table))
            })?;
        let now = self.now.unwrap_or_else(Utc::now);
        let age = now - last;
        let max_age = chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX);
        let mut metrics = serde_json::Map::new();
        metrics.insert("last_commit".into(), json!(last.to_rfc3339()));
        metrics.insert(
            "age_seconds".into(),
            json!(age.num_milliseconds() as f64 / 1000.0),
        );
        metrics.insert("max_age_seconds".into(), json!(self.max_age.as_secs_f64()));
        metrics.insert("now".into(), json!(now.to_rfc3339()));
        metrics.insert("table".into(), metadata);
        Ok(Evaluation {
            passed: age <= max_age,
            observed: format!("last commit {} ago ({})", human(age), last.to_rfc3339()),
            expected: format!("a commit within {}", human(max_age)),
            failing_rows: None,
            samples: None,
            metrics,
        })
    }
}
