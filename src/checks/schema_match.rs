//! `schema_match`: the target table has every source column, with a type that holds its values
//! (see the type map in `model/columns.rs`). Reports schema drift: added, removed, retyped.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::pairing::{find_column, ColumnPairing};
use super::{Check, CheckKind, CheckReader, Evaluation};
use crate::model::RuleError;
use crate::model::TableRef;
use crate::model::{Column, Rows};
use crate::probe::{CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "schema_match",
    summary: "the right table has every left column with a compatible type (schema drift)",
    parse,
};

#[derive(Debug)]
struct SchemaMatch {
    left: TableRef,
    right: TableRef,
    /// `exclude` (e.g. `etl_timestamp`) and `mapping` (renamed columns).
    pairing: ColumnPairing,
    /// Whether columns only on the right are allowed (default: yes, reported).
    allow_added: bool,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let left = reader.table("left")?;
    let right = reader.table("right")?;
    let pairing = ColumnPairing::read(reader, false)?;
    let allow_added = reader.map.bool("allow_added")?.is_none_or(|b| b.value);
    Ok(Arc::new(SchemaMatch {
        left,
        right,
        pairing,
        allow_added,
    }))
}

/// One difference between the two schemas.
struct Drift {
    column: String,
    change: &'static str,
    left: Option<String>,
    right: Option<String>,
}

impl SchemaMatch {
    fn compare(&self, left: &[Column], right: &[Column]) -> Vec<Drift> {
        let kept = |c: &&Column| !self.pairing.excluded(&c.name);
        let mut drift = Vec::new();
        let mut matched = Vec::new();
        for column in left.iter().filter(kept) {
            match find_column(right, self.pairing.right_name(&column.name)) {
                None => drift.push(Drift {
                    column: column.name.clone(),
                    change: "removed",
                    left: Some(column.engine_type.clone()),
                    right: None,
                }),
                Some(target) => {
                    matched.push(target.name.clone());
                    if !column.logical.fits_into(target.logical) {
                        drift.push(Drift {
                            column: column.name.clone(),
                            change: "retyped",
                            left: Some(format!("{} ({})", column.engine_type, column.logical)),
                            right: Some(format!("{} ({})", target.engine_type, target.logical)),
                        });
                    }
                }
            }
        }
        for column in right
            .iter()
            .filter(kept)
            .filter(|c| !matched.contains(&c.name))
        {
            drift.push(Drift {
                column: column.name.clone(),
                change: "added",
                left: None,
                right: Some(column.engine_type.clone()),
            });
        }
        drift
    }
}

#[async_trait]
impl Check for SchemaMatch {
    fn default_name(&self) -> String {
        format!("schema_match {} ~ {}", self.left, self.right)
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.left.clone(), self.right.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let (left, right) =
            tokio::try_join!(probe.columns(&self.left), probe.columns(&self.right))?;
        let drift = self.compare(&left, &right);
        let of = |change: &str| {
            drift
                .iter()
                .filter(|d| d.change == change)
                .map(|d| d.column.clone())
                .collect::<Vec<_>>()
        };
        let (added, removed, retyped) = (of("added"), of("removed"), of("retyped"));
        let passed =
            removed.is_empty() && retyped.is_empty() && (self.allow_added || added.is_empty());
        let mut metrics = serde_json::Map::new();
        metrics.insert("added".into(), json!(added));
        metrics.insert("removed".into(), json!(removed));
        metrics.insert("retyped".into(), json!(retyped));
        let mut parts = Vec::new();
        for (label, names) in [
            ("removed", &removed),
            ("retyped", &retyped),
            ("added", &added),
        ] {
            if !names.is_empty() {
                parts.push(format!("{label}: {}", names.join(", ")));
            }
        }
        let samples = (!drift.is_empty()).then(|| Rows {
            columns: vec![
                "column".into(),
                "change".into(),
                self.left.to_string(),
                self.right.to_string(),
            ],
            rows: drift
                .into_iter()
                .map(|d| vec![Some(d.column), Some(d.change.to_string()), d.left, d.right])
                .collect(),
        });
        Ok(Evaluation {
            passed,
            observed: if parts.is_empty() {
                let compared = left
                    .iter()
                    .filter(|c| !self.pairing.excluded(&c.name))
                    .count();
                format!("{compared} columns match")
            } else {
                parts.join("; ")
            },
            expected: if self.allow_added {
                "every left column present with a compatible type".to_string()
            } else {
                "the same columns with compatible types".to_string()
            },
            failing_rows: None,
            samples,
            failures: None,
            metrics,
            warning: None,
        })
    }
}
