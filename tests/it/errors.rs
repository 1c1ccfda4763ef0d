//! A check that cannot run is an error naming its cause: which source, table or file, and what
//! is wrong with it. Never a pass, and never a bare "error".

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use lakecheck::demo::autocorp::{to_csv, to_parquet};
use lakecheck::results::{CheckResult, RunReport, Status};
use rstest::rstest;
use serde_json::json;

use crate::harness::{assert_names, local_world, pg_world, s3_world, World};

fn result<'a>(report: &'a RunReport, name: &str) -> &'a CheckResult {
    report
        .results()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result named {name}"))
}

/// The error of check `name`, asserting that it could not run.
fn cause<'a>(report: &'a RunReport, name: &str) -> &'a str {
    let result = result(report, name);
    assert_eq!(
        result.status,
        Status::Error,
        "{name}: {} {:?}",
        result.message,
        result.error
    );
    result.error.as_deref().expect("an error names its cause")
}

/// Runs `checks` with `sources` (YAML lines under `sources:`) declared before the standard ones.
async fn run_with(world: &World, sources: &str, checks: &str) -> RunReport {
    let text = format!(
        "{}checks:\n{checks}",
        world
            .sources_yaml()
            .replace("sources:\n", &format!("sources:\n{sources}"))
    );
    let file = crate::harness::parse_rules("errors.yml", &text, &world.vars());
    crate::harness::run_files(&[file]).await
}

/// S3 options for the harness's moto server, with `overrides` appended (later keys win).
fn s3_storage(world: &World, overrides: &str) -> String {
    format!(
        "{{ endpoint: \"{}\", allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test{overrides} }}",
        world.s3.endpoint
    )
}

/// The three ways an S3 lake can be out of reach, each as its own source: nothing listening
/// (port 1, which no test can take), a bucket that does not exist, and credentials the server
/// refuses (a second moto that checks signatures, against which every key is unknown).
async fn s3_failures(world: &World) -> RunReport {
    let locked = crate::harness::S3Server::start_enforcing_auth();
    let sources = format!(
        "  down: {{ type: lake, url: \"s3://lake/raw/database/autocorp\", storage: {} }}\n\
         \x20 nowhere: {{ type: lake, url: \"s3://no-such-bucket/raw\", storage: {} }}\n\
         \x20 locked: {{ type: lake, url: \"s3://lake/raw\", storage: {{ endpoint: \"{}\", allow_http: \"true\", region: us-east-1, access_key_id: AKIAWRONGWRONGWRONG, secret_access_key: wrong }} }}\n",
        s3_storage(world, "").replace(&world.s3.endpoint, "http://127.0.0.1:1"),
        s3_storage(world, ""),
        locked.endpoint
    );
    run_with(
        world,
        &sources,
        "  - { name: down, type: row_count, table: down.customers, min: 1 }\n\
         \x20 - { name: nowhere, type: row_count, table: nowhere.customers, min: 1 }\n\
         \x20 - { name: locked, type: row_count, table: locked.customers, min: 1 }\n",
    )
    .await
}

#[tokio::test]
async fn s3_out_of_reach_is_an_error_naming_the_source() {
    let world = s3_world().await;
    let report = s3_failures(&world).await;
    for name in ["down", "nowhere", "locked"] {
        let error = cause(&report, name);
        assert!(error.starts_with(&format!("source `{name}`")), "{error}");
    }
    assert_eq!(report.exit_code, 2);
}

/// Each S3 failure names what went wrong, not a missing table.
#[rstest]
#[case::unreachable("down", &["127.0.0.1:1"])]
#[case::missing_bucket("nowhere", &["NoSuchBucket"])]
#[case::bad_credentials("locked", &["InvalidAccessKeyId"])]
#[tokio::test]
async fn s3_out_of_reach_names_the_cause(#[case] name: &str, #[case] parts: &[&str]) {
    let world = s3_world().await;
    let report = s3_failures(&world).await;
    let error = cause(&report, name);
    assert!(!error.contains("not found: no .parquet files"), "{error}");
    assert_names(error, parts);
}

#[tokio::test]
async fn syntax_errors_in_sql_condition_and_where_are_errors_naming_the_source() {
    let world = pg_world().await;
    let mut checks = String::new();
    for src in ["pg", "lake"] {
        let table = if src == "pg" {
            "autocorp.customers"
        } else {
            "customers"
        };
        checks.push_str(&format!(
            "  - {{ name: {src} sql, type: sql, source: {src}, query: \"SELECT customer_id FROM {table} WHERE\" }}\n\
             \x20 - {{ name: {src} condition, type: condition, table: {src}.customers, expression: \"customer_id >\" }}\n\
             \x20 - {{ name: {src} where, type: row_count, table: {src}.customers, where: \"customer_id = = 1\", min: 1 }}\n\
             \x20 - {{ name: {src} unknown column, type: condition, table: {src}.customers, expression: \"no_such_column > 0\" }}\n"
        ));
    }
    let report = world.run(&checks).await;
    for src in ["pg", "lake"] {
        for kind in ["sql", "condition", "where", "unknown column"] {
            let name = format!("{src} {kind}");
            let error = cause(&report, &name);
            assert!(error.starts_with(&format!("source `{src}`")), "{error}");
        }
    }
    assert_names(cause(&report, "pg sql"), &["syntax error at or near"]);
    assert_names(cause(&report, "pg condition"), &["syntax error at or near"]);
    assert_names(
        cause(&report, "pg where"),
        &["syntax error at or near \"=\""],
    );
    assert_names(
        cause(&report, "pg unknown column"),
        &["column \"no_such_column\" does not exist"],
    );
    for kind in ["sql", "condition", "where"] {
        assert_names(
            cause(&report, &format!("lake {kind}")),
            &["SQL error: ParserError("],
        );
    }
    assert_names(
        cause(&report, "lake unknown column"),
        &["No field named no_such_column"],
    );
    assert_eq!(report.exit_code, 2);
}

/// Writes `bytes` as `<root>/<table>/<file>`.
fn write_file(root: &Path, table: &str, file: &str, bytes: &[u8]) {
    let dir = root.join(table);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), bytes).unwrap();
}

/// A lake with a Parquet file cut short, a file that is not Parquet at all, and a CSV file
/// with a short record at line 22.
async fn broken_files(world: &World) -> (tempfile::TempDir, RunReport) {
    let root = tempfile::tempdir().unwrap();
    let customers = &world.table("customers").batch;
    let parquet = to_parquet(customers);
    // Cut short: the footer that says where the columns are is gone.
    write_file(
        root.path(),
        "truncated",
        "part-0.parquet",
        &parquet[..parquet.len() / 2],
    );
    write_file(
        root.path(),
        "garbage",
        "part-0.parquet",
        b"this is not parquet at all",
    );
    let mut ragged = to_csv(&customers.slice(0, 20), true);
    ragged.extend_from_slice(b"21,only,three\n");
    write_file(root.path(), "ragged", "part-0.csv", &ragged);
    let sources = format!(
        "  broken: {{ type: lake, url: \"{0}\", format: parquet }}\n  broken_csv: {{ type: lake, url: \"{0}\", format: csv }}\n",
        root.path().display()
    );
    let report = run_with(
        world,
        &sources,
        "  - { name: truncated, type: row_count, table: broken.truncated, min: 1 }\n\
         \x20 - { name: garbage, type: row_count, table: broken.garbage, min: 1 }\n\
         \x20 - { name: ragged, type: not_null, table: broken_csv.ragged, columns: [customer_id] }\n",
    )
    .await;
    (root, report)
}

#[tokio::test]
async fn corrupt_parquet_and_malformed_csv_are_errors_naming_what_is_wrong() {
    let world = local_world().await;
    let (_root, report) = broken_files(&world).await;
    for name in ["truncated", "garbage"] {
        let error = cause(&report, name);
        assert!(error.starts_with("source `broken`"), "{error}");
        assert_names(error, &["Invalid Parquet file. Corrupt footer"]);
    }
    let error = cause(&report, "ragged");
    assert!(error.starts_with("source `broken_csv`"), "{error}");
    assert_names(
        error,
        &[
            "unequal lengths between records",
            "Expected 9 records, found 3 records at line 22",
        ],
    );
}

#[tokio::test]
async fn corrupt_parquet_and_malformed_csv_name_the_file() {
    let world = local_world().await;
    let (_root, report) = broken_files(&world).await;
    for (name, file) in [
        ("truncated", "truncated/part-0.parquet"),
        ("garbage", "garbage/part-0.parquet"),
        ("ragged", "ragged/part-0.csv"),
    ] {
        assert_names(cause(&report, name), &[file]);
    }
}

#[tokio::test]
async fn missing_tables_in_hudi_csv_and_dms_sources_are_named() {
    let world = local_world().await;
    let (_curated, hudi) = crate::harness::curated_hudi(&world).await;
    let sources = format!(
        "{hudi}  dms: {{ type: lake, url: \"{}/raw/database/autocorp\", layout: dms }}\n",
        world.lake_url()
    );
    let report = run_with(
        &world,
        &sources,
        "  - { name: hudi, type: row_count, table: hudi.ghost, min: 1 }\n\
         \x20 - { name: csv, type: row_count, table: csv.ghost, min: 1 }\n\
         \x20 - { name: dms, type: row_count, table: dms.ghost, min: 1 }\n",
    )
    .await;
    for name in ["hudi", "csv", "dms"] {
        let error = cause(&report, name);
        assert!(error.starts_with(&format!("source `{name}`")), "{error}");
        assert_names(
            error,
            &["table `ghost` not found: no ", "/ghost/ (tables here: "],
        );
    }
    assert_names(
        cause(&report, "hudi"),
        &[
            "no Hudi table (.hoodie/hoodie.properties)",
            "(tables here: customers, sales_order)",
        ],
    );
    assert_names(
        cause(&report, "csv"),
        &["no .csv files", "(tables here: customers, sales_order)"],
    );
    assert_names(
        cause(&report, "dms"),
        &["no .parquet files", "(tables here: auto_parts, "],
    );
}

/// Checks on a table with no rows: counts say 0, checks over rows find no failures and say so,
/// and the two-sided checks refuse to call two empty sides a match.
#[tokio::test]
async fn checks_on_an_empty_table() {
    let world = pg_world().await;
    let url = crate::reconcile::scratch_database(
        |db| world.pg.url(db),
        "empty_table",
        "CREATE TABLE empty (id int PRIMARY KEY, status text, amount numeric(10,2));",
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let empty = RecordBatch::new_empty(Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new(
            "id",
            datafusion::arrow::datatypes::DataType::Int32,
            false,
        ),
        datafusion::arrow::datatypes::Field::new(
            "status",
            datafusion::arrow::datatypes::DataType::Utf8,
            true,
        ),
        datafusion::arrow::datatypes::Field::new(
            "amount",
            datafusion::arrow::datatypes::DataType::Decimal128(10, 2),
            true,
        ),
    ])));
    write_file(root.path(), "empty", "part-0.parquet", &to_parquet(&empty));
    let sources = format!(
        "  scratch: {{ type: postgres, url: \"{url}\", schema: public }}\n  files: {{ type: lake, url: \"{}\" }}\n",
        root.path().display()
    );
    let mut checks = String::new();
    for src in ["scratch", "files"] {
        checks.push_str(&format!(
            "  - {{ name: {src} count, type: row_count, table: {src}.empty, equals: 0 }}\n\
             \x20 - {{ name: {src} some rows, type: row_count, table: {src}.empty, min: 1 }}\n\
             \x20 - {{ name: {src} not null, type: not_null, table: {src}.empty, columns: [id, status] }}\n\
             \x20 - {{ name: {src} unique, type: unique, table: {src}.empty, columns: [id] }}\n\
             \x20 - {{ name: {src} accepted, type: accepted_values, table: {src}.empty, column: status, values: [NEW] }}\n\
             \x20 - {{ name: {src} range, type: range, table: {src}.empty, column: amount, min: 0 }}\n\
             \x20 - {{ name: {src} condition, type: condition, table: {src}.empty, expression: \"amount > 0\" }}\n"
        ));
    }
    checks.push_str(
        "  - { name: rows, type: table_match, left: scratch.empty, right: files.empty }\n\
         \x20 - { name: rows allowed, type: table_match, left: scratch.empty, right: files.empty, allow_empty: true }\n\
         \x20 - { name: counts, type: row_count_match, left: scratch.empty, right: files.empty }\n\
         \x20 - { name: against a full table, type: row_count_match, left: pg.customers, right: files.empty }\n",
    );
    let report = run_with(&world, &sources, &checks).await;
    for src in ["scratch", "files"] {
        let get = |kind: &str| result(&report, &format!("{src} {kind}"));
        let observed = |kind: &str| get(kind).observed.clone().unwrap_or_default();
        crate::harness::assert_statuses(&report, |name| match name {
            n if n.ends_with("some rows") => Status::Fail,
            "rows" | "counts" | "against a full table" => Status::Fail,
            _ => Status::Pass,
        });
        assert_eq!(get("count").metrics["row_count"], json!(0));
        assert_eq!(observed("some rows"), "0 rows");
        assert_eq!(observed("not null"), "no NULLs");
        assert_eq!(observed("range"), "no non-NULL values");
        assert_eq!(get("range").metrics["observed_min"], json!(null));
        for kind in ["not null", "unique", "accepted", "range", "condition"] {
            assert_eq!(get(kind).failing_rows, Some(0), "{src} {kind}");
            assert!(get(kind).samples.is_none(), "{src} {kind}");
        }
    }
    let empty_message =
        "both sides are empty (scratch.empty and files.empty hold 0 rows), which proves nothing";
    assert_names(
        result(&report, "rows").observed.as_deref().unwrap(),
        &[empty_message],
    );
    assert_names(
        result(&report, "counts").observed.as_deref().unwrap(),
        &[empty_message],
    );
    assert_eq!(result(&report, "rows allowed").metrics["matched"], json!(0));
    let full = result(&report, "against a full table");
    assert_eq!(full.metrics["difference"], json!(-1149));
}

/// Callers decide by the typed cause of a lake table error, not by its message.
#[tokio::test]
async fn lake_table_errors_carry_their_typed_cause() {
    use lakecheck::sources::table_format::TableError;
    let world = crate::harness::world().await;
    let text = format!(
        "{}checks: []\n",
        world.sources_yaml().replace(
            "sources:\n",
            &format!(
                "sources:\n  down: {{ type: lake, url: \"s3://lake/raw\", storage: {} }}\n",
                s3_storage(&world, "").replace(&world.s3.endpoint, "http://127.0.0.1:1")
            )
        )
    );
    let file = crate::harness::parse_rules("typed.yml", &text, &world.vars());
    let lake = file.sources.get("lake").unwrap();
    let missing = lake.columns("ghost").await.unwrap_err();
    assert!(
        matches!(missing.table.as_deref(), Some(TableError::NotFound { table, siblings, .. })
            if table == "ghost" && siblings.contains(&"customers".to_string())),
        "{missing:?}"
    );
    let pinned = lake.columns("customers@3").await.unwrap_err();
    assert!(
        matches!(
            pinned.table.as_deref(),
            Some(TableError::Unsupported { .. })
        ),
        "{pinned:?}"
    );
    let down = file.sources.get("down").unwrap();
    let unreachable = down.columns("customers").await.unwrap_err();
    assert!(
        matches!(unreachable.table.as_deref(), Some(TableError::Unreachable { folder, .. })
            if folder == "s3://lake/raw/customers/"),
        "{unreachable:?}"
    );
}
