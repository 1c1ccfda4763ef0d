//! Row-exact comparison of two tables in any two engines, moving hashes instead of rows.
//!
//! 1. Each engine hashes every row from its typed values (`row_hash.rs`) and folds the hashes
//!    into per-segment checksums (`count`, `bit_xor`), segments being key ranges (one integer
//!    key) or buckets of the key hash. Postgres does this on several connections over disjoint
//!    segment ranges (one backend uses one core).
//! 2. Segments whose checksums differ are the only ones read again, as (key, row hash) pairs,
//!    in chunks of bounded size, and matched by key in memory.
//! 3. For a sample of changed keys both sides return canonical and displayable values, so the
//!    report names the columns that differ and shows both values.
//!
//! Memory stays flat for identical tables (one entry per segment); it grows only with the rows
//! of differing segments, and a chunk holds at most `CHUNK_ROWS` of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::canonical::{self, Canon};
use crate::checks::{CheckError, Probe, TableRef};
use crate::sources::{Column, Source};
use crate::sql::quote_ident;

/// Key-hash buckets. Enough that a difference pins a small segment in large tables, few
/// enough that the checksum lists stay tiny.
pub const SEGMENTS: i64 = 8192;
/// Most rows of differing segments read per chunk and side.
const CHUNK_ROWS: i64 = 100_000;

/// One side of a comparison, resolved.
pub struct Side {
    pub table: TableRef,
    pub source: Arc<dyn Source>,
    pub filter: Option<String>,
    /// Compared columns of this side, in comparison order (key columns first).
    pub columns: Vec<Column>,
}

/// What to compare, resolved from the rule and both schemas.
pub struct Plan {
    pub left: Side,
    pub right: Side,
    /// Encoding of each compared column (same order as `Side::columns`).
    pub canons: Vec<Canon>,
    /// How many leading columns form the key.
    pub key_len: usize,
    pub samples: usize,
    pub segmenter: Segmenter,
}

/// How rows are grouped into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segmenter {
    /// Ranges of a single integer key: no hashing to place a row, and an index can serve a range.
    KeyRange { min: i64, width: i64 },
    /// Buckets of the key's hash: works for any key.
    KeyHash,
}

impl Plan {
    /// Picks key ranges when the key is one integer column, else key-hash buckets.
    pub async fn choose_segmenter(&mut self, probe: &Probe) -> Result<(), CheckError> {
        self.segmenter = Segmenter::KeyHash;
        if self.key_len != 1 || self.canons[0] != Canon::Int {
            return Ok(());
        }
        let (l, r) = tokio::try_join!(self.left.key_bounds(probe), self.right.key_bounds(probe))?;
        let bounds = match (l, r) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (one, other) => one.or(other),
        };
        if let Some((min, max)) = bounds {
            let span = (max as i128 - min as i128 + 1) as f64;
            let width = (span / SEGMENTS as f64).ceil().max(1.0);
            if width < i64::MAX as f64 / 2.0 {
                self.segmenter = Segmenter::KeyRange {
                    min,
                    width: width as i64,
                };
            }
        }
        Ok(())
    }

    fn segment_count(&self) -> i64 {
        SEGMENTS
    }
}

/// A row identified by its key: canonical key text (to match) and display text (to report).
#[derive(Debug, Clone)]
pub struct KeyedRow {
    pub display: String,
    hash: i64,
    key_hash: i64,
}

/// The outcome of a comparison.
#[derive(Debug, Default)]
pub struct Outcome {
    pub left_rows: u64,
    pub right_rows: u64,
    pub matched: u64,
    pub missing: u64,
    pub extra: u64,
    pub changed: u64,
    pub duplicate_keys: u64,
    pub differing_segments: u64,
    pub missing_keys: Vec<String>,
    pub extra_keys: Vec<String>,
    pub duplicate_samples: Vec<String>,
    /// (key, column, left value, right value) for a sample of changed rows.
    pub changed_values: Vec<(String, String, Option<String>, Option<String>)>,
    pub changed_keys: Vec<String>,
}

impl Side {
    fn field_sql(&self, index: usize, canon: Canon) -> String {
        self.source.canonical_sql(&self.columns[index], canon)
    }

    fn key_text_sql(&self, plan: &Plan) -> String {
        let fields: Vec<String> = (0..plan.key_len)
            .map(|i| self.field_sql(i, plan.canons[i]))
            .collect();
        format!(
            "concat_ws('{}', {})",
            canonical::SEPARATOR,
            fields.join(", ")
        )
    }

    /// The row hash, seeded by the key hash `lakecheck_kh` of `keyed_rows_sql`.
    fn row_hash_sql(&self, plan: &Plan) -> String {
        let columns: Vec<(&Column, Canon)> = self
            .columns
            .iter()
            .zip(plan.canons.iter().copied())
            .collect();
        self.source.row_hash_sql(&columns, "lakecheck_kh")
    }

    fn key_hash_sql(&self, plan: &Plan) -> String {
        let key: Vec<(&Column, Canon)> = self.columns[..plan.key_len]
            .iter()
            .zip(plan.canons.iter().copied())
            .collect();
        self.source.row_hash_sql(&key, "0")
    }

    /// Display text of the key, e.g. `order_id=7, part_id=3`, built in SQL as text.
    fn key_columns(&self, plan: &Plan) -> Vec<String> {
        (0..plan.key_len)
            .map(|i| quote_ident(&self.columns[i].name))
            .collect()
    }

    /// The table, kept to the rule's `filter` and `condition` when given.
    fn filtered_table_sql(&self, condition: Option<&str>) -> String {
        let from = self.source.table_sql(&self.table.table);
        let conditions: Vec<String> = self
            .filter
            .as_deref()
            .into_iter()
            .chain(condition)
            .map(|c| format!("({c})"))
            .collect();
        if conditions.is_empty() {
            from
        } else {
            format!("{from} WHERE {}", conditions.join(" AND "))
        }
    }

    /// The table's rows (all columns) and their key hash `lakecheck_kh`, kept to those that
    /// satisfy `filter` (a condition on the key columns for key ranges, on `lakecheck_kh` for
    /// key-hash buckets). `OFFSET 0` keeps PostgreSQL from inlining the key hash into every
    /// column's seed (it would compute it once per column); key-range conditions stay inside,
    /// next to the table, so an index can serve them.
    fn keyed_rows_sql(&self, plan: &Plan, filter: Option<&str>) -> String {
        let (inner, outer) = match plan.segmenter {
            Segmenter::KeyRange { .. } => (filter, None),
            Segmenter::KeyHash => (None, filter),
        };
        let rows = format!(
            "SELECT {} AS lakecheck_kh, * FROM {} OFFSET 0",
            self.key_hash_sql(plan),
            self.filtered_table_sql(inner)
        );
        match outer {
            Some(f) => format!("SELECT * FROM ({rows}) AS unfiltered WHERE {f}"),
            None => rows,
        }
    }

    fn key_ident(&self) -> String {
        quote_ident(&self.columns[0].name)
    }

    /// SQL giving a row's segment number.
    fn segment_sql(&self, plan: &Plan) -> String {
        match plan.segmenter {
            Segmenter::KeyRange { min, width } => {
                format!("(({} - {min}) / {width})", self.key_ident())
            }
            Segmenter::KeyHash => format!("(lakecheck_kh & {})", SEGMENTS - 1),
        }
    }

    /// SQL keeping rows of segments `lo..=hi` (a key range scan when segments are key ranges).
    fn segment_range_sql(&self, plan: &Plan, lo: i64, hi: i64) -> String {
        match plan.segmenter {
            Segmenter::KeyRange { min, width } => {
                format!(
                    "{} BETWEEN {} AND {}",
                    self.key_ident(),
                    min + lo * width,
                    min + (hi + 1) * width - 1
                )
            }
            Segmenter::KeyHash => format!("{} BETWEEN {lo} AND {hi}", self.segment_sql(plan)),
        }
    }

    /// SQL keeping rows of the listed segments.
    fn segments_sql(&self, plan: &Plan, segments: &[i64]) -> String {
        match plan.segmenter {
            Segmenter::KeyRange { .. } => {
                let mut ranges: Vec<(i64, i64)> = Vec::new();
                for &segment in segments {
                    match ranges.last_mut() {
                        Some((_, hi)) if *hi + 1 == segment => *hi = segment,
                        _ => ranges.push((segment, segment)),
                    }
                }
                let parts: Vec<String> = ranges
                    .iter()
                    .map(|(lo, hi)| self.segment_range_sql(plan, *lo, *hi))
                    .collect();
                format!("({})", parts.join(" OR "))
            }
            Segmenter::KeyHash => {
                let list = segments
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{} IN ({list})", self.segment_sql(plan))
            }
        }
    }

    /// Per-segment row count and checksum. `OFFSET 0` hides the segment expression from
    /// PostgreSQL's group-count estimate (otherwise one group per key): with the default guess
    /// it hashes the few thousand segments instead of sorting every row by segment on disk.
    fn checksums_sql(&self, plan: &Plan, segments: Option<(i64, i64)>) -> String {
        let range = segments.map(|(lo, hi)| self.segment_range_sql(plan, lo, hi));
        format!(
            "SELECT segment, count(*) AS row_count, bit_xor(row_hash) AS checksum FROM (\
             SELECT {segment} AS segment, {row_hash} AS row_hash FROM ({rows}) AS keyed OFFSET 0\
             ) AS hashed GROUP BY segment",
            segment = self.segment_sql(plan),
            row_hash = self.row_hash_sql(plan),
            rows = self.keyed_rows_sql(plan, range.as_deref()),
        )
    }

    fn rows_in_segments_sql(&self, plan: &Plan, segments: &[i64]) -> String {
        format!(
            "SELECT {key_text} AS key_text, {row_hash} AS row_hash, lakecheck_kh, {keys} FROM ({rows}) AS keyed",
            key_text = self.key_text_sql(plan),
            row_hash = self.row_hash_sql(plan),
            keys = self.key_columns(plan).join(", "),
            rows = self.keyed_rows_sql(plan, Some(&self.segments_sql(plan, segments))),
        )
    }

    /// Canonical and raw values of the rows with these keys (canonical key text, key hash).
    fn values_sql(&self, plan: &Plan, keys: &[(String, i64)]) -> String {
        let fields: Vec<String> = plan
            .canons
            .iter()
            .enumerate()
            .map(|(i, c)| self.field_sql(i, *c))
            .collect();
        let raw: Vec<String> = self.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let filter = match plan.segmenter {
            // The canonical text of an integer key is its digits.
            Segmenter::KeyRange { .. } => {
                let list: Vec<&str> = keys.iter().map(|(text, _)| text.as_str()).collect();
                format!("{} IN ({})", self.key_ident(), list.join(", "))
            }
            Segmenter::KeyHash => {
                let hashes: Vec<String> = keys.iter().map(|(_, hash)| hash.to_string()).collect();
                format!("lakecheck_kh IN ({})", hashes.join(", "))
            }
        };
        format!(
            "SELECT {key_text} AS key_text, {fields}, {raw} FROM ({rows}) AS keyed",
            key_text = self.key_text_sql(plan),
            fields = fields.join(", "),
            raw = raw.join(", "),
            rows = self.keyed_rows_sql(plan, Some(&filter)),
        )
    }

    /// The smallest and largest key, for key-range segments.
    async fn key_bounds(&self, probe: &Probe) -> Result<Option<(i64, i64)>, CheckError> {
        let key = self.key_ident();
        let rows = probe
            .query(
                &self.table.source,
                format!(
                    "SELECT min({key}) AS lo, max({key}) AS hi FROM {}",
                    self.filtered_table_sql(None)
                ),
            )
            .await?;
        let value = |name: &str| rows.first(name).and_then(|v| v.parse::<i64>().ok());
        Ok(value("lo").zip(value("hi")))
    }

    fn key_display(&self, plan: &Plan, values: &[Option<String>]) -> String {
        (0..plan.key_len)
            .map(|i| {
                format!(
                    "{}={}",
                    self.columns[i].name,
                    values
                        .get(i)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| "NULL".into())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Per-segment (row count, checksum), in parallel over disjoint bucket ranges.
    async fn checksums(
        &self,
        probe: &Probe,
        plan: &Plan,
    ) -> Result<BTreeMap<i64, (i64, i64)>, CheckError> {
        let parallel = self.source.parallel_queries().max(1) as i64;
        let segments = plan.segment_count();
        let queries: Vec<String> = if parallel == 1 {
            vec![self.checksums_sql(plan, None)]
        } else {
            let width = (segments + parallel - 1) / parallel;
            (0..parallel)
                .map(|p| {
                    let hi = if p == parallel - 1 {
                        segments - 1
                    } else {
                        (p + 1) * width - 1
                    };
                    self.checksums_sql(plan, Some((p * width, hi)))
                })
                .collect()
        };
        let results = futures::future::try_join_all(
            queries
                .into_iter()
                .map(|sql| probe.query(&self.table.source, sql)),
        )
        .await?;
        let mut segments = BTreeMap::new();
        for rows in results {
            for row in &rows.rows {
                let number = |i: usize| -> Result<i64, CheckError> {
                    row.get(i)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| "0".into())
                        .parse::<i64>()
                        .map_err(|e| CheckError::Unexpected(format!("bad checksum value: {e}")))
                };
                segments.insert(number(0)?, (number(1)?, number(2)?));
            }
        }
        Ok(segments)
    }

    /// (key text → rows) for the given segments.
    async fn keyed(
        &self,
        probe: &Probe,
        plan: &Plan,
        segments: &[i64],
    ) -> Result<HashMap<String, Vec<KeyedRow>>, CheckError> {
        let rows = probe
            .query(
                &self.table.source,
                self.rows_in_segments_sql(plan, segments),
            )
            .await?;
        let mut keyed: HashMap<String, Vec<KeyedRow>> = HashMap::with_capacity(rows.rows.len());
        for row in rows.rows {
            let key = row[0].clone().unwrap_or_default();
            let number = |i: usize| -> Result<i64, CheckError> {
                row[i]
                    .as_deref()
                    .unwrap_or("0")
                    .parse::<i64>()
                    .map_err(|e| CheckError::Unexpected(format!("bad row hash: {e}")))
            };
            let (hash, key_hash) = (number(1)?, number(2)?);
            let display = self.key_display(plan, &row[3..]);
            keyed.entry(key).or_default().push(KeyedRow {
                display,
                hash,
                key_hash,
            });
        }
        Ok(keyed)
    }
}

/// Runs the comparison.
pub async fn compare(probe: &Probe, plan: &Plan) -> Result<Outcome, CheckError> {
    let (left, right) = tokio::try_join!(
        plan.left.checksums(probe, plan),
        plan.right.checksums(probe, plan)
    )?;
    let mut outcome = Outcome {
        left_rows: left.values().map(|(n, _)| *n as u64).sum(),
        right_rows: right.values().map(|(n, _)| *n as u64).sum(),
        ..Outcome::default()
    };
    let mut differing: Vec<(i64, i64)> = Vec::new();
    let mut matched_rows = 0u64;
    let mut ids: Vec<i64> = left.keys().chain(right.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    for segment in ids {
        let (l, r) = (left.get(&segment), right.get(&segment));
        if l == r {
            matched_rows += l.map(|(n, _)| *n as u64).unwrap_or(0);
        } else {
            let size = l
                .map(|(n, _)| *n)
                .unwrap_or(0)
                .max(r.map(|(n, _)| *n).unwrap_or(0));
            differing.push((segment, size));
        }
    }
    outcome.matched = matched_rows;
    outcome.differing_segments = differing.len() as u64;

    let mut changed_hashes: Vec<Changed> = Vec::new();
    for chunk in chunks(&differing) {
        let (l, r) = tokio::try_join!(
            plan.left.keyed(probe, plan, &chunk),
            plan.right.keyed(probe, plan, &chunk)
        )?;
        match_chunk(&l, &r, plan.samples, &mut outcome, &mut changed_hashes);
    }
    if !changed_hashes.is_empty() {
        describe_changes(probe, plan, &changed_hashes, &mut outcome).await?;
    }
    Ok(outcome)
}

/// Groups differing segments so each query reads at most about `CHUNK_ROWS` rows per side.
fn chunks(differing: &[(i64, i64)]) -> Vec<Vec<i64>> {
    let mut chunks: Vec<Vec<i64>> = Vec::new();
    let mut current = Vec::new();
    let mut rows = 0;
    for (segment, size) in differing {
        if !current.is_empty() && rows + size > CHUNK_ROWS {
            chunks.push(std::mem::take(&mut current));
            rows = 0;
        }
        current.push(*segment);
        rows += size;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// A sampled changed row: canonical key text, display text, key hash.
struct Changed {
    key: String,
    display: String,
    key_hash: i64,
}

fn match_chunk(
    left: &HashMap<String, Vec<KeyedRow>>,
    right: &HashMap<String, Vec<KeyedRow>>,
    samples: usize,
    outcome: &mut Outcome,
    changed: &mut Vec<Changed>,
) {
    let mut keys: Vec<&String> = left.keys().chain(right.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (l, r) = (left.get(key), right.get(key));
        let display = l
            .or(r)
            .and_then(|rows| rows.first())
            .map(|row| row.display.clone())
            .unwrap_or_default();
        if l.is_some_and(|rows| rows.len() > 1) || r.is_some_and(|rows| rows.len() > 1) {
            outcome.duplicate_keys += 1;
            if outcome.duplicate_samples.len() < samples {
                let count = |rows: Option<&Vec<KeyedRow>>| rows.map(Vec::len).unwrap_or(0);
                outcome.duplicate_samples.push(format!(
                    "{display} (left {} rows, right {} rows)",
                    count(l),
                    count(r)
                ));
            }
        }
        match (l, r) {
            (Some(_), None) => {
                outcome.missing += 1;
                if outcome.missing_keys.len() < samples {
                    outcome.missing_keys.push(display);
                }
            }
            (None, Some(_)) => {
                outcome.extra += 1;
                if outcome.extra_keys.len() < samples {
                    outcome.extra_keys.push(display);
                }
            }
            (Some(l), Some(r)) => {
                if l[0].hash != r[0].hash {
                    outcome.changed += 1;
                    if changed.len() < samples {
                        changed.push(Changed {
                            key: key.clone(),
                            display,
                            key_hash: l[0].key_hash,
                        });
                    }
                } else if l.len() == 1 && r.len() == 1 {
                    outcome.matched += 1;
                }
            }
            (None, None) => {}
        }
    }
}

/// Names the differing columns of sampled changed rows, with both values.
async fn describe_changes(
    probe: &Probe,
    plan: &Plan,
    changed: &[Changed],
    outcome: &mut Outcome,
) -> Result<(), CheckError> {
    let keys: Vec<(String, i64)> = changed
        .iter()
        .map(|c| (c.key.clone(), c.key_hash))
        .collect();
    let (l, r) = tokio::try_join!(
        probe.query(&plan.left.table.source, plan.left.values_sql(plan, &keys)),
        probe.query(&plan.right.table.source, plan.right.values_sql(plan, &keys))
    )?;
    let by_key = |rows: &crate::sources::Rows| -> HashMap<String, Vec<Option<String>>> {
        rows.rows
            .iter()
            .map(|row| (row[0].clone().unwrap_or_default(), row[1..].to_vec()))
            .collect()
    };
    let (l, r) = (by_key(&l), by_key(&r));
    let n = plan.canons.len();
    for Changed { key, display, .. } in changed {
        outcome.changed_keys.push(display.clone());
        let (Some(lv), Some(rv)) = (l.get(key), r.get(key)) else {
            continue;
        };
        for i in 0..n {
            if lv[i] != rv[i] {
                outcome.changed_values.push((
                    display.clone(),
                    plan.left.columns[i].name.clone(),
                    lv[n + i].clone(),
                    rv[n + i].clone(),
                ));
            }
        }
    }
    Ok(())
}
