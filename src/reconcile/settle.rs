//! Settling (`settle`): on tables written live (a change stream), a row can be on one side and
//! not yet on the other while a comparison runs. A settle reads the keys the diff found
//! differing again, by key, until both sides agree or the time is up: a key that came to agree
//! was in flight, one that still differs fails. This file is the bookkeeping, pure: which keys
//! are held back from the count, when to look again, what each look showed. `diff` waits and
//! reads.
//!
//! Only a key that can agree is held. Rows with a NULL key are never paired (nor read by key)
//! and a key held by several rows on a side fails unless the rule allows duplicates, so neither
//! is settled; nor is anything the schemas show. At most [`SETTLE_KEYS`] keys are held, the
//! first in segment and key order; the differing keys after them are counted as differing at
//! once, never as agreeing.

use std::time::Duration;

use super::matching::{pair_off, KeyedRow, KeyedRows};
use super::plan::Settle;

/// Most differing keys read again while settling (one query per side and look). A change
/// stream in flight is tens or hundreds of rows; a bigger difference is not in flight.
pub const SETTLE_KEYS: usize = 1000;

/// A differing key held back from the count, with its rows at the last read.
#[derive(Debug, Clone)]
pub(super) struct HeldKey {
    /// Canonical key fields.
    pub key: Vec<String>,
    display: String,
    key_hash: i64,
    pub left: Vec<KeyedRow>,
    pub right: Vec<KeyedRow>,
    /// When both sides agreed on the key (time since settling began), once they have.
    agreed_after: Option<Duration>,
}

/// The keys being settled and what the looks so far showed.
#[derive(Debug)]
pub(super) struct Settling {
    settle: Settle,
    allow_duplicates: bool,
    limit: usize,
    held: Vec<HeldKey>,
    /// Differing keys beyond `limit`: never read again, counted as differing.
    not_rechecked: u64,
    /// Differing keys held by several rows on a side: not settled, counted as differing.
    repeated: u64,
    rereads: u32,
}

/// What settling found. Every key the diff found differing (with a non-NULL key) is counted
/// once: in flight, or still differing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settled {
    /// Keys that differed in the diff and agreed on a later read.
    pub in_flight: u64,
    /// The first of them, in key order, with how long after the diff they agreed.
    pub in_flight_keys: Vec<(String, Duration)>,
    /// The longest any in-flight key took to agree.
    pub settled_after: Option<Duration>,
    /// Keys that differ still: held keys that never agreed, `not_rechecked` and `repeated`.
    pub still_differing: u64,
    /// Differing keys beyond the first [`SETTLE_KEYS`]: not read again, counted as differing.
    pub not_rechecked: u64,
    /// Differing keys held by several rows on a side (duplicates not allowed): not settled.
    pub repeated: u64,
    /// How many times the held keys were read again.
    pub rereads: u32,
    /// How long settling took.
    pub waited: Duration,
}

impl Settling {
    /// Settling as `settle` asks, holding at most `limit` keys.
    pub fn new(settle: Settle, allow_duplicates: bool, limit: usize) -> Self {
        Self {
            settle,
            allow_duplicates,
            limit,
            held: Vec::new(),
            not_rechecked: 0,
            repeated: 0,
            rereads: 0,
        }
    }

    /// Holds a key whose rows differ, to be read again. `false` when the rows agree or the key
    /// cannot be held (its rows repeat on a side without `allow_duplicates`, or `limit` keys
    /// are held): it is then counted now, as it stands.
    pub fn hold(&mut self, key: &[String], left: &[KeyedRow], right: &[KeyedRow]) -> bool {
        let Some(first) = left.first().or(right.first()) else {
            return false;
        };
        if agree(left, right, true) {
            return false;
        }
        if !self.allow_duplicates && (left.len() > 1 || right.len() > 1) {
            self.repeated += 1;
            return false;
        }
        if self.held.len() >= self.limit {
            self.not_rechecked += 1;
            return false;
        }
        self.held.push(HeldKey {
            key: key.to_vec(),
            display: first.display.clone(),
            key_hash: first.key_hash,
            left: left.to_vec(),
            right: right.to_vec(),
            agreed_after: None,
        });
        true
    }

    /// How long to wait before the next look, `elapsed` after settling began: `None` once
    /// every held key agrees or `within` has passed. The last wait is cut short to end at
    /// `within`, so the last look is at the deadline.
    pub fn next_wait(&self, elapsed: Duration) -> Option<Duration> {
        let remaining = self.settle.within.checked_sub(elapsed)?;
        let pending = self.held.iter().any(|k| k.agreed_after.is_none());
        (pending && !remaining.is_zero()).then(|| self.settle.interval.min(remaining))
    }

    /// The held keys that still differ, with their key hashes: what to read again.
    pub fn pending(&self) -> Vec<(Vec<String>, i64)> {
        self.held
            .iter()
            .filter(|k| k.agreed_after.is_none())
            .map(|k| (k.key.clone(), k.key_hash))
            .collect()
    }

    /// Takes in a look at the pending keys: their rows on each side, read `at` after settling
    /// began (a key absent from a side has no rows there). A key whose rows now agree was in
    /// flight and is not read again.
    pub fn observe(&mut self, at: Duration, left: &KeyedRows, right: &KeyedRows) {
        self.rereads += 1;
        for held in self.held.iter_mut().filter(|k| k.agreed_after.is_none()) {
            held.left = left.get(&held.key).cloned().unwrap_or_default();
            held.right = right.get(&held.key).cloned().unwrap_or_default();
            if agree(&held.left, &held.right, self.allow_duplicates) {
                held.agreed_after = Some(at);
            }
        }
    }

    /// Ends settling, `waited` after it began: what it found (the first `samples` in-flight
    /// keys named), and every held key with its rows at its last read, to be counted.
    pub fn finish(self, waited: Duration, samples: usize) -> (Settled, Vec<HeldKey>) {
        let in_flight: Vec<(String, Duration)> = self
            .held
            .iter()
            .filter_map(|k| Some((k.display.clone(), k.agreed_after?)))
            .collect();
        let still_held = (self.held.len() - in_flight.len()) as u64;
        let settled = Settled {
            in_flight: in_flight.len() as u64,
            settled_after: in_flight.iter().map(|(_, after)| *after).max(),
            in_flight_keys: in_flight.into_iter().take(samples).collect(),
            still_differing: still_held + self.not_rechecked + self.repeated,
            not_rechecked: self.not_rechecked,
            repeated: self.repeated,
            rereads: self.rereads,
            waited,
        };
        (settled, self.held)
    }
}

/// The rows of one key agree: their row hashes pair off as multisets and, unless duplicates
/// are allowed, neither side repeats the key.
fn agree(left: &[KeyedRow], right: &[KeyedRow], allow_duplicates: bool) -> bool {
    let (_, only_left, only_right) = pair_off(left, right);
    only_left + only_right == 0 && (allow_duplicates || (left.len() <= 1 && right.len() <= 1))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rstest::rstest;

    use super::*;
    use crate::reconcile::matching::tests::{keyed, rows_of_six_keys, table};
    use crate::reconcile::matching::{Matcher, Outcome};

    const SECOND: Duration = Duration::from_secs(1);

    fn settle(within_s: u64, interval_s: u64) -> Settle {
        Settle {
            within: SECOND * within_s as u32,
            interval: SECOND * interval_s as u32,
        }
    }

    /// Matches a chunk of (key, row hash) rows with settling on; returns the outcome so far
    /// and the settling holding the differing keys.
    fn diff(
        left: &[(u8, i64)],
        right: &[(u8, i64)],
        allow_duplicates: bool,
        limit: usize,
    ) -> (Outcome, Settling) {
        let mut outcome = Outcome::default();
        let (l, r) = (table("l"), table("r"));
        let mut matcher = Matcher::new(&mut outcome, (&l, &r), 10, false);
        matcher.settling = Some(Settling::new(settle(120, 10), allow_duplicates, limit));
        matcher.match_chunk(&keyed(left), &keyed(right));
        let settling = matcher.settling.take().unwrap();
        (outcome, settling)
    }

    /// Counts every held key from its last read, as `diff` does after settling.
    fn count_held(outcome: &mut Outcome, held: &[HeldKey], allow_duplicates: bool) {
        let (l, r) = (table("l"), table("r"));
        let mut matcher = Matcher::new(outcome, (&l, &r), 10, !allow_duplicates);
        for key in held {
            matcher.count_key(&key.key, &key.left, &key.right);
        }
    }

    fn keys(settling: &Settling) -> Vec<String> {
        settling
            .pending()
            .into_iter()
            .map(|(k, _)| k[0].clone())
            .collect()
    }

    #[test]
    fn only_differing_keys_that_can_agree_are_held() {
        let (outcome, settling) = diff(
            &[(1, 10), (2, 20), (3, 30), (4, 40), (4, 40)],
            &[(1, 10), (2, 21), (5, 50), (4, 40)],
            false,
            10,
        );
        // 1 agrees and is counted; 4 repeats on the left and is counted as it stands.
        assert_eq!(keys(&settling), ["2", "3", "5"]);
        assert_eq!(
            (outcome.matched, outcome.changed, outcome.missing),
            (1 + 1, 0, 1)
        );
        let (settled, _) = settling.finish(Duration::ZERO, 10);
        assert_eq!((settled.repeated, settled.still_differing), (1, 4));
    }

    #[test]
    fn repeated_keys_are_held_when_duplicates_are_allowed() {
        let (_, settling) = diff(&[(4, 40), (4, 40)], &[(4, 40)], true, 10);
        assert_eq!(keys(&settling), ["4"]);
    }

    #[test]
    fn keys_beyond_the_limit_are_not_rechecked_and_still_differ() {
        let left: Vec<(u8, i64)> = (0..5).map(|k| (k, 1)).collect();
        let (outcome, mut settling) = diff(&left, &[], false, 2);
        assert_eq!(keys(&settling), ["0", "1"]);
        assert_eq!(outcome.missing, 3, "keys 2 to 4 are counted at once");
        settling.observe(SECOND, &keyed(&left), &keyed(&left));
        let (settled, _) = settling.finish(SECOND, 10);
        assert_eq!(
            (
                settled.in_flight,
                settled.not_rechecked,
                settled.still_differing
            ),
            (2, 3, 3)
        );
    }

    #[rstest]
    #[case::first_look(0, Some(10))]
    #[case::between_looks(35, Some(10))]
    #[case::last_look_cut_short(115, Some(5))]
    #[case::at_the_deadline(120, None)]
    #[case::past_it(130, None)]
    fn looks_come_every_interval_until_the_deadline(
        #[case] elapsed_s: u64,
        #[case] wait_s: Option<u64>,
    ) {
        let (_, settling) = diff(&[(1, 10)], &[], false, 10);
        assert_eq!(
            settling.next_wait(SECOND * elapsed_s as u32),
            wait_s.map(|s| SECOND * s as u32)
        );
    }

    #[test]
    fn no_look_once_every_key_agrees() {
        let (_, mut settling) = diff(&[(1, 10)], &[], false, 10);
        settling.observe(SECOND, &keyed(&[(1, 10)]), &keyed(&[(1, 10)]));
        assert_eq!(settling.next_wait(SECOND), None);
        let (_, nothing_held) = diff(&[(1, 10)], &[(1, 10)], false, 10);
        assert_eq!(nothing_held.next_wait(Duration::ZERO), None);
    }

    #[test]
    fn keys_that_agree_are_in_flight_with_when_and_leave_the_looks() {
        // 1 changed, 2 missing on the right, 3 deleted on the left only.
        let (mut outcome, mut settling) = diff(&[(1, 10), (2, 20)], &[(1, 11), (3, 30)], false, 10);
        settling.observe(SECOND * 10, &keyed(&[(1, 10), (2, 20)]), &keyed(&[(1, 11)]));
        assert_eq!(keys(&settling), ["1", "2"], "3 is gone from both sides");
        settling.observe(SECOND * 20, &keyed(&[(1, 10), (2, 20)]), &keyed(&[(1, 10)]));
        assert_eq!(keys(&settling), ["2"]);
        let (settled, held) = settling.finish(SECOND * 120, 10);
        assert_eq!(settled.in_flight, 2);
        assert_eq!(
            settled.in_flight_keys,
            [
                ("k=1".to_string(), SECOND * 20),
                ("k=3".to_string(), SECOND * 10)
            ]
        );
        assert_eq!(settled.settled_after, Some(SECOND * 20));
        assert_eq!((settled.still_differing, settled.rereads), (1, 2));
        count_held(&mut outcome, &held, false);
        assert_eq!(
            (
                outcome.matched,
                outcome.changed,
                outcome.missing,
                outcome.extra
            ),
            (1, 0, 1, 0),
            "1 counts as matched at its last read, 2 as missing"
        );
        assert_eq!(outcome.missing_keys, ["k=2"]);
    }

    #[test]
    fn a_key_that_comes_to_repeat_does_not_agree() {
        let (_, mut settling) = diff(&[(1, 10)], &[], false, 10);
        settling.observe(
            SECOND,
            &keyed(&[(1, 10), (1, 10)]),
            &keyed(&[(1, 10), (1, 10)]),
        );
        let (settled, _) = settling.finish(SECOND, 10);
        assert_eq!((settled.in_flight, settled.still_differing), (0, 1));
    }

    /// Few rows and hashes, so keys differ, agree (also by both sides lacking them) and repeat.
    fn rows() -> impl Strategy<Value = Vec<(u8, i64)>> {
        rows_of_six_keys(3, 12)
    }

    proptest! {
        /// However the looks go, every differing key ends either in flight or still differing,
        /// never both; the counts add up; a key in flight agreed within `settle`; and counting
        /// the held keys from their last read fails exactly when a held key still differs.
        #[test]
        fn every_differing_key_ends_in_flight_or_differing(
            left in rows(),
            right in rows(),
            looks in prop::collection::vec((rows(), rows()), 0..6),
            allow_duplicates in any::<bool>(),
            limit in 0usize..6,
        ) {
            let (mut outcome, mut settling) = diff(&left, &right, allow_duplicates, limit);
            let differing: std::collections::BTreeSet<&u8> = left
                .iter()
                .chain(&right)
                .map(|(k, _)| k)
                .filter(|k| {
                    let side = |rows: &[(u8, i64)]| {
                        let mut hashes: Vec<i64> =
                            rows.iter().filter(|(key, _)| key == *k).map(|(_, h)| *h).collect();
                        hashes.sort_unstable();
                        hashes
                    };
                    side(&left) != side(&right)
                })
                .collect();
            let mut elapsed = Duration::ZERO;
            let mut looks = looks.into_iter();
            while let Some(wait) = settling.next_wait(elapsed) {
                elapsed += wait;
                let Some((l, r)) = looks.next() else { break };
                settling.observe(elapsed, &keyed(&l), &keyed(&r));
            }
            prop_assert!(elapsed <= settle(120, 10).within);
            let (settled, held) = settling.finish(elapsed, usize::MAX);
            prop_assert_eq!(settled.in_flight + settled.still_differing, differing.len() as u64);
            prop_assert!(settled.not_rechecked + settled.repeated <= settled.still_differing);
            prop_assert!(held.len() <= limit);
            let in_flight: Vec<&String> = settled.in_flight_keys.iter().map(|(k, _)| k).collect();
            for key in &held {
                let agreed = agree(&key.left, &key.right, allow_duplicates);
                prop_assert_eq!(agreed, in_flight.contains(&&key.display), "{}", key.display);
            }
            for (_, after) in &settled.in_flight_keys {
                prop_assert!(*after <= elapsed);
            }
            let failures = |o: &Outcome| (o.changed, o.missing, o.extra, o.duplicate_keys());
            let before = failures(&outcome);
            count_held(&mut outcome, &held, allow_duplicates);
            let after = failures(&outcome);
            let held_still = settled.still_differing - settled.not_rechecked - settled.repeated;
            prop_assert_eq!(before == after, held_still == 0);
        }
    }
}
