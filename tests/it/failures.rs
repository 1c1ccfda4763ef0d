//! `run --failures-dir`: each failing check's failing rows as a Parquet file named after it,
//! read back here with the Parquet reader (and pyarrow where the test venv has it).

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::cli::{lakecheck, text};
use crate::harness::{pg_world, venv_python};
use crate::reconcile::scratch_database;

/// `orders` with a NULL `note` in rows 1..=12; `orders_copy` the same, but row 3 missing, a
/// row 21 more, row 5's status changed and row 14's amount and note changed; `orders_loose`
/// (no primary key) the same with row 7 twice and a row with a NULL id.
const SETUP: &str = "
CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2), note text);
INSERT INTO orders SELECT g, 'shipped', g * 1.5, CASE WHEN g <= 12 THEN NULL ELSE 'ok' END
  FROM generate_series(1, 20) g;
CREATE TABLE orders_copy (id int PRIMARY KEY, status text, amount numeric(10,2), note text);
INSERT INTO orders_copy SELECT * FROM orders WHERE id <> 3;
INSERT INTO orders_copy VALUES (21, 'new', 9.99, 'ok');
UPDATE orders_copy SET status = 'lost' WHERE id = 5;
UPDATE orders_copy SET amount = 99, note = 'late' WHERE id = 14;
CREATE TABLE orders_loose AS SELECT * FROM orders;
INSERT INTO orders_loose SELECT * FROM orders WHERE id = 7;
INSERT INTO orders_loose VALUES (NULL, 'lost', 1, 'no key');
";

const CHECKS: &str = "
  - { name: 'orders: note not null', type: not_null, table: pg.orders, columns: [note] }
  - { name: copy matches, type: table_match, left: pg.orders, right: pg.orders_copy }
  - { name: loose copy, type: table_match, left: pg.orders, right: pg.orders_loose, key: [id] }
  - { name: amounts positive, type: condition, table: pg.orders, expression: amount > 0 }
";

/// A folder with `rules.yml` checking a database of its own.
async fn rules() -> tempfile::TempDir {
    let world = pg_world().await;
    let url = scratch_database(|db| world.pg.url(db), "failures", SETUP).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        format!(
            "sources:\n  pg: {{ type: postgres, url: \"{url}\", schema: public }}\nchecks:{CHECKS}"
        ),
    )
    .unwrap();
    dir
}

/// Runs the rules with `extra` arguments; returns the exit code and the JSON report.
fn run(dir: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["run", "rules.yml", "--reports-dir", "reports"];
    args.extend(extra);
    let output = lakecheck(&args, dir);
    let json = std::fs::read(dir.join("reports/lakecheck.json"))
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}", text(&output)));
    (output.status.code(), serde_json::from_slice(&json).unwrap())
}

/// A Parquet file's column names, rows (every column text) and key-value metadata.
struct ParquetFile {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
    metadata: BTreeMap<String, String>,
}

fn read(path: &Path) -> ParquetFile {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect();
    let columns = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|column| {
                        let text = column.as_any().downcast_ref::<StringArray>().unwrap();
                        (!text.is_null(i)).then(|| text.value(i).to_string())
                    })
                    .collect(),
            );
        }
    }
    ParquetFile {
        columns,
        rows,
        metadata,
    }
}

/// A row from `|`-separated text cells, an empty cell a null.
fn cells(text: &str) -> Vec<Option<String>> {
    text.split('|')
        .map(|v| (!v.is_empty()).then(|| v.to_string()))
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn result<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["suites"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result {name}"))
}

#[tokio::test]
async fn each_failing_check_writes_its_failing_rows() {
    let dir = rules().await;
    let (code, report) = run(dir.path(), &["--failures-dir", "failures"]);
    assert_eq!(code, Some(1), "{report:#}");
    let failures = dir.path().join("failures");
    assert_eq!(
        files_in(&failures),
        [
            "copy_matches.parquet",
            "loose_copy.parquet",
            "orders_note_not_null.parquet"
        ],
        "a file per failing check, none for the passing one"
    );

    let nulls = read(&failures.join("orders_note_not_null.parquet"));
    assert_eq!(nulls.columns, ["id", "status", "amount", "note"]);
    let expected: Vec<_> = (1..=12)
        .map(|id| {
            let amount = format!("{:.2}", f64::from(id) * 1.5);
            cells(&format!("{id}|shipped|{amount}|"))
        })
        .collect();
    assert_eq!(nulls.rows, expected, "every failing row, not only 10");
    assert_eq!(nulls.metadata["lakecheck.check"], "orders: note not null");
    assert_eq!(nulls.metadata["lakecheck.kind"], "not_null");
    assert_eq!(nulls.metadata["lakecheck.status"], "fail");
    assert_eq!(nulls.metadata["lakecheck.failing_rows"], "12");
    assert_eq!(nulls.metadata["lakecheck.rule_file"], "rules.yml");

    let diff = read(&failures.join("copy_matches.parquet"));
    assert_eq!(
        diff.columns,
        [
            "id",
            "difference",
            "status__left",
            "status__right",
            "amount__left",
            "amount__right",
            "note__left",
            "note__right"
        ]
    );
    // Values in display form, as in the samples (numeric without trailing zeros).
    let mut rows = diff.rows.clone();
    rows.sort_by_key(|r| r[0].as_deref().unwrap().parse::<i32>().unwrap());
    assert_eq!(
        rows,
        [
            cells("3|missing_in_right||||||"),
            cells("5|changed|shipped|lost||||"),
            cells("14|changed|||21|99|ok|late"),
            cells("21|missing_in_left||||||"),
        ]
    );
    assert_eq!(
        diff.metadata["lakecheck.tables"],
        "pg.orders, pg.orders_copy"
    );

    let loose = read(&failures.join("loose_copy.parquet"));
    assert_eq!(loose.columns, ["id", "difference"]);
    let mut rows = loose.rows.clone();
    rows.sort();
    assert_eq!(
        rows,
        [
            cells("|null_key_in_right"),
            cells("7|duplicate_key_in_right"),
            cells("7|missing_in_left"),
        ],
        "the second row of key 7 is one more than the left holds, and a repeat"
    );

    // The reports are as without the files: 10 samples, and no failing rows of their own.
    let not_null = result(&report, "orders: note not null");
    assert_eq!(not_null["samples"]["rows"].as_array().unwrap().len(), 10);
    assert!(not_null.get("failures").is_none(), "{not_null:#}");
    assert_eq!(
        result(&report, "copy matches")["metrics"]["missing_keys"],
        serde_json::json!(["id=3"])
    );

    // Any reader of Parquet: pyarrow, where the test venv has it.
    let python = venv_python();
    if python.exists() {
        let output = std::process::Command::new(python)
            .arg("-c")
            .arg("import sys, pyarrow.parquet as pq\nt = pq.read_table(sys.argv[1])\nprint(t.num_rows, t.column('difference').to_pylist().count('changed'))")
            .arg(failures.join("copy_matches.parquet"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "4 2",
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[rstest::rstest]
#[case::two("2", 2, 2)]
#[case::more_than_the_samples("11", 11, 4)]
#[tokio::test]
async fn the_failures_limit_caps_the_rows_of_each_file(
    #[case] limit: &str,
    #[case] null_rows: usize,
    #[case] differing_keys: usize,
) {
    let dir = rules().await;
    let (code, report) = run(
        dir.path(),
        &["--failures-dir", "failures", "--failures-limit", limit],
    );
    assert_eq!(code, Some(1), "{report:#}");
    let failures = dir.path().join("failures");
    let nulls = read(&failures.join("orders_note_not_null.parquet"));
    assert_eq!(nulls.rows.len(), null_rows);
    assert_eq!(nulls.rows[0][0].as_deref(), Some("1"), "in key order");
    let diff = read(&failures.join("copy_matches.parquet"));
    assert_eq!(diff.rows.len(), differing_keys);
    let samples = &result(&report, "orders: note not null")["samples"]["rows"];
    assert_eq!(samples.as_array().unwrap().len(), 10, "samples keep 10");
}

#[tokio::test]
async fn a_folder_that_cannot_be_written_exits_2_and_every_report_says_why() {
    let dir = rules().await;
    std::fs::write(dir.path().join("taken"), "a file, not a folder").unwrap();
    let (code, report) = run(dir.path(), &["--failures-dir", "taken/failures"]);
    assert_eq!(code, Some(2), "{report:#}");
    assert_eq!(report["exit_code"], 2);
    let errors = report["report_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = errors[0].as_str().unwrap();
    assert!(
        error.starts_with("cannot write failing rows to taken/failures: "),
        "{error}"
    );
    let junit = std::fs::read_to_string(dir.path().join("reports/junit.xml")).unwrap();
    assert!(junit.contains(error), "{junit}");
}

#[test]
fn a_failures_limit_needs_a_failures_dir() {
    let dir = tempfile::tempdir().unwrap();
    let output = lakecheck(&["run", "rules.yml", "--failures-limit", "5"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("--failures-dir <DIR>"),
        "{}",
        text(&output)
    );
}
