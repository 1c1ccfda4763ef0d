//! `not_null`: the named columns hold no NULLs.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::row_predicate::{counted_failing_rows, rows, FAILING_ROWS};
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation};
use crate::model::sql::quote_ident;
use crate::model::RuleError;
use crate::model::TableRef;
use crate::probe::scan::ScanNeeds;
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

impl NotNull {
    /// Rows with a NULL in any of the columns.
    fn any_null(&self) -> String {
        self.columns
            .iter()
            .map(|c| format!("{} IS NULL", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(" OR ")
    }

    /// NULLs per column under positional aliases (which cannot clash with column names), and
    /// the rows holding any, in one pass.
    fn needs(&self) -> ScanNeeds {
        let mut needs = ScanNeeds::new(&self.table, self.filter.as_deref());
        for (i, column) in self.columns.iter().enumerate() {
            needs = needs.expression(
                &format!("null_{i}"),
                format!(
                    "sum(CASE WHEN {} IS NULL THEN 1 ELSE 0 END)",
                    quote_ident(column)
                ),
            );
        }
        needs.count_where(FAILING_ROWS, self.any_null())
    }
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

    fn scan(&self) -> Option<ScanNeeds> {
        Some(self.needs())
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let counts = probe.scan(&self.needs()).await?;
        let mut metrics = serde_json::Map::new();
        let mut offenders = Vec::new();
        for (i, column) in self.columns.iter().enumerate() {
            let nulls = first_i64(&counts, &self.table.source, &format!("null_{i}"))?;
            metrics.insert(format!("nulls.{column}"), json!(nulls));
            if nulls > 0 {
                offenders.push(format!("{column}: {nulls}"));
            }
        }
        let found = counted_failing_rows(
            probe,
            &counts,
            &self.table,
            self.filter.as_deref(),
            &self.any_null(),
        )
        .await?;
        let failing = found.count;
        Ok(Evaluation {
            passed: offenders.is_empty(),
            observed: if offenders.is_empty() {
                "no NULLs".to_string()
            } else {
                format!("{} with NULLs ({})", rows(failing), offenders.join(", "))
            },
            expected: "no NULLs".to_string(),
            failing_rows: Some(failing),
            metrics,
            ..Evaluation::default()
        }
        .with_failing_rows(probe, found.rows))
    }
}
