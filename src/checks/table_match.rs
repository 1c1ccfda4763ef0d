//! `table_match`: two tables hold exactly the same rows, compared by key over chosen columns,
//! across engines (see `reconcile` for how, `model::canon` for what "equal" means).
//!
//! A green result is a claim that the two sides are equal as multisets of rows over every left
//! column. So besides missing, extra and changed rows, the check fails on: rows with a NULL key
//! (they cannot be paired), repeated keys (unless `allow_duplicates: true`, which compares
//! the rows of each key as multisets), a left column the right side lacks, timestamps kept at
//! a coarser precision on one side (unless `timestamp_precision: ms`), and two empty sides
//! (unless `allow_empty: true`).
//!
//! On tables written live, `settle: 2m` reads the keys that differ again, by key, every
//! `settle_interval` (10 s) until both sides agree or the time is up: keys that came to agree
//! are reported in flight, not failing; only keys that still differ fail. Rows with a NULL key,
//! repeated keys and columns lost are not settled (see `reconcile::settle`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use marked_yaml::Node;
use serde_json::json;

use super::pairing::{find_column, typed_pair, ColumnPairing, ReadSide};
use super::{Check, CheckKind, CheckReader, Evaluation};
use crate::model::canon::{self, Mismatch};
use crate::model::row_hash::Hashing;
use crate::model::RuleError;
use crate::model::TableRef;
use crate::model::{Column, Rows};
use crate::probe::{CheckError, ColumnProblem, Comparing, Probe};
use crate::reconcile::{
    self, Difference, Outcome, Plan, Segmenter, Settle, Settled, Side, MAX_DIFFERENCES, SEGMENTS,
    SETTLE_KEYS,
};

pub const KIND: CheckKind = CheckKind {
    name: "table_match",
    summary: "two tables hold the same rows by key, value for value, across engines",
    parse,
};

#[derive(Debug)]
struct TableMatch {
    left: TableRef,
    right: TableRef,
    key: Option<Vec<String>>,
    pairing: ColumnPairing,
    left_filter: Option<String>,
    right_filter: Option<String>,
    samples: usize,
    allow_duplicates: bool,
    allow_empty: bool,
    precision: MillisecondColumns,
    settle: Option<Settle>,
    max_differences: u64,
}

/// Default `settle_interval`: how long a settle waits before each look.
const DEFAULT_SETTLE_INTERVAL: Duration = Duration::from_secs(10);

/// Most looks one settle may take (`settle` / `settle_interval`): each is a query per side,
/// listed in the report.
const MOST_LOOKS: u128 = 1000;

/// `settle: 2m`, `settle_interval: 10s`: how long differing keys may take to agree, how often
/// to look.
fn read_settle(reader: &mut CheckReader) -> Result<Option<Settle>, RuleError> {
    let what = reader.what().to_string();
    let within = reader.map.duration("settle")?;
    let interval = reader.map.duration("settle_interval")?;
    let Some(within) = within else {
        return match interval {
            None => Ok(None),
            Some(interval) => Err(RuleError::new(
                interval.location,
                format!("`settle_interval` in {what} has no `settle` to pace"),
            )
            .with_help("add `settle: 2m` (how long differing keys may take to agree), or remove `settle_interval`")),
        };
    };
    if within.value.is_zero() {
        return Err(RuleError::new(
            within.location,
            format!("`settle` in {what} must be longer than 0"),
        )
        .with_help(
            "remove `settle` to compare once, or give the time rows take to arrive: `settle: 2m`",
        ));
    }
    let (interval, location) = match interval {
        Some(i) => (i.value, i.location),
        None => (DEFAULT_SETTLE_INTERVAL, within.location),
    };
    if interval.is_zero() {
        return Err(RuleError::new(
            location,
            format!("`settle_interval` in {what} must be longer than 0"),
        )
        .with_help("e.g. `settle_interval: 10s`"));
    }
    let looks = within.value.as_nanos().div_ceil(interval.as_nanos());
    if looks > MOST_LOOKS {
        return Err(RuleError::new(
            location,
            format!(
                "`settle` in {what} would look {looks} times, one every {}; at most {MOST_LOOKS}",
                seconds(interval)
            ),
        )
        .with_help("lengthen `settle_interval`"));
    }
    Ok(Some(Settle {
        within: within.value,
        interval,
    }))
}

/// A duration in seconds as a report shows it: `12 s`, `0.4 s`.
fn seconds(duration: Duration) -> String {
    let text = format!("{:.1}", duration.as_secs_f64());
    format!("{} s", text.trim_end_matches(".0"))
}

/// A duration in seconds for metrics, to the millisecond.
fn seconds_metric(duration: Duration) -> serde_json::Value {
    json!(duration.as_millis() as f64 / 1000.0)
}

/// `1 key`, `2 keys`.
fn keys(n: u64) -> String {
    format!("{n} key{}", if n == 1 { "" } else { "s" })
}

/// What settling found, for the observed text: `2 keys in flight (arrived within 12 s), 1 key
/// still differs after 120 s`. Nothing when no key differed.
fn settle_finding(settled: &Settled) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(after) = settled.settled_after {
        let when = if settled.in_flight == 1 {
            "after"
        } else {
            "within"
        };
        parts.push(format!(
            "{} in flight (arrived {when} {})",
            keys(settled.in_flight),
            seconds(after)
        ));
    }
    if settled.still_differing > 0 {
        let verb = if settled.still_differing == 1 {
            "differs"
        } else {
            "differ"
        };
        let mut why = Vec::new();
        if settled.not_rechecked > 0 {
            why.push(format!(
                "{} beyond the first {SETTLE_KEYS} not read again",
                settled.not_rechecked
            ));
        }
        if settled.repeated > 0 {
            why.push(format!("{} repeated, not settled", settled.repeated));
        }
        let why = match why.is_empty() {
            true => String::new(),
            false => format!(" ({})", why.join(", ")),
        };
        parts.push(format!(
            "{} still {verb} after {}{why}",
            keys(settled.still_differing),
            seconds(settled.waited)
        ));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Which timestamp columns the rule compares at milliseconds (`timestamp_precision`).
#[derive(Debug, Default)]
enum MillisecondColumns {
    #[default]
    None,
    All,
    Named(Vec<String>),
}

impl MillisecondColumns {
    fn includes(&self, column: &str) -> bool {
        match self {
            MillisecondColumns::None => false,
            MillisecondColumns::All => true,
            MillisecondColumns::Named(names) => {
                names.iter().any(|n| n.eq_ignore_ascii_case(column))
            }
        }
    }

    /// `timestamp_precision: ms` (every column) or `{ updated_at: ms, ... }` (those named).
    fn read(reader: &mut CheckReader) -> Result<Self, RuleError> {
        const KEY: &str = "timestamp_precision";
        let help = "write `timestamp_precision: ms`, or per column `timestamp_precision: { updated_at: ms }`";
        let is_mapping = matches!(reader.map.node(KEY), Some(Node::Mapping(_)));
        let precision = |value: &str, location: crate::model::Location| match value.trim() {
            "ms" => Ok(true),
            "us" | "µs" => Ok(false),
            other => Err(RuleError::new(
                location,
                format!("`{KEY}` must be `ms` (compare at milliseconds) or `us`, found `{other}`"),
            )
            .with_help(help)),
        };
        if is_mapping {
            let location = reader.map.location_of(KEY);
            let mut named = Vec::new();
            for (column, value) in reader.map.string_map(KEY)? {
                if precision(&value, location.clone())? {
                    named.push(column);
                }
            }
            return Ok(MillisecondColumns::Named(named));
        }
        Ok(match reader.map.string(KEY)? {
            None => MillisecondColumns::None,
            Some(text) => match precision(&text.value, text.location)? {
                true => MillisecondColumns::All,
                false => MillisecondColumns::None,
            },
        })
    }
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let left = reader.table("left")?;
    let right = reader.table("right")?;
    let list =
        |reader: &mut CheckReader, key: &'static str| -> Result<Option<Vec<String>>, RuleError> {
            Ok(reader
                .map
                .string_list(key)?
                .map(|l| l.into_iter().map(|c| c.value).collect()))
        };
    let key = list(reader, "key")?;
    let pairing = ColumnPairing::read(reader, true)?;
    let left_filter = reader.filter("left_where")?;
    let right_filter = reader.filter("right_where")?;
    let samples = reader
        .map
        .u64("samples")?
        .map(|s| s.value as usize)
        .unwrap_or(super::SAMPLE_LIMIT);
    let flag = |reader: &mut CheckReader, key: &'static str| -> Result<bool, RuleError> {
        Ok(reader.map.bool(key)?.is_some_and(|b| b.value))
    };
    let allow_duplicates = flag(reader, "allow_duplicates")?;
    let allow_empty = flag(reader, "allow_empty")?;
    let precision = MillisecondColumns::read(reader)?;
    let settle = read_settle(reader)?;
    let max_differences = match reader.map.u64("max_differences")? {
        Some(zero) if zero.value == 0 => {
            return Err(RuleError::new(
                zero.location,
                format!("`max_differences` in {} must be at least 1", reader.what()),
            )
            .with_help(format!(
                "leave it out for the default ({MAX_DIFFERENCES}), or give the differences worth counting"
            )))
        }
        Some(n) => n.value,
        None => MAX_DIFFERENCES,
    };
    Ok(Arc::new(TableMatch {
        left,
        right,
        key,
        pairing,
        left_filter,
        right_filter,
        samples,
        allow_duplicates,
        allow_empty,
        precision,
        settle,
        max_differences,
    }))
}

/// A plan, plus what the schemas alone already show.
struct Resolved {
    plan: Plan,
    /// Right-only columns, not compared.
    ignored: Vec<String>,
    /// Left columns the right side lacks, and columns whose timestamps lost precision: each a
    /// finding that fails the check.
    schema_findings: Vec<(String, String)>,
}

impl TableMatch {
    /// Resolves key and columns against both schemas into a comparison plan.
    async fn plan(&self, probe: &Probe) -> Result<Resolved, CheckError> {
        let (left, right) = (
            ReadSide::resolve(probe, &self.left)?,
            ReadSide::resolve(probe, &self.right)?,
        );
        let (left_columns, right_columns) =
            tokio::try_join!(probe.columns(&left.read_as), probe.columns(&right.read_as))?;
        left.refuse_caveat(&self.left).await?;
        right.refuse_caveat(&self.right).await?;
        let key = match &self.key {
            Some(key) => key.clone(),
            None => match left.source.primary_key(&self.left.table).await? {
                Some(key) => key,
                None => right
                    .source
                    .primary_key(&self.right.table)
                    .await?
                    .ok_or_else(|| CheckError::NoKey {
                        left: self.left.clone(),
                        right: self.right.clone(),
                    })?,
            },
        };
        let wanted = self.pairing.wanted(&left_columns);
        let mut names: Vec<String> = key.clone();
        names.extend(
            wanted
                .into_iter()
                .filter(|n| !key.iter().any(|k| k.eq_ignore_ascii_case(n))),
        );
        let mut pairs = Vec::new();
        let mut problems = Vec::new();
        let mut findings = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let is_key = index < key.len();
            let right_name = self.pairing.right_name(name);
            match (
                find_column(&left_columns, name),
                find_column(&right_columns, right_name),
            ) {
                (Some(l), Some(r)) => pairs.push((l, r, is_key)),
                (None, _) => problems.push(ColumnProblem::NotAColumn {
                    column: name.clone(),
                    table: self.left.clone(),
                }),
                (Some(_), None) if is_key => problems.push(ColumnProblem::KeyNotAColumn {
                    column: right_name.to_string(),
                    table: self.right.clone(),
                }),
                (Some(_), None) => findings.push((
                    name.clone(),
                    format!(
                        "`{right_name}` is missing from {}: every left column is compared \
                         (`exclude` it, or `mapping` it to its new name)",
                        self.right
                    ),
                )),
            }
        }
        let ignored: Vec<String> = right_columns
            .iter()
            .filter(|c| {
                !pairs.iter().any(|(_, r, _)| r.name == c.name) && !self.pairing.excluded(&c.name)
            })
            .map(|c| c.name.clone())
            .collect();
        let mut compared: Vec<(Column, Column, canon::Canon)> = Vec::new();
        for (l, r, is_key) in pairs {
            let (lt, rt) = typed_pair((&l, left.text), (&r, right.text));
            match canon::choose_exact(&lt, &rt, self.precision.includes(&l.name)) {
                Ok(canon::Canon::Decimal) => {
                    // Typed as stored (not as read from text): a cheaper hash where it is exact.
                    let canon = canon::scaled_decimal(&l, &r).unwrap_or(canon::Canon::Decimal);
                    compared.push((l, r, canon))
                }
                Ok(canon) => compared.push((l, r, canon)),
                Err(Mismatch::PrecisionLost(text)) if !is_key => {
                    findings.push((l.name.clone(), text))
                }
                Err(mismatch) => problems.push(ColumnProblem::Incomparable {
                    column: l.name.clone(),
                    reason: mismatch.to_string(),
                }),
            }
        }
        if !problems.is_empty() {
            return Err(CheckError::Mapping {
                left: self.left.clone(),
                right: self.right.clone(),
                comparing: Comparing::Rows,
                problems,
            });
        }
        let enforced = |unique: Vec<Vec<String>>, columns: Vec<&str>| {
            unique.iter().any(|set| {
                set.len() == columns.len()
                    && set
                        .iter()
                        .all(|c| columns.iter().any(|k| k.eq_ignore_ascii_case(c)))
            })
        };
        let (left_unique, right_unique) = tokio::try_join!(
            left.source.unique_keys(&self.left.table),
            right.source.unique_keys(&self.right.table)
        )?;
        let key_len = key.len();
        let left_key: Vec<&str> = compared[..key_len]
            .iter()
            .map(|(l, ..)| l.name.as_str())
            .collect();
        let right_key: Vec<&str> = compared[..key_len]
            .iter()
            .map(|(_, r, _)| r.name.as_str())
            .collect();
        let (left_enforced, right_enforced) = (
            enforced(left_unique, left_key),
            enforced(right_unique, right_key),
        );
        let mut left_cols = Vec::new();
        let mut right_cols = Vec::new();
        let mut canons = Vec::new();
        for (l, r, canon) in compared {
            left_cols.push(l);
            right_cols.push(r);
            canons.push(canon);
        }
        let hashing = if left.source.typed_row_hash() && right.source.typed_row_hash() {
            Hashing::Typed
        } else {
            Hashing::Text
        };
        Ok(Resolved {
            plan: Plan {
                left: Side {
                    table: self.left.clone(),
                    read_as: left.read_as.table,
                    source: left.source,
                    filter: self.left_filter.clone(),
                    columns: left_cols,
                    key_enforced: left_enforced,
                },
                right: Side {
                    table: self.right.clone(),
                    read_as: right.read_as.table,
                    source: right.source,
                    filter: self.right_filter.clone(),
                    columns: right_cols,
                    key_enforced: right_enforced,
                },
                canons,
                hashing,
                key_len,
                // Enough keys for the run's failures files too; the samples keep their own.
                samples: self.samples.max(probe.failures_limit()),
                segmenter: Segmenter::KeyHash,
                allow_duplicates: self.allow_duplicates,
                settle: self.settle,
                max_differences: self.max_differences,
            },
            ignored,
            schema_findings: findings,
        })
    }
}

/// One row of the samples table: kind of difference, key, column, left value, right value.
type SampleRow = Vec<Option<String>>;

fn sample(
    kind: &str,
    key: &str,
    column: Option<&str>,
    left: Option<String>,
    right: Option<String>,
) -> SampleRow {
    vec![
        Some(kind.to_string()),
        Some(key.to_string()),
        column.map(str::to_string),
        left,
        right,
    ]
}

#[async_trait]
impl Check for TableMatch {
    fn default_name(&self) -> String {
        format!("table_match {} = {}", self.left, self.right)
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.left.clone(), self.right.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let Resolved {
            mut plan,
            ignored,
            schema_findings,
        } = self.plan(probe).await?;
        plan.choose_segmenter(probe).await?;
        let mut outcome = reconcile::compare(probe, &plan).await?;
        let limit = probe.failures_limit();
        let failures = (limit > 0).then(|| failure_rows(&plan, &outcome, limit));
        outcome.keep_samples(self.samples);
        let both_empty = outcome.left_rows + outcome.right_rows + outcome.null_keys() == 0;
        let empty_fails = both_empty && !self.allow_empty;
        let passed = outcome.missing == 0
            && outcome.extra == 0
            && outcome.changed == 0
            && outcome.duplicate_keys() == 0
            && outcome.null_keys() == 0
            && outcome.left_rows == outcome.right_rows
            && schema_findings.is_empty()
            && outcome.capped.is_none()
            && !empty_fails
            && outcome
                .settled
                .as_ref()
                .is_none_or(|s| s.still_differing == 0);
        let metrics = self.metrics(&plan, &outcome, ignored, &schema_findings);
        let rows = self.sample_rows(&outcome, &schema_findings);
        let samples = (!rows.is_empty()).then(|| Rows {
            columns: vec![
                "difference".into(),
                "key".into(),
                "column".into(),
                self.left.to_string(),
                self.right.to_string(),
            ],
            rows,
        });
        let mut observed = format!(
            "{} rows compared: {} matched, {} missing in target, {} extra in target, {} changed",
            outcome.left_rows, outcome.matched, outcome.missing, outcome.extra, outcome.changed
        );
        let mut also = Vec::new();
        if outcome.null_keys() > 0 {
            also.push(format!(
                "{} rows with a NULL key ({} in {}, {} in {})",
                outcome.null_keys(),
                outcome.left.null_keys,
                self.left,
                outcome.right.null_keys,
                self.right
            ));
        }
        if outcome.duplicate_keys() > 0 {
            also.push(format!(
                "{} duplicate keys ({} in {}, {} in {})",
                outcome.duplicate_keys(),
                outcome.left.duplicate_keys,
                self.left,
                outcome.right.duplicate_keys,
                self.right
            ));
        }
        if let Some(capped) = &outcome.capped {
            also.push(format!(
                "more than {} differences (at least {}): stopped reading rows after {} of {} \
                 differing segments, so the counts are of those; raise `max_differences` to count \
                 them all",
                capped.max_differences,
                capped.at_least,
                capped.segments_read,
                outcome.differing_segments
            ));
        }
        if let Some(finding) = outcome.settled.as_ref().and_then(settle_finding) {
            also.push(finding);
        }
        if !schema_findings.is_empty() {
            let names: Vec<&str> = schema_findings.iter().map(|(c, _)| c.as_str()).collect();
            also.push(format!(
                "columns not compared exactly: {}",
                names.join(", ")
            ));
        }
        if empty_fails {
            also.push(super::both_empty_finding(
                &self.left,
                &self.right,
                self.left_filter.is_some() || self.right_filter.is_some(),
            ));
        }
        if !also.is_empty() {
            observed = format!("{observed}; {}", also.join("; "));
        }
        Ok(Evaluation {
            passed,
            observed,
            expected: format!(
                "every row of {} in {} with equal values, keys unique and not NULL{}",
                self.left,
                self.right,
                match &self.settle {
                    Some(settle) => format!(
                        ", keys that differ agreeing within {}",
                        seconds(settle.within)
                    ),
                    None => String::new(),
                }
            ),
            failing_rows: Some(
                outcome.missing
                    + outcome.extra
                    + outcome.changed
                    + outcome.duplicate_keys()
                    + outcome.null_keys(),
            ),
            samples,
            failures,
            metrics,
            warning: None,
        })
    }
}

/// The failing rows of the run's failures files, up to `limit`: a row per differing key
/// with its key columns, how it differs (`missing_in_right`, `missing_in_left`, `changed`,
/// `duplicate_key_in_left`, `null_key_in_right`, ...), and for each column that differs in a
/// changed row both sides' values as `<column>__left` and `<column>__right` (NULL in rows
/// where that column does not differ). Values are in display form, as in the samples.
fn failure_rows(plan: &Plan, outcome: &Outcome, limit: usize) -> Rows {
    let key_len = plan.key_len;
    let mut columns: Vec<String> = plan.left.columns[..key_len]
        .iter()
        .map(|c| c.name.clone())
        .collect();
    columns.push("difference".into());
    let differing: Vec<&str> = plan.left.columns[key_len..]
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| outcome.changed_values.iter().any(|(_, c, ..)| c == name))
        .collect();
    for name in &differing {
        columns.push(format!("{name}__left"));
        columns.push(format!("{name}__right"));
    }
    // Both sides' values of each changed key's differing columns, by key and column.
    let changed: std::collections::HashMap<_, _> = outcome
        .changed_values
        .iter()
        .map(|(key, column, left, right)| ((key.as_str(), column.as_str()), (left, right)))
        .collect();
    let keys = outcome
        .differing_keys
        .iter()
        .map(|key| (key, ""))
        .chain(outcome.left.keys.iter().map(|key| (key, "_in_left")))
        .chain(outcome.right.keys.iter().map(|key| (key, "_in_right")));
    let rows = keys
        .take(limit)
        .map(|(key, side)| {
            let mut row: Vec<Option<String>> = key
                .fields
                .iter()
                .zip(&plan.canons)
                .map(|(field, canon)| field.as_deref().and_then(|f| canon::display(*canon, f)))
                .collect();
            let difference = match key.difference {
                Difference::MissingInRight => "missing_in_right",
                Difference::MissingInLeft => "missing_in_left",
                Difference::Changed => "changed",
                Difference::DuplicateKey => "duplicate_key",
                Difference::NullKey => "null_key",
            };
            row.push(Some(format!("{difference}{side}")));
            for name in &differing {
                let values = changed
                    .get(&(key.display.as_str(), *name))
                    .filter(|_| key.difference == Difference::Changed);
                row.push(values.and_then(|(left, _)| (*left).clone()));
                row.push(values.and_then(|(_, right)| (*right).clone()));
            }
            row
        })
        .collect();
    Rows { columns, rows }
}

impl TableMatch {
    fn metrics(
        &self,
        plan: &Plan,
        outcome: &Outcome,
        ignored: Vec<String>,
        schema_findings: &[(String, String)],
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut metrics = serde_json::Map::new();
        let mut put = |name: &str, value: serde_json::Value| {
            metrics.insert(name.to_string(), value);
        };
        put("left_rows", json!(outcome.left_rows));
        put("right_rows", json!(outcome.right_rows));
        put("matched", json!(outcome.matched));
        put("missing_in_target", json!(outcome.missing));
        put("extra_in_target", json!(outcome.extra));
        put("changed", json!(outcome.changed));
        put("max_differences", json!(plan.max_differences));
        if let Some(capped) = &outcome.capped {
            put("differences_at_least", json!(capped.at_least));
            put("differing_segments_read", json!(capped.segments_read));
        }
        put("null_keys", json!(outcome.null_keys()));
        put("null_keys_left", json!(outcome.left.null_keys));
        put("null_keys_right", json!(outcome.right.null_keys));
        put("duplicate_keys", json!(outcome.duplicate_keys()));
        put("duplicate_keys_left", json!(outcome.left.duplicate_keys));
        put("duplicate_keys_right", json!(outcome.right.duplicate_keys));
        put("missing_keys", json!(outcome.missing_keys));
        put("extra_keys", json!(outcome.extra_keys));
        put("changed_keys", json!(outcome.changed_keys));
        let duplicate_samples: Vec<&String> = outcome
            .left
            .duplicate_samples
            .iter()
            .chain(&outcome.right.duplicate_samples)
            .collect();
        put("duplicate_key_samples", json!(duplicate_samples));
        let null_samples: Vec<&String> = outcome
            .left
            .null_key_samples
            .iter()
            .chain(&outcome.right.null_key_samples)
            .collect();
        put("null_key_samples", json!(null_samples));
        put(
            "key",
            json!(plan.left.columns[..plan.key_len]
                .iter()
                .map(|c| &c.name)
                .collect::<Vec<_>>()),
        );
        put(
            "compared_columns",
            json!(plan
                .left
                .columns
                .iter()
                .zip(&plan.canons)
                .map(|(c, k)| format!("{} ({})", c.name, k.name()))
                .collect::<Vec<_>>()),
        );
        put(
            "uncompared_columns",
            json!(schema_findings
                .iter()
                .map(|(c, why)| json!({ "column": c, "why": why }))
                .collect::<Vec<_>>()),
        );
        put("ignored_columns", json!(ignored));
        put("allow_duplicates", json!(self.allow_duplicates));
        put("segments", json!(SEGMENTS));
        put(
            "segmented_by",
            json!(match plan.segmenter {
                Segmenter::KeyRange { .. } => "key range",
                Segmenter::KeyHash => "key hash",
            }),
        );
        put("differing_segments", json!(outcome.differing_segments));
        if let (Some(settle), Some(settled)) = (&self.settle, &outcome.settled) {
            put("settle_seconds", seconds_metric(settle.within));
            put("settle_interval_seconds", seconds_metric(settle.interval));
            put("settle_key_limit", json!(SETTLE_KEYS));
            put("in_flight", json!(settled.in_flight));
            put(
                "in_flight_keys",
                json!(settled
                    .in_flight_keys
                    .iter()
                    .map(|(key, after)| json!({
                        "key": key,
                        "arrived_after_seconds": seconds_metric(*after),
                    }))
                    .collect::<Vec<_>>()),
            );
            put(
                "settled_after_seconds",
                settled.settled_after.map_or(json!(null), seconds_metric),
            );
            put("still_differing", json!(settled.still_differing));
            put("not_rechecked", json!(settled.not_rechecked));
            put("repeated_not_settled", json!(settled.repeated));
            put("settle_rereads", json!(settled.rereads));
            put("settle_waited_seconds", seconds_metric(settled.waited));
        }
        metrics
    }

    fn sample_rows(
        &self,
        outcome: &Outcome,
        schema_findings: &[(String, String)],
    ) -> Vec<SampleRow> {
        let mut rows = Vec::new();
        for (column, why) in schema_findings {
            rows.push(sample(
                "column not compared",
                "",
                Some(column),
                Some(why.clone()),
                None,
            ));
        }
        for (side, unpairable) in [(&self.left, &outcome.left), (&self.right, &outcome.right)] {
            for row in &unpairable.null_key_samples {
                rows.push(sample(
                    "NULL key",
                    row,
                    None,
                    Some(format!("in {side}")),
                    None,
                ));
            }
        }
        for key in &outcome.missing_keys {
            rows.push(sample("missing in target", key, None, None, None));
        }
        for key in &outcome.extra_keys {
            rows.push(sample("extra in target", key, None, None, None));
        }
        for (key, column, left, right) in &outcome.changed_values {
            rows.push(sample(
                "changed",
                key,
                Some(column),
                left.clone(),
                right.clone(),
            ));
        }
        for text in outcome
            .left
            .duplicate_samples
            .iter()
            .chain(&outcome.right.duplicate_samples)
        {
            rows.push(sample("duplicate key", text, None, None, None));
        }
        rows
    }
}
