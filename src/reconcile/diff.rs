//! Row-exact comparison of two tables in any two engines, moving hashes instead of rows.
//!
//! 1. Each engine hashes every row from its typed values (`model/row_hash.rs`) and folds the hashes
//!    into per-segment checksums, segments being key ranges (one integer key) or buckets of the
//!    key hash. A checksum is the row count and the sums of the hashes' high and low 32-bit
//!    halves: sums, unlike XOR, never cancel a pair of identical rows, so the checksum is one of
//!    the segment's *multiset* of rows. Postgres does this on several connections over disjoint
//!    segment ranges (one backend uses one core).
//! 0. Rows whose key has a NULL are never paired: each side counts them apart (and samples
//!    them), and they fail the check. Duplicate keys fail it too unless the rule allows them;
//!    a side whose engine enforces the key (a primary key) needs no search for either.
//! 2. Segments whose checksums differ are the only ones read again, as (key, row hash) pairs,
//!    in chunks of bounded size, and matched by key in memory.
//! 3. For a sample of changed keys both sides return canonical and displayable values, so the
//!    report names the columns that differ and shows both values.
//!
//! Memory stays flat for identical tables (one entry per segment); it grows only with the rows
//! of differing segments, and a chunk holds at most `CHUNK_ROWS` of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::canon::{self, Canon};
use crate::model::sql::quote_ident;
use crate::model::TableRef;
use crate::model::{Column, LogicalType};
use crate::probe::{CheckError, Probe};
use crate::sources::Source;

/// Key-hash buckets. Enough that a difference pins a small segment in large tables, few
/// enough that the checksum lists stay tiny.
pub const SEGMENTS: i64 = 8192;
/// Most rows of differing segments read per chunk and side.
const CHUNK_ROWS: i64 = 100_000;

/// One side of a comparison, resolved.
pub struct Side {
    pub table: TableRef,
    /// The table the SQL reads: `table`'s own, or its all-text twin (`Source::text_twin`).
    pub read_as: String,
    pub source: Arc<dyn Source>,
    pub filter: Option<String>,
    /// Compared columns of this side, in comparison order (key columns first).
    pub columns: Vec<Column>,
    /// The engine enforces this key unique and not NULL (a primary key): no NULL keys or
    /// duplicates to look for on this side.
    pub key_enforced: bool,
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
    /// Compare rows as multisets (`allow_duplicates: true`) instead of failing on repeated keys.
    pub allow_duplicates: bool,
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
        let integer = |side: &Side| matches!(side.columns[0].logical, LogicalType::Int { .. });
        // Ranges need the key typed as an integer on both sides (not a CSV's text).
        if self.key_len != 1
            || self.canons[0] != Canon::Int
            || !integer(&self.left)
            || !integer(&self.right)
        {
            return Ok(());
        }
        let (l, r) = tokio::try_join!(self.left.key_bounds(probe), self.right.key_bounds(probe))?;
        let bounds = match (l, r) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (one, other) => one.or(other),
        };
        if let Some((min, max)) = bounds {
            // `key - min` must fit a bigint in both engines: wider spans use key-hash buckets.
            let span = max as i128 - min as i128 + 1;
            if span <= i64::MAX as i128 {
                let width = (span + SEGMENTS as i128 - 1) / SEGMENTS as i128;
                self.segmenter = Segmenter::KeyRange {
                    min,
                    width: width.max(1) as i64,
                };
            }
        }
        Ok(())
    }

    fn segment_count(&self) -> i64 {
        SEGMENTS
    }
}

/// A row identified by its key: its display text (to report) and hashes.
#[derive(Debug, Clone)]
pub struct KeyedRow {
    pub display: String,
    hash: i64,
    key_hash: i64,
}

/// Per-segment row count and the sums of the row hashes' high and low halves.
type Checksum = (i64, i64, i64);

/// What one side holds that cannot be paired by key.
#[derive(Debug, Default, Clone)]
pub struct Unpairable {
    /// Rows with a NULL in a key column.
    pub null_keys: u64,
    pub null_key_samples: Vec<String>,
    /// Keys held by more than one row (when duplicates are not allowed).
    pub duplicate_keys: u64,
    pub duplicate_samples: Vec<String>,
}

/// The outcome of a comparison.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rows with a non-NULL key on each side (the rows that are paired by key).
    pub left_rows: u64,
    pub right_rows: u64,
    pub matched: u64,
    pub missing: u64,
    pub extra: u64,
    pub changed: u64,
    pub differing_segments: u64,
    pub missing_keys: Vec<String>,
    pub extra_keys: Vec<String>,
    /// (key, column, left value, right value) for a sample of changed rows, values in the
    /// display form of their canon (`canon::display`).
    pub changed_values: Vec<(String, String, Option<String>, Option<String>)>,
    pub changed_keys: Vec<String>,
    pub left: Unpairable,
    pub right: Unpairable,
}

impl Outcome {
    pub fn null_keys(&self) -> u64 {
        self.left.null_keys + self.right.null_keys
    }

    pub fn duplicate_keys(&self) -> u64 {
        self.left.duplicate_keys + self.right.duplicate_keys
    }
}

impl Side {
    fn field_sql(&self, index: usize, canon: Canon) -> String {
        self.source.canonical_sql(&self.columns[index], canon)
    }

    fn key_fields_sql(&self, plan: &Plan) -> Vec<String> {
        (0..plan.key_len)
            .map(|i| format!("{} AS lakecheck_k{i}", self.field_sql(i, plan.canons[i])))
            .collect()
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

    fn key_idents(&self, plan: &Plan) -> Vec<String> {
        (0..plan.key_len)
            .map(|i| quote_ident(&self.columns[i].name))
            .collect()
    }

    /// `TRUE` for rows whose key has no NULL: the only rows paired by key.
    fn key_present_sql(&self, plan: &Plan) -> String {
        let parts: Vec<String> = self
            .key_idents(plan)
            .iter()
            .map(|k| format!("{k} IS NOT NULL"))
            .collect();
        format!("({})", parts.join(" AND "))
    }

    /// The table, kept to the rule's `filter` and `condition` when given.
    fn filtered_table_sql(&self, condition: Option<&str>) -> String {
        let from = self.source.table_sql(&self.read_as);
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

    /// The table's rows with a complete key (all columns) and their key hash `lakecheck_kh`,
    /// kept to those that satisfy `filter` (a condition on the key columns for key ranges, on
    /// `lakecheck_kh` for key-hash buckets). `OFFSET 0` keeps PostgreSQL from inlining the key
    /// hash into every column's seed (it would compute it once per column); key-range conditions
    /// stay inside, next to the table, so an index can serve them.
    fn keyed_rows_sql(&self, plan: &Plan, filter: Option<&str>) -> String {
        let (inner, outer) = match plan.segmenter {
            Segmenter::KeyRange { .. } => (filter, None),
            Segmenter::KeyHash => (None, filter),
        };
        let present = self.key_present_sql(plan);
        let inner = match inner {
            Some(f) => format!("{present} AND ({f})"),
            None => present,
        };
        let rows = format!(
            "SELECT {} AS lakecheck_kh, * FROM {} OFFSET 0",
            self.key_hash_sql(plan),
            self.filtered_table_sql(Some(&inner))
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
                let (low, high) = key_range(min, width, lo, hi);
                format!("{} BETWEEN {low} AND {high}", self.key_ident())
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

    /// Per-segment row count and multiset checksum (see the module doc). `OFFSET 0` hides the
    /// segment expression from PostgreSQL's group-count estimate (otherwise one group per key):
    /// with the default guess it hashes the few thousand segments instead of sorting every row
    /// by segment on disk. Each half is summed as a 32-bit integer, which both engines sum into
    /// a 64-bit one without overflow below 2^32 rows a segment.
    fn checksums_sql(&self, plan: &Plan, segments: Option<(i64, i64)>) -> String {
        let range = segments.map(|(lo, hi)| self.segment_range_sql(plan, lo, hi));
        format!(
            "SELECT segment, count(*) AS row_count, \
             sum(CAST(row_hash >> 32 AS INTEGER)) AS sum_high, \
             sum(CAST((row_hash & 4294967295) - 2147483648 AS INTEGER)) AS sum_low FROM (\
             SELECT {segment} AS segment, {row_hash} AS row_hash FROM ({rows}) AS keyed OFFSET 0\
             ) AS hashed GROUP BY segment",
            segment = self.segment_sql(plan),
            row_hash = self.row_hash_sql(plan),
            rows = self.keyed_rows_sql(plan, range.as_deref()),
        )
    }

    fn rows_in_segments_sql(&self, plan: &Plan, segments: &[i64]) -> String {
        format!(
            "SELECT {key_fields}, {row_hash} AS row_hash, lakecheck_kh FROM ({rows}) AS keyed",
            key_fields = self.key_fields_sql(plan).join(", "),
            row_hash = self.row_hash_sql(plan),
            rows = self.keyed_rows_sql(plan, Some(&self.segments_sql(plan, segments))),
        )
    }

    /// Canonical values of the rows with these keys (canonical key fields, key hash).
    fn values_sql(&self, plan: &Plan, keys: &[(Vec<String>, i64)]) -> String {
        let fields: Vec<String> = plan
            .canons
            .iter()
            .enumerate()
            .map(|(i, c)| self.field_sql(i, *c))
            .collect();
        let filter = match plan.segmenter {
            // The canonical text of an integer key is its digits.
            Segmenter::KeyRange { .. } => {
                let list: Vec<&str> = keys.iter().map(|(fields, _)| fields[0].as_str()).collect();
                format!("{} IN ({})", self.key_ident(), list.join(", "))
            }
            Segmenter::KeyHash => {
                let hashes: Vec<String> = keys.iter().map(|(_, hash)| hash.to_string()).collect();
                format!("lakecheck_kh IN ({})", hashes.join(", "))
            }
        };
        format!(
            "SELECT {fields} FROM ({rows}) AS keyed",
            fields = fields.join(", "),
            rows = self.keyed_rows_sql(plan, Some(&filter)),
        )
    }

    /// Rows with a NULL in the key: how many, and the first few in canonical order.
    fn null_keys_sql(&self, plan: &Plan) -> String {
        let fields: Vec<String> = plan
            .canons
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS lakecheck_f{i}", self.field_sql(i, *c)))
            .collect();
        let order: Vec<String> = (0..fields.len())
            .map(|i| format!("lakecheck_f{i}"))
            .collect();
        format!(
            "SELECT {fields}, count(*) OVER () AS lakecheck_total FROM {rows} \
             ORDER BY {order} LIMIT {limit}",
            fields = fields.join(", "),
            rows = self.filtered_table_sql(Some(&format!("NOT {}", self.key_present_sql(plan)))),
            order = order.join(", "),
            limit = plan.samples.max(1),
        )
    }

    /// Keys held by more than one row: how many, and the first few with their row counts.
    fn duplicate_keys_sql(&self, plan: &Plan) -> String {
        let keys = self.key_idents(plan);
        let order: Vec<String> = (0..plan.key_len)
            .map(|i| format!("lakecheck_k{i}"))
            .collect();
        format!(
            "SELECT {fields}, lakecheck_rows, count(*) OVER () AS lakecheck_total FROM (\
             SELECT {keys}, count(*) AS lakecheck_rows FROM {rows} GROUP BY {keys} \
             HAVING count(*) > 1) AS repeated ORDER BY {order} LIMIT {limit}",
            fields = self.key_fields_sql(plan).join(", "),
            keys = keys.join(", "),
            rows = self.filtered_table_sql(Some(&self.key_present_sql(plan))),
            order = order.join(", "),
            limit = plan.samples.max(1),
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

    /// `order_id=7, part_id=3` from canonical key fields.
    fn key_display(&self, plan: &Plan, fields: &[Option<String>]) -> String {
        (0..plan.key_len)
            .map(|i| {
                let value = fields
                    .get(i)
                    .cloned()
                    .flatten()
                    .and_then(|f| canon::display(plan.canons[i], &f))
                    .unwrap_or_else(|| "NULL".into());
                format!("{}={value}", self.columns[i].name)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Per-segment checksums, in parallel over disjoint bucket ranges.
    async fn checksums(
        &self,
        probe: &Probe,
        plan: &Plan,
    ) -> Result<BTreeMap<i64, Checksum>, CheckError> {
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
                let number = |i: usize| number(row, i, "segment checksum");
                segments.insert(number(0)?, (number(1)?, number(2)?, number(3)?));
            }
        }
        Ok(segments)
    }

    /// (canonical key → rows) for the given segments.
    async fn keyed(
        &self,
        probe: &Probe,
        plan: &Plan,
        segments: &[i64],
    ) -> Result<HashMap<Vec<String>, Vec<KeyedRow>>, CheckError> {
        let rows = probe
            .query(
                &self.table.source,
                self.rows_in_segments_sql(plan, segments),
            )
            .await?;
        let n = plan.key_len;
        let mut keyed: HashMap<Vec<String>, Vec<KeyedRow>> =
            HashMap::with_capacity(rows.rows.len());
        for row in rows.rows {
            let (hash, key_hash) = (
                number(&row, n, "row hash")?,
                number(&row, n + 1, "key hash")?,
            );
            let display = self.key_display(plan, &row[..n]);
            let key = row[..n]
                .iter()
                .map(|f| f.clone().unwrap_or_default())
                .collect();
            keyed.entry(key).or_default().push(KeyedRow {
                display,
                hash,
                key_hash,
            });
        }
        Ok(keyed)
    }

    /// Counts and samples this side's rows with a NULL key and, when `duplicates`, its
    /// repeated keys.
    async fn unpairable(
        &self,
        probe: &Probe,
        plan: &Plan,
        duplicates: bool,
    ) -> Result<Unpairable, CheckError> {
        let mut found = Unpairable::default();
        if self.key_enforced {
            return Ok(found);
        }
        let nulls = probe.query(&self.table.source, self.null_keys_sql(plan));
        let repeated = async {
            match duplicates {
                true => probe
                    .query(&self.table.source, self.duplicate_keys_sql(plan))
                    .await
                    .map(Some),
                false => Ok(None),
            }
        };
        let (nulls, repeated) = tokio::try_join!(nulls, repeated)?;
        let n = plan.canons.len();
        for row in nulls.rows.iter().take(plan.samples) {
            found.null_key_samples.push(
                (0..n)
                    .map(|i| {
                        let value = row[i]
                            .as_deref()
                            .and_then(|f| canon::display(plan.canons[i], f))
                            .unwrap_or_else(|| "NULL".into());
                        format!("{}={value}", self.columns[i].name)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        found.null_keys = match nulls.rows.first() {
            Some(row) => number(row, n, "NULL key count")? as u64,
            None => 0,
        };
        if let Some(repeated) = repeated {
            let k = plan.key_len;
            for row in repeated.rows.iter().take(plan.samples) {
                found.duplicate_samples.push(format!(
                    "{} ({} rows in {})",
                    self.key_display(plan, &row[..k]),
                    number(row, k, "row count")?,
                    self.table
                ));
            }
            found.duplicate_keys = match repeated.rows.first() {
                Some(row) => number(row, k + 1, "duplicate key count")? as u64,
                None => 0,
            };
        }
        Ok(found)
    }
}

/// The inclusive key bounds of segments `lo..=hi`, clamped to bigint.
fn key_range(min: i64, width: i64, lo: i64, hi: i64) -> (i64, i64) {
    let clamp = |v: i128| v.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    let (min, width) = (min as i128, width as i128);
    (
        clamp(min + lo as i128 * width),
        clamp(min + (hi as i128 + 1) * width - 1),
    )
}

/// The integer in column `i` of a result row.
fn number(row: &[Option<String>], i: usize, what: &str) -> Result<i64, CheckError> {
    let text = row.get(i).cloned().flatten().unwrap_or_else(|| "0".into());
    text.parse::<i64>()
        .map_err(|e| CheckError::Unexpected(format!("bad {what} `{text}`: {e}")))
}

/// Runs the comparison.
pub async fn compare(probe: &Probe, plan: &Plan) -> Result<Outcome, CheckError> {
    // A side whose engine enforces the key cannot repeat it, so the multiset checksums show
    // every duplicate of the other side in a differing segment; only when neither side
    // enforces it can both hold the same duplicates unseen, and both are searched.
    let search_duplicates =
        !plan.allow_duplicates && !plan.left.key_enforced && !plan.right.key_enforced;
    let (left, right, left_unpairable, right_unpairable) = tokio::try_join!(
        plan.left.checksums(probe, plan),
        plan.right.checksums(probe, plan),
        plan.left.unpairable(probe, plan, search_duplicates),
        plan.right.unpairable(probe, plan, search_duplicates),
    )?;
    let mut outcome = Outcome {
        left_rows: left.values().map(|(n, ..)| *n as u64).sum(),
        right_rows: right.values().map(|(n, ..)| *n as u64).sum(),
        left: left_unpairable,
        right: right_unpairable,
        ..Outcome::default()
    };
    let mut differing: Vec<(i64, i64)> = Vec::new();
    let mut ids: Vec<i64> = left.keys().chain(right.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    for segment in ids {
        let (l, r) = (left.get(&segment), right.get(&segment));
        if l == r {
            outcome.matched += l.map(|(n, ..)| *n as u64).unwrap_or(0);
        } else {
            let size = l
                .map(|(n, ..)| *n)
                .unwrap_or(0)
                .max(r.map(|(n, ..)| *n).unwrap_or(0));
            differing.push((segment, size));
        }
    }
    outcome.differing_segments = differing.len() as u64;

    let count_duplicates = !plan.allow_duplicates && !search_duplicates;
    let mut changed_rows: Vec<Changed> = Vec::new();
    for chunk in chunks(&differing) {
        let (l, r) = tokio::try_join!(
            plan.left.keyed(probe, plan, &chunk),
            plan.right.keyed(probe, plan, &chunk)
        )?;
        let mut matcher = Matcher {
            samples: plan.samples,
            count_duplicates,
            outcome: &mut outcome,
            changed: &mut changed_rows,
        };
        matcher.match_chunk(&l, &r, &plan.left.table, &plan.right.table);
    }
    if !changed_rows.is_empty() {
        describe_changes(probe, plan, &changed_rows, &mut outcome).await?;
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

/// A sampled changed row: canonical key fields, display text, key hash.
struct Changed {
    key: Vec<String>,
    display: String,
    key_hash: i64,
}

/// Pairs the rows of differing segments by key and counts what differs.
struct Matcher<'a> {
    samples: usize,
    /// Count keys repeated on a side here (no duplicate search ran for it).
    count_duplicates: bool,
    outcome: &'a mut Outcome,
    changed: &'a mut Vec<Changed>,
}

impl Matcher<'_> {
    /// Matches rows key by key as multisets of row hashes: equal hashes pair off, the rest are
    /// changed rows (as many as both sides have left over), then missing or extra rows.
    fn match_chunk(
        &mut self,
        left: &HashMap<Vec<String>, Vec<KeyedRow>>,
        right: &HashMap<Vec<String>, Vec<KeyedRow>>,
        left_table: &TableRef,
        right_table: &TableRef,
    ) {
        let mut keys: Vec<&Vec<String>> = left.keys().chain(right.keys()).collect();
        keys.sort();
        keys.dedup();
        let samples = self.samples;
        for key in keys {
            let empty = Vec::new();
            let (l, r) = (
                left.get(key).unwrap_or(&empty),
                right.get(key).unwrap_or(&empty),
            );
            let display = l
                .first()
                .or(r.first())
                .map(|row| row.display.clone())
                .unwrap_or_default();
            if self.count_duplicates {
                for (rows, side, table) in [
                    (l, &mut self.outcome.left, left_table),
                    (r, &mut self.outcome.right, right_table),
                ] {
                    if rows.len() > 1 {
                        side.duplicate_keys += 1;
                        if side.duplicate_samples.len() < samples {
                            side.duplicate_samples
                                .push(format!("{display} ({} rows in {table})", rows.len()));
                        }
                    }
                }
            }
            let (paired, only_left, only_right) = pair_off(l, r);
            self.outcome.matched += paired;
            let changed = only_left.min(only_right);
            let (missing, extra) = (only_left - changed, only_right - changed);
            if changed > 0 {
                self.outcome.changed += changed;
                if self.changed.len() < samples {
                    self.changed.push(Changed {
                        key: key.clone(),
                        display: display.clone(),
                        key_hash: l[0].key_hash,
                    });
                }
            }
            if missing > 0 {
                self.outcome.missing += missing;
                if self.outcome.missing_keys.len() < samples {
                    self.outcome.missing_keys.push(display.clone());
                }
            }
            if extra > 0 {
                self.outcome.extra += extra;
                if self.outcome.extra_keys.len() < samples {
                    self.outcome.extra_keys.push(display);
                }
            }
        }
    }
}

/// Pairs equal row hashes of one key: (pairs, left rows unpaired, right rows unpaired).
fn pair_off(left: &[KeyedRow], right: &[KeyedRow]) -> (u64, u64, u64) {
    let mut l: Vec<i64> = left.iter().map(|r| r.hash).collect();
    let mut r: Vec<i64> = right.iter().map(|r| r.hash).collect();
    l.sort_unstable();
    r.sort_unstable();
    let (mut i, mut j, mut paired) = (0, 0, 0u64);
    while i < l.len() && j < r.len() {
        match l[i].cmp(&r[j]) {
            std::cmp::Ordering::Equal => {
                paired += 1;
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    (paired, l.len() as u64 - paired, r.len() as u64 - paired)
}

/// Names the differing columns of sampled changed rows, with both values in one display form.
async fn describe_changes(
    probe: &Probe,
    plan: &Plan,
    changed: &[Changed],
    outcome: &mut Outcome,
) -> Result<(), CheckError> {
    let keys: Vec<(Vec<String>, i64)> = changed
        .iter()
        .map(|c| (c.key.clone(), c.key_hash))
        .collect();
    let (l, r) = tokio::try_join!(
        probe.query(&plan.left.table.source, plan.left.values_sql(plan, &keys)),
        probe.query(&plan.right.table.source, plan.right.values_sql(plan, &keys))
    )?;
    let k = plan.key_len;
    // Rows in canonical order, so a sample is the same on every run.
    let by_key = |rows: &crate::model::Rows| -> BTreeMap<Vec<String>, Vec<Option<String>>> {
        let mut sorted = rows.rows.clone();
        sorted.sort();
        sorted
            .into_iter()
            .rev()
            .map(|row| {
                let key = row[..k]
                    .iter()
                    .map(|f| f.clone().unwrap_or_default())
                    .collect();
                (key, row)
            })
            .collect()
    };
    let (l, r) = (by_key(&l), by_key(&r));
    for Changed { key, display, .. } in changed {
        outcome.changed_keys.push(display.clone());
        let (Some(lv), Some(rv)) = (l.get(key), r.get(key)) else {
            continue;
        };
        for (i, canon) in plan.canons.iter().enumerate() {
            if lv[i] != rv[i] {
                let shown =
                    |v: &Option<String>| v.as_deref().and_then(|f| canon::display(*canon, f));
                outcome.changed_values.push((
                    display.clone(),
                    plan.left.columns[i].name.clone(),
                    shown(&lv[i]),
                    shown(&rv[i]),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn rows(hashes: &[i64]) -> Vec<KeyedRow> {
        hashes
            .iter()
            .map(|&hash| KeyedRow {
                display: String::new(),
                hash,
                key_hash: 0,
            })
            .collect()
    }

    #[rstest]
    #[case::equal(&[1], &[1], (1, 0, 0))]
    #[case::changed(&[1], &[2], (0, 1, 1))]
    #[case::same_duplicates(&[1, 1], &[1, 1], (2, 0, 0))]
    #[case::duplicates_that_xor_would_cancel(&[10, 10], &[99, 99], (0, 2, 2))]
    #[case::one_more_copy(&[5, 5], &[5], (1, 1, 0))]
    #[case::missing(&[5], &[], (0, 1, 0))]
    fn rows_pair_off_as_multisets(
        #[case] left: &[i64],
        #[case] right: &[i64],
        #[case] expected: (u64, u64, u64),
    ) {
        assert_eq!(pair_off(&rows(left), &rows(right)), expected);
    }

    #[rstest]
    #[case::first_segment(0, 10, 0, 0, (0, 9))]
    #[case::last_segment_near_max(i64::MAX - 100, 60, 1, 1, (i64::MAX - 40, i64::MAX))]
    #[case::negative(-100, 10, 0, 1, (-100, -81))]
    fn key_ranges_stay_inside_bigint(
        #[case] min: i64,
        #[case] width: i64,
        #[case] lo: i64,
        #[case] hi: i64,
        #[case] expected: (i64, i64),
    ) {
        assert_eq!(key_range(min, width, lo, hi), expected);
    }
}
