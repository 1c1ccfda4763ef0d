//! `table_match`: two tables hold exactly the same rows, compared by key over chosen columns,
//! across engines (see `reconcile::diff` for how, `reconcile::canonical` for what "equal" means).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::pairing::{find_column, ColumnPairing};
use super::{Check, CheckError, CheckKind, CheckReader, Evaluation, Probe, TableRef};
use crate::reconcile::canonical;
use crate::reconcile::diff::{self, Plan, Segmenter, Side, SEGMENTS};
use crate::rules::RuleError;
use crate::sources::{Column, Rows};

pub const KIND: CheckKind = CheckKind {
    name: "table_match",
    summary: "two tables hold the same rows by key, value for value, across engines",
    parse,
};

#[derive(Debug)]
struct TableMatch {
    left: TableRef,
    right: TableRef,
    key: Option<Vec<String>>,
    pairing: ColumnPairing,
    left_filter: Option<String>,
    right_filter: Option<String>,
    samples: usize,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let left = reader.table("left")?;
    let right = reader.table("right")?;
    let list =
        |reader: &mut CheckReader, key: &'static str| -> Result<Option<Vec<String>>, RuleError> {
            Ok(reader
                .map
                .string_list(key)?
                .map(|l| l.into_iter().map(|c| c.value).collect()))
        };
    let key = list(reader, "key")?;
    let pairing = ColumnPairing::read(reader, true)?;
    let left_filter = reader.filter("left_where")?;
    let right_filter = reader.filter("right_where")?;
    let samples = reader
        .map
        .u64("samples")?
        .map(|s| s.value as usize)
        .unwrap_or(super::SAMPLE_LIMIT);
    Ok(Arc::new(TableMatch {
        left,
        right,
        key,
        pairing,
        left_filter,
        right_filter,
        samples,
    }))
}

impl TableMatch {
    /// Resolves key and columns against both schemas into a comparison plan.
    async fn plan(&self, probe: &Probe) -> Result<(Plan, Vec<String>), CheckError> {
        let left_source = probe.source(&self.left.source)?.clone();
        let right_source = probe.source(&self.right.source)?.clone();
        let (left_columns, right_columns) =
            tokio::try_join!(probe.columns(&self.left), probe.columns(&self.right))?;
        for (source, table) in [(&left_source, &self.left), (&right_source, &self.right)] {
            if let Some(caveat) = source.caveat(&table.table).await? {
                return Err(CheckError::Unexpected(format!(
                    "cannot reconcile {table}: {caveat}"
                )));
            }
        }
        let key = match &self.key {
            Some(key) => key.clone(),
            None => match left_source.primary_key(&self.left.table).await? {
                Some(key) => key,
                None => right_source.primary_key(&self.right.table).await?.ok_or_else(|| {
                    CheckError::Unexpected(format!(
                        "no key to match rows on: neither {} nor {} has a primary key lakecheck can read; name one with `key: [...]`",
                        self.left, self.right
                    ))
                })?,
            },
        };
        let wanted = self.pairing.wanted(&left_columns);
        let mut names: Vec<String> = key.clone();
        names.extend(
            wanted
                .into_iter()
                .filter(|n| !key.iter().any(|k| k.eq_ignore_ascii_case(n))),
        );
        let mut pairs = Vec::new();
        let mut ignored = Vec::new();
        let mut problems = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let required = index < key.len() || self.pairing.columns.is_some();
            let left = find_column(&left_columns, name);
            let right = find_column(&right_columns, self.pairing.right_name(name));
            match (left, right) {
                (Some(l), Some(r)) => pairs.push((l, r)),
                (l, _) if required => problems.push(format!(
                    "`{name}` is not a column of {}",
                    if l.is_none() { &self.left } else { &self.right }
                )),
                _ => ignored.push(name.clone()),
            }
        }
        for column in &right_columns {
            let paired = pairs.iter().any(|(_, r)| r.name == column.name);
            if !paired && !self.pairing.excluded(&column.name) {
                ignored.push(column.name.clone());
            }
        }
        let mut canons = Vec::new();
        for (l, r) in &pairs {
            match canonical::choose(l, r) {
                Ok(canon) => canons.push(canon),
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            return Err(CheckError::Unexpected(format!(
                "cannot compare {} with {}: {} (exclude such columns or fix the mapping)",
                self.left,
                self.right,
                problems.join("; ")
            )));
        }
        let (left_cols, right_cols): (Vec<Column>, Vec<Column>) = pairs.into_iter().unzip();
        Ok((
            Plan {
                left: Side {
                    table: self.left.clone(),
                    source: left_source,
                    filter: self.left_filter.clone(),
                    columns: left_cols,
                },
                right: Side {
                    table: self.right.clone(),
                    source: right_source,
                    filter: self.right_filter.clone(),
                    columns: right_cols,
                },
                canons,
                key_len: key.len(),
                samples: self.samples,
                segmenter: Segmenter::KeyHash,
            },
            ignored,
        ))
    }
}

#[async_trait]
impl Check for TableMatch {
    fn default_name(&self) -> String {
        format!("table_match {} = {}", self.left, self.right)
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.left.clone(), self.right.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        let (mut plan, ignored) = self.plan(probe).await?;
        plan.choose_segmenter(probe).await?;
        let outcome = diff::compare(probe, &plan).await?;
        let passed = outcome.missing == 0
            && outcome.extra == 0
            && outcome.changed == 0
            && outcome.duplicate_keys == 0
            && outcome.left_rows == outcome.right_rows;
        let mut metrics = serde_json::Map::new();
        metrics.insert("left_rows".into(), json!(outcome.left_rows));
        metrics.insert("right_rows".into(), json!(outcome.right_rows));
        metrics.insert("matched".into(), json!(outcome.matched));
        metrics.insert("missing_in_target".into(), json!(outcome.missing));
        metrics.insert("extra_in_target".into(), json!(outcome.extra));
        metrics.insert("changed".into(), json!(outcome.changed));
        metrics.insert("duplicate_keys".into(), json!(outcome.duplicate_keys));
        metrics.insert("missing_keys".into(), json!(outcome.missing_keys));
        metrics.insert("extra_keys".into(), json!(outcome.extra_keys));
        metrics.insert("changed_keys".into(), json!(outcome.changed_keys));
        metrics.insert(
            "duplicate_key_samples".into(),
            json!(outcome.duplicate_samples),
        );
        metrics.insert(
            "key".into(),
            json!(plan.left.columns[..plan.key_len]
                .iter()
                .map(|c| &c.name)
                .collect::<Vec<_>>()),
        );
        metrics.insert(
            "compared_columns".into(),
            json!(plan
                .left
                .columns
                .iter()
                .zip(&plan.canons)
                .map(|(c, k)| format!("{} ({})", c.name, k.name()))
                .collect::<Vec<_>>()),
        );
        metrics.insert("ignored_columns".into(), json!(ignored));
        metrics.insert("segments".into(), json!(SEGMENTS));
        metrics.insert(
            "segmented_by".into(),
            json!(match plan.segmenter {
                Segmenter::KeyRange { .. } => "key range",
                Segmenter::KeyHash => "key hash",
            }),
        );
        metrics.insert(
            "differing_segments".into(),
            json!(outcome.differing_segments),
        );

        let mut rows = Vec::new();
        for key in &outcome.missing_keys {
            rows.push(vec![
                Some("missing in target".into()),
                Some(key.clone()),
                None,
                None,
                None,
            ]);
        }
        for key in &outcome.extra_keys {
            rows.push(vec![
                Some("extra in target".into()),
                Some(key.clone()),
                None,
                None,
                None,
            ]);
        }
        for (key, column, left, right) in &outcome.changed_values {
            rows.push(vec![
                Some("changed".into()),
                Some(key.clone()),
                Some(column.clone()),
                left.clone(),
                right.clone(),
            ]);
        }
        for key in &outcome.duplicate_samples {
            rows.push(vec![
                Some("duplicate key".into()),
                Some(key.clone()),
                None,
                None,
                None,
            ]);
        }
        let samples = (!rows.is_empty()).then(|| Rows {
            columns: vec![
                "difference".into(),
                "key".into(),
                "column".into(),
                self.left.to_string(),
                self.right.to_string(),
            ],
            rows,
        });
        let mut observed = format!(
            "{} rows compared: {} matched, {} missing in target, {} extra in target, {} changed",
            outcome.left_rows, outcome.matched, outcome.missing, outcome.extra, outcome.changed
        );
        if outcome.duplicate_keys > 0 {
            observed.push_str(&format!(", {} duplicate keys", outcome.duplicate_keys));
        }
        Ok(Evaluation {
            passed,
            observed,
            expected: format!(
                "every row of {} in {} with equal values",
                self.left, self.right
            ),
            failing_rows: Some(
                outcome.missing + outcome.extra + outcome.changed + outcome.duplicate_keys,
            ),
            samples,
            metrics,
        })
    }
}
