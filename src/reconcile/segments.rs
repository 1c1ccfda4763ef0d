//! Segment I/O: sends a reconcile's SQL (`segment_sql`) through the [`Probe`] and reads the
//! answers into key bounds, checksums, rows by key (of segments, or of keys a settle re-reads)
//! and counts of unpairable rows. What the
//! answers mean is decided in `matching`.

use std::collections::BTreeMap;

use super::matching::{
    Changed, Checksum, Difference, DifferingKey, KeyedRow, KeyedRows, Unpairable,
};
use super::plan::{Plan, Side};
use crate::model::canon;
use crate::model::Rows;
use crate::probe::{CheckError, Probe};

impl Side {
    /// The smallest and largest key, for key-range segments; `None` when the side is empty
    /// (or its bounds are not integers).
    pub(super) async fn key_bounds(&self, probe: &Probe) -> Result<Option<(i64, i64)>, CheckError> {
        let rows = probe
            .query(&self.table.source, self.key_bounds_sql())
            .await?;
        let value = |name: &str| rows.first(name).and_then(|v| v.parse::<i64>().ok());
        Ok(value("lo").zip(value("hi")))
    }

    /// Per-segment checksums, in parallel over disjoint segment ranges where the source
    /// gains from it.
    pub(super) async fn checksums(
        &self,
        probe: &Probe,
        plan: &Plan,
    ) -> Result<BTreeMap<i64, Checksum>, CheckError> {
        let queries = self.checksums_queries(plan, self.source.parallel_queries().await);
        let answers = futures::future::try_join_all(
            queries
                .into_iter()
                .map(|sql| probe.query(&self.table.source, sql)),
        )
        .await?;
        let mut segments = BTreeMap::new();
        for rows in answers {
            for row in &rows.rows {
                let number = |i: usize| self.number(row, i, "segment checksum");
                segments.insert(number(0)?, (number(1)?, number(2)?, number(3)?));
            }
        }
        Ok(segments)
    }

    /// The rows of the given segments by canonical key.
    pub(super) async fn keyed(
        &self,
        probe: &Probe,
        plan: &Plan,
        segments: &[i64],
    ) -> Result<KeyedRows, CheckError> {
        self.keyed_rows(probe, plan, self.rows_in_segments_sql(plan, segments))
            .await
    }

    /// The rows of the given keys (canonical key fields, key hash) by canonical key, read
    /// again while the sides settle. Rows of other keys that share a key hash are left out.
    pub(super) async fn rows_of_keys(
        &self,
        probe: &Probe,
        plan: &Plan,
        keys: &[(Vec<String>, i64)],
    ) -> Result<KeyedRows, CheckError> {
        let mut keyed = self
            .keyed_rows(probe, plan, self.rows_of_keys_sql(plan, keys))
            .await?;
        keyed.retain(|key, _| keys.iter().any(|(k, _)| k == key));
        Ok(keyed)
    }

    /// Reads the answer to `sql` (key fields, row hash, key hash) as rows by canonical key.
    async fn keyed_rows(
        &self,
        probe: &Probe,
        plan: &Plan,
        sql: String,
    ) -> Result<KeyedRows, CheckError> {
        let rows = probe.query(&self.table.source, sql).await?;
        let n = plan.key_len;
        let mut keyed = KeyedRows::with_capacity(rows.rows.len());
        for row in rows.rows {
            let (hash, key_hash) = (
                self.number(&row, n, "row hash")?,
                self.number(&row, n + 1, "key hash")?,
            );
            let display = self.key_display(plan, &row[..n]);
            let key = row[..n]
                .iter()
                .map(|f| f.clone().unwrap_or_default())
                .collect();
            keyed.entry(key).or_default().push(KeyedRow {
                display,
                hash,
                key_hash,
            });
        }
        Ok(keyed)
    }

    /// Counts and samples this side's rows with a NULL key and, when `duplicates`, its
    /// repeated keys.
    pub(super) async fn unpairable(
        &self,
        probe: &Probe,
        plan: &Plan,
        duplicates: bool,
    ) -> Result<Unpairable, CheckError> {
        let mut found = Unpairable::default();
        if self.key_enforced {
            return Ok(found);
        }
        let nulls = probe.query(&self.table.source, self.null_keys_sql(plan));
        let repeated = async {
            match duplicates {
                true => probe
                    .query(&self.table.source, self.duplicate_keys_sql(plan))
                    .await
                    .map(Some),
                false => Ok(None),
            }
        };
        let (nulls, repeated) = tokio::try_join!(nulls, repeated)?;
        let n = plan.canons.len();
        let k = plan.key_len;
        for row in nulls.rows.iter().take(plan.samples) {
            let display = self.fields_display(plan, row, n);
            found.keys.push(DifferingKey {
                difference: Difference::NullKey,
                display: display.clone(),
                fields: row[..k].to_vec(),
            });
            found.null_key_samples.push(display);
        }
        found.null_keys = match nulls.rows.first() {
            Some(row) => self.number(row, n, "NULL key count")? as u64,
            None => 0,
        };
        if let Some(repeated) = repeated {
            for row in repeated.rows.iter().take(plan.samples) {
                let display = self.key_display(plan, &row[..k]);
                found.duplicate_samples.push(format!(
                    "{display} ({} rows in {})",
                    self.number(row, k, "row count")?,
                    self.table
                ));
                found.keys.push(DifferingKey {
                    difference: Difference::DuplicateKey,
                    display,
                    fields: row[..k].to_vec(),
                });
            }
            found.duplicate_keys = match repeated.rows.first() {
                Some(row) => self.number(row, k + 1, "duplicate key count")? as u64,
                None => 0,
            };
        }
        Ok(found)
    }

    /// `order_id=7, part_id=3` from canonical key fields.
    fn key_display(&self, plan: &Plan, fields: &[Option<String>]) -> String {
        self.fields_display(plan, fields, plan.key_len)
    }

    /// `name=value` of the first `count` compared columns from canonical fields, NULL (and a
    /// missing field) as `NULL`.
    fn fields_display(&self, plan: &Plan, fields: &[Option<String>], count: usize) -> String {
        (0..count)
            .map(|i| {
                let value = fields
                    .get(i)
                    .cloned()
                    .flatten()
                    .and_then(|f| canon::display(plan.canons[i], &f))
                    .unwrap_or_else(|| "NULL".into());
                format!("{}={value}", self.columns[i].name)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The integer in column `i` of a row this side's source answered (NULL reads as 0).
    fn number(&self, row: &[Option<String>], i: usize, what: &str) -> Result<i64, CheckError> {
        number(&self.table.source, row, i, what)
    }
}

/// The integer in column `i` of a row `source` answered; NULL (a sum over no rows) reads as 0.
fn number(source: &str, row: &[Option<String>], i: usize, what: &str) -> Result<i64, CheckError> {
    let text = row.get(i).cloned().flatten().unwrap_or_else(|| "0".into());
    text.parse::<i64>()
        .map_err(|e| CheckError::unexpected_answer(source, format!("bad {what} `{text}`: {e}")))
}

/// The canonical values of the sampled changed rows on both sides.
pub(super) async fn changed_values(
    probe: &Probe,
    plan: &Plan,
    changed: &[Changed],
) -> Result<(Rows, Rows), CheckError> {
    let keys: Vec<(Vec<String>, i64)> = changed
        .iter()
        .map(|c| (c.key.clone(), c.key_hash))
        .collect();
    Ok(tokio::try_join!(
        probe.query(&plan.left.table.source, plan.left.values_sql(plan, &keys)),
        probe.query(&plan.right.table.source, plan.right.values_sql(plan, &keys))
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn row(fields: &[Option<&str>]) -> Vec<Option<String>> {
        fields.iter().map(|f| f.map(str::to_string)).collect()
    }

    #[rstest]
    #[case::digits(&[Some("42")], 42)]
    #[case::negative(&[Some("-7")], -7)]
    #[case::null_is_zero(&[None], 0)]
    #[case::missing_is_zero(&[], 0)]
    fn answers_read_as_numbers(#[case] fields: &[Option<&str>], #[case] expected: i64) {
        assert_eq!(
            number("pg", &row(fields), 0, "row count").unwrap(),
            expected
        );
    }

    #[test]
    fn a_bad_number_is_an_unexpected_answer_of_its_source() {
        let error = number("lake", &row(&[Some("1.5")]), 0, "row hash").unwrap_err();
        match &error {
            CheckError::UnexpectedAnswer {
                source_name,
                reason,
            } => {
                assert_eq!(source_name, "lake");
                assert!(reason.starts_with("bad row hash `1.5`: "), "{reason}");
            }
            other => panic!("expected an unexpected answer, got {other:?}"),
        }
        assert!(
            error
                .to_string()
                .starts_with("unexpected answer from source `lake`: bad row hash `1.5`: "),
            "{error}"
        );
    }
}
