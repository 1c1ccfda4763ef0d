//! `sql`: a query whose rows are failures; the check passes when it returns none.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::row_predicate::{count_then_sample, rows};
use super::{rows_to_read, Check, CheckKind, CheckReader, Evaluation};
use crate::model::sql::strip_trailing_semicolons;
use crate::model::RuleError;
use crate::model::TableRef;
use crate::probe::{CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "sql",
    summary: "a query returns no rows; each row it returns is a failure",
    parse,
};

#[derive(Debug)]
struct SqlCheck {
    source: String,
    query: String,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    Ok(Arc::new(SqlCheck {
        source: reader.source("source")?,
        query: reader
            .map
            .required_string(
                "query",
                "\"SELECT * FROM orders WHERE shipped_at < ordered_at\"",
            )?
            .value,
    }))
}

#[async_trait]
impl Check for SqlCheck {
    fn default_name(&self) -> String {
        let first_line = self
            .query
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        format!("sql {}: {first_line}", self.source)
    }

    fn tables(&self) -> Vec<TableRef> {
        Vec::new()
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        // Newlines around the user query keep a trailing `-- comment` from eating the wrapper.
        let query = strip_trailing_semicolons(&self.query);
        let found = count_then_sample(
            probe,
            &self.source,
            format!("SELECT count(*) AS failing_rows FROM (\n{query}\n) AS failures"),
            format!(
                "SELECT * FROM (\n{query}\n) AS failures ORDER BY 1 LIMIT {}",
                rows_to_read(probe)
            ),
        )
        .await?;
        let failing = found.count;
        let mut metrics = serde_json::Map::new();
        metrics.insert("failing_rows".into(), json!(failing));
        Ok(Evaluation {
            passed: failing == 0,
            observed: if failing == 0 {
                "no rows returned".to_string()
            } else {
                format!("{} returned", rows(failing))
            },
            expected: "no rows".to_string(),
            failing_rows: Some(failing),
            metrics,
            ..Evaluation::default()
        }
        .with_failing_rows(probe, found.rows))
    }
}
