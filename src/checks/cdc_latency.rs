//! `cdc_latency`: how long a change takes to travel a pipeline, measured end to end with a
//! marker the probe writes itself.
//!
//! 1. **One write.** The check writes one marker row (its probe id, a sequence number one above
//!    the probe's last, `clock_timestamp()`) to the heartbeat table of a PostgreSQL source that
//!    opted in (`heartbeat:`), in a short read-write transaction of its own
//!    (`Source::write_heartbeat`): the only write lakecheck ever makes.
//! 2. **Polling.** It then polls each stage (a DMS raw folder, curated Delta or Hudi tables) for
//!    what arrived (`Source::changes`), reading only new CDC files, versions or instants each
//!    time, until the marker is in every stage or `timeout` passes. A stage whose table does not
//!    exist is an error, not a wait: the pipeline does not carry the heartbeat table there
//!    (tolerated until the timeout only on a probe's first run, when the table may be new).
//! 3. **Verdict.** A stage's latency is the time from the stage before (the source commit, for
//!    the first) to the time the marker landed there: the DMS file's name (when DMS wrote it),
//!    the Delta commit's time, the Hudi instant's completion. It fails when the marker reached a
//!    stage more than `max_latency` after its commit (or a stage took longer than its own
//!    `max_latency`), never arrived by `timeout`, was lost (a change committed after the marker
//!    arrived without it: stages deliver in commit order), or when the probe's previous
//!    sequence number never arrived where this one did (a gap: lost changes).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use marked_yaml::Node;
use serde_json::json;

use super::{Check, CheckKind, CheckReader, Evaluation};
use crate::model::reader::node_kind;
use crate::model::{Figure, MapReader, Rows, RuleError, TableRef, Unit};
use crate::probe::{CheckError, Probe};
use crate::sources::changes::{
    ChangePosition, HeartbeatMarker, PROBE_COLUMN, SEQ_COLUMN, WRITTEN_AT_COLUMN,
};
use crate::sources::dms::OP_COLUMN;
use crate::sources::table_format::TableError;
use crate::sources::SourceError;

pub const KIND: CheckKind = CheckKind {
    name: "cdc_latency",
    summary: "a heartbeat written to PostgreSQL reaches every pipeline stage within max_latency, \
              with no lost sequence numbers",
    parse,
};

/// The probe id when the rule gives none.
const DEFAULT_PROBE: &str = "lakecheck";
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How far the clocks of the source, DMS and the ETL may disagree: stages are read from this
/// much before the previous marker, and a stage may land this much before the one before it.
const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct CdcLatency {
    /// The PostgreSQL source written to.
    source: String,
    /// Its heartbeat table, schema-qualified.
    heartbeat: String,
    probe: String,
    stages: Vec<Stage>,
    /// The most a change may take from its commit to any stage.
    max_latency: Duration,
    timeout: Duration,
    poll_interval: Duration,
    max_skew: Duration,
}

/// One stage of the pipeline, in the order changes pass through them.
#[derive(Debug, Clone)]
struct Stage {
    name: String,
    table: TableRef,
    /// The most this stage may take after the stage before it.
    max_latency: Option<Duration>,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let source = reader.source("source")?;
    let heartbeat = heartbeat_table(reader, &source)?;
    let probe = match reader.map.string("probe")? {
        Some(p) if p.value.trim().is_empty() => {
            return Err(RuleError::new(p.location, "`probe` is empty")
                .with_help("give the probe an id, e.g. `probe: autocorp`"))
        }
        Some(p) => p.value,
        None => DEFAULT_PROBE.to_string(),
    };
    let stages = parse_stages(reader)?;
    let max_latency = required_duration(&mut reader.map, "max_latency", "5m")?;
    let timeout = match reader.timeout.clone() {
        Some(t) if t.value < max_latency => return Err(RuleError::new(
            t.location,
            format!(
                "`timeout` ({}) of {} is shorter than `max_latency` ({}): a marker could \
                     arrive in time and still be reported as not arrived",
                seconds(t.value),
                reader.what(),
                seconds(max_latency)
            ),
        )
        .with_help(
            "make `timeout` at least `max_latency`, or leave it out (it defaults to `max_latency`)",
        )),
        Some(t) => t.value,
        None => max_latency,
    };
    let poll_interval = match reader.map.duration("poll_interval")? {
        Some(p) if p.value.is_zero() => {
            return Err(RuleError::new(p.location, "`poll_interval` is zero")
                .with_help("poll every few seconds, e.g. `poll_interval: 5s`"))
        }
        Some(p) => p.value,
        None => DEFAULT_POLL_INTERVAL,
    };
    let max_skew = reader
        .map
        .duration("max_skew")?
        .map_or(DEFAULT_MAX_SKEW, |d| d.value);
    Ok(Arc::new(CdcLatency {
        source,
        heartbeat,
        probe,
        stages,
        max_latency,
        timeout,
        poll_interval,
        max_skew,
    }))
}

/// The heartbeat table of `source`: a rule error at `source:` when the source did not opt in.
fn heartbeat_table(reader: &CheckReader, source: &str) -> Result<String, RuleError> {
    let declared = reader.declared_source(source);
    if let Some(table) = declared.and_then(|s| s.heartbeat_table()) {
        return Ok(table);
    }
    let kind = declared.map_or("unknown", |s| s.kind());
    let opt_in = "`heartbeat: { table: lakecheck_heartbeat, create: true }`";
    Err(RuleError::new(
        reader.map.location_of("source"),
        format!(
            "source `{source}` ({kind}) takes no heartbeat writes, and {} writes one marker row \
             to it per run",
            reader.what()
        ),
    )
    .with_help(match kind {
        "postgres" => format!(
            "opt in on source `{source}` with {opt_in}: the only write lakecheck makes, one row \
             per run in a transaction of its own (see the README)"
        ),
        _ => format!("name a postgres source that opts in with {opt_in}"),
    }))
}

/// `stages: [ { name: raw, table: raw.lakecheck_heartbeat, max_latency: 1m }, ... ]`.
fn parse_stages(reader: &mut CheckReader) -> Result<Vec<Stage>, RuleError> {
    let what = reader.what().to_string();
    let example = "[ { name: raw, table: raw.lakecheck_heartbeat } ]";
    let Some(node) = reader.map.node("stages") else {
        return Err(RuleError::new(
            reader.map.location(),
            format!("{what} is missing required field `stages`"),
        )
        .with_help(format!(
            "add `stages: {example}`, one per pipeline stage in order"
        )));
    };
    let context = reader.map.context();
    let items = match node {
        Node::Sequence(items) if !items.is_empty() => items,
        other => {
            return Err(context
                .error(
                    other.span(),
                    format!(
                        "`stages` of {what} must be a non-empty list of stages, found {}",
                        node_kind(other)
                    ),
                )
                .with_help(format!("write `stages: {example}`")))
        }
    };
    let mut stages: Vec<Stage> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let mut map = MapReader::new(context, item, format!("stage {} of {what}", index + 1))?;
        let name = map.required_string("name", "raw")?;
        if stages.iter().any(|s| s.name == name.value) {
            return Err(RuleError::new(
                name.location,
                format!("two stages of {what} are named `{}`", name.value),
            )
            .with_help("give each stage its own name: metrics are reported by stage name"));
        }
        let table = reader.table_ref(
            "table",
            map.required_string("table", "raw.lakecheck_heartbeat")?,
        )?;
        let max_latency = map.duration("max_latency")?.map(|d| d.value);
        map.finish()?;
        stages.push(Stage {
            name: name.value,
            table,
            max_latency,
        });
    }
    Ok(stages)
}

/// A duration the rule must give; its absence reported as any missing key (pointing at a
/// misspelt one).
fn required_duration(
    map: &mut MapReader,
    key: &'static str,
    hint: &str,
) -> Result<Duration, RuleError> {
    match map.duration(key)? {
        Some(duration) => Ok(duration.value),
        None => Err(match map.required_string(key, hint) {
            Err(missing) => missing,
            Ok(text) => RuleError::new(text.location, format!("`{key}` is not a duration")),
        }),
    }
}

/// A duration as a rule writes it, in seconds to the millisecond: `300s`, `1.5s`, `0.001s`.
fn seconds(duration: Duration) -> String {
    let text = format!("{:.3}", duration.as_secs_f64());
    format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A signed time difference in seconds, to the millisecond.
fn signed_seconds(duration: chrono::Duration) -> String {
    format!("{:.3}s", duration.num_milliseconds() as f64 / 1000.0)
}

fn seconds_value(duration: chrono::Duration) -> serde_json::Value {
    json!(duration.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6)
}

/// What polling one stage came to.
#[derive(Debug, Clone, PartialEq)]
enum Arrived {
    /// The marker landed.
    Found {
        found_in: String,
        landed_at: DateTime<Utc>,
    },
    /// A change committed after the marker landed without it: since a stage delivers changes
    /// in commit order, the marker was lost. `evidence` names that change and where it landed.
    Lost { evidence: String },
    /// Neither, by the timeout.
    NotYet,
}

/// One stage being polled.
struct Watch<'a> {
    stage: &'a Stage,
    position: ChangePosition,
    arrived: Arrived,
    /// Sequence numbers of the probe that arrived in the stage since the window start.
    seen: BTreeSet<i64>,
    polls: usize,
    /// Files or commits read.
    changes_read: usize,
    /// The stage's table was not there at the last poll.
    missing: Option<SourceError>,
}

/// What one arrival's rows say about the marker.
#[derive(Debug, Default, PartialEq)]
struct Scan {
    /// Sequence numbers of the probe's rows that arrived (deletes do not count).
    seqs: Vec<i64>,
    /// A row of any probe written after the marker had committed: (probe, seq).
    later: Option<(String, String)>,
}

/// Reads the heartbeat rows of one arrival. Rows need the `probe` and `seq` columns; with
/// `written_at` too, a row written after `marker` committed shows the stage went past it.
fn scan(rows: &Rows, marker: &HeartbeatMarker) -> Result<Scan, String> {
    let mut found = Scan::default();
    if rows.rows.is_empty() {
        return Ok(found);
    }
    let column = |name: &str| rows.columns.iter().position(|c| c == name);
    let (Some(probe), Some(seq)) = (column(PROBE_COLUMN), column(SEQ_COLUMN)) else {
        return Err(format!(
            "its rows have no `{PROBE_COLUMN}` and `{SEQ_COLUMN}` columns (found {}): the \
             pipeline must carry the heartbeat table's columns {PROBE_COLUMN}, {SEQ_COLUMN}, \
             {WRITTEN_AT_COLUMN}",
            rows.columns.join(", ")
        ));
    };
    let written_at = column(WRITTEN_AT_COLUMN);
    let op = column(OP_COLUMN);
    for row in &rows.rows {
        let value = |index: usize| row.get(index).cloned().flatten();
        if op.and_then(value).as_deref() == Some("D") {
            continue;
        }
        let row_probe = value(probe).unwrap_or_default();
        let row_seq = value(seq).unwrap_or_default();
        if row_probe == marker.probe {
            found.seqs.push(
                row_seq
                    .parse()
                    .map_err(|_| format!("`{SEQ_COLUMN}` `{row_seq}` is not a whole number"))?,
            );
        }
        if let Some(text) = written_at.and_then(value) {
            let at = parse_time(&text)
                .ok_or_else(|| format!("`{WRITTEN_AT_COLUMN}` `{text}` is not a time"))?;
            if at > marker.committed_by && found.later.is_none() {
                found.later = Some((row_probe, row_seq));
            }
        }
    }
    Ok(found)
}

/// A time as an engine renders it: RFC 3339, or ISO with a space or `T` and no offset (UTC).
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .map(|t| t.and_utc())
        })
}

/// Each stage's latency from the stage before it where the marker landed in both (from the
/// commit, `written_at`, for the first stage, and past stages the marker did not reach).
fn latencies(
    written_at: DateTime<Utc>,
    landed: &[Option<DateTime<Utc>>],
) -> Vec<Option<chrono::Duration>> {
    let mut before = written_at;
    landed
        .iter()
        .map(|at| {
            let at = (*at)?;
            let latency = at - before;
            before = at;
            Some(latency)
        })
        .collect()
}

/// The probe's sequence numbers from `previous` up to (not including) `seq` that a stage never
/// delivered, where it delivered `seq` (otherwise the stage has not caught up, and nothing is
/// known to be missing).
fn gaps(previous: Option<i64>, seq: i64, seen: &BTreeSet<i64>) -> Vec<i64> {
    match previous {
        Some(previous) if seen.contains(&seq) => {
            (previous..seq).filter(|s| !seen.contains(s)).collect()
        }
        _ => Vec::new(),
    }
}

impl CdcLatency {
    /// Polls one stage once, recording what arrived.
    async fn poll(
        &self,
        probe: &Probe,
        index: usize,
        watch: &mut Watch<'_>,
        marker: &HeartbeatMarker,
    ) -> Result<(), CheckError> {
        let table = &watch.stage.table;
        let source = probe.source(&table.source)?;
        watch.polls += 1;
        let changes = match source.changes(&table.table, &watch.position).await {
            Ok(changes) => changes,
            Err(error) if is_not_found(&error) && marker.previous.is_none() => {
                // A probe's first run: the pipeline may not have created the table yet.
                watch.missing = Some(error);
                return Ok(());
            }
            Err(error) if is_not_found(&error) => {
                return Err(self.missing_stage(index, error));
            }
            Err(error) => return Err(error.into()),
        };
        watch.missing = None;
        for arrival in changes.arrivals {
            watch.changes_read += 1;
            let found = scan(&arrival.rows, marker).map_err(|reason| {
                CheckError::unexpected_answer(
                    &table.source,
                    format!(
                        "stage `{}` ({table}), {}: {reason}",
                        watch.stage.name, arrival.found_in
                    ),
                )
            })?;
            watch.seen.extend(&found.seqs);
            if watch.arrived != Arrived::NotYet {
                continue;
            }
            if found.seqs.contains(&marker.seq) {
                watch.arrived = Arrived::Found {
                    found_in: arrival.found_in,
                    landed_at: arrival.landed_at,
                };
            } else if let Some((probe, seq)) = found.later {
                watch.arrived = Arrived::Lost {
                    evidence: format!(
                        "probe `{probe}` seq {seq}, written after it committed, arrived in {}",
                        arrival.found_in
                    ),
                };
            }
        }
        watch.position = changes.next;
        Ok(())
    }

    /// The error for a stage whose table is not there, saying how the pipeline must carry it.
    fn missing_stage(&self, index: usize, error: SourceError) -> CheckError {
        let stage = &self.stages[index];
        let help = match index.checked_sub(1).map(|i| &self.stages[i]) {
            None => format!(
                "the replication must carry the heartbeat table: add `{}` to the DMS task's \
                 table mappings (a selection rule for its schema and table) so its changes land \
                 in this folder",
                self.heartbeat
            ),
            Some(before) => format!(
                "the ETL that reads stage `{}` ({}) must carry the heartbeat table into {} too, \
                 with its columns {PROBE_COLUMN}, {SEQ_COLUMN} and {WRITTEN_AT_COLUMN}",
                before.name, before.table, stage.table
            ),
        };
        CheckError::MissingStage {
            stage: stage.name.clone(),
            table: stage.table.clone(),
            cause: error.to_string(),
            help,
        }
    }

    /// The finding, from where the marker landed in each stage.
    fn judge(&self, marker: &HeartbeatMarker, watches: &[Watch]) -> Evaluation {
        let landed: Vec<Option<DateTime<Utc>>> = watches
            .iter()
            .map(|w| match &w.arrived {
                Arrived::Found { landed_at, .. } => Some(*landed_at),
                _ => None,
            })
            .collect();
        let latencies = latencies(marker.written_at, &landed);
        let max_latency =
            chrono::Duration::from_std(self.max_latency).unwrap_or(chrono::Duration::MAX);
        let max_skew = chrono::Duration::from_std(self.max_skew).unwrap_or(chrono::Duration::MAX);
        let previous_seq = marker.previous.map(|(seq, _)| seq);
        let mut passed = true;
        let mut findings = vec![format!(
            "wrote heartbeat seq {} to {} (probe `{}`)",
            marker.seq, marker.table, marker.probe
        )];
        let mut stages = serde_json::Map::new();
        let mut all_gaps: BTreeSet<i64> = BTreeSet::new();
        let mut gap_stages: Vec<&str> = Vec::new();
        let mut before = "the commit".to_string();
        for (index, (watch, latency)) in watches.iter().zip(&latencies).enumerate() {
            let stage = watch.stage;
            let stage_gaps = gaps(previous_seq, marker.seq, &watch.seen);
            if !stage_gaps.is_empty() {
                gap_stages.push(&stage.name);
                all_gaps.extend(&stage_gaps);
            }
            let (status, finding) = match (&watch.arrived, latency) {
                (
                    Arrived::Found {
                        found_in,
                        landed_at,
                    },
                    Some(latency),
                ) => {
                    let lag = *landed_at - marker.written_at;
                    let at = format!(
                        "{}: {} after {before} in {found_in}",
                        stage.name,
                        signed_seconds(*latency)
                    );
                    if lag > max_latency {
                        let since_commit = match index {
                            0 => String::new(),
                            _ => format!(" ({} after the commit)", signed_seconds(lag)),
                        };
                        let limit = seconds(self.max_latency);
                        (
                            "late",
                            format!("{at}{since_commit}: over max_latency {limit}"),
                        )
                    } else if let Some(limit) = stage
                        .max_latency
                        .filter(|l| chrono::Duration::from_std(*l).is_ok_and(|l| *latency > l))
                    {
                        let limit = seconds(limit);
                        (
                            "late",
                            format!("{at}: over the stage's max_latency {limit}"),
                        )
                    } else if *latency < -max_skew {
                        let skew = seconds(self.max_skew);
                        let finding = format!(
                            "{at}: it landed before {before} by more than max_skew {skew}: the \
                             clocks of the two disagree, so its timings cannot be trusted"
                        );
                        ("clock_skew", finding)
                    } else {
                        ("arrived", at)
                    }
                }
                (Arrived::Lost { evidence }, _) => (
                    "lost",
                    format!("{}: seq {} lost ({evidence})", stage.name, marker.seq),
                ),
                _ => (
                    "not_arrived",
                    format!(
                        "{}: seq {} not arrived within timeout {}",
                        stage.name,
                        marker.seq,
                        seconds(self.timeout)
                    ),
                ),
            };
            passed &= status == "arrived";
            findings.push(finding);
            let (found_in, landed_at) = match &watch.arrived {
                Arrived::Found {
                    found_in,
                    landed_at,
                } => (json!(found_in), json!(landed_at.to_rfc3339())),
                _ => (json!(null), json!(null)),
            };
            let mut metrics = serde_json::Map::new();
            metrics.insert("table".into(), json!(stage.table.to_string()));
            metrics.insert("status".into(), json!(status));
            metrics.insert("found_in".into(), found_in);
            metrics.insert("landed_at".into(), landed_at);
            metrics.insert(
                "latency_seconds".into(),
                latency.map_or(json!(null), seconds_value),
            );
            metrics.insert(
                "lag_seconds".into(),
                landed[index].map_or(json!(null), |at| seconds_value(at - marker.written_at)),
            );
            if let Arrived::Lost { evidence } = &watch.arrived {
                metrics.insert("lost".into(), json!(evidence));
            }
            metrics.insert("gaps".into(), json!(stage_gaps));
            metrics.insert("polls".into(), json!(watch.polls));
            metrics.insert("changes_read".into(), json!(watch.changes_read));
            stages.insert(stage.name.clone(), serde_json::Value::Object(metrics));
            if landed[index].is_some() {
                before = format!("stage `{}`", stage.name);
            }
        }
        if !all_gaps.is_empty() {
            passed = false;
            let missing: Vec<String> = all_gaps.iter().map(|s| format!("seq {s}")).collect();
            findings.push(format!(
                "gap: {} never arrived in {} (seq {} did): changes were lost",
                missing.join(", "),
                gap_stages.join(", "),
                marker.seq
            ));
        }
        let end_to_end = landed
            .iter()
            .all(Option::is_some)
            .then(|| landed.last().copied().flatten())
            .flatten()
            .map(|at| at - marker.written_at);
        if let Some(end_to_end) = end_to_end {
            findings.push(format!("{} end to end", signed_seconds(end_to_end)));
        }
        let mut metrics = serde_json::Map::new();
        metrics.insert(
            "heartbeat".into(),
            json!(format!(
                "wrote heartbeat seq {} to {}",
                marker.seq, marker.table
            )),
        );
        metrics.insert("probe".into(), json!(marker.probe));
        metrics.insert("sequence".into(), json!(marker.seq));
        metrics.insert("previous_sequence".into(), json!(previous_seq));
        metrics.insert("written_at".into(), json!(marker.written_at.to_rfc3339()));
        metrics.insert("stages".into(), serde_json::Value::Object(stages));
        metrics.insert("gaps".into(), json!(all_gaps));
        metrics.insert(
            "end_to_end_seconds".into(),
            end_to_end.map_or(json!(null), seconds_value),
        );
        metrics.insert(
            "max_latency_seconds".into(),
            json!(self.max_latency.as_secs_f64()),
        );
        metrics.insert("timeout_seconds".into(), json!(self.timeout.as_secs_f64()));
        metrics.insert(
            "poll_interval_seconds".into(),
            json!(self.poll_interval.as_secs_f64()),
        );
        let stage_limits: Vec<String> = self
            .stages
            .iter()
            .filter_map(|s| {
                Some(format!(
                    "{} taking at most {}",
                    s.name,
                    seconds(s.max_latency?)
                ))
            })
            .collect();
        let expected = format!(
            "the heartbeat in every stage within max_latency {} of its commit{}{}",
            seconds(self.max_latency),
            match stage_limits.is_empty() {
                true => String::new(),
                false => format!(" ({})", stage_limits.join(", ")),
            },
            match previous_seq {
                Some(previous) =>
                    format!(", with seq {previous} (the previous heartbeat) before it"),
                None => String::new(),
            }
        );
        Evaluation {
            passed,
            observed: findings.join("; "),
            expected,
            failing_rows: None,
            samples: None,
            failures: None,
            metrics,
            warning: None,
        }
    }
}

/// Whether `error` says the stage's table is not there (rather than unreadable).
fn is_not_found(error: &SourceError) -> bool {
    matches!(error.table.as_deref(), Some(TableError::NotFound { .. }))
}

#[async_trait]
impl Check for CdcLatency {
    /// The probe stops waiting at its own `timeout` and then reports which stage the marker
    /// missed: the runner gives it one more poll and a margin for that before stopping it.
    fn time_limit(&self, _declared: Option<Duration>) -> Duration {
        self.timeout + self.poll_interval + Duration::from_secs(30)
    }

    fn figure(&self) -> Option<Figure> {
        Some(
            Figure::new("end_to_end_seconds", "end-to-end latency", Unit::Seconds)
                .limit("max_latency", Some(self.max_latency.as_secs_f64())),
        )
    }

    fn default_name(&self) -> String {
        let stages: Vec<&str> = self.stages.iter().map(|s| s.name.as_str()).collect();
        format!("cdc_latency {} -> {}", self.source, stages.join(" -> "))
    }

    fn tables(&self) -> Vec<TableRef> {
        let heartbeat = TableRef {
            source: self.source.clone(),
            table: self.heartbeat.clone(),
        };
        std::iter::once(heartbeat)
            .chain(self.stages.iter().map(|s| s.table.clone()))
            .collect()
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let marker = probe.write_heartbeat(&self.source, &self.probe).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        // From just before the previous marker: this one, and whether that one arrived too.
        let skew = chrono::Duration::from_std(self.max_skew).unwrap_or(chrono::Duration::MAX);
        let since = marker.previous.map_or(marker.written_at, |(_, at)| at) - skew;
        let mut watches: Vec<Watch> = self
            .stages
            .iter()
            .map(|stage| Watch {
                stage,
                position: ChangePosition::Since(since),
                arrived: Arrived::NotYet,
                seen: BTreeSet::new(),
                polls: 0,
                changes_read: 0,
                missing: None,
            })
            .collect();
        loop {
            for (index, watch) in watches.iter_mut().enumerate() {
                if watch.arrived == Arrived::NotYet {
                    self.poll(probe, index, watch, &marker).await?;
                }
            }
            let now = tokio::time::Instant::now();
            if watches.iter().all(|w| w.arrived != Arrived::NotYet) || now >= deadline {
                break;
            }
            tokio::time::sleep(self.poll_interval.min(deadline - now)).await;
        }
        if let Some(index) = watches.iter().position(|w| w.missing.is_some()) {
            let error = watches[index].missing.take().expect("just found");
            return Err(self.missing_stage(index, error));
        }
        Ok(self.judge(&marker, &watches))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn marker() -> HeartbeatMarker {
        HeartbeatMarker {
            table: "public.lakecheck_heartbeat".into(),
            probe: "p".into(),
            seq: 7,
            written_at: at("2026-11-21T08:00:00.000Z"),
            committed_by: at("2026-11-21T08:00:00.010Z"),
            previous: Some((6, at("2026-11-21T07:55:00Z"))),
        }
    }

    fn rows(columns: &[&str], rows: &[&[Option<&str>]]) -> Rows {
        Rows {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
                .collect(),
        }
    }

    #[rstest]
    #[case::previous_and_marker(&[5, 6, 7], vec![])]
    #[case::previous_lost(&[5, 7], vec![6])]
    #[case::marker_not_there_yet(&[5, 6], vec![])]
    #[case::nothing_but_the_marker(&[7], vec![6])]
    fn a_gap_is_an_earlier_sequence_number_missing_where_a_later_one_arrived(
        #[case] seen: &[i64],
        #[case] expected: Vec<i64>,
    ) {
        let seen: BTreeSet<i64> = seen.iter().copied().collect();
        assert_eq!(gaps(Some(6), 7, &seen), expected);
    }

    #[test]
    fn a_first_marker_has_no_gap_to_find() {
        assert_eq!(gaps(None, 1, &BTreeSet::from([1])), Vec::<i64>::new());
    }

    #[rstest]
    #[case::both_stages(
        &[Some("2026-11-21T08:00:02.500Z"), Some("2026-11-21T08:00:03.250Z")],
        &[Some(2500), Some(750)]
    )]
    #[case::raw_missing_curated_from_the_commit(
        &[None, Some("2026-11-21T08:00:03.250Z")],
        &[None, Some(3250)]
    )]
    #[case::curated_missing(&[Some("2026-11-21T08:00:01Z"), None], &[Some(1000), None])]
    #[case::clock_behind(&[Some("2026-11-21T07:59:59.500Z")], &[Some(-500)])]
    fn a_stage_latency_counts_from_the_stage_before(
        #[case] landed: &[Option<&str>],
        #[case] expected_ms: &[Option<i64>],
    ) {
        let landed: Vec<_> = landed.iter().map(|t| t.map(at)).collect();
        let measured: Vec<Option<i64>> = latencies(marker().written_at, &landed)
            .into_iter()
            .map(|l| l.map(|l| l.num_milliseconds()))
            .collect();
        assert_eq!(measured, expected_ms);
    }

    #[test]
    fn a_scan_finds_the_probe_s_sequence_numbers_and_skips_deletes() {
        let found = scan(
            &rows(
                &["Op", "probe", "seq", "written_at", "commit_ts"],
                &[
                    &[
                        Some("I"),
                        Some("p"),
                        Some("6"),
                        Some("2026-11-21 07:55:00"),
                        None,
                    ],
                    &[
                        Some("D"),
                        Some("p"),
                        Some("5"),
                        Some("2026-11-21 07:50:00"),
                        None,
                    ],
                    &[
                        Some("I"),
                        Some("other"),
                        Some("40"),
                        Some("2026-11-21T07:59:00Z"),
                        None,
                    ],
                    &[
                        Some("I"),
                        Some("p"),
                        Some("7"),
                        Some("2026-11-21T08:00:00.000"),
                        None,
                    ],
                ],
            ),
            &marker(),
        )
        .unwrap();
        assert_eq!(
            found,
            Scan {
                seqs: vec![6, 7],
                later: None
            }
        );
    }

    /// A row written before the marker committed may be a concurrent transaction committed
    /// first: only one written after the commit shows the stage went past the marker.
    #[rstest]
    #[case::after_the_commit("2026-11-21T08:00:00.011+00:00", true)]
    #[case::before_the_commit("2026-11-21 08:00:00.005+00", false)]
    fn a_row_written_after_the_marker_committed_is_evidence_it_was_passed(
        #[case] written_at: &str,
        #[case] evidence: bool,
    ) {
        let row = [Some("neighbour"), Some("12"), Some(written_at)];
        let found = scan(&rows(&["probe", "seq", "written_at"], &[&row]), &marker()).unwrap();
        let expected = evidence.then(|| ("neighbour".to_string(), "12".to_string()));
        assert_eq!(found.later, expected);
    }

    #[rstest]
    #[case::no_probe_column(&["seq"], "have no `probe` and `seq` columns (found seq)")]
    #[case::bad_seq(&["probe", "seq"], "`seq` `x` is not a whole number")]
    fn rows_without_the_heartbeat_columns_are_refused(
        #[case] columns: &[&str],
        #[case] expected: &str,
    ) {
        let values: Vec<Option<&str>> = columns
            .iter()
            .map(|c| Some(if *c == "seq" { "x" } else { "p" }))
            .collect();
        let error = scan(&rows(columns, &[&values]), &marker()).unwrap_err();
        assert!(error.contains(expected), "{error}");
    }

    #[rstest]
    #[case(Duration::from_secs(300), "300s")]
    #[case(Duration::from_millis(1500), "1.5s")]
    #[case(Duration::from_millis(1), "0.001s")]
    #[case(Duration::ZERO, "0s")]
    fn limits_read_as_a_rule_writes_them(#[case] duration: Duration, #[case] expected: &str) {
        assert_eq!(seconds(duration), expected);
    }

    #[rstest]
    #[case("2026-11-21T08:00:00.123456Z")]
    #[case("2026-11-21T08:00:00.123456+00:00")]
    #[case("2026-11-21 08:00:00.123456+00")]
    #[case("2026-11-21 08:00:00.123456")]
    #[case("2026-11-21T08:00:00.123456")]
    fn times_read_in_every_form_engines_render(#[case] text: &str) {
        assert_eq!(parse_time(text), Some(at("2026-11-21T08:00:00.123456Z")));
    }
}
