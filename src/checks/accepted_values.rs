//! `accepted_values`: a column only holds values from a list (NULLs are left to `not_null`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::row_predicate::{counting, rows, FAILING_ROWS};
use super::{name_with_filter, rows_to_read, Check, CheckKind, CheckReader, Evaluation};
use crate::model::sql::quote_ident;
use crate::model::TableRef;
use crate::model::{Literal, Rows, RuleError};
use crate::probe::scan::{within, ScanNeeds};
use crate::probe::{first_i64, CheckError, Probe};

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

impl AcceptedValues {
    /// Rows holding a value off the list (NULLs are `not_null`'s business).
    fn unexpected(&self) -> String {
        let column = quote_ident(&self.column);
        let list = self
            .values
            .iter()
            .map(Literal::to_sql)
            .collect::<Vec<_>>()
            .join(", ");
        format!("{column} IS NOT NULL AND {column} NOT IN ({list})")
    }
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

    fn scan(&self) -> Option<ScanNeeds> {
        Some(counting(
            &self.table,
            self.filter.as_deref(),
            &self.unexpected(),
        ))
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let counted = probe
            .scan(&counting(
                &self.table,
                self.filter.as_deref(),
                &self.unexpected(),
            ))
            .await?;
        let failing = first_i64(&counted, &self.table.source, FAILING_ROWS)? as u64;
        let unexpected = if failing > 0 {
            let from = probe.from_clause(&self.table, None)?;
            let column = quote_ident(&self.column);
            let condition = within(self.filter.as_deref(), &self.unexpected());
            probe
                .query(
                    &self.table.source,
                    format!(
                        "SELECT {column} AS unexpected_value, count(*) AS row_count FROM {from} \
                         WHERE {condition} GROUP BY {column} ORDER BY count(*) DESC, {column} \
                         LIMIT {}",
                        rows_to_read(probe)
                    ),
                )
                .await?
        } else {
            Rows::default()
        };
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
            metrics,
            ..Evaluation::default()
        }
        .with_failing_rows(probe, unexpected))
    }
}
