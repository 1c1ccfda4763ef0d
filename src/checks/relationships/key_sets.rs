//! Orphans across sources: which referencing keys of one table (the child) the referenced
//! table (the parent), on another source, lacks, without pulling either table.
//!
//! Both sides reduce their keys to the distinct canonical keys (`Source::canonical_sql`, so
//! `42` in PostgreSQL and `42` in Parquet are one key) and hash each (`Source::row_hash_sql`,
//! the same 64-bit hash on both engines). Keys fall in one of [`SEGMENTS`] segments (ranges of
//! the key when it is one integer on both sides, so that an index or Parquet statistics serve
//! the reads; buckets of the hash otherwise), and each side answers one query: per segment,
//! its count of distinct keys and the sum of their hashes (split in two 32-bit halves, as `reconcile` sums them, so neither
//! engine overflows). A segment whose child and parent checksums agree holds the same key set
//! on both sides: nothing there is an orphan. Only the keys of segments that differ are read,
//! a batch of segments per query on each side, and compared exactly by canonical key.
//!
//! What that costs depends on how much the key sets differ: with every parent key referenced
//! (orders of customers who all ordered), only segments with orphans are read; parent keys
//! nobody references make their segments differ too, and those segments' keys are read
//! (keys only, never rows). BENCHMARKS.md has the figures.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::model::canon::{self, Canon};
use crate::model::sql::quote_ident;
use crate::model::LogicalType;
use crate::model::{Column, Rows, TableRef};
use crate::probe::{CheckError, Probe};
use crate::reconcile::{Segmenter, SEGMENTS};
use crate::sources::Source;

/// Segments whose keys one query reads, on each side.
const SEGMENTS_PER_READ: usize = 512;

/// One side of a key-set comparison, resolved.
pub(super) struct KeySide {
    pub table: TableRef,
    /// The table the SQL reads: `table`'s own, or its all-text twin (`Source::text_twin`).
    pub read_as: String,
    pub source: Arc<dyn Source>,
    /// The key columns, in pairing order.
    pub columns: Vec<Column>,
    pub filter: Option<String>,
}

/// Per segment: distinct keys, rows, and the two halves of the hash sum.
type Checksums = BTreeMap<i64, (i64, i64, i64, i64)>;

/// What the comparison found.
#[derive(Debug, Default)]
pub(super) struct KeySetOutcome {
    /// Child rows with a complete (non-NULL) reference.
    pub checked_rows: u64,
    pub orphan_keys: u64,
    pub orphan_rows: u64,
    /// The first orphans: canonical key displays (`customer_id=7`) and their child rows.
    pub samples: Vec<(Vec<String>, u64)>,
    pub differing_segments: usize,
    /// Distinct keys read from the differing segments, both sides together.
    pub keys_read: u64,
    /// `key range` or `key hash`.
    pub segmented_by: &'static str,
}

impl KeySide {
    /// `lakecheck_k<i>` canonical fields, `lakecheck_kh` (the key hash) and `lakecheck_seg`
    /// (the segment) of every row with a complete key, within the filter and `condition` (on
    /// the table's columns, next to the table so that an index or Parquet statistics serve it).
    fn keyed_sql(&self, canons: &[Canon], segmenter: Segmenter, condition: Option<&str>) -> String {
        let fields: Vec<String> = self
            .columns
            .iter()
            .zip(canons)
            .enumerate()
            .map(|(i, (c, canon))| {
                format!("{} AS lakecheck_k{i}", self.source.canonical_sql(c, *canon))
            })
            .collect();
        let key: Vec<(&Column, Canon)> = self.columns.iter().zip(canons.iter().copied()).collect();
        let mut conditions: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} IS NOT NULL", quote_ident(&c.name)))
            .collect();
        conditions.extend(self.filter.iter().map(|f| format!("({f})")));
        conditions.extend(condition.map(|c| format!("({c})")));
        let hash = self.source.row_hash_sql(&key, "0");
        let segment = match segmenter {
            Segmenter::KeyHash => format!("({hash} & {})", SEGMENTS - 1),
            Segmenter::KeyRange { min, width } => format!(
                "((CAST({} AS BIGINT) - {min}) / {width})",
                quote_ident(&self.columns[0].name)
            ),
        };
        format!(
            "SELECT {}, {hash} AS lakecheck_kh, {segment} AS lakecheck_seg FROM {} WHERE {} OFFSET 0",
            fields.join(", "),
            self.source.table_sql(&self.read_as),
            conditions.join(" AND ")
        )
    }

    /// The smallest and largest key, for key-range segments (`None` when there is none).
    async fn bounds(&self, probe: &Probe) -> Result<Option<(i64, i64)>, CheckError> {
        let key = quote_ident(&self.columns[0].name);
        let mut sql = format!(
            "SELECT min({key}) AS lo, max({key}) AS hi FROM {}",
            self.source.table_sql(&self.read_as)
        );
        if let Some(filter) = &self.filter {
            sql.push_str(&format!(" WHERE ({filter})"));
        }
        let rows = probe.query(&self.table.source, sql).await?;
        let value = |name: &str| rows.first(name).and_then(|v| v.parse::<i64>().ok());
        Ok(value("lo").zip(value("hi")))
    }

    fn key_fields(&self) -> String {
        (0..self.columns.len())
            .map(|i| format!("lakecheck_k{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Distinct keys with their segment and row counts, kept to `segments` when given.
    fn distinct_sql(
        &self,
        canons: &[Canon],
        segmenter: Segmenter,
        segments: Option<&[i64]>,
    ) -> String {
        let (on_columns, on_segment) = match (segmenter, segments) {
            (_, None) => (None, String::new()),
            (Segmenter::KeyRange { min, width }, Some(list)) => (
                Some(key_ranges_sql(&self.columns[0].name, min, width, list)),
                String::new(),
            ),
            (Segmenter::KeyHash, Some(list)) => (
                None,
                format!(
                    " WHERE lakecheck_seg IN ({})",
                    list.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        let fields = self.key_fields();
        format!(
            "SELECT {fields}, lakecheck_kh, lakecheck_seg, count(*) AS row_count FROM ({}) AS keyed\
             {on_segment} GROUP BY {fields}, lakecheck_kh, lakecheck_seg",
            self.keyed_sql(canons, segmenter, on_columns.as_deref())
        )
    }

    /// Per segment: distinct keys, rows, and the sum of the key hashes in two halves.
    fn checksums_sql(&self, canons: &[Canon], segmenter: Segmenter) -> String {
        format!(
            "SELECT lakecheck_seg AS segment, count(*) AS key_count, sum(row_count) AS row_count, \
             sum(CAST(lakecheck_kh >> 32 AS INTEGER)) AS sum_high, \
             sum(CAST((lakecheck_kh & 4294967295) - 2147483648 AS INTEGER)) AS sum_low FROM ({}) \
             AS keys GROUP BY lakecheck_seg",
            self.distinct_sql(canons, segmenter, None)
        )
    }

    async fn checksums(
        &self,
        probe: &Probe,
        canons: &[Canon],
        segmenter: Segmenter,
    ) -> Result<Checksums, CheckError> {
        let rows = probe
            .query(&self.table.source, self.checksums_sql(canons, segmenter))
            .await?;
        let mut segments = Checksums::new();
        for row in &rows.rows {
            let n = |i: usize, what: &str| number(&self.table.source, row, i, what);
            segments.insert(
                n(0, "segment")?,
                (
                    n(1, "key count")?,
                    n(2, "row count")?,
                    n(3, "checksum")?,
                    n(4, "checksum")?,
                ),
            );
        }
        Ok(segments)
    }

    /// The distinct keys of `segments`, with their row counts.
    async fn keys_of(
        &self,
        probe: &Probe,
        canons: &[Canon],
        segmenter: Segmenter,
        segments: &[i64],
    ) -> Result<Vec<(Vec<String>, u64)>, CheckError> {
        let rows: Rows = probe
            .query(
                &self.table.source,
                self.distinct_sql(canons, segmenter, Some(segments)),
            )
            .await?;
        let n = self.columns.len();
        rows.rows
            .iter()
            .map(|row| {
                let key = row[..n]
                    .iter()
                    .map(|f| f.clone().unwrap_or_default())
                    .collect();
                Ok((
                    key,
                    number(&self.table.source, row, n + 2, "row count")? as u64,
                ))
            })
            .collect()
    }
}

/// The integer in column `i` of a row `source` answered (NULL, a sum over nothing, reads 0).
fn number(source: &str, row: &[Option<String>], i: usize, what: &str) -> Result<i64, CheckError> {
    let text = row.get(i).cloned().flatten().unwrap_or_else(|| "0".into());
    text.parse::<i64>()
        .map_err(|e| CheckError::unexpected_answer(source, format!("bad {what} `{text}`: {e}")))
}

/// `column` within the key ranges of the listed segments (consecutive ones merged), kept
/// inside BIGINT.
fn key_ranges_sql(column: &str, min: i64, width: i64, segments: &[i64]) -> String {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for &segment in segments {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == segment => *hi = segment,
            _ => ranges.push((segment, segment)),
        }
    }
    let clamp = |v: i128| v.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(lo, hi)| {
            let low = clamp(min as i128 + lo as i128 * width as i128);
            let high = clamp(min as i128 + (hi as i128 + 1) * width as i128 - 1);
            format!("{} BETWEEN {low} AND {high}", quote_ident(column))
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

/// Key ranges when the key is one integer on both sides (an index or Parquet statistics then
/// serve each read of differing segments); key-hash buckets otherwise.
async fn segmenter(
    probe: &Probe,
    child: &KeySide,
    parent: &KeySide,
    canons: &[Canon],
) -> Result<Segmenter, CheckError> {
    let integer = |side: &KeySide| matches!(side.columns[0].logical, LogicalType::Int { .. });
    if canons != [Canon::Int] || !integer(child) || !integer(parent) {
        return Ok(Segmenter::KeyHash);
    }
    let (c, p) = tokio::try_join!(child.bounds(probe), parent.bounds(probe))?;
    let bounds = match (c, p) {
        (Some((a, b)), Some((x, y))) => Some((a.min(x), b.max(y))),
        (one, other) => one.or(other),
    };
    let Some((min, max)) = bounds else {
        return Ok(Segmenter::KeyHash);
    };
    let span = max as i128 - min as i128 + 1;
    if span > i64::MAX as i128 {
        return Ok(Segmenter::KeyHash);
    }
    let width = ((span + SEGMENTS as i128 - 1) / SEGMENTS as i128).max(1) as i64;
    Ok(Segmenter::KeyRange { min, width })
}

/// Canonical keys in the order a reader expects: numbers by value, other fields as text.
fn key_order(a: &[String], b: &[String]) -> std::cmp::Ordering {
    let field = |x: &String, y: &String| match (x.parse::<i128>(), y.parse::<i128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => x.cmp(y),
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| field(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// The child keys the parent lacks, compared segment by segment (see the module doc).
pub(super) async fn orphans(
    probe: &Probe,
    child: &KeySide,
    parent: &KeySide,
    canons: &[Canon],
    samples: usize,
) -> Result<KeySetOutcome, CheckError> {
    let segmenter = segmenter(probe, child, parent, canons).await?;
    let (child_sums, parent_sums) = tokio::try_join!(
        child.checksums(probe, canons, segmenter),
        parent.checksums(probe, canons, segmenter)
    )?;
    let mut outcome = KeySetOutcome {
        segmented_by: match segmenter {
            Segmenter::KeyRange { .. } => "key range",
            Segmenter::KeyHash => "key hash",
        },
        checked_rows: child_sums.values().map(|s| s.1 as u64).sum(),
        ..KeySetOutcome::default()
    };
    // A segment differs when its distinct key count or hash sum does; row counts are the
    // child's own business (a parent key referenced twice is still one key).
    let differing: Vec<i64> = child_sums
        .iter()
        .filter(|(segment, c)| {
            parent_sums
                .get(segment)
                .is_none_or(|p| (c.0, c.2, c.3) != (p.0, p.2, p.3))
        })
        .map(|(segment, _)| *segment)
        .collect();
    outcome.differing_segments = differing.len();
    for batch in differing.chunks(SEGMENTS_PER_READ) {
        let (child_keys, parent_keys) = tokio::try_join!(
            child.keys_of(probe, canons, segmenter, batch),
            parent.keys_of(probe, canons, segmenter, batch)
        )?;
        outcome.keys_read += (child_keys.len() + parent_keys.len()) as u64;
        let present: HashSet<Vec<String>> = parent_keys.into_iter().map(|(k, _)| k).collect();
        let mut found: Vec<(Vec<String>, u64)> = child_keys
            .into_iter()
            .filter(|(key, _)| !present.contains(key))
            .collect();
        outcome.orphan_keys += found.len() as u64;
        outcome.orphan_rows += found.iter().map(|(_, rows)| rows).sum::<u64>();
        outcome.samples.append(&mut found);
        // Most rows first, then by key: the same samples on every run.
        outcome
            .samples
            .sort_by(|(ka, ra), (kb, rb)| rb.cmp(ra).then_with(|| key_order(ka, kb)));
        outcome.samples.truncate(samples);
    }
    for (key, _) in &mut outcome.samples {
        for (field, canon) in key.iter_mut().zip(canons) {
            *field = canon::display(*canon, field).unwrap_or_else(|| "NULL".into());
        }
    }
    Ok(outcome)
}
