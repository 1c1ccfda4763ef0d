//! Failures files (`run --failures-dir DIR`): for each check that did not pass and kept failing
//! rows, one Parquet file of them (up to `--failures-limit`), named after the check, for an
//! engineer to load into pandas, DuckDB or Spark. Not a [`super::ReportFormat`]: it writes a
//! file per check rather than one rendering of the run.
//!
//! Every column is text (nullable UTF-8): failing rows reach lakecheck as text from every
//! engine, exact (numeric stays numeric, no float rounding). Each file's key-value metadata
//! names the check (`lakecheck.check`, `lakecheck.kind`, `lakecheck.rule_file`,
//! `lakecheck.status`, `lakecheck.tables`, `lakecheck.failing_rows`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;

use crate::model::Rows;
use crate::results::{CheckResult, RunReport, Status};

/// Failing rows kept per check when `--failures-dir` is given without `--failures-limit`.
pub const DEFAULT_FAILURES_LIMIT: usize = 1000;

/// Where a run writes its failures files, and how many failing rows each check keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailuresDir {
    pub dir: PathBuf,
    pub limit: usize,
}

/// Why a failures file could not be written. Each makes the run exit 2 and is listed in every
/// report (`RunReport::report_errors`).
#[derive(Debug, thiserror::Error)]
pub enum FailuresError {
    /// The folder could not be created.
    #[error("cannot write failing rows to {}: {error}", .dir.display())]
    Folder {
        dir: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// One check's file could not be created or written.
    #[error("cannot write the failing rows of check `{check}` to {}: {cause}", .path.display())]
    File {
        check: String,
        path: PathBuf,
        cause: String,
    },
}

/// Writes a file for every check of `report` that failed or warned with failing rows kept.
/// Returns the files written and the errors, one per file not written (or one for the folder).
pub fn write_all(report: &RunReport, dir: &Path) -> (Vec<PathBuf>, Vec<FailuresError>) {
    let results: Vec<&CheckResult> = report.results().collect();
    let failing: Vec<(&CheckResult, String)> = results
        .iter()
        .copied()
        .zip(file_names(&results))
        .filter(|(result, _)| matches!(result.status, Status::Fail | Status::Warn))
        .filter_map(|(result, name)| {
            result
                .failures
                .as_ref()
                .filter(|rows| !rows.rows.is_empty())
                .map(|_| (result, name))
        })
        .collect();
    if failing.is_empty() {
        return (Vec::new(), Vec::new());
    }
    if let Err(error) = std::fs::create_dir_all(dir) {
        let dir = dir.to_path_buf();
        return (Vec::new(), vec![FailuresError::Folder { dir, error }]);
    }
    let mut written = Vec::new();
    let mut errors = Vec::new();
    for (result, name) in failing {
        let path = dir.join(name);
        let rows = result
            .failures
            .as_ref()
            .expect("filtered on failures above");
        match write_file(&path, rows, &metadata(result)) {
            Ok(()) => written.push(path),
            Err(cause) => errors.push(FailuresError::File {
                check: result.name.clone(),
                path,
                cause,
            }),
        }
    }
    (written, errors)
}

/// The file name of each result, in order: the check's name made safe
/// ([`safe_file_name`]); where two checks of the run would share one (compared ignoring
/// case, for case-insensitive file systems), each is prefixed with its rule file's stem and
/// `__`, and any still shared gets `-2`, `-3`, ... in run order. Decided over every check of
/// the run, failing or not, so that a check's file keeps its name from run to run.
pub fn file_names(results: &[&CheckResult]) -> Vec<String> {
    let bases: Vec<String> = results.iter().map(|r| safe_file_name(&r.name)).collect();
    let mut uses: HashMap<String, usize> = HashMap::new();
    for base in &bases {
        *uses.entry(base.to_lowercase()).or_default() += 1;
    }
    let mut taken: HashMap<String, usize> = HashMap::new();
    results
        .iter()
        .zip(bases)
        .map(|(result, base)| {
            let name = if uses[&base.to_lowercase()] > 1 {
                let stem = Path::new(&result.rule_file)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{}__{base}", safe_file_name(&stem))
            } else {
                base
            };
            let seen = taken.entry(name.to_lowercase()).or_default();
            *seen += 1;
            match *seen {
                1 => format!("{name}.parquet"),
                n => format!("{name}-{n}.parquet"),
            }
        })
        .collect()
}

/// Longest name kept of a check, in bytes, well within file systems' 255.
const MOST_NAME_BYTES: usize = 120;

/// `name` as a file name on any file system: ASCII letters, digits, `-`, `_` and `.` kept,
/// every run of other characters one `_`, no leading or trailing `_` or `.`, at most
/// [`MOST_NAME_BYTES`]; `check` when nothing is left.
pub fn safe_file_name(name: &str) -> String {
    let mut safe = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            safe.push(c);
        } else if !safe.ends_with('_') {
            safe.push('_');
        }
    }
    let mut safe: String = safe
        .trim_matches(['_', '.'])
        .chars()
        .take(MOST_NAME_BYTES)
        .collect();
    safe.truncate(safe.trim_end_matches(['_', '.']).len());
    if safe.is_empty() {
        "check".into()
    } else {
        safe
    }
}

/// What a file says of its check, as Parquet key-value metadata.
fn metadata(result: &CheckResult) -> Vec<KeyValue> {
    let mut pairs = vec![
        ("lakecheck.check", result.name.clone()),
        ("lakecheck.kind", result.kind.clone()),
        ("lakecheck.rule_file", result.rule_file.clone()),
        ("lakecheck.status", result.status.as_str().to_string()),
        ("lakecheck.tables", result.tables.join(", ")),
    ];
    if let Some(failing) = result.failing_rows {
        pairs.push(("lakecheck.failing_rows", failing.to_string()));
    }
    pairs
        .into_iter()
        .map(|(key, value)| KeyValue::new(key.to_string(), value))
        .collect()
}

/// Writes `rows` to `path` as one Parquet row group of nullable text columns.
fn write_file(path: &Path, rows: &Rows, metadata: &[KeyValue]) -> Result<(), String> {
    let fields: Vec<Field> = distinct_names(&rows.columns)
        .into_iter()
        .map(|name| Field::new(name, DataType::Utf8, true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let columns: Vec<ArrayRef> = (0..rows.columns.len())
        .map(|i| {
            let values = rows.rows.iter().map(|row| row.get(i).cloned().flatten());
            Arc::new(values.collect::<StringArray>()) as ArrayRef
        })
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows.rows.len()));
    let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)
        .map_err(|e| e.to_string())?;
    let properties = WriterProperties::builder()
        .set_key_value_metadata(Some(metadata.to_vec()))
        .build();
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(properties)).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

/// Column names made distinct for readers that refuse repeats (a `sql` check's
/// `SELECT a.id, b.id`): a repeated name gets `_2`, `_3`, ...
fn distinct_names(columns: &[String]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    columns
        .iter()
        .map(|name| {
            let count = seen.entry(name.as_str()).or_default();
            *count += 1;
            match *count {
                1 => name.clone(),
                n => format!("{name}_{n}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::plain("orders_not_null", "orders_not_null")]
    #[case::spaces_and_punctuation(
        "not_null pg.orders (email, phone)",
        "not_null_pg.orders_email_phone"
    )]
    #[case::path_separators("../../etc/passwd", "etc_passwd")]
    #[case::unicode("clientes único ✓", "clientes_nico")]
    #[case::nothing_left("✓✓", "check")]
    #[case::dots_only("..", "check")]
    fn names_become_safe_file_names(#[case] name: &str, #[case] expected: &str) {
        assert_eq!(safe_file_name(name), expected);
    }

    #[test]
    fn a_long_name_is_cut_without_a_trailing_separator() {
        let name = format!("{}_{}", "a".repeat(MOST_NAME_BYTES - 1), "b".repeat(10));
        assert_eq!(safe_file_name(&name), "a".repeat(MOST_NAME_BYTES - 1));
    }

    fn result(name: &str, rule_file: &str) -> CheckResult {
        CheckResult::new(name, "not_null", rule_file, 1, chrono::Utc::now())
    }

    #[test]
    fn shared_names_are_told_apart_by_rule_file_then_by_number() {
        let results = [
            result("orders", "rules/shop.yml"),
            result("orders", "rules/lake.yml"),
            result("Orders!", "rules/lake.yml"),
            result("customers", "rules/shop.yml"),
        ];
        let refs: Vec<&CheckResult> = results.iter().collect();
        assert_eq!(
            file_names(&refs),
            [
                "shop__orders.parquet",
                "lake__orders.parquet",
                "lake__Orders-2.parquet",
                "customers.parquet"
            ]
        );
    }

    #[test]
    fn repeated_columns_are_numbered() {
        let columns = ["id", "id", "name", "id"].map(String::from);
        assert_eq!(distinct_names(&columns), ["id", "id_2", "name", "id_3"]);
    }
}
