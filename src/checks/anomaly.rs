//! The band an anomaly check learns from a check's past runs (`lakecheck run --history`): the
//! median of the figures it saw, ± `sensitivity` (3.5 by default) times their scaled median
//! absolute deviation (1.4826 × MAD, which estimates the standard deviation of normal data
//! but is not pulled by the outliers it is meant to catch). Robust where mean ± k·σ is not: one
//! incident in the window barely moves it.
//!
//! - Only the last `runs` (30) runs are learned from, and a judgement needs `min_runs` (7) of
//!   them; until then the check warns "learning, N of 7 runs".
//! - A run in which the check failed is left out, so an incident does not widen the band;
//!   after `relearn_after` failed runs in a row the band is learned again from those runs on,
//!   so a permanent change of level becomes the new normal.
//! - `seasonality: day_of_week` learns only from runs on the same weekday (UTC).
//!
//! A check may learn from figures that are not its runs' (`volume_anomaly` per time bucket
//! learns from the buckets before the judged one): each is then a [`PastFigure`] dated by its
//! bucket's wall-clock start, and "failed" means a past run judged and failed that bucket.

use chrono::{DateTime, Datelike, Utc};

use super::CheckReader;
use crate::model::figure::{BAND_HIGH, BAND_LOW};
use crate::model::RuleError;
use crate::probe::PastRun;

/// Robust scale of normal data: MAD × 1.4826 estimates σ.
const MAD_TO_SIGMA: f64 = 1.4826;

/// How a band is learned (the rule's options).
#[derive(Debug, Clone, PartialEq)]
pub struct Learning {
    pub runs: usize,
    pub min_runs: usize,
    pub sensitivity: f64,
    pub relearn_after: Option<usize>,
    pub by_weekday: bool,
}

impl Default for Learning {
    fn default() -> Self {
        Self {
            runs: 30,
            min_runs: 7,
            sensitivity: 3.5,
            relearn_after: None,
            by_weekday: false,
        }
    }
}

impl Learning {
    /// `runs`, `min_runs`, `sensitivity`, `relearn_after` and `seasonality` of a check.
    pub fn parse(reader: &mut CheckReader) -> Result<Self, RuleError> {
        let default = Self::default();
        let runs = reader.map.u64("runs")?;
        let min_runs = reader.map.u64("min_runs")?;
        let sensitivity = reader.map.literal("sensitivity")?;
        let relearn_after = reader.map.u64("relearn_after")?;
        let seasonality = reader.map.string("seasonality")?;
        let learning = Self {
            runs: runs.as_ref().map_or(default.runs, |r| r.value as usize),
            min_runs: min_runs
                .as_ref()
                .map_or(default.min_runs, |r| r.value as usize),
            sensitivity: match &sensitivity {
                None => default.sensitivity,
                Some(s) => s
                    .value
                    .to_sql()
                    .parse::<f64>()
                    .ok()
                    .filter(|k| k.is_finite() && *k > 0.0)
                    .ok_or_else(|| {
                        RuleError::new(
                            s.location.clone(),
                            format!(
                                "`sensitivity` of {} must be a positive number",
                                reader.what()
                            ),
                        )
                        .with_help(
                            "e.g. `sensitivity: 3.5` (scaled MADs either side of the median)",
                        )
                    })?,
            },
            relearn_after: relearn_after.as_ref().map(|r| r.value as usize),
            by_weekday: match seasonality {
                None => false,
                Some(s) if s.value == "day_of_week" => true,
                Some(s) => {
                    return Err(RuleError::new(
                        s.location,
                        format!("unknown seasonality `{}` in {}", s.value, reader.what()),
                    )
                    .with_help("expected `day_of_week`, or leave it out"))
                }
            },
        };
        if learning.min_runs < 2 || learning.runs < learning.min_runs {
            return Err(RuleError::new(
                reader
                    .map
                    .location_of(if runs.is_some() { "runs" } else { "min_runs" }),
                format!(
                    "{} learns from {} runs but needs {} to judge",
                    reader.what(),
                    learning.runs,
                    learning.min_runs
                ),
            )
            .with_help("`min_runs` must be at least 2 and at most `runs`"));
        }
        if learning.relearn_after == Some(0) {
            return Err(RuleError::new(
                reader.map.location_of("relearn_after"),
                format!("`relearn_after` of {} must be at least 1", reader.what()),
            ));
        }
        Ok(learning)
    }
}

/// The band learned from past figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub median: f64,
    /// 1.4826 × the median absolute deviation.
    pub spread: f64,
    pub low: f64,
    pub high: f64,
    /// How many past runs it was learned from.
    pub runs: usize,
}

/// What the band says of today's figure.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// Too few runs to judge yet.
    Learning {
        runs: usize,
        needed: usize,
    },
    Within(Band),
    Outside(Band),
}

/// One past run's figure, as the band reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct PastFigure {
    /// When it was seen: read for its order and its weekday (`seasonality`) only.
    pub at: DateTime<Utc>,
    pub figure: f64,
    pub failed: bool,
}

/// The past figures of `metric` in `past` (runs without it, e.g. errors, are skipped), oldest
/// first.
pub fn figures(past: &[PastRun], metric: &str) -> Vec<PastFigure> {
    let mut figures: Vec<PastFigure> = past
        .iter()
        .filter_map(|run| {
            let figure = run.metrics.get(metric)?.as_f64()?;
            Some(PastFigure {
                at: run.at,
                figure,
                failed: run.status == "fail",
            })
        })
        .collect();
    figures.sort_by_key(|f| f.at);
    figures
}

/// Judges `today` (at `now`) against the band `learning` learns from `past`.
pub fn judge(
    past: &[PastFigure],
    today: f64,
    now: DateTime<Utc>,
    learning: &Learning,
) -> Judgement {
    let seasonal: Vec<&PastFigure> = past
        .iter()
        .filter(|f| f.at < now)
        .filter(|f| !learning.by_weekday || f.at.weekday() == now.weekday())
        .collect();
    // Failed runs in a row at the end: the new normal once there are `relearn_after` of them.
    let trailing_failures = seasonal.iter().rev().take_while(|f| f.failed).count();
    let learned: Vec<f64> = match learning.relearn_after {
        Some(after) if trailing_failures >= after => seasonal[seasonal.len() - trailing_failures..]
            .iter()
            .map(|f| f.figure)
            .collect(),
        _ => seasonal
            .iter()
            .filter(|f| !f.failed)
            .map(|f| f.figure)
            .collect(),
    };
    let learned = &learned[learned.len().saturating_sub(learning.runs)..];
    if learned.len() < learning.min_runs {
        return Judgement::Learning {
            runs: learned.len(),
            needed: learning.min_runs,
        };
    }
    let middle = median(learned.to_vec());
    let spread = MAD_TO_SIGMA * median(learned.iter().map(|x| (x - middle).abs()).collect());
    let band = Band {
        median: middle,
        spread,
        low: middle - learning.sensitivity * spread,
        high: middle + learning.sensitivity * spread,
        runs: learned.len(),
    };
    if today >= band.low && today <= band.high {
        Judgement::Within(band)
    } else {
        Judgement::Outside(band)
    }
}

/// What a judgement means for a check: whether it passes, what was expected (figures written
/// by `words`), and the warning while it is still learning. Adds the band to `metrics`.
pub fn outcome(
    judged: &Judgement,
    learning: &Learning,
    words: impl Fn(f64) -> String,
    metrics: &mut serde_json::Map<String, serde_json::Value>,
) -> (bool, String, Option<String>) {
    outcome_over("runs", judged, learning, words, metrics)
}

/// [`outcome`] for figures that are not one a run: `over` names what was learned from in the
/// plural ("daily buckets"). The metric keeps its name, `learned_from_runs`.
pub fn outcome_over(
    over: &str,
    judged: &Judgement,
    learning: &Learning,
    words: impl Fn(f64) -> String,
    metrics: &mut serde_json::Map<String, serde_json::Value>,
) -> (bool, String, Option<String>) {
    match judged {
        Judgement::Learning { runs, needed } => (
            true,
            format!("like the last {} {over} (learning)", learning.runs),
            Some(format!("learning, {runs} of {needed} {over}")),
        ),
        Judgement::Within(band) | Judgement::Outside(band) => {
            for (name, value) in [
                (BAND_LOW, band.low),
                (BAND_HIGH, band.high),
                ("band_median", band.median),
            ] {
                metrics.insert(name.into(), serde_json::json!(value));
            }
            metrics.insert("learned_from_runs".into(), serde_json::json!(band.runs));
            let expected = format!(
                "between {} and {} (median {} ± {} × {} over the last {} {over})",
                words(band.low),
                words(band.high),
                words(band.median),
                learning.sensitivity,
                words(band.spread),
                band.runs
            );
            (matches!(judged, Judgement::Within(_)), expected, None)
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n % 2 {
        1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn day(n: i64) -> DateTime<Utc> {
        "2026-11-02T06:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::days(n)
    }

    fn daily(figures: &[(f64, bool)]) -> Vec<PastFigure> {
        figures
            .iter()
            .enumerate()
            .map(|(i, (figure, failed))| PastFigure {
                at: day(i as i64),
                figure: *figure,
                failed: *failed,
            })
            .collect()
    }

    const NORMAL: [f64; 10] = [
        1000.0, 1020.0, 990.0, 1010.0, 1005.0, 995.0, 1015.0, 985.0, 1000.0, 1008.0,
    ];

    #[test]
    fn a_normal_day_passes_and_a_half_size_load_fails() {
        let past = daily(&NORMAL.map(|f| (f, false)));
        let learning = Learning::default();
        let Judgement::Within(band) = judge(&past, 1012.0, day(10), &learning) else {
            panic!("a normal day is within the band");
        };
        assert_eq!(band.median, 1002.5);
        assert_eq!(band.runs, 10);
        assert!(matches!(
            judge(&past, 500.0, day(10), &learning),
            Judgement::Outside(_)
        ));
    }

    #[test]
    fn too_few_runs_are_still_learning() {
        let past = daily(&NORMAL[..4].iter().map(|f| (*f, false)).collect::<Vec<_>>());
        assert_eq!(
            judge(&past, 1.0, day(4), &Learning::default()),
            Judgement::Learning { runs: 4, needed: 7 }
        );
    }

    #[test]
    fn a_failed_run_is_left_out_of_the_band() {
        let mut figures: Vec<(f64, bool)> = NORMAL.map(|f| (f, false)).to_vec();
        figures[5] = (10.0, true);
        let with_incident = judge(&daily(&figures), 1012.0, day(10), &Learning::default());
        let Judgement::Within(band) = with_incident else {
            panic!("{with_incident:?}")
        };
        assert_eq!(band.runs, 9, "the failed run is not learned from");
        assert!(
            band.low > 900.0,
            "the incident does not widen the band: {band:?}"
        );
    }

    #[test]
    fn after_relearn_after_failures_the_new_level_is_normal() {
        let mut figures: Vec<(f64, bool)> = NORMAL.map(|f| (f, false)).to_vec();
        figures.extend([(2000.0, true), (2010.0, true), (1990.0, true)]);
        let learning = Learning {
            relearn_after: Some(3),
            min_runs: 3,
            ..Learning::default()
        };
        assert!(matches!(
            judge(&daily(&figures), 2005.0, day(13), &learning),
            Judgement::Within(_)
        ));
        // Without relearning, the failures stay out and the new level keeps failing.
        assert!(matches!(
            judge(&daily(&figures), 2005.0, day(13), &Learning::default()),
            Judgement::Outside(_)
        ));
    }

    #[test]
    fn weekly_seasonality_learns_from_the_same_weekday() {
        // Mondays load 100 rows, other days 1000; day 0 is a Monday.
        let figures: Vec<(f64, bool)> = (0..56)
            .map(|i| {
                (
                    if i % 7 == 0 {
                        100.0 + (i % 3) as f64
                    } else {
                        1000.0 + (i % 5) as f64
                    },
                    false,
                )
            })
            .collect();
        let learning = Learning {
            by_weekday: true,
            ..Learning::default()
        };
        assert!(matches!(
            judge(&daily(&figures), 101.0, day(56), &learning),
            Judgement::Within(_)
        ));
        assert!(matches!(
            judge(&daily(&figures), 1000.0, day(56), &learning),
            Judgement::Outside(_)
        ));
    }

    proptest::proptest! {
        /// The median of the learned figures always lies within the band, and the band is
        /// symmetric around it.
        #[test]
        fn the_band_holds_its_median(values in proptest::collection::vec(0.0f64..1e9, 7..40)) {
            let past = daily(&values.iter().map(|v| (*v, false)).collect::<Vec<_>>());
            let today = values[0];
            let judged = judge(&past, today, day(values.len() as i64), &Learning::default());
            let band = match judged {
                Judgement::Within(band) | Judgement::Outside(band) => band,
                Judgement::Learning { .. } => panic!("enough runs"),
            };
            proptest::prop_assert!(band.low <= band.median && band.median <= band.high);
            proptest::prop_assert!(((band.high - band.median) - (band.median - band.low)).abs() < 1e-6 * band.median.max(1.0));
        }
    }
}
