//! `accepted_values`: a column only holds values from a list (NULLs are left to `not_null`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::row_predicate::{count_then_sample, rows};
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation, SAMPLE_LIMIT};
use crate::model::sql::quote_ident;
use crate::model::TableRef;
use crate::model::{Literal, RuleError};
use crate::probe::{CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "accepted_values",
    summary: "a column holds only the listed values (NULLs are ignored)",
    parse,
};

#[derive(Debug)]
struct AcceptedValues {
    table: TableRef,
    column: String,
    values: Vec<Literal>,
    filter: Option<String>,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let column = reader.map.required_string("column", "status")?.value;
    let values = reader
        .map
        .literal_list("values", "[NEW, PAID, SHIPPED]")?
        .into_iter()
        .map(|v| v.value)
        .collect();
    let filter = reader.filter("where")?;
    Ok(Arc::new(AcceptedValues {
        table,
        column,
        values,
        filter,
    }))
}

#[async_trait]
impl Check for AcceptedValues {
    fn default_name(&self) -> String {
        name_with_filter(
            format!("accepted_values {}.{}", self.table, self.column),
            self.filter.as_deref(),
        )
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let from = probe.from_clause(&self.table, None)?;
        let column = quote_ident(&self.column);
        let list = self
            .values
            .iter()
            .map(Literal::to_sql)
            .collect::<Vec<_>>()
            .join(", ");
        let mut condition = format!("{column} IS NOT NULL AND {column} NOT IN ({list})");
        if let Some(filter) = &self.filter {
            condition = format!("({filter}) AND {condition}");
        }
        let found = count_then_sample(
            probe,
            &self.table.source,
            format!("SELECT count(*) AS failing_rows FROM {from} WHERE {condition}"),
            format!(
                "SELECT {column} AS unexpected_value, count(*) AS row_count FROM {from} WHERE {condition} \
                 GROUP BY {column} ORDER BY count(*) DESC, {column} LIMIT {SAMPLE_LIMIT}"
            ),
        )
        .await?;
        let failing = found.count;
        let samples = (failing > 0).then_some(found.samples);
        let mut metrics = serde_json::Map::new();
        metrics.insert("failing_rows".into(), json!(failing));
        let shown = self
            .values
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Evaluation {
            passed: failing == 0,
            observed: if failing == 0 {
                "only accepted values".to_string()
            } else {
                format!("{} with other values", rows(failing))
            },
            expected: format!("{} in [{shown}]", self.column),
            failing_rows: Some(failing),
            samples,
            metrics,
            warning: None,
        })
    }
}
