//! `not_null`: the named columns hold no NULLs.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::row_predicate::{failing_rows, rows};
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation};
use crate::model::sql::quote_ident;
use crate::model::RuleError;
use crate::model::TableRef;
use crate::probe::{first_i64, CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "not_null",
    summary: "the named columns contain no NULL values",
    parse,
};

#[derive(Debug)]
struct NotNull {
    table: TableRef,
    columns: Vec<String>,
    filter: Option<String>,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    Ok(Arc::new(NotNull {
        table: reader.table("table")?,
        columns: reader.columns("columns")?,
        filter: reader.filter("where")?,
    }))
}

#[async_trait]
impl Check for NotNull {
    fn default_name(&self) -> String {
        name_with_filter(
            format!("not_null {} ({})", self.table, self.columns.join(", ")),
            self.filter.as_deref(),
        )
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        // One pass counts NULLs per column; positional aliases avoid clashes with column names.
        let from = probe.from_clause(&self.table, self.filter.as_deref())?;
        let per_column: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "sum(CASE WHEN {} IS NULL THEN 1 ELSE 0 END) AS null_{i}",
                    quote_ident(c)
                )
            })
            .collect();
        let counts = probe
            .query(
                &self.table.source,
                format!("SELECT {} FROM {from}", per_column.join(", ")),
            )
            .await?;
        let mut metrics = serde_json::Map::new();
        let mut offenders = Vec::new();
        for (i, column) in self.columns.iter().enumerate() {
            let nulls = first_i64(&counts, &self.table.source, &format!("null_{i}"))?;
            metrics.insert(format!("nulls.{column}"), json!(nulls));
            if nulls > 0 {
                offenders.push(format!("{column}: {nulls}"));
            }
        }
        let predicate = self
            .columns
            .iter()
            .map(|c| format!("{} IS NULL", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let (failing, samples) = if offenders.is_empty() {
            (0, None)
        } else {
            let found =
                failing_rows(probe, &self.table, self.filter.as_deref(), &predicate).await?;
            (found.count, Some(found.samples))
        };
        Ok(Evaluation {
            passed: offenders.is_empty(),
            observed: if offenders.is_empty() {
                "no NULLs".to_string()
            } else {
                format!("{} with NULLs ({})", rows(failing), offenders.join(", "))
            },
            expected: "no NULLs".to_string(),
            failing_rows: Some(failing),
            samples,
            metrics,
            warning: None,
        })
    }
}
