//! `row_count`: a table holds a number of rows within bounds.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::row_predicate::rows;
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation};
use crate::model::TableRef;
use crate::model::{Figure, RuleError, Unit};
use crate::probe::scan::ScanNeeds;
use crate::probe::{first_i64, CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "row_count",
    summary: "a table's row count is within min/max or equals a number",
    parse,
};

#[derive(Debug)]
struct RowCount {
    table: TableRef,
    filter: Option<String>,
    min: Option<u64>,
    max: Option<u64>,
    equals: Option<u64>,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let filter = reader.filter("where")?;
    let min = reader.map.u64("min")?.map(|v| v.value);
    let max = reader.map.u64("max")?.map(|v| v.value);
    let equals = reader.map.u64("equals")?;
    if let Some(eq) = &equals {
        if min.is_some() || max.is_some() {
            return Err(RuleError::new(
                eq.location.clone(),
                format!("{} sets `equals` together with `min`/`max`", reader.what()),
            )
            .with_help("use either `equals: N` or `min:`/`max:`"));
        }
    }
    if equals.is_none() && min.is_none() && max.is_none() {
        return Err(RuleError::new(
            reader.map.location(),
            format!("{} needs a bound", reader.what()),
        )
        .with_help("add `min: 1`, `max: N` or `equals: N`"));
    }
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(RuleError::new(
                reader.map.location_of("min"),
                format!(
                    "{}: `min` ({min}) is greater than `max` ({max})",
                    reader.what()
                ),
            ));
        }
    }
    Ok(Arc::new(RowCount {
        table,
        filter,
        min,
        max,
        equals: equals.map(|e| e.value),
    }))
}

impl RowCount {
    fn needs(&self) -> ScanNeeds {
        ScanNeeds::new(&self.table, self.filter.as_deref())
            .expression("row_count", "count(*)".into())
    }

    fn expected(&self) -> String {
        match (self.equals, self.min, self.max) {
            (Some(n), _, _) => format!("exactly {}", rows(n)),
            (None, Some(min), Some(max)) => format!("between {min} and {max} rows"),
            (None, Some(min), None) => format!("at least {}", rows(min)),
            (None, None, Some(max)) => format!("at most {}", rows(max)),
            (None, None, None) => "any number of rows".to_string(),
        }
    }
}

#[async_trait]
impl Check for RowCount {
    fn default_name(&self) -> String {
        name_with_filter(format!("row_count {}", self.table), self.filter.as_deref())
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    fn scan(&self) -> Option<ScanNeeds> {
        Some(self.needs())
    }

    fn figure(&self) -> Option<Figure> {
        let bound = |n: Option<u64>| n.map(|n| n as f64);
        Some(
            Figure::new("row_count", "row count", Unit::Rows)
                .limit("min", bound(self.min))
                .limit("max", bound(self.max))
                .limit("equals", bound(self.equals)),
        )
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let result = probe.scan(&self.needs()).await?;
        let count = first_i64(&result, &self.table.source, "row_count")? as u64;
        let passed = self.equals.is_none_or(|n| count == n)
            && self.min.is_none_or(|min| count >= min)
            && self.max.is_none_or(|max| count <= max);
        let mut metrics = serde_json::Map::new();
        metrics.insert("row_count".into(), json!(count));
        Ok(Evaluation {
            passed,
            observed: rows(count),
            expected: self.expected(),
            metrics,
            ..Evaluation::default()
        })
    }
}
