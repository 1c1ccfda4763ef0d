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
//! 3. With `settle` (tables written live), the differing keys are read again by key, both
//!    sides at once, every `settle_interval` until they agree or `settle` has passed
//!    (`settle.rs`); each is then counted from its last read, and one that came to agree was
//!    in flight.
//! 4. For a sample of changed keys both sides return canonical and displayable values, so the
//!    report names the columns that differ and shows both values.
//!
//! Memory stays flat for identical tables (one entry per segment); it grows only with the rows
//! of differing segments, and a chunk holds at most `CHUNK_ROWS` of them.
//!
//! The work is split three ways: `segment_sql` builds the SQL, `segments` runs it through the
//! probe and reads the answers, and `matching` decides what they mean (which segments differ,
//! how rows pair off, which columns changed). This file runs the steps in order.

use super::matching::{self, Matcher, Outcome};
use super::plan::{Plan, Segmenter, Side};
use super::segments;
use super::settle::{HeldKey, Settled, Settling, SETTLE_KEYS};
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
    let tables = (&plan.left.table, &plan.right.table);
    let mut matcher = Matcher::new(&mut outcome, tables, plan.samples, count_duplicates);
    matcher.settling = plan
        .settle
        .map(|settle| Settling::new(settle, plan.allow_duplicates, SETTLE_KEYS));
    let mut unread = tally.differing.len() as u64;
    for chunk in matching::chunks(&tally.differing) {
        // Each unread differing segment holds at least one difference. Once the differences
        // certain pass the cap, more reads (each a scan, with key-hash segments) would only
        // count further: stop, with at least one chunk read for samples.
        let at_least = matcher.outcome.differences() + unread;
        if unread < tally.differing.len() as u64 && at_least > plan.max_differences {
            matcher.outcome.capped = Some(matching::Capped {
                max_differences: plan.max_differences,
                at_least,
                segments_read: tally.differing.len() as u64 - unread,
            });
            break;
        }
        let (l, r) = tokio::try_join!(
            plan.left.keyed(probe, plan, &chunk),
            plan.right.keyed(probe, plan, &chunk)
        )?;
        matcher.match_chunk(&l, &r);
        unread -= chunk.len() as u64;
    }
    if let Some(settling) = matcher.settling.take() {
        let (settled, held) = settle(probe, plan, settling).await?;
        // Held keys are counted from their last read. The duplicate search (if any) ran
        // before it, so a key that repeats there is counted here.
        matcher.count_duplicates = !plan.allow_duplicates;
        for key in &held {
            matcher.count_key(&key.key, &key.left, &key.right);
        }
        // Rows as the reads that classified them saw them: equal segments by their checksums,
        // the rest key by key at their last read.
        let (left_rows, right_rows) = matcher.counted_rows;
        matcher.outcome.left_rows = tally.matched + left_rows;
        matcher.outcome.right_rows = tally.matched + right_rows;
        matcher.outcome.settled = Some(settled);
    }
    let changed_rows = matcher.changed;
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

/// Reads the held keys again on both sides every `interval` until they agree or `within` has
/// passed (see `settle`). Time runs from here: the diff's reads are done.
async fn settle(
    probe: &Probe,
    plan: &Plan,
    mut settling: Settling,
) -> Result<(Settled, Vec<HeldKey>), CheckError> {
    let started = tokio::time::Instant::now();
    while let Some(wait) = settling.next_wait(started.elapsed()) {
        tokio::time::sleep(wait).await;
        let at = started.elapsed();
        let keys = settling.pending();
        // Lake tables are cached for the run; a live one must be read as it is now.
        probe.refresh(&plan.left.table).await?;
        probe.refresh(&plan.right.table).await?;
        let (l, r) = tokio::try_join!(
            plan.left.rows_of_keys(probe, plan, &keys),
            plan.right.rows_of_keys(probe, plan, &keys)
        )?;
        settling.observe(at, &l, &r);
    }
    Ok(settling.finish(started.elapsed(), plan.samples))
}
