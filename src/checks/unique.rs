//! `unique`: no two rows share the same value of the named column(s).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{name_with_filter, rows_to_read, Check, CheckKind, CheckReader, Evaluation};
use crate::model::sql::quote_ident;
use crate::model::TableRef;
use crate::model::{Rows, RuleError};
use crate::probe::{first_i64, CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "unique",
    summary: "no two rows share a value of the named column(s); rows with a NULL key are skipped",
    parse,
};

#[derive(Debug)]
struct Unique {
    table: TableRef,
    columns: Vec<String>,
    filter: Option<String>,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    Ok(Arc::new(Unique {
        table: reader.table("table")?,
        columns: reader.columns("columns")?,
        filter: reader.filter("where")?,
    }))
}

#[async_trait]
impl Check for Unique {
    fn default_name(&self) -> String {
        name_with_filter(
            format!("unique {} ({})", self.table, self.columns.join(", ")),
            self.filter.as_deref(),
        )
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let from = probe.from_clause(&self.table, None)?;
        let key: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        let key_list = key.join(", ");
        // NULL keys are not duplicates of each other (as in a UNIQUE constraint); not_null checks them.
        let mut conditions: Vec<String> = key.iter().map(|k| format!("{k} IS NOT NULL")).collect();
        if let Some(filter) = &self.filter {
            conditions.push(format!("({filter})"));
        }
        let groups = format!(
            "SELECT {key_list}, count(*) AS occurrences FROM {from} WHERE {} GROUP BY {key_list} HAVING count(*) > 1",
            conditions.join(" AND ")
        );
        let summary = probe
            .query(
                &self.table.source,
                format!("SELECT count(*) AS duplicate_keys, sum(occurrences) AS duplicate_rows FROM ({groups}) AS duplicates"),
            )
            .await?;
        let source = &self.table.source;
        let duplicate_keys = first_i64(&summary, source, "duplicate_keys")? as u64;
        let duplicate_rows = first_i64(&summary, source, "duplicate_rows")? as u64;
        let duplicates = if duplicate_keys > 0 {
            probe
                .query(
                    &self.table.source,
                    format!(
                        "{groups} ORDER BY count(*) DESC, {key_list} LIMIT {}",
                        rows_to_read(probe)
                    ),
                )
                .await?
        } else {
            Rows::default()
        };
        let mut metrics = serde_json::Map::new();
        metrics.insert("duplicate_keys".into(), json!(duplicate_keys));
        metrics.insert("duplicate_rows".into(), json!(duplicate_rows));
        Ok(Evaluation {
            passed: duplicate_keys == 0,
            observed: if duplicate_keys == 0 {
                "all keys unique".to_string()
            } else {
                format!("{duplicate_keys} duplicated keys over {duplicate_rows} rows")
            },
            expected: format!("each ({}) at most once", self.columns.join(", ")),
            failing_rows: Some(duplicate_rows),
            metrics,
            ..Evaluation::default()
        }
        .with_failing_rows(probe, duplicates))
    }
}
