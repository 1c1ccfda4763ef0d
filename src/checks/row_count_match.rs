//! `row_count_match`: two tables, in any two sources, hold the same number of rows.
//!
//! Two empty sides agree but prove nothing (a filter that matches no row, a load that never ran
//! on either side): that fails unless the rule says `allow_empty: true`.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{Check, CheckKind, CheckReader, Evaluation};
use crate::model::RuleError;
use crate::model::TableRef;
use crate::probe::{first_i64, CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "row_count_match",
    summary: "two tables (any sources) have the same row count, within a tolerance",
    parse,
};

/// How far apart the counts may be.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tolerance {
    Rows(u64),
    /// Percent of the left (source) table's count.
    Percent(f64),
}

#[derive(Debug)]
struct RowCountMatch {
    left: TableRef,
    right: TableRef,
    left_filter: Option<String>,
    right_filter: Option<String>,
    tolerance: Tolerance,
    /// Whether two sides that both hold no rows (after their filters) pass.
    allow_empty: bool,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let left = reader.table("left")?;
    let right = reader.table("right")?;
    let left_filter = reader.filter("left_where")?;
    let right_filter = reader.filter("right_where")?;
    let tolerance = match reader.map.string("tolerance")? {
        None => Tolerance::Rows(0),
        Some(t) => parse_tolerance(&t.value).ok_or_else(|| {
            RuleError::new(
                t.location.clone(),
                format!(
                    "`tolerance` in {} is not a row count or percentage: `{}`",
                    reader.what(),
                    t.value
                ),
            )
            .with_help("write a number of rows (`5`) or a percentage (`0.5%`)")
        })?,
    };
    let allow_empty = reader.map.bool("allow_empty")?.is_some_and(|a| a.value);
    Ok(Arc::new(RowCountMatch {
        left,
        right,
        left_filter,
        right_filter,
        tolerance,
        allow_empty,
    }))
}

fn parse_tolerance(text: &str) -> Option<Tolerance> {
    let text = text.trim();
    match text.strip_suffix('%') {
        Some(pct) => pct
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p >= 0.0)
            .map(Tolerance::Percent),
        None => text.parse::<u64>().ok().map(Tolerance::Rows),
    }
}

#[async_trait]
impl Check for RowCountMatch {
    fn default_name(&self) -> String {
        format!("row_count_match {} = {}", self.left, self.right)
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.left.clone(), self.right.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let count = |table: &TableRef, filter: Option<&str>| {
            let from = probe.from_clause(table, filter);
            let source = table.source.clone();
            async move {
                let rows = probe
                    .query(
                        &source,
                        format!("SELECT count(*) AS row_count FROM {}", from?),
                    )
                    .await?;
                first_i64(&rows, &source, "row_count")
            }
        };
        let (left, right) = tokio::try_join!(
            count(&self.left, self.left_filter.as_deref()),
            count(&self.right, self.right_filter.as_deref())
        )?;
        let difference = right - left;
        let allowed = match self.tolerance {
            Tolerance::Rows(n) => n as f64,
            Tolerance::Percent(p) => left.abs() as f64 * p / 100.0,
        };
        let both_empty = left == 0 && right == 0;
        let empty_fails = both_empty && !self.allow_empty;
        let passed = (difference.abs() as f64) <= allowed && !empty_fails;
        let mut metrics = serde_json::Map::new();
        metrics.insert("left_count".into(), json!(left));
        metrics.insert("right_count".into(), json!(right));
        metrics.insert("difference".into(), json!(difference));
        let relative = if left == 0 {
            String::new()
        } else {
            format!(", {:+.2}%", difference as f64 * 100.0 / left as f64)
        };
        let mut observed = format!(
            "{}: {left}, {}: {right} (difference {difference:+}{relative})",
            self.left, self.right
        );
        if empty_fails {
            observed = super::both_empty_finding(
                &self.left,
                &self.right,
                self.left_filter.is_some() || self.right_filter.is_some(),
            );
        }
        let mut expected = match self.tolerance {
            Tolerance::Rows(0) => "equal row counts".to_string(),
            Tolerance::Rows(n) => format!("row counts within {n} rows"),
            Tolerance::Percent(p) => format!("row counts within {p}% of {}", self.left),
        };
        if empty_fails {
            expected.push_str(", with rows on at least one side");
        }
        Ok(Evaluation {
            passed,
            observed,
            expected,
            failing_rows: Some(difference.unsigned_abs()),
            metrics,
            ..Evaluation::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("5", Some(Tolerance::Rows(5)))]
    #[case("0.5%", Some(Tolerance::Percent(0.5)))]
    #[case(" 2 % ", Some(Tolerance::Percent(2.0)))]
    #[case("-1", None)]
    #[case("-1%", None)]
    #[case("lots", None)]
    fn parses_tolerances(#[case] text: &str, #[case] expected: Option<Tolerance>) {
        assert_eq!(parse_tolerance(text), expected);
    }
}
