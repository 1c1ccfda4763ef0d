//! Hostile identifiers reach SQL quoted on every engine. A PostgreSQL table `we"ird; table--ü`
//! and a Parquet table of the same name in a local lake, whose columns have quotes, semicolons,
//! `--`, backslashes, dots, spaces, non-ASCII letters and mixed case in their names, go through
//! every check kind that reads a table: each passes on equal data and fails (never errs) on
//! different data. A spliced name would be an SQL error, or worse; an unquoted one would fold
//! case or lose the column. Names are written in rule files as the README says: YAML quoting
//! only, `source.table`, and `source.schema.table` for a Postgres table with a `.` in its name.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Decimal128Array, Int32Array, Int64Array};
use datafusion::arrow::array::{RecordBatch, StringArray};
use lakecheck::results::{RunReport, Status};

use crate::harness::{assert_status, parse_rules, pg_world, result, run_files, World};
use crate::reconcile::{scratch_database, write_parquet_table};

const TABLE: &str = "we\"ird; table--ü";
const DOTTED: &str = "dotted.name";
/// `(name, PostgreSQL type)` of each column, the first the key.
const COLUMNS: [(&str, &str); 8] = [
    ("K\"ey; --", "int PRIMARY KEY"),
    ("a\"b", "bigint"),
    ("x;y", "text"),
    ("Ünï cødé", "numeric(10,2)"),
    ("sp ace", "text"),
    ("back\\slash", "text"),
    ("MiXed Case", "boolean"),
    ("d.t", "text"),
];

/// One row: key, `a"b`, `x;y`, `Ünï cødé` in cents, `sp ace`, `back\slash`, `MiXed Case`, `d.t`.
type Row = (
    i32,
    i64,
    Option<&'static str>,
    i128,
    &'static str,
    &'static str,
    bool,
    &'static str,
);

const GOOD: [Row; 5] = [
    (1, 10, Some("p;q"), 150, "NEW", "C:\\dir", true, "a.b"),
    (2, 20, Some("--x"), 225, "PAID", "\\\\", false, ".."),
    (
        3,
        30,
        Some("'; DROP TABLE t; --"),
        999,
        "it's",
        "\\'",
        true,
        "x",
    ),
    (4, 40, Some("ü\"ö"), 0, "NEW", "", false, "ü"),
    (5, 50, Some("\\"), 99_999, "PAID", "--", true, ""),
];
/// The "different" side: the good rows with `back\slash` changed in one, and a row added with a
/// NULL in `x;y`, `a"b` repeated, a value out of range and one not accepted.
fn bad_rows() -> Vec<Row> {
    let mut rows = GOOD.to_vec();
    rows[1].5 = "changed";
    rows.push((6, 10, None, 9_999_999, "zzz", "b", false, "d"));
    rows
}

/// Each hostile column's name quoted as SQL wants it.
fn q(name: &str) -> String {
    lakecheck::model::sql::quote_ident(name)
}

fn sql_rows(rows: &[Row]) -> String {
    let lit = lakecheck::model::sql::quote_literal;
    rows.iter()
        .map(|(k, ab, xy, cents, space, back, mixed, dt)| {
            format!(
                "({k}, {ab}, {}, {}.{:02}, {}, {}, {mixed}, {})",
                xy.map_or("NULL".to_string(), lit),
                cents / 100,
                cents % 100,
                lit(space),
                lit(back),
                lit(dt)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table in schemas `good` (the rows) and `bad` ([`bad_rows`]), and the dotted
/// table in `good`.
fn setup_sql() -> String {
    let columns = COLUMNS
        .iter()
        .map(|(name, ty)| format!("{} {ty}", q(name)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CREATE SCHEMA good; CREATE SCHEMA bad;
         CREATE TABLE good.{t} ({columns}); INSERT INTO good.{t} VALUES {};
         CREATE TABLE bad.{t} ({columns}); INSERT INTO bad.{t} VALUES {};
         CREATE TABLE good.{d} ({columns}); INSERT INTO good.{d} VALUES {};",
        sql_rows(&GOOD),
        sql_rows(&bad_rows()),
        sql_rows(&GOOD),
        t = q(TABLE),
        d = q(DOTTED),
    )
}

fn batch(rows: &[Row]) -> RecordBatch {
    let column = |i: usize| -> ArrayRef {
        match i {
            0 => Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
            1 => Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            2 => Arc::new(StringArray::from_iter(rows.iter().map(|r| r.2))),
            3 => Arc::new(
                Decimal128Array::from_iter_values(rows.iter().map(|r| r.3))
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            4 => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.4))),
            5 => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.5))),
            6 => Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.6)))),
            _ => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.7))),
        }
    };
    RecordBatch::try_from_iter(
        COLUMNS
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (*name, column(i))),
    )
    .unwrap()
}

/// Writes the lake side: `good/` with the rows, `bad/` with [`bad_rows`] and without the
/// column `back\slash` (a lost column for `schema_match`).
fn write_lake(root: &std::path::Path) {
    write_parquet_table(&root.join("good"), TABLE, &batch(&GOOD));
    write_parquet_table(&root.join("good"), DOTTED, &batch(&GOOD));
    let full = batch(&bad_rows());
    let without_backslash = full.project(&[0, 1, 2, 3, 4, 6, 7]).unwrap();
    write_parquet_table(&root.join("bad"), TABLE, &without_backslash);
}

/// Checks that read one table, on `source` (`pg_good`, `lake_bad`, ...), named `<kind> <source>`.
fn single_table_checks(source: &str) -> String {
    let t = format!("'{source}.{TABLE}'");
    [
        format!("{{ name: row_count {source}, type: row_count, table: {t}, equals: 5 }}"),
        format!("{{ name: not_null {source}, type: not_null, table: {t}, columns: ['x;y', 'MiXed Case', 'd.t'] }}"),
        format!("{{ name: unique {source}, type: unique, table: {t}, columns: ['a\"b'] }}"),
        format!("{{ name: accepted_values {source}, type: accepted_values, table: {t}, column: 'sp ace', values: [NEW, PAID, \"it's\"] }}"),
        format!("{{ name: range {source}, type: range, table: {t}, column: 'Ünï cødé', min: 0, max: 1000 }}"),
        format!("{{ name: condition {source}, type: condition, table: {t}, expression: '\"Ünï cødé\" < 1000 and \"x;y\" is not null', where: '\"MiXed Case\" or not \"MiXed Case\"' }}"),
    ]
    .iter()
    .map(|c| format!("  - {c}\n"))
    .collect()
}

/// Checks that compare two tables: `right` against `pg_good` (`right_pg` for `table_match`,
/// whose other side is `lake_good`).
fn comparing_checks(lake: &str, pg: &str) -> String {
    let key = "key: ['K\"ey; --']";
    [
        format!("{{ name: aggregate_match {lake}, type: aggregate_match, left: 'pg_good.{TABLE}', right: '{lake}.{TABLE}', distinct: true, exclude: ['back\\slash'] }}"),
        format!("{{ name: schema_match {lake}, type: schema_match, left: 'pg_good.{TABLE}', right: '{lake}.{TABLE}' }}"),
        format!("{{ name: row_count_match {pg}, type: row_count_match, left: '{pg}.{TABLE}', right: 'lake_good.{TABLE}' }}"),
        format!("{{ name: table_match {pg}, type: table_match, left: '{pg}.{TABLE}', right: 'lake_good.{TABLE}', {key} }}"),
    ]
    .iter()
    .map(|c| format!("  - {c}\n"))
    .collect()
}

async fn run(world: &World, pg_url: &str, lake: &std::path::Path, checks: &str) -> RunReport {
    let text = format!(
        "sources:\n  pg_good: {{ type: postgres, url: \"{pg_url}\", schema: good }}\n  pg_bad: {{ type: postgres, url: \"{pg_url}\", schema: bad }}\n  lake_good: {{ type: lake, url: \"{}\" }}\n  lake_bad: {{ type: lake, url: \"{}\" }}\nchecks:\n{checks}",
        lake.join("good").display(),
        lake.join("bad").display(),
    );
    let rules = parse_rules("tests/hostile.yml", &text, &world.vars());
    run_files(&[rules]).await
}

fn assert_all(report: &RunReport, status: Status) {
    assert!(report.results().count() > 0);
    for result in report.results() {
        assert_status(result, status);
    }
}

/// The PostgreSQL world, a fresh database (`name` a prefix) with the hostile tables, and the
/// lake folder with theirs.
async fn hostile_tables(name: &str) -> (Arc<World>, String, tempfile::TempDir) {
    let world = pg_world().await;
    let pg_url = scratch_database(|db| world.pg.url(db), name, &setup_sql()).await;
    let lake = tempfile::tempdir().unwrap();
    write_lake(lake.path());
    (world, pg_url, lake)
}

/// Every check kind on the `side` (`good` or `bad`) tables of both engines, each asserted to
/// end `status`.
async fn run_side(
    world: &World,
    pg_url: &str,
    lake: &std::path::Path,
    side: &str,
    status: Status,
) -> RunReport {
    let (pg, lake_source) = (format!("pg_{side}"), format!("lake_{side}"));
    let checks = format!(
        "{}{}{}",
        single_table_checks(&pg),
        single_table_checks(&lake_source),
        comparing_checks(&lake_source, &pg)
    );
    let report = run(world, pg_url, lake, &checks).await;
    assert_eq!(report.results().count(), 16);
    assert_all(&report, status);
    report
}

#[tokio::test]
async fn hostile_names_pass_on_equal_data_and_fail_on_different_data() {
    let (world, pg_url, lake) = hostile_tables("hostile").await;

    run_side(&world, &pg_url, lake.path(), "good", Status::Pass).await;
    let report = run_side(&world, &pg_url, lake.path(), "bad", Status::Fail).await;
    // Each failed for the difference planted, on both engines.
    for source in ["pg_bad", "lake_bad"] {
        assert_eq!(
            result(&report, &format!("not_null {source}")).failing_rows,
            Some(1)
        );
        assert_eq!(
            result(&report, &format!("range {source}")).failing_rows,
            Some(1)
        );
        let accepted = result(&report, &format!("accepted_values {source}"));
        assert_eq!(accepted.failing_rows, Some(1));
        assert!(
            format!("{:?}", accepted.samples).contains("zzz"),
            "{:?}",
            accepted.samples
        );
    }
    let table_match = result(&report, "table_match pg_bad");
    assert!(
        table_match.message.ends_with(
            "6 rows compared: 4 matched, 1 missing in target, 0 extra in target, 1 changed"
        ),
        "{}",
        table_match.message
    );
    assert!(
        format!("{:?}", table_match.samples).contains("back\\\\slash"),
        "{:?}",
        table_match.samples
    );
    assert!(
        result(&report, "schema_match lake_bad")
            .message
            .contains("back\\slash"),
        "{}",
        result(&report, "schema_match lake_bad").message
    );
}

#[tokio::test]
async fn a_table_name_with_a_dot_is_written_with_its_schema() {
    let (world, pg_url, lake) = hostile_tables("dotted").await;
    let checks = format!(
        "  - {{ name: pg, type: row_count, table: 'pg_good.good.{DOTTED}', equals: 5 }}\n\
         \x20 - {{ name: lake, type: row_count, table: 'lake_good.{DOTTED}', equals: 5 }}\n\
         \x20 - {{ name: match, type: table_match, left: 'pg_good.good.{DOTTED}', right: 'lake_good.{DOTTED}', key: ['K\"ey; --'] }}\n"
    );
    let report = run(&world, &pg_url, lake.path(), &checks).await;
    assert_all(&report, Status::Pass);
    // Without the schema, the first `.` parts schema from table: `dotted`.`name`, not found.
    let checks =
        format!("  - {{ name: pg, type: row_count, table: 'pg_good.{DOTTED}', equals: 5 }}\n");
    let report = run(&world, &pg_url, lake.path(), &checks).await;
    let error = crate::harness::error_of(&report, "pg");
    assert!(
        error.contains("relation \"dotted.name\" does not exist"),
        "{error}"
    );
}
