//! `aggregate_match`: per-column profiles (rows, non-null count, distinct count, min, max, sum)
//! agree between two tables in any engines. The cheap check for huge tables: one scan a side,
//! values compared in canonical form, float sums within a relative tolerance.
//!
//! What it does not let pass: a left column the right table lacks (unless excluded or mapped),
//! an infinite or NaN sum against any other value, and two empty sides (unless `allow_empty`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::pairing::{find_column, ColumnPairing};
use super::{Check, CheckKind, CheckReader, Evaluation};
use crate::model::canon::{self, Canon};
use crate::model::sql::quote_ident;
use crate::model::RuleError;
use crate::model::TableRef;
use crate::model::{Column, Rows};
use crate::probe::{CheckError, ColumnProblem, Comparing, Probe};
use crate::sources::Source;

pub const KIND: CheckKind = CheckKind {
    name: "aggregate_match",
    summary: "per-column count, nulls, distinct, min, max and sum agree between two tables",
    parse,
};

#[derive(Debug)]
struct AggregateMatch {
    left: TableRef,
    right: TableRef,
    pairing: ColumnPairing,
    left_filter: Option<String>,
    right_filter: Option<String>,
    /// Relative tolerance for sums and counts (0 = exact); float sums default to 1e-9.
    tolerance: f64,
    distinct: bool,
    /// Whether two sides that both hold no rows (after their filters) pass.
    allow_empty: bool,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let left = reader.table("left")?;
    let right = reader.table("right")?;
    let pairing = ColumnPairing::read(reader, true)?;
    let left_filter = reader.filter("left_where")?;
    let right_filter = reader.filter("right_where")?;
    let tolerance = match reader.map.string("tolerance")? {
        None => 0.0,
        Some(t) => t
            .value
            .trim()
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok())
            .filter(|p| p.is_finite() && *p >= 0.0)
            .map(|p| p / 100.0)
            .ok_or_else(|| {
                RuleError::new(
                    t.location.clone(),
                    format!(
                        "`tolerance` in {} must be a percentage, found `{}`",
                        reader.what(),
                        t.value
                    ),
                )
                .with_help("e.g. `tolerance: 0.01%`")
            })?,
    };
    let distinct = reader.map.bool("distinct")?.is_none_or(|d| d.value);
    let allow_empty = reader.map.bool("allow_empty")?.is_some_and(|a| a.value);
    Ok(Arc::new(AggregateMatch {
        left,
        right,
        pairing,
        left_filter,
        right_filter,
        tolerance,
        distinct,
        allow_empty,
    }))
}

/// One measure of one column as both sides report it.
struct Measure {
    column: String,
    name: &'static str,
    left: Option<String>,
    right: Option<String>,
    /// Compare as numbers with this relative tolerance, else as canonical text.
    numeric_tolerance: Option<f64>,
}

impl Measure {
    /// Equal canonical text, or for numeric measures numbers within the relative tolerance.
    /// Infinite and NaN values compare exactly (an infinite bound would admit anything):
    /// infinity equals only itself with the same sign, NaN only NaN.
    fn agrees(&self) -> bool {
        match (self.numeric_tolerance, &self.left, &self.right) {
            (Some(tolerance), Some(l), Some(r)) => match (l.parse::<f64>(), r.parse::<f64>()) {
                (Ok(l), Ok(r)) if l.is_nan() || r.is_nan() => l.is_nan() && r.is_nan(),
                (Ok(l), Ok(r)) if l.is_infinite() || r.is_infinite() => l == r,
                (Ok(l), Ok(r)) => (l - r).abs() <= tolerance * l.abs().max(r.abs()) || l == r,
                _ => l == r,
            },
            _ => self.left == self.right,
        }
    }
}

impl AggregateMatch {
    fn select(
        &self,
        source: &Arc<dyn Source>,
        table: &TableRef,
        filter: Option<&str>,
        columns: &[(Column, Canon)],
    ) -> String {
        let mut inner = vec!["count(*) AS row_count".to_string()];
        let mut outer = vec!["row_count".to_string()];
        for (i, (column, canon)) in columns.iter().enumerate() {
            let ident = quote_ident(&column.name);
            inner.push(format!("count({ident}) AS non_null_{i}"));
            outer.push(format!("non_null_{i}"));
            if self.distinct {
                inner.push(format!("count(DISTINCT {ident}) AS distinct_{i}"));
                outer.push(format!("distinct_{i}"));
            }
            for function in ["min", "max"]
                .into_iter()
                .filter(|_| ordered(*canon, column))
            {
                let alias = format!("{function}_{i}");
                inner.push(format!(
                    "{} AS {alias}",
                    source.ordered_aggregate_sql(function, column)
                ));
                let aggregated = Column {
                    name: alias.clone(),
                    ..column.clone()
                };
                outer.push(format!(
                    "{} AS {alias}",
                    source.canonical_sql(&aggregated, *canon)
                ));
            }
            if let Some(sum_canon) = sum_canon(*canon) {
                let alias = format!("sum_{i}");
                inner.push(format!("sum({ident}) AS {alias}"));
                let summed = Column {
                    name: alias.clone(),
                    logical: crate::model::LogicalType::Decimal {
                        precision: 0,
                        scale: 0,
                    },
                    ..column.clone()
                };
                let rendered = match sum_canon {
                    Canon::Float => format!("CAST({alias} AS DOUBLE PRECISION)"),
                    _ => source.canonical_sql(&summed, Canon::Decimal),
                };
                outer.push(format!("{rendered} AS {alias}"));
            }
        }
        let from = source.table_sql(&table.table);
        let filter = filter.map(|f| format!(" WHERE ({f})")).unwrap_or_default();
        format!(
            "SELECT {} FROM (SELECT {} FROM {from}{filter}) AS profile",
            outer.join(", "),
            inner.join(", ")
        )
    }
}

/// Whether min/max mean the same in both engines: not for bytes, UUIDs or JSON, which
/// PostgreSQL does not order (or orders differently).
fn ordered(canon: Canon, column: &Column) -> bool {
    !matches!(canon, Canon::Binary | Canon::Uuid)
        && column.logical != crate::model::LogicalType::Json
}

/// Sums are taken of numbers only; floats are summed as floats and compared with tolerance.
fn sum_canon(canon: Canon) -> Option<Canon> {
    match canon {
        Canon::Int | Canon::Decimal => Some(Canon::Decimal),
        Canon::Float => Some(Canon::Float),
        _ => None,
    }
}

#[async_trait]
impl Check for AggregateMatch {
    fn default_name(&self) -> String {
        format!("aggregate_match {} = {}", self.left, self.right)
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.left.clone(), self.right.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let (left_source, right_source) = (
            probe.source(&self.left.source)?.clone(),
            probe.source(&self.right.source)?.clone(),
        );
        let (left_columns, right_columns) =
            tokio::try_join!(probe.columns(&self.left), probe.columns(&self.right))?;
        let wanted = self.pairing.wanted(&left_columns);
        let mut left_pairs = Vec::new();
        let mut right_pairs = Vec::new();
        // Left columns the right table lacks: lost in the copy, so a failure, not a skip.
        let mut missing: Vec<(Column, &str)> = Vec::new();
        let mut problems = Vec::new();
        for name in &wanted {
            let right_name = self.pairing.right_name(name);
            match (
                find_column(&left_columns, name),
                find_column(&right_columns, right_name),
            ) {
                (Some(l), Some(r)) => match canon::choose(&l, &r) {
                    Ok(canon) => {
                        left_pairs.push((l, canon));
                        right_pairs.push((r, canon));
                    }
                    Err(reason) => problems.push(ColumnProblem::Incomparable {
                        column: name.clone(),
                        reason,
                    }),
                },
                (Some(l), None) => missing.push((l, right_name)),
                // Only `columns:` can name a column the left table lacks: a mistake in the rule.
                (None, _) => problems.push(ColumnProblem::NotAColumn {
                    column: name.clone(),
                    table: self.left.clone(),
                }),
            }
        }
        if !problems.is_empty() {
            return Err(CheckError::Mapping {
                left: self.left.clone(),
                right: self.right.clone(),
                comparing: Comparing::Profiles,
                problems,
            });
        }
        let (l, r) = tokio::try_join!(
            probe.query(
                &self.left.source,
                self.select(
                    &left_source,
                    &self.left,
                    self.left_filter.as_deref(),
                    &left_pairs
                )
            ),
            probe.query(
                &self.right.source,
                self.select(
                    &right_source,
                    &self.right,
                    self.right_filter.as_deref(),
                    &right_pairs
                )
            )
        )?;
        let value = |rows: &Rows, column: &str| rows.first(column).map(str::to_string);
        let count_tolerance = Some(self.tolerance);
        let mut measures = vec![Measure {
            column: "*".into(),
            name: "rows",
            left: value(&l, "row_count"),
            right: value(&r, "row_count"),
            numeric_tolerance: count_tolerance,
        }];
        for (i, (column, canon)) in left_pairs.iter().enumerate() {
            let mut add = |name: &'static str, alias: String, numeric_tolerance: Option<f64>| {
                measures.push(Measure {
                    column: column.name.clone(),
                    name,
                    left: value(&l, &alias),
                    right: value(&r, &alias),
                    numeric_tolerance,
                })
            };
            add("non_null", format!("non_null_{i}"), count_tolerance);
            if self.distinct {
                add("distinct", format!("distinct_{i}"), count_tolerance);
            }
            if ordered(*canon, column) {
                add("min", format!("min_{i}"), None);
                add("max", format!("max_{i}"), None);
            }
            match sum_canon(*canon) {
                Some(Canon::Float) => {
                    add("sum", format!("sum_{i}"), Some(self.tolerance.max(1e-9)))
                }
                Some(_) if self.tolerance > 0.0 => {
                    add("sum", format!("sum_{i}"), Some(self.tolerance))
                }
                Some(_) => add("sum", format!("sum_{i}"), None),
                None => {}
            }
        }
        let differing: Vec<&Measure> = measures.iter().filter(|m| !m.agrees()).collect();
        let both_empty = value(&l, "row_count").as_deref() == Some("0")
            && value(&r, "row_count").as_deref() == Some("0");
        let empty_fails = both_empty && !self.allow_empty;
        let mut metrics = serde_json::Map::new();
        metrics.insert("measures_compared".into(), json!(measures.len()));
        metrics.insert("measures_differing".into(), json!(differing.len()));
        metrics.insert(
            "columns".into(),
            json!(left_pairs.iter().map(|(c, _)| &c.name).collect::<Vec<_>>()),
        );
        metrics.insert(
            "missing_columns".into(),
            json!(missing.iter().map(|(c, _)| &c.name).collect::<Vec<_>>()),
        );
        metrics.insert("left_rows".into(), json!(value(&l, "row_count")));
        metrics.insert("right_rows".into(), json!(value(&r, "row_count")));
        let mut sample_rows: Vec<Vec<Option<String>>> = missing
            .iter()
            .map(|(column, right_name)| {
                vec![
                    Some(column.name.clone()),
                    Some("missing column".to_string()),
                    Some(column.engine_type.clone()),
                    Some(format!("no column `{right_name}`")),
                ]
            })
            .collect();
        sample_rows.extend(differing.iter().map(|m| {
            vec![
                Some(m.column.clone()),
                Some(m.name.to_string()),
                m.left.clone(),
                m.right.clone(),
            ]
        }));
        let samples = (!sample_rows.is_empty()).then(|| Rows {
            columns: vec![
                "column".into(),
                "measure".into(),
                self.left.to_string(),
                self.right.to_string(),
            ],
            rows: sample_rows,
        });
        let mut findings = Vec::new();
        if !missing.is_empty() {
            findings.push(format!(
                "{} missing in {}: {}",
                crate::model::plural(missing.len(), "column"),
                self.right,
                missing
                    .iter()
                    .map(|(c, right_name)| match *right_name == c.name.as_str() {
                        true => c.name.clone(),
                        false => format!("{} (as {right_name})", c.name),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !differing.is_empty() {
            findings.push(format!(
                "{} of {} measures differ ({})",
                differing.len(),
                measures.len(),
                differing
                    .iter()
                    .take(5)
                    .map(|m| format!("{} {}", m.column, m.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if empty_fails {
            findings.push(super::both_empty_finding(
                &self.left,
                &self.right,
                self.left_filter.is_some() || self.right_filter.is_some(),
            ));
        }
        let mut expected = if self.tolerance > 0.0 {
            format!(
                "equal profiles (counts and sums within {}%)",
                self.tolerance * 100.0
            )
        } else {
            "equal profiles".to_string()
        };
        if empty_fails {
            expected.push_str(", with rows on at least one side");
        }
        Ok(Evaluation {
            passed: findings.is_empty(),
            observed: if findings.is_empty() {
                format!(
                    "{} measures over {} columns agree{}",
                    measures.len(),
                    left_pairs.len(),
                    if both_empty {
                        " (both sides empty, allowed)"
                    } else {
                        ""
                    }
                )
            } else {
                findings.join("; ")
            },
            expected,
            failing_rows: None,
            samples,
            failures: None,
            metrics,
            warning: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn measure(left: Option<&str>, right: Option<&str>, tolerance: Option<f64>) -> Measure {
        Measure {
            column: "x".into(),
            name: "sum",
            left: left.map(str::to_string),
            right: right.map(str::to_string),
            numeric_tolerance: tolerance,
        }
    }

    /// Values as both engines render them: PostgreSQL `Infinity`/`NaN`, DataFusion `inf`/`NaN`.
    #[rstest]
    #[case::equal("1.5", "1.5", Some(0.0), true)]
    #[case::within_tolerance("100", "100.00000001", Some(1e-9), true)]
    #[case::beyond_tolerance("100", "100.1", Some(1e-9), false)]
    #[case::zero_tolerance("1", "2", Some(0.0), false)]
    #[case::infinite_left("Infinity", "1e308", Some(1e-9), false)]
    #[case::infinite_right("6", "inf", Some(0.01), false)]
    #[case::infinite_both("Infinity", "inf", Some(1e-9), true)]
    #[case::infinite_signs("Infinity", "-Infinity", Some(1e-9), false)]
    #[case::negative_infinite_both("-inf", "-Infinity", Some(1e-9), true)]
    #[case::nan_left("NaN", "1", Some(1e-9), false)]
    #[case::nan_right("1", "NaN", Some(0.5), false)]
    #[case::nan_both("NaN", "NaN", Some(1e-9), true)]
    #[case::nan_against_infinity("NaN", "Infinity", Some(1e-9), false)]
    #[case::text_exact("10.1", "10.1", None, true)]
    #[case::text_differs("10.1", "10.10", None, false)]
    fn measures_agree(
        #[case] left: &str,
        #[case] right: &str,
        #[case] tolerance: Option<f64>,
        #[case] agrees: bool,
    ) {
        assert_eq!(
            measure(Some(left), Some(right), tolerance).agrees(),
            agrees,
            "{left} vs {right} within {tolerance:?}"
        );
    }

    #[test]
    fn null_only_equals_null() {
        assert!(measure(None, None, Some(1e-9)).agrees());
        assert!(!measure(Some("0"), None, Some(1e-9)).agrees());
    }
}
