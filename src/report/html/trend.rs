//! A check's runs over time, drawn inline (no script, no network): a strip of one mark per run
//! coloured by status, and for checks with a figure an SVG line chart of it with the learned
//! band shaded and the fixed limits dashed. Runs are spaced evenly, oldest left: a run that
//! recorded no figure (an error) leaves a gap in the line rather than a fake zero.

use maud::{html, Markup};

use crate::model::{Figure, Unit};
use crate::results::TrendRun;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
/// The plot area inside the picture: room left for the figure's labels, below for the dates.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 620.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 150.0;

/// One mark per run, newest right, each titled with its time, status and figure.
pub fn strip(trend: &[TrendRun], figure: Option<&Figure>) -> Markup {
    html! {
        div.strip title={ "last " (trend.len()) " runs, newest right" } {
            @for run in trend {
                span class={ "run " (run.status.as_str()) } title=(describe(run, figure)) {}
            }
        }
    }
}

/// The figure's chart, when at least one run recorded it.
pub fn chart(trend: &[TrendRun], figure: &Figure) -> Option<Markup> {
    let values: Vec<f64> = trend.iter().filter_map(|r| r.value).collect();
    if values.is_empty() {
        return None;
    }
    let scale = Scale::fitting(
        values
            .iter()
            .copied()
            .chain(
                trend
                    .iter()
                    .filter_map(|r| r.band)
                    .flat_map(|(l, h)| [l, h]),
            )
            .chain(figure.limits.iter().map(|l| l.value)),
        trend.len(),
    );
    let unit = figure.unit;
    let first = trend.first().map(|r| r.at.format("%Y-%m-%d").to_string());
    let last = trend.last().map(|r| r.at.format("%Y-%m-%d").to_string());
    let label = format!("{} over the last {} runs", figure.label, trend.len());
    Some(html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width=(WIDTH) height=(HEIGHT)
            role="img" aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            @for (y, value) in scale.ticks(unit) {
                line.grid x1=(LEFT) x2=(RIGHT) y1=(y) y2=(y) {}
                text.axis x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (unit.format(value)) }
            }
            @for band in band_areas(trend, &scale) {
                polygon.band points=(band) {}
            }
            @for limit in &figure.limits {
                @let y = scale.y(limit.value);
                line.limit x1=(LEFT) x2=(RIGHT) y1=(y) y2=(y) {}
                text.limit-label x=(RIGHT) y=(y - 4.0) text-anchor="end" {
                    (limit.name.replace('_', " ")) " " (unit.format(limit.value))
                }
            }
            @for line in value_lines(trend, &scale) {
                polyline.line points=(line) {}
            }
            @for (i, run) in trend.iter().enumerate() {
                @if let Some(value) = run.value {
                    circle class={ "point " (run.status.as_str()) } cx=(scale.x(i)) cy=(scale.y(value)) r="3.5" {
                        title { (describe(run, Some(figure))) }
                    }
                }
            }
            @if let (Some(first), Some(last)) = (first, last) {
                text.axis x=(LEFT) y=(HEIGHT - 10.0) { (first) }
                text.axis x=(RIGHT) y=(HEIGHT - 10.0) text-anchor="end" { (last) }
            }
            text.axis x=((LEFT + RIGHT) / 2.0) y=(HEIGHT - 10.0) text-anchor="middle" {
                "● a run, coloured by status"
                @if trend.iter().any(|r| r.band.is_some()) { " · shaded: learned band" }
                @if !figure.limits.is_empty() { " · dashed: limits" }
            }
        }
    })
}

/// `2026-11-20 06:00 UTC · pass · 1,149 (band 1,120 to 1,180)`.
fn describe(run: &TrendRun, figure: Option<&Figure>) -> String {
    let mut text = format!(
        "{} · {}",
        run.at.format("%Y-%m-%d %H:%M UTC"),
        run.status.as_str()
    );
    if let (Some(value), Some(figure)) = (run.value, figure) {
        text.push_str(&format!(" · {}", figure.unit.format(value)));
        if let Some((low, high)) = run.band {
            let unit = figure.unit;
            text.push_str(&format!(
                " (band {} to {})",
                unit.format(low),
                unit.format(high)
            ));
        }
    }
    text
}

/// Where values and runs land in the plot area.
struct Scale {
    low: f64,
    high: f64,
    runs: usize,
}

/// Steps between labelled heights that people count in: durations in whole minutes, hours and
/// days; counts in 1, 2, 5 × 10ⁿ.
fn step(unit: Unit, at_least: f64) -> f64 {
    const SECONDS: [f64; 19] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0, 86400.0, 604800.0,
    ];
    if unit == Unit::Seconds {
        if let Some(step) = SECONDS.iter().find(|s| **s >= at_least) {
            return *step;
        }
    }
    let power = 10f64.powf(at_least.max(f64::MIN_POSITIVE).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= at_least)
        .unwrap_or(10.0 * power)
}

impl Scale {
    /// A range holding every value with a margin, never empty, and never below zero for
    /// figures that are not (counts, lags of the past).
    fn fitting(values: impl Iterator<Item = f64>, runs: usize) -> Self {
        let (mut low, mut high) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
        if low > high {
            (low, high) = (0.0, 1.0);
        }
        let margin = match high - low {
            span if span > 0.0 => span * 0.08,
            _ => low.abs().max(1.0) * 0.1,
        };
        Self {
            low: if low >= 0.0 {
                (low - margin).max(0.0)
            } else {
                low - margin
            },
            high: high + margin,
            runs,
        }
    }

    fn x(&self, run: usize) -> f64 {
        match self.runs {
            0 | 1 => (LEFT + RIGHT) / 2.0,
            n => LEFT + (RIGHT - LEFT) * run as f64 / (n - 1) as f64,
        }
    }

    fn y(&self, value: f64) -> f64 {
        let share = (value - self.low) / (self.high - self.low);
        round(BOTTOM - (BOTTOM - TOP) * share.clamp(0.0, 1.0))
    }

    /// Two to four labelled heights at round values inside the range.
    fn ticks(&self, unit: Unit) -> Vec<(f64, f64)> {
        let step = step(unit, (self.high - self.low) / 4.0);
        let first = (self.low / step).ceil() as i64;
        let last = (self.high / step).floor() as i64;
        (first..=last)
            .map(|n| n as f64 * step)
            .map(|v| (self.y(v), v))
            .collect()
    }
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Runs in a row that have `part`, with their positions: a line or area per stretch.
fn stretches<T>(trend: &[TrendRun], part: impl Fn(&TrendRun) -> Option<T>) -> Vec<Vec<(usize, T)>> {
    let mut stretches: Vec<Vec<(usize, T)>> = vec![Vec::new()];
    for (i, run) in trend.iter().enumerate() {
        match part(run) {
            Some(value) => stretches.last_mut().expect("one open").push((i, value)),
            None if stretches.last().is_some_and(Vec::is_empty) => {}
            None => stretches.push(Vec::new()),
        }
    }
    stretches.retain(|s| !s.is_empty());
    stretches
}

fn point(scale: &Scale, run: usize, dx: f64, value: f64) -> String {
    format!("{},{}", round(scale.x(run) + dx), scale.y(value))
}

/// The figure's line, broken where a run recorded none.
fn value_lines(trend: &[TrendRun], scale: &Scale) -> Vec<String> {
    stretches(trend, |r| r.value)
        .into_iter()
        .map(|line| {
            let points: Vec<String> = line.iter().map(|&(i, v)| point(scale, i, 0.0, v)).collect();
            points.join(" ")
        })
        .collect()
}

/// The learned band as shaded areas: out along the highs, back along the lows. A band of one
/// run is a short bar rather than an invisible line.
fn band_areas(trend: &[TrendRun], scale: &Scale) -> Vec<String> {
    stretches(trend, |r| r.band)
        .into_iter()
        .map(|area| {
            if let [(i, (low, high))] = area[..] {
                return [(-4.0, high), (4.0, high), (4.0, low), (-4.0, low)]
                    .map(|(dx, v)| point(scale, i, dx, v))
                    .join(" ");
            }
            let highs = area
                .iter()
                .map(|&(i, (_, high))| point(scale, i, 0.0, high));
            let lows = area
                .iter()
                .rev()
                .map(|&(i, (low, _))| point(scale, i, 0.0, low));
            highs.chain(lows).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Status;
    use chrono::{DateTime, Duration, Utc};

    fn run(day: i64, status: Status, value: Option<f64>, band: Option<(f64, f64)>) -> TrendRun {
        TrendRun {
            at: "2026-11-01T06:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::days(day),
            status,
            value,
            band,
        }
    }

    #[test]
    fn a_run_without_a_figure_breaks_the_line() {
        let trend = [
            run(0, Status::Pass, Some(10.0), None),
            run(1, Status::Pass, Some(12.0), None),
            run(2, Status::Error, None, None),
            run(3, Status::Pass, Some(11.0), None),
        ];
        let scale = Scale::fitting([10.0, 12.0].into_iter(), 4);
        let lines = value_lines(&trend, &scale);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].split(' ').count(), 2);
        assert_eq!(lines[1].split(' ').count(), 1);
    }

    #[test]
    fn the_band_goes_out_along_the_highs_and_back_along_the_lows() {
        let trend = [
            run(0, Status::Warn, Some(10.0), None),
            run(1, Status::Pass, Some(12.0), Some((8.0, 14.0))),
            run(2, Status::Fail, Some(3.0), Some((9.0, 13.0))),
        ];
        let scale = Scale::fitting([3.0, 14.0].into_iter(), 3);
        let areas = band_areas(&trend, &scale);
        assert_eq!(areas.len(), 1);
        let corners: Vec<&str> = areas[0].split(' ').collect();
        let expected =
            [(1, 14.0), (2, 13.0), (2, 9.0), (1, 8.0)].map(|(i, v)| point(&scale, i, 0.0, v));
        assert_eq!(corners, expected);
    }

    #[test]
    fn higher_values_are_drawn_higher_and_stay_inside() {
        let scale = Scale::fitting([100.0, 200.0].into_iter(), 2);
        assert!(scale.y(200.0) < scale.y(100.0));
        assert!(scale.y(100.0) < BOTTOM && scale.y(200.0) > TOP);
        assert_eq!(scale.y(1e12), TOP);
        let flat = Scale::fitting([5.0, 5.0].into_iter(), 1);
        assert!(flat.low < 5.0 && flat.high > 5.0);
        assert_eq!(flat.x(0), (LEFT + RIGHT) / 2.0);
    }
}
