//! `range`: a column's values lie within inclusive bounds (NULLs are left to `not_null`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::row_predicate::{counted_failing_rows, rows, FAILING_ROWS};
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation};
use crate::model::sql::quote_ident;
use crate::model::TableRef;
use crate::model::{Literal, RuleError};
use crate::probe::scan::ScanNeeds;
use crate::probe::{CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "range",
    summary: "a column's values lie between min and max, inclusive (NULLs are ignored)",
    parse,
};

#[derive(Debug)]
struct Range {
    table: TableRef,
    column: String,
    min: Option<Literal>,
    max: Option<Literal>,
    filter: Option<String>,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let column = reader.map.required_string("column", "unit_price")?.value;
    let min = reader.map.literal("min")?.map(|m| m.value);
    let max = reader.map.literal("max")?.map(|m| m.value);
    if min.is_none() && max.is_none() {
        return Err(RuleError::new(
            reader.map.location(),
            format!("{} needs `min`, `max` or both", reader.what()),
        )
        .with_help(
            "e.g. `min: 0` and `max: 10000`; dates and text work too: `min: \"2020-01-01\"`",
        ));
    }
    let filter = reader.filter("where")?;
    Ok(Arc::new(Range {
        table,
        column,
        min,
        max,
        filter,
    }))
}

impl Range {
    fn out_of_range(&self) -> String {
        let column = quote_ident(&self.column);
        let mut parts = Vec::new();
        if let Some(min) = &self.min {
            parts.push(format!("{column} < {}", min.to_sql()));
        }
        if let Some(max) = &self.max {
            parts.push(format!("{column} > {}", max.to_sql()));
        }
        parts.join(" OR ")
    }

    /// The observed span and the rows out of range, in one pass.
    fn needs(&self) -> ScanNeeds {
        let column = quote_ident(&self.column);
        ScanNeeds::new(&self.table, self.filter.as_deref())
            .expression("observed_min", format!("min({column})"))
            .expression("observed_max", format!("max({column})"))
            .count_where(FAILING_ROWS, self.out_of_range())
    }

    fn expected(&self) -> String {
        match (&self.min, &self.max) {
            (Some(min), Some(max)) => format!("{min} <= {} <= {max}", self.column),
            (Some(min), None) => format!("{} >= {min}", self.column),
            (None, Some(max)) => format!("{} <= {max}", self.column),
            (None, None) => String::new(),
        }
    }
}

#[async_trait]
impl Check for Range {
    fn default_name(&self) -> String {
        name_with_filter(
            format!("range {}.{}", self.table, self.column),
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
        let stats = probe.scan(&self.needs()).await?;
        let observed_min = stats.first("observed_min").map(str::to_string);
        let observed_max = stats.first("observed_max").map(str::to_string);
        let found = counted_failing_rows(
            probe,
            &stats,
            &self.table,
            self.filter.as_deref(),
            &self.out_of_range(),
        )
        .await?;
        let mut metrics = serde_json::Map::new();
        metrics.insert("observed_min".into(), json!(observed_min));
        metrics.insert("observed_max".into(), json!(observed_max));
        metrics.insert("failing_rows".into(), json!(found.count));
        let span = match (&observed_min, &observed_max) {
            (Some(min), Some(max)) => format!("values from {min} to {max}"),
            _ => "no non-NULL values".to_string(),
        };
        Ok(Evaluation {
            passed: found.count == 0,
            observed: if found.count == 0 {
                span
            } else {
                format!("{} out of range ({span})", rows(found.count))
            },
            expected: self.expected(),
            failing_rows: Some(found.count),
            metrics,
            ..Evaluation::default()
        }
        .with_failing_rows(probe, found.rows))
    }
}
