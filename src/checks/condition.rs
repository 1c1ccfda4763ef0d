//! `condition`: a SQL boolean expression holds for every row. A row where it is NULL fails:
//! "every row must satisfy" means the expression is true, not merely "not false".

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::row_predicate::{counting, failing_rows, rows};
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation};
use crate::model::RuleError;
use crate::model::TableRef;
use crate::probe::scan::ScanNeeds;
use crate::probe::{CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "condition",
    summary: "a SQL boolean expression is true for every row (NULL counts as false)",
    parse,
};

#[derive(Debug)]
struct Condition {
    table: TableRef,
    expression: String,
    filter: Option<String>,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    Ok(Arc::new(Condition {
        table: reader.table("table")?,
        expression: reader
            .map
            .required_string("expression", "\"total_amount > 0\"")?
            .value,
        filter: reader.filter("where")?,
    }))
}

impl Condition {
    /// Rows for which the expression is not true.
    fn failing(&self) -> String {
        format!("NOT COALESCE(({}), FALSE)", self.expression)
    }
}

#[async_trait]
impl Check for Condition {
    fn default_name(&self) -> String {
        name_with_filter(
            format!("condition {}: {}", self.table, self.expression),
            self.filter.as_deref(),
        )
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    fn scan(&self) -> Option<ScanNeeds> {
        Some(counting(
            &self.table,
            self.filter.as_deref(),
            &self.failing(),
        ))
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let found =
            failing_rows(probe, &self.table, self.filter.as_deref(), &self.failing()).await?;
        let mut metrics = serde_json::Map::new();
        metrics.insert("failing_rows".into(), json!(found.count));
        Ok(Evaluation {
            passed: found.count == 0,
            observed: if found.count == 0 {
                "every row satisfies it".to_string()
            } else {
                format!("{} do not satisfy it", rows(found.count))
            },
            expected: self.expression.clone(),
            failing_rows: Some(found.count),
            metrics,
            ..Evaluation::default()
        }
        .with_failing_rows(probe, found.rows))
    }
}
