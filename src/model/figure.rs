//! The figure a check is followed by across runs (the HTML report's trend chart): which of its
//! `metrics` it is, in what unit, and the fixed limits the check judges it against. A learned
//! band is not a limit here: each run records its own (`band_low`, `band_high`), so the chart
//! draws the band as it was when each run was judged.

use serde::Serialize;

/// The `metrics` entries in which an anomaly check records the band it judged by.
pub const BAND_LOW: &str = "band_low";
pub const BAND_HIGH: &str = "band_high";

/// How a figure is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Rows,
    Seconds,
}

/// A fixed line the figure is judged against, e.g. `error_after` of a freshness check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limit {
    pub name: &'static str,
    pub value: f64,
}

/// A check's headline figure: `metric` names the entry of its `metrics` that holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub metric: &'static str,
    /// What it is, in words: `row count`, `lag`.
    pub label: &'static str,
    pub unit: Unit,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<Limit>,
}

impl Figure {
    pub fn new(metric: &'static str, label: &'static str, unit: Unit) -> Self {
        Self {
            metric,
            label,
            unit,
            limits: Vec::new(),
        }
    }

    /// Adds the limit `name` when the check has one.
    pub fn limit(mut self, name: &'static str, value: Option<f64>) -> Self {
        if let Some(value) = value {
            self.limits.push(Limit { name, value });
        }
        self
    }
}

impl Unit {
    /// `1,149`, `4m5s`: the figure as people read it (rows grouped by thousands, durations as
    /// rules write them).
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Rows => {
                let whole = value.round() as i64;
                let digits = whole.unsigned_abs().to_string();
                let mut grouped = String::new();
                for (i, digit) in digits.chars().enumerate() {
                    if i > 0 && (digits.len() - i).is_multiple_of(3) {
                        grouped.push(',');
                    }
                    grouped.push(digit);
                }
                format!("{}{grouped}", if whole < 0 { "-" } else { "" })
            }
            Unit::Seconds => {
                // Tenths of a second under a minute, whole seconds above: an axis label.
                let tenths = (value.abs() * 10.0).round() as u64;
                let tenths = if tenths >= 600 {
                    tenths / 10 * 10
                } else {
                    tenths
                };
                let duration = std::time::Duration::from_millis(tenths * 100);
                let sign = if value <= -0.05 { "-" } else { "" };
                format!("{sign}{}", super::format_duration(duration))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case(Unit::Rows, 0.0, "0")]
    #[case(Unit::Rows, 1149.0, "1,149")]
    #[case(Unit::Rows, 1_200_000.4, "1,200,000")]
    #[case(Unit::Rows, -2500.0, "-2,500")]
    #[case(Unit::Seconds, 1.25, "1.3s")]
    #[case(Unit::Seconds, 42.0, "42s")]
    #[case(Unit::Seconds, 245.4, "4m5s")]
    #[case(Unit::Seconds, 3600.0 * 6.0 + 120.0, "6h2m")]
    #[case(Unit::Seconds, 86_400.0 * 2.0 + 3600.0, "2d1h")]
    #[case(Unit::Seconds, -3600.0, "-1h")]
    #[case(Unit::Seconds, 0.0, "0s")]
    fn figures_read_as_people_write_them(
        #[case] unit: Unit,
        #[case] value: f64,
        #[case] text: &str,
    ) {
        assert_eq!(unit.format(value), text);
    }
}
