//! The decisions of a reconcile, made from answers already read: which segmenter a key's bounds
//! allow, which segments differ, how differing segments are grouped into reads, how the rows of
//! one key pair off (or are held back to settle, see `settle`), and which columns of a changed
//! row differ. No SQL and no I/O.

use std::collections::{BTreeMap, HashMap};

use super::plan::{Segmenter, SEGMENTS};
use super::settle::{Settled, Settling};
use crate::model::canon::{self, Canon};
use crate::model::{Rows, TableRef};

/// Most rows of differing segments read per chunk and side.
const CHUNK_ROWS: i64 = 100_000;

/// Per-segment row count and the sums of the row hashes' high and low halves.
pub(super) type Checksum = (i64, i64, i64);

/// A row identified by its key: its display text (to report) and hashes.
#[derive(Debug, Clone)]
pub(super) struct KeyedRow {
    pub display: String,
    pub hash: i64,
    pub key_hash: i64,
}

/// The rows of some segments by canonical key fields.
pub(super) type KeyedRows = HashMap<Vec<String>, Vec<KeyedRow>>;

/// What one side holds that cannot be paired by key.
#[derive(Debug, Default, Clone)]
pub struct Unpairable {
    /// Rows with a NULL in a key column.
    pub null_keys: u64,
    pub null_key_samples: Vec<String>,
    /// Keys held by more than one row (when duplicates are not allowed).
    pub duplicate_keys: u64,
    pub duplicate_samples: Vec<String>,
    /// The sampled NULL and repeated keys, key column by key column.
    pub keys: Vec<DifferingKey>,
}

/// How the rows of one key differ, for callers that list differing keys one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// Rows of the key only on the left side (missing in the target).
    MissingInRight,
    /// Rows of the key only on the right side (extra in the target).
    MissingInLeft,
    /// Rows of the key on both sides whose values differ.
    Changed,
    /// The key is held by more than one row of a side.
    DuplicateKey,
    /// A row with a NULL in a key column.
    NullKey,
}

/// A sampled differing key: how it differs, its display text (as in the key lists of
/// [`Outcome`]) and its canonical key fields (`canon::display` shows them, NULL as `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DifferingKey {
    pub difference: Difference,
    pub display: String,
    pub fields: Vec<Option<String>>,
}

impl DifferingKey {
    fn new(difference: Difference, display: &str, key: &[String]) -> Self {
        Self {
            difference,
            display: display.to_string(),
            fields: key.iter().cloned().map(Some).collect(),
        }
    }
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
    /// The sampled missing, extra and changed keys in the order matched, key column by key
    /// column (NULL and repeated keys are in [`Unpairable::keys`]).
    pub differing_keys: Vec<DifferingKey>,
    pub left: Unpairable,
    pub right: Unpairable,
    /// What settling found, when the plan asks for it (`settle`). The counts above are then
    /// those of each key's last read.
    pub settled: Option<Settled>,
    /// Set when reading stopped at `max_differences`: the counts above are then those of the
    /// segments read, and the table holds at least [`Capped::at_least`] differences.
    pub capped: Option<Capped>,
}

/// Where a reconcile stopped reading rows because more than `max_differences` differences
/// were certain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capped {
    pub max_differences: u64,
    /// Differences certain: those counted plus one for each differing segment not read (a
    /// segment whose checksums differ holds at least one).
    pub at_least: u64,
    /// Differing segments whose rows were read.
    pub segments_read: u64,
}

impl Outcome {
    /// Rows counted as missing, extra or changed so far, and repeated keys.
    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.changed + self.duplicate_keys()
    }

    pub fn null_keys(&self) -> u64 {
        self.left.null_keys + self.right.null_keys
    }

    pub fn duplicate_keys(&self) -> u64 {
        self.left.duplicate_keys + self.right.duplicate_keys
    }

    /// Keeps the first `n` samples of each list, as a plan with `samples: n` would have
    /// sampled them (each list is in an order that does not depend on its length); the
    /// [`DifferingKey`] lists are left whole.
    pub fn keep_samples(&mut self, n: usize) {
        self.missing_keys.truncate(n);
        self.extra_keys.truncate(n);
        self.changed_keys.truncate(n);
        let kept = &self.changed_keys;
        self.changed_values.retain(|(key, ..)| kept.contains(key));
        for side in [&mut self.left, &mut self.right] {
            side.null_key_samples.truncate(n);
            side.duplicate_samples.truncate(n);
        }
        if let Some(settled) = &mut self.settled {
            settled.in_flight_keys.truncate(n);
        }
    }
}

/// Key ranges over the keys of both sides (`(min, max)` of each, `None` for an empty side),
/// or key-hash buckets when there are no keys or the span does not fit a bigint: `key - min`
/// must fit one in both engines.
pub(super) fn segmenter_for(left: Option<(i64, i64)>, right: Option<(i64, i64)>) -> Segmenter {
    let bounds = match (left, right) {
        (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
        (one, other) => one.or(other),
    };
    let Some((min, max)) = bounds else {
        return Segmenter::KeyHash;
    };
    let span = max as i128 - min as i128 + 1;
    if span > i64::MAX as i128 {
        return Segmenter::KeyHash;
    }
    let width = (span + SEGMENTS as i128 - 1) / SEGMENTS as i128;
    Segmenter::KeyRange {
        min,
        width: width.max(1) as i64,
    }
}

/// Rows counted by a side's checksums.
pub(super) fn rows(checksums: &BTreeMap<i64, Checksum>) -> u64 {
    checksums.values().map(|(n, ..)| *n as u64).sum()
}

/// Segments compared by checksum: rows of equal segments, and the differing ones in order,
/// each with the larger of its two row counts.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct SegmentTally {
    pub matched: u64,
    pub differing: Vec<(i64, i64)>,
}

/// Compares the checksums of both sides segment by segment; a segment one side lacks differs
/// unless the other lacks it too.
pub(super) fn tally(
    left: &BTreeMap<i64, Checksum>,
    right: &BTreeMap<i64, Checksum>,
) -> SegmentTally {
    let mut found = SegmentTally::default();
    let mut ids: Vec<i64> = left.keys().chain(right.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let count = |c: Option<&Checksum>| c.map(|(n, ..)| *n).unwrap_or(0);
    for segment in ids {
        let (l, r) = (left.get(&segment), right.get(&segment));
        if l == r {
            found.matched += count(l) as u64;
        } else {
            found.differing.push((segment, count(l).max(count(r))));
        }
    }
    found
}

/// Groups differing segments (with their sizes) so each read holds at most about
/// [`CHUNK_ROWS`] rows per side; a larger segment is read alone.
pub(super) fn chunks(differing: &[(i64, i64)]) -> Vec<Vec<i64>> {
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Changed {
    pub key: Vec<String>,
    pub display: String,
    pub key_hash: i64,
}

/// Pairs the rows of differing segments by key and counts what differs.
pub(super) struct Matcher<'a> {
    samples: usize,
    /// Count keys repeated on a side here (no duplicate search ran for it).
    pub count_duplicates: bool,
    /// The left and right tables, to name them in duplicate samples.
    tables: (&'a TableRef, &'a TableRef),
    pub outcome: &'a mut Outcome,
    /// Sampled changed rows, whose values are read once matching is done.
    pub changed: Vec<Changed>,
    /// With `settle`: differing keys are offered here first, and those it holds are counted
    /// later, from their last read ([`Matcher::count_key`]).
    pub settling: Option<Settling>,
    /// Rows counted key by key on each side so far (rows of held keys are not yet).
    pub counted_rows: (u64, u64),
}

impl<'a> Matcher<'a> {
    pub fn new(
        outcome: &'a mut Outcome,
        tables: (&'a TableRef, &'a TableRef),
        samples: usize,
        count_duplicates: bool,
    ) -> Self {
        Self {
            samples,
            count_duplicates,
            tables,
            outcome,
            changed: Vec::new(),
            settling: None,
            counted_rows: (0, 0),
        }
    }

    /// Matches rows key by key, in key order; a differing key the settling holds is left for
    /// later.
    pub fn match_chunk(&mut self, left: &KeyedRows, right: &KeyedRows) {
        let mut keys: Vec<&Vec<String>> = left.keys().chain(right.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let empty = Vec::new();
            let (l, r) = (
                left.get(key).unwrap_or(&empty),
                right.get(key).unwrap_or(&empty),
            );
            if let Some(settling) = &mut self.settling {
                if settling.hold(key, l, r) {
                    continue;
                }
            }
            self.count_key(key, l, r);
        }
    }

    /// Counts the rows of one key as multisets of row hashes: equal hashes pair off, the rest
    /// are changed rows (as many as both sides have left over), then missing or extra rows.
    pub fn count_key(&mut self, key: &[String], l: &[KeyedRow], r: &[KeyedRow]) {
        let samples = self.samples;
        let display = l
            .first()
            .or(r.first())
            .map(|row| row.display.clone())
            .unwrap_or_default();
        self.counted_rows.0 += l.len() as u64;
        self.counted_rows.1 += r.len() as u64;
        if self.count_duplicates {
            let (left_table, right_table) = self.tables;
            for (rows, side, table) in [
                (l, &mut self.outcome.left, left_table),
                (r, &mut self.outcome.right, right_table),
            ] {
                if rows.len() > 1 {
                    side.duplicate_keys += 1;
                    if side.duplicate_samples.len() < samples {
                        side.duplicate_samples
                            .push(format!("{display} ({} rows in {table})", rows.len()));
                        side.keys
                            .push(DifferingKey::new(Difference::DuplicateKey, &display, key));
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
                    key: key.to_vec(),
                    display: display.clone(),
                    key_hash: l[0].key_hash,
                });
                self.outcome.differing_keys.push(DifferingKey::new(
                    Difference::Changed,
                    &display,
                    key,
                ));
            }
        }
        if missing > 0 {
            self.outcome.missing += missing;
            if self.outcome.missing_keys.len() < samples {
                self.outcome.missing_keys.push(display.clone());
                self.outcome.differing_keys.push(DifferingKey::new(
                    Difference::MissingInRight,
                    &display,
                    key,
                ));
            }
        }
        if extra > 0 {
            self.outcome.extra += extra;
            if self.outcome.extra_keys.len() < samples {
                self.outcome.differing_keys.push(DifferingKey::new(
                    Difference::MissingInLeft,
                    &display,
                    key,
                ));
                self.outcome.extra_keys.push(display);
            }
        }
    }
}

/// Pairs equal row hashes of one key: (pairs, left rows unpaired, right rows unpaired).
pub(super) fn pair_off(left: &[KeyedRow], right: &[KeyedRow]) -> (u64, u64, u64) {
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
/// `columns` are the compared columns (left names, canons, key first), `left` and `right` the
/// canonical values of the changed keys' rows on each side; of several rows of one key, the
/// first in canonical order is shown, so a sample is the same on every run.
pub(super) fn describe_changes(
    changed: &[Changed],
    columns: &[(&str, Canon)],
    key_len: usize,
    left: &Rows,
    right: &Rows,
    outcome: &mut Outcome,
) {
    let by_key = |rows: &Rows| -> BTreeMap<Vec<String>, Vec<Option<String>>> {
        let mut sorted = rows.rows.clone();
        sorted.sort();
        sorted
            .into_iter()
            .rev()
            .map(|row| {
                let key = row[..key_len]
                    .iter()
                    .map(|f| f.clone().unwrap_or_default())
                    .collect();
                (key, row)
            })
            .collect()
    };
    let (l, r) = (by_key(left), by_key(right));
    for Changed { key, display, .. } in changed {
        outcome.changed_keys.push(display.clone());
        let (Some(lv), Some(rv)) = (l.get(key), r.get(key)) else {
            continue;
        };
        for (i, (name, canon)) in columns.iter().enumerate() {
            if lv[i] != rv[i] {
                let shown =
                    |v: &Option<String>| v.as_deref().and_then(|f| canon::display(*canon, f));
                outcome.changed_values.push((
                    display.clone(),
                    name.to_string(),
                    shown(&lv[i]),
                    shown(&rv[i]),
                ));
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn hashed_rows(hashes: &[i64]) -> Vec<KeyedRow> {
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
    #[case::order_does_not_matter(&[3, 1, 2], &[2, 3, 1], (3, 0, 0))]
    fn rows_pair_off_as_multisets(
        #[case] left: &[i64],
        #[case] right: &[i64],
        #[case] expected: (u64, u64, u64),
    ) {
        assert_eq!(pair_off(&hashed_rows(left), &hashed_rows(right)), expected);
    }

    #[rstest]
    #[case::empty_sides(None, None, Segmenter::KeyHash)]
    #[case::one_key(Some((7, 7)), None, Segmenter::KeyRange { min: 7, width: 1 })]
    #[case::few_keys_one_per_segment(Some((1, 100)), Some((50, 200)), Segmenter::KeyRange { min: 1, width: 1 })]
    #[case::wide_span(Some((0, SEGMENTS * 10 - 1)), None, Segmenter::KeyRange { min: 0, width: 10 })]
    #[case::negative_keys(None, Some((-SEGMENTS, -1)), Segmenter::KeyRange { min: -SEGMENTS, width: 1 })]
    #[case::span_beyond_bigint(Some((i64::MIN, 0)), Some((0, i64::MAX)), Segmenter::KeyHash)]
    #[case::span_just_bigint(Some((0, i64::MAX - 1)), None, Segmenter::KeyRange { min: 0, width: i64::MAX / SEGMENTS + 1 })]
    fn key_bounds_choose_the_segmenter(
        #[case] left: Option<(i64, i64)>,
        #[case] right: Option<(i64, i64)>,
        #[case] expected: Segmenter,
    ) {
        assert_eq!(segmenter_for(left, right), expected);
    }

    fn checksums(entries: &[(i64, Checksum)]) -> BTreeMap<i64, Checksum> {
        entries.iter().copied().collect()
    }

    #[rstest]
    #[case::same(&[(0, (2, 5, 6))], &[(0, (2, 5, 6))], 2, &[])]
    #[case::changed_row(&[(0, (2, 5, 6))], &[(0, (2, 5, 7))], 0, &[(0, 2)])]
    #[case::segment_only_left(&[(3, (4, 1, 1))], &[], 0, &[(3, 4)])]
    #[case::segment_only_right(&[], &[(3, (1, 1, 1))], 0, &[(3, 1)])]
    #[case::larger_side_sizes_the_read(&[(1, (2, 0, 0)), (2, (1, 1, 1))], &[(1, (9, 0, 0)), (2, (1, 1, 1))], 1, &[(1, 9)])]
    fn segments_differ_by_checksum(
        #[case] left: &[(i64, Checksum)],
        #[case] right: &[(i64, Checksum)],
        #[case] matched: u64,
        #[case] differing: &[(i64, i64)],
    ) {
        assert_eq!(
            tally(&checksums(left), &checksums(right)),
            SegmentTally {
                matched,
                differing: differing.to_vec(),
            }
        );
    }

    #[rstest]
    #[case::none(&[], vec![])]
    #[case::small_ones_together(&[(1, 10), (2, 20), (5, 30)], vec![vec![1, 2, 5]])]
    #[case::split_at_the_limit(&[(1, CHUNK_ROWS - 1), (2, 1), (3, 1)], vec![vec![1, 2], vec![3]])]
    #[case::a_huge_segment_alone(&[(1, 5), (2, CHUNK_ROWS * 3), (3, 5)], vec![vec![1], vec![2], vec![3]])]
    fn differing_segments_are_read_in_bounded_chunks(
        #[case] differing: &[(i64, i64)],
        #[case] expected: Vec<Vec<i64>>,
    ) {
        assert_eq!(chunks(differing), expected);
    }

    pub(in crate::reconcile) fn table(name: &str) -> TableRef {
        TableRef {
            source: "s".into(),
            table: name.into(),
        }
    }

    /// Rows by key from (key, row hash) pairs; a key's display is `k=<key>`.
    pub(in crate::reconcile) fn keyed(rows: &[(u8, i64)]) -> KeyedRows {
        let mut keyed = KeyedRows::new();
        for &(key, hash) in rows {
            keyed
                .entry(vec![key.to_string()])
                .or_default()
                .push(KeyedRow {
                    display: format!("k={key}"),
                    hash,
                    key_hash: i64::from(key) * 1000,
                });
        }
        keyed
    }

    /// Matches one chunk of (key, row hash) rows and returns the outcome and sampled changes.
    fn run_matcher(
        left: &[(u8, i64)],
        right: &[(u8, i64)],
        count_duplicates: bool,
        samples: usize,
    ) -> (Outcome, Vec<Changed>) {
        let mut outcome = Outcome::default();
        let (l, r) = (table("l"), table("r"));
        let mut matcher = Matcher::new(&mut outcome, (&l, &r), samples, count_duplicates);
        matcher.match_chunk(&keyed(left), &keyed(right));
        let changed = matcher.changed;
        (outcome, changed)
    }

    #[test]
    fn a_chunk_is_classified_key_by_key() {
        let (outcome, changed) = run_matcher(
            &[(1, 10), (2, 20), (3, 30), (4, 40), (4, 40)],
            &[(1, 10), (2, 21), (5, 50), (4, 40)],
            true,
            10,
        );
        assert_eq!(
            (
                outcome.matched,
                outcome.changed,
                outcome.missing,
                outcome.extra
            ),
            (2, 1, 2, 1)
        );
        assert_eq!(outcome.missing_keys, ["k=3", "k=4"]);
        assert_eq!(outcome.extra_keys, ["k=5"]);
        assert_eq!(
            changed,
            [Changed {
                key: vec!["2".into()],
                display: "k=2".into(),
                key_hash: 2000,
            }]
        );
        assert_eq!(outcome.left.duplicate_keys, 1);
        assert_eq!(outcome.left.duplicate_samples, ["k=4 (2 rows in s.l)"]);
        assert_eq!(outcome.right.duplicate_keys, 0);
    }

    #[rstest]
    #[case::counted(true, 1)]
    #[case::searched_apart(false, 0)]
    fn repeated_keys_are_counted_only_when_no_search_ran(
        #[case] count_duplicates: bool,
        #[case] expected: u64,
    ) {
        let (outcome, _) = run_matcher(
            &[(1, 10), (1, 10)],
            &[(1, 10), (1, 10)],
            count_duplicates,
            10,
        );
        assert_eq!(outcome.matched, 2);
        assert_eq!(
            (outcome.left.duplicate_keys, outcome.right.duplicate_keys),
            (expected, expected)
        );
    }

    #[test]
    fn samples_are_bounded_counts_are_not() {
        let left: Vec<(u8, i64)> = (0..20).map(|k| (k, 1)).collect();
        let (outcome, _) = run_matcher(&left, &[], true, 3);
        assert_eq!(outcome.missing, 20);
        assert_eq!(outcome.missing_keys, ["k=0", "k=1", "k=10"]);
    }

    #[test]
    fn changed_rows_name_their_differing_columns() {
        let changed = [
            Changed {
                key: vec!["1".into()],
                display: "id=1".into(),
                key_hash: 0,
            },
            Changed {
                key: vec!["2".into()],
                display: "id=2".into(),
                key_hash: 0,
            },
        ];
        // Canonical fields as the engines return them: text as `length:text`, NULL as `~`.
        let text = |v: &[&str]| v.iter().map(|f| Some(f.to_string())).collect();
        let left = Rows {
            columns: vec![],
            rows: vec![
                text(&["1", "5:alice", "10"]),
                text(&["2", "3:bob", canon::NULL_MARK]),
            ],
        };
        let right = Rows {
            columns: vec![],
            rows: vec![text(&["1", "5:alice", "11"]), text(&["2", "5:bobby", "3"])],
        };
        let mut outcome = Outcome::default();
        describe_changes(
            &changed,
            &[
                ("id", Canon::Int),
                ("name", Canon::Text),
                ("qty", Canon::Int),
            ],
            1,
            &left,
            &right,
            &mut outcome,
        );
        assert_eq!(outcome.changed_keys, ["id=1", "id=2"]);
        let shown: Vec<(&str, &str)> = outcome
            .changed_values
            .iter()
            .map(|(key, column, ..)| (key.as_str(), column.as_str()))
            .collect();
        assert_eq!(shown, [("id=1", "qty"), ("id=2", "name"), ("id=2", "qty")]);
        let values = |i: usize| {
            let (.., left, right) = &outcome.changed_values[i];
            (left.as_deref(), right.as_deref())
        };
        assert_eq!(values(0), (Some("10"), Some("11")));
        assert_eq!(values(1), (Some("bob"), Some("bobby")));
        assert_eq!(values(2), (None, Some("3")), "NULL shows as absent");
    }

    /// Rows of a few keys with few distinct hashes, so keys and rows repeat.
    fn chunk_rows() -> impl Strategy<Value = Vec<(u8, i64)>> {
        rows_of_six_keys(4, 24)
    }

    /// Up to `most` (key, row hash) rows of keys 0 to 5, with `hashes` distinct row hashes.
    pub(in crate::reconcile) fn rows_of_six_keys(
        hashes: i64,
        most: usize,
    ) -> impl Strategy<Value = Vec<(u8, i64)>> {
        prop::collection::vec((0u8..6, 0..hashes), 0..most)
    }

    proptest! {
        /// A multiset of rows against itself, in any order: everything pairs, nothing differs.
        #[test]
        fn a_chunk_matches_itself_in_any_order(
            rows in chunk_rows(),
            seed in any::<u64>(),
        ) {
            let mut shuffled = rows.clone();
            // A deterministic shuffle driven by the generated seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let (outcome, changed) = run_matcher(&rows, &shuffled, false, 10);
            prop_assert_eq!(outcome.matched, rows.len() as u64);
            prop_assert_eq!((outcome.changed, outcome.missing, outcome.extra), (0, 0, 0));
            prop_assert!(changed.is_empty());
        }

        /// Every row is accounted for once on its side, and the chunk passes exactly when the
        /// two sides hold the same multiset of (key, row) pairs.
        #[test]
        fn every_row_is_counted_once_and_any_difference_shows(
            left in chunk_rows(),
            right in chunk_rows(),
        ) {
            let (outcome, _) = run_matcher(&left, &right, false, 10);
            let differences = outcome.changed + outcome.missing + outcome.extra;
            prop_assert_eq!(outcome.matched + outcome.changed + outcome.missing, left.len() as u64);
            prop_assert_eq!(outcome.matched + outcome.changed + outcome.extra, right.len() as u64);
            let (mut l, mut r) = (left.clone(), right.clone());
            l.sort_unstable();
            r.sort_unstable();
            prop_assert_eq!(differences == 0, l == r);
        }

        /// Equal checksums of both sides: no segment differs and every row is matched.
        #[test]
        fn checksums_against_themselves_differ_nowhere(
            entries in prop::collection::btree_map(0i64..SEGMENTS, (1i64..1000, any::<i32>(), any::<i32>()), 0..50),
        ) {
            let sides: BTreeMap<i64, Checksum> = entries
                .into_iter()
                .map(|(segment, (n, high, low))| (segment, (n, i64::from(high), i64::from(low))))
                .collect();
            let found = tally(&sides, &sides);
            prop_assert!(found.differing.is_empty());
            prop_assert_eq!(found.matched, rows(&sides));
        }

        /// Chunks keep every differing segment once, in order, and stay within the row bound
        /// unless a single segment exceeds it.
        #[test]
        fn chunks_keep_every_segment_within_the_bound(
            sizes in prop::collection::vec(1i64..CHUNK_ROWS * 2, 0..40),
        ) {
            let differing: Vec<(i64, i64)> = sizes.iter().enumerate().map(|(i, n)| (i as i64, *n)).collect();
            let grouped = chunks(&differing);
            let flat: Vec<i64> = grouped.iter().flatten().copied().collect();
            prop_assert_eq!(flat, (0..sizes.len() as i64).collect::<Vec<_>>());
            for chunk in &grouped {
                let total: i64 = chunk.iter().map(|s| sizes[*s as usize]).sum();
                prop_assert!(chunk.len() == 1 || total <= CHUNK_ROWS, "{chunk:?}: {total}");
            }
        }

        /// Key ranges place every key of both sides in a segment `0..SEGMENTS`.
        #[test]
        fn key_ranges_hold_every_key(
            a in any::<i64>(),
            b in any::<i64>(),
            pick in 0.0f64..=1.0,
        ) {
            let (min, max) = (a.min(b), a.max(b));
            match segmenter_for(Some((min, max)), None) {
                Segmenter::KeyRange { min: start, width } => {
                    prop_assert_eq!(start, min);
                    let key = min as i128 + ((max as i128 - min as i128) as f64 * pick) as i128;
                    let key = key.clamp(min as i128, max as i128);
                    let segment = (key - start as i128) / width as i128;
                    prop_assert!((0..SEGMENTS as i128).contains(&segment), "{key} in segment {segment}");
                }
                Segmenter::KeyHash => prop_assert!(max as i128 - min as i128 + 1 > i64::MAX as i128),
            }
        }
    }
}
