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
//!
//! The work is split three ways: `segment_sql` builds the SQL, `segments` runs it through the
//! probe and reads the answers, and `matching` decides what they mean (which segments differ,
//! how rows pair off, which columns changed). This file runs the steps in order.

use super::matching::{self, Changed, Matcher, Outcome};
use super::plan::{Plan, Segmenter, Side};
use super::segments;
use crate::model::canon::Canon;
use crate::model::LogicalType;
use crate::probe::{CheckError, Probe};

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
        self.segmenter = matching::segmenter_for(l, r);
        Ok(())
    }
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
    let tally = matching::tally(&left, &right);
    let mut outcome = Outcome {
        left_rows: matching::rows(&left),
        right_rows: matching::rows(&right),
        matched: tally.matched,
        differing_segments: tally.differing.len() as u64,
        left: left_unpairable,
        right: right_unpairable,
        ..Outcome::default()
    };

    let count_duplicates = !plan.allow_duplicates && !search_duplicates;
    let mut changed_rows: Vec<Changed> = Vec::new();
    for chunk in matching::chunks(&tally.differing) {
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
        let (l, r) = segments::changed_values(probe, plan, &changed_rows).await?;
        let columns: Vec<(&str, Canon)> = plan
            .left
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .zip(plan.canons.iter().copied())
            .collect();
        matching::describe_changes(&changed_rows, &columns, plan.key_len, &l, &r, &mut outcome);
    }
    Ok(outcome)
}
