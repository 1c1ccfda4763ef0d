//! `volume_anomaly`: a table's row count (under `where:`, e.g. today's partition) lies within
//! the band learned from this check's past runs in the run history (`checks/anomaly.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::anomaly::{figures, judge, outcome, Learning};
use super::row_predicate::rows;
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation};
use crate::model::{Figure, RuleError, TableRef, Unit};
use crate::probe::scan::ScanNeeds;
use crate::probe::{first_i64, CheckError, Probe};

pub const KIND: CheckKind = CheckKind {
    name: "volume_anomaly",
    summary: "a table's row count lies within the band learned from the check's past runs \
              (`run --history`)",
    parse,
};

/// The figure each run records, and the band learns from.
const FIGURE: &str = "row_count";

#[derive(Debug)]
struct VolumeAnomaly {
    table: TableRef,
    filter: Option<String>,
    learning: Learning,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let filter = reader.filter("where")?;
    let learning = Learning::parse(reader)?;
    Ok(Arc::new(VolumeAnomaly {
        table,
        filter,
        learning,
    }))
}

impl VolumeAnomaly {
    fn needs(&self) -> ScanNeeds {
        ScanNeeds::new(&self.table, self.filter.as_deref())
            .expression("row_count", "count(*)".into())
    }
}

#[async_trait]
impl Check for VolumeAnomaly {
    fn default_name(&self) -> String {
        name_with_filter(
            format!("volume_anomaly {}", self.table),
            self.filter.as_deref(),
        )
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    fn scan(&self) -> Option<ScanNeeds> {
        Some(self.needs())
    }

    fn learns_from_past(&self) -> bool {
        true
    }

    fn figure(&self) -> Option<Figure> {
        Some(Figure::new(FIGURE, "row count", Unit::Rows))
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let past = probe.past_runs()?;
        let result = probe.scan(&self.needs()).await?;
        let count = first_i64(&result, &self.table.source, "row_count")?;
        let mut metrics = serde_json::Map::new();
        metrics.insert(FIGURE.into(), json!(count));
        let judged = judge(
            &figures(past, FIGURE),
            count as f64,
            probe.now(),
            &self.learning,
        );
        let (passed, expected, warning) = outcome(
            &judged,
            &self.learning,
            |n| rows(n.max(0.0).round() as u64),
            &mut metrics,
        );
        Ok(Evaluation {
            passed,
            observed: rows(count as u64),
            expected,
            metrics,
            warning,
            ..Evaluation::default()
        })
    }
}
