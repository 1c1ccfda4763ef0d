//! Zero false passes: for every way two sides can differ (a NULL key, a repeated key, a lost
//! column, lost precision, zero rows), PostgreSQL against Parquet written by another writer
//! (pyarrow), and the check must not pass. Then a property test over random tables and edits.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use lakecheck::results::{CheckResult, RunReport, Status};
use serde_json::json;

use crate::harness::{pg_world, venv_python, World};
use crate::reconcile::scratch_database;

/// A database of its own for each test (never shared, never dropped by another test's name).
async fn own_database(world: &World, setup: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "exact_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    scratch_database(|db| world.pg.url(db), &name, setup).await
}

/// Writes `<root>/<table>/part-0.parquet` with pyarrow; `code` builds `table` (a pyarrow
/// Table) with `pa`, `decimal` and `datetime` imported.
fn pyarrow_parquet(root: &Path, table: &str, code: &str) {
    let dir = root.join(table);
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "import sys, decimal, datetime\nimport pyarrow as pa, pyarrow.parquet as pq\n{code}\npq.write_table(table, sys.argv[1])\n"
    );
    let output = std::process::Command::new(venv_python())
        .arg("-c")
        .arg(&script)
        .arg(dir.join("part-0.parquet"))
        .output()
        .expect("run the test venv's python");
    assert!(
        output.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `checks` (YAML list items) with `pg` on `pg_url` (schema public) and `lake` on `root`.
async fn run(pg_url: &str, root: &Path, checks: &str) -> RunReport {
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"{pg_url}\", schema: public }}\n  lake: {{ type: lake, url: \"{}\" }}\nchecks:\n{checks}",
        root.display()
    );
    let file = crate::harness::parse_rules("exact.yml", &text, &Default::default());
    crate::harness::run_files(&[file]).await
}

fn result<'a>(report: &'a RunReport, name: &str) -> &'a CheckResult {
    report
        .results()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result named {name}"))
}

fn observed(result: &CheckResult) -> &str {
    result.observed.as_deref().unwrap_or_default()
}

fn assert_status(result: &CheckResult, status: Status) {
    assert_eq!(
        result.status,
        status,
        "{}: {} / {:?} / {:?}",
        result.name,
        observed(result),
        result.error,
        result.metrics
    );
}

/// The sample rows of one kind of difference.
fn samples_of(result: &CheckResult, kind: &str) -> Vec<Vec<Option<String>>> {
    result
        .samples
        .iter()
        .flat_map(|s| s.rows.iter())
        .filter(|r| r[0].as_deref() == Some(kind))
        .cloned()
        .collect()
}

#[tokio::test]
async fn source_rows_with_a_null_key_that_never_arrived_fail() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE events (ext_id bigint, name text);
         INSERT INTO events SELECT g, 'n' || g FROM generate_series(1, 100) g;
         INSERT INTO events SELECT NULL, 'lost ' || g FROM generate_series(1, 40) g;",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    pyarrow_parquet(
        lake.path(),
        "events",
        "ids = list(range(1, 101))\ntable = pa.table({'ext_id': pa.array(ids, pa.int64()), 'name': ['n%d' % i for i in ids]})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: m, type: table_match, left: pg.events, right: lake.events, key: [ext_id] }\n",
    )
    .await;
    let m = result(&report, "m");
    assert_status(m, Status::Fail);
    assert_eq!(m.metrics["null_keys_left"], json!(40));
    assert_eq!(m.metrics["null_keys_right"], json!(0));
    assert_eq!(m.metrics["matched"], json!(100));
    assert!(
        observed(m).contains("40 rows with a NULL key"),
        "{}",
        observed(m)
    );
    let nulls = samples_of(m, "NULL key");
    assert_eq!(nulls.len(), 10, "samples are capped");
    assert_eq!(
        nulls[0][1].as_deref(),
        Some("ext_id=NULL, name=lost 1"),
        "ordered, in display form"
    );
}

#[tokio::test]
async fn lake_rows_with_a_null_key_fail_even_against_a_primary_key() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE parts (part_id bigint PRIMARY KEY, price numeric(10,2));
         INSERT INTO parts SELECT g, g * 1.5 FROM generate_series(1, 50) g;",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    pyarrow_parquet(
        lake.path(),
        "parts",
        "ids = list(range(1, 51)) + [None] * 3\nprices = [decimal.Decimal(i) * decimal.Decimal('1.5') if i else decimal.Decimal('9.99') for i in ids]\ntable = pa.table({'part_id': pa.array(ids, pa.int64()), 'price': pa.array([p.quantize(decimal.Decimal('0.01')) for p in prices], pa.decimal128(10, 2))})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: m, type: table_match, left: pg.parts, right: lake.parts }\n",
    )
    .await;
    let m = result(&report, "m");
    assert_status(m, Status::Fail);
    assert_eq!(m.metrics["null_keys_right"], json!(3));
    assert_eq!(m.metrics["matched"], json!(50));
    assert_eq!(
        samples_of(m, "NULL key")[0][1].as_deref(),
        Some("part_id=NULL, price=9.99")
    );
}

#[rstest::rstest]
#[case::integer_key("bigint", "pa.int64()", "42")]
#[case::text_key("text", "pa.string()", "'42'")]
#[tokio::test]
async fn repeated_rows_never_cancel(
    #[case] pg_type: &str,
    #[case] arrow_type: &str,
    #[case] key: &str,
) {
    let world = pg_world().await;
    // Key 42 twice on both sides, identical within a side, different across sides.
    let url = own_database(
        &world,
        &format!(
            "CREATE TABLE t (id {pg_type}, v int);
             INSERT INTO t VALUES (1, 1), (2, 2), ({key}, 10), ({key}, 10);"
        ),
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    let ids = if pg_type == "text" {
        "['1', '2', '42', '42']"
    } else {
        "[1, 2, 42, 42]"
    };
    pyarrow_parquet(
        lake.path(),
        "t",
        &format!("table = pa.table({{'id': pa.array({ids}, {arrow_type}), 'v': pa.array([1, 2, 99, 99], pa.int32())}})"),
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: strict, type: table_match, left: pg.t, right: lake.t, key: [id] }\n  - { name: multiset, type: table_match, left: pg.t, right: lake.t, key: [id], allow_duplicates: true }\n",
    )
    .await;
    let strict = result(&report, "strict");
    assert_status(strict, Status::Fail);
    assert_eq!(strict.metrics["duplicate_keys_left"], json!(1));
    assert_eq!(strict.metrics["duplicate_keys_right"], json!(1));
    assert_eq!(strict.metrics["changed"], json!(2));
    let multiset = result(&report, "multiset");
    assert_status(multiset, Status::Fail);
    assert_eq!(multiset.metrics["changed"], json!(2));
    assert_eq!(multiset.metrics["duplicate_keys"], json!(0));
    assert_eq!(multiset.metrics["matched"], json!(2));
}

#[tokio::test]
async fn the_same_duplicates_on_both_sides_fail_unless_allowed() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE t (id bigint, v text);
         INSERT INTO t VALUES (1, 'a'), (2, 'b'), (2, 'b'), (3, 'c');",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    pyarrow_parquet(
        lake.path(),
        "t",
        "table = pa.table({'id': pa.array([1, 2, 2, 3], pa.int64()), 'v': ['a', 'b', 'b', 'c']})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: strict, type: table_match, left: pg.t, right: lake.t, key: [id] }\n  - { name: multiset, type: table_match, left: pg.t, right: lake.t, key: [id], allow_duplicates: true }\n",
    )
    .await;
    let strict = result(&report, "strict");
    assert_status(strict, Status::Fail);
    assert_eq!(strict.metrics["duplicate_keys"], json!(2));
    let duplicates = samples_of(strict, "duplicate key");
    assert_eq!(duplicates[0][1].as_deref(), Some("id=2 (2 rows in pg.t)"));
    assert_eq!(duplicates[1][1].as_deref(), Some("id=2 (2 rows in lake.t)"));
    let multiset = result(&report, "multiset");
    assert_status(multiset, Status::Pass);
    assert_eq!(multiset.metrics["matched"], json!(4));
}

#[tokio::test]
async fn a_column_lost_on_the_way_fails_naming_it() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE customers (customer_id int PRIMARY KEY, name text, email text);
         INSERT INTO customers SELECT g, 'n' || g, 'e' || g || '@x.com' FROM generate_series(1, 20) g;",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    pyarrow_parquet(
        lake.path(),
        "customers",
        "ids = list(range(1, 21))\ntable = pa.table({'customer_id': pa.array(ids, pa.int32()), 'name': ['n%d' % i for i in ids], 'etl_timestamp': [datetime.datetime(2026, 1, 1)] * 20})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: lost, type: table_match, left: pg.customers, right: lake.customers }\n  - { name: excluded, type: table_match, left: pg.customers, right: lake.customers, exclude: [email] }\n",
    )
    .await;
    let lost = result(&report, "lost");
    assert_status(lost, Status::Fail);
    assert_eq!(
        lost.metrics["matched"],
        json!(20),
        "the other columns still compare"
    );
    let rows = samples_of(lost, "column not compared");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][2].as_deref(), Some("email"));
    assert!(rows[0][3]
        .as_deref()
        .unwrap()
        .contains("missing from lake.customers"));
    assert_eq!(lost.metrics["ignored_columns"], json!(["etl_timestamp"]));
    assert_status(result(&report, "excluded"), Status::Pass);
}

#[tokio::test]
async fn microseconds_kept_as_milliseconds_fail_unless_compared_at_milliseconds() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE t (id int PRIMARY KEY, at timestamp);
         INSERT INTO t VALUES (1, '2021-10-14 10:13:18.774500'), (2, '2021-10-14 10:13:18.774999'), (3, '2021-10-14 10:13:18.774');",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    // What DMS writes with ParquetTimestampInMillisecond: truncated to .774.
    pyarrow_parquet(
        lake.path(),
        "t",
        "at = datetime.datetime(2021, 10, 14, 10, 13, 18, 774000)\ntable = pa.table({'id': pa.array([1, 2, 3], pa.int32()), 'at': pa.array([at] * 3, pa.timestamp('ms'))})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: default, type: table_match, left: pg.t, right: lake.t }\n  - { name: at_ms, type: table_match, left: pg.t, right: lake.t, timestamp_precision: ms }\n  - { name: at_ms_column, type: table_match, left: pg.t, right: lake.t, timestamp_precision: { at: ms } }\n",
    )
    .await;
    let default = result(&report, "default");
    assert_status(default, Status::Fail);
    let rows = samples_of(default, "column not compared");
    assert_eq!(rows[0][2].as_deref(), Some("at"));
    assert!(
        rows[0][3]
            .as_deref()
            .unwrap()
            .contains("timestamp_precision: ms"),
        "{:?}",
        rows[0]
    );
    for name in ["at_ms", "at_ms_column"] {
        let at_ms = result(&report, name);
        assert_status(at_ms, Status::Pass);
        assert_eq!(
            at_ms.metrics["compared_columns"],
            json!(["id (int)", "at (millis)"])
        );
    }
}

#[tokio::test]
async fn nanoseconds_finer_than_the_source_are_a_difference() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE t (id int PRIMARY KEY, at timestamp);
         INSERT INTO t VALUES (1, '2021-10-14 10:13:18.774500'), (2, '2021-10-14 10:13:18.774500');",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    pyarrow_parquet(
        lake.path(),
        "t",
        "base = 1634206398774500000\ntable = pa.table({'id': pa.array([1, 2], pa.int32()), 'at': pa.array([base, base + 1], pa.timestamp('ns'))})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: m, type: table_match, left: pg.t, right: lake.t }\n",
    )
    .await;
    let m = result(&report, "m");
    assert_status(m, Status::Fail);
    assert_eq!(m.metrics["changed_keys"], json!(["id=2"]));
    let changed = samples_of(m, "changed");
    assert_eq!(changed[0][3].as_deref(), Some("2021-10-14 10:13:18.7745"));
    assert_eq!(
        changed[0][4].as_deref(),
        Some("2021-10-14 10:13:18.7745 +1ns")
    );
}

#[tokio::test]
async fn two_empty_sides_fail_unless_allowed() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE t (id int PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'a');",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    pyarrow_parquet(
        lake.path(),
        "t",
        "table = pa.table({'id': pa.array([1], pa.int32()), 'name': ['a']})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: empty, type: table_match, left: pg.t, right: lake.t, left_where: \"name = 'nobody'\", right_where: \"name = 'nobody'\" }\n  - { name: allowed, type: table_match, left: pg.t, right: lake.t, left_where: \"name = 'nobody'\", right_where: \"name = 'nobody'\", allow_empty: true }\n",
    )
    .await;
    let empty = result(&report, "empty");
    assert_status(empty, Status::Fail);
    assert!(
        observed(empty).contains("both sides are empty"),
        "{}",
        observed(empty)
    );
    assert_status(result(&report, "allowed"), Status::Pass);
}

#[tokio::test]
async fn sentinel_keys_near_the_ends_of_bigint_are_segmented_without_overflow() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE t (id bigint PRIMARY KEY, v int);
         INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;
         INSERT INTO t VALUES (9223372036854775807, 7), (9223372036854775806, 6);",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    pyarrow_parquet(
        lake.path(),
        "t",
        "ids = list(range(1, 101)) + [9223372036854775807, 9223372036854775806]\nvs = list(range(1, 101)) + [7, 5]\ntable = pa.table({'id': pa.array(ids, pa.int64()), 'v': pa.array(vs, pa.int32())})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: m, type: table_match, left: pg.t, right: lake.t }\n",
    )
    .await;
    let m = result(&report, "m");
    assert_status(m, Status::Fail);
    assert_eq!(m.metrics["segmented_by"], json!("key range"));
    assert_eq!(m.metrics["changed_keys"], json!(["id=9223372036854775806"]));
    assert_eq!(m.metrics["matched"], json!(101));
}

#[tokio::test]
async fn samples_show_both_sides_in_one_form() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE t (id int PRIMARY KEY, data bytea, at timestamptz, ok boolean, f float8, d date);
         INSERT INTO t VALUES (1, '\\x4161796f', '2021-10-14 10:13:18.775+00', true, 1.5, '2021-10-14');",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    pyarrow_parquet(
        lake.path(),
        "t",
        "at = datetime.datetime(2021, 10, 14, 10, 13, 18, 774000, tzinfo=datetime.timezone.utc)\ntable = pa.table({'id': pa.array([1], pa.int32()), 'data': pa.array([b'hayo'], pa.binary()), 'at': pa.array([at], pa.timestamp('us', tz='UTC')), 'ok': [False], 'f': [2.5], 'd': pa.array([datetime.date(2021, 10, 15)], pa.date32())})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: m, type: table_match, left: pg.t, right: lake.t }\n",
    )
    .await;
    let m = result(&report, "m");
    assert_status(m, Status::Fail);
    let shown: Vec<(String, String, String)> = samples_of(m, "changed")
        .into_iter()
        .map(|r| {
            (
                r[2].clone().unwrap(),
                r[3].clone().unwrap(),
                r[4].clone().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("data", "\\x4161796f", "\\x6861796f"),
        ("at", "2021-10-14 10:13:18.775", "2021-10-14 10:13:18.774"),
        ("ok", "true", "false"),
        ("f", "1.5", "2.5"),
        ("d", "2021-10-14", "2021-10-15"),
    ];
    for (column, left, right) in expected {
        assert!(
            shown.contains(&(column.into(), left.into(), right.into())),
            "{column}: {shown:?}"
        );
    }
}

#[tokio::test]
async fn money_reconciles_with_the_decimal_dms_writes() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE pay (id int PRIMARY KEY, amount money);
         INSERT INTO pay VALUES (1, '12.34'), (2, '-0.50'), (3, '1000000.00'), (4, NULL);",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    // AWS DMS writes money as decimal(38,4).
    pyarrow_parquet(
        lake.path(),
        "pay",
        "D = decimal.Decimal\ntable = pa.table({'id': pa.array([1, 2, 3, 4], pa.int32()), 'amount': pa.array([D('12.3400'), D('-0.5000'), D('1000000.0100'), None], pa.decimal128(38, 4))})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: m, type: table_match, left: pg.pay, right: lake.pay }\n",
    )
    .await;
    let m = result(&report, "m");
    assert_status(m, Status::Fail);
    assert_eq!(m.metrics["matched"], json!(3));
    let changed = samples_of(m, "changed");
    assert_eq!(
        changed[0][1..].to_vec(),
        vec![
            Some("id=3".into()),
            Some("amount".into()),
            Some("1000000".into()),
            Some("1000000.01".into())
        ]
    );
}

#[tokio::test]
async fn csv_columns_are_compared_as_the_text_in_the_file() {
    let world = pg_world().await;
    // The demo's CSV drop of customers: timestamps and char(2) in text.
    let report = world
        .run("  - { name: customers, type: table_match, left: pg.customers, right: csv.customers }\n")
        .await;
    let customers = result(&report, "customers");
    assert_status(customers, Status::Pass);
    assert_eq!(customers.metrics["matched"], json!(1149));
    assert_eq!(
        customers.metrics["segmented_by"],
        json!("key hash"),
        "a text key is not a range"
    );

    let url = own_database(
        &world,
        "CREATE TABLE orders (order_id int PRIMARY KEY, total numeric(12,2), placed date, paid boolean, at timestamptz, ratio float8);
         INSERT INTO orders VALUES
           (1, 10.10, '2026-01-02', true, '2026-01-02 03:04:05.123456+00', 0.5),
           (2, 20.00, '2026-01-03', false, '2026-01-03 00:00:00+00', 1.25),
           (3, 30.00, '2026-01-04', NULL, '2026-01-04 00:00:00+00', 2);",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(lake.path().join("orders")).unwrap();
    std::fs::write(
        lake.path().join("orders/orders.csv"),
        "order_id,total,placed,paid,at,ratio\n\
         1,10.1,2026-01-02,t,2026-01-02T03:04:05.123456Z,0.5\n\
         2,20.00,2026-01-03,false,2026-01-03 00:00:00,1.25\n\
         3,30.001,2026-01-04,,2026-01-04 00:00:00,2.0\n",
    )
    .unwrap();
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"{url}\", schema: public }}\n  csv: {{ type: lake, url: \"{}\", format: csv }}\nchecks:\n  - {{ name: m, type: table_match, left: pg.orders, right: csv.orders }}\n",
        lake.path().display()
    );
    let file = crate::harness::parse_rules("csv.yml", &text, &Default::default());
    let report = crate::harness::run_files(&[file]).await;
    let m = result(&report, "m");
    assert_status(m, Status::Fail);
    assert_eq!(
        m.metrics["matched"],
        json!(2),
        "10.1 = 10.10, t = true, Z = +00"
    );
    assert_eq!(
        samples_of(m, "changed")[0][1..].to_vec(),
        vec![
            Some("order_id=3".into()),
            Some("total".into()),
            Some("30".into()),
            Some("30.001".into())
        ]
    );
}

#[tokio::test]
async fn types_without_an_exact_comparison_are_refused_by_name() {
    let world = pg_world().await;
    let url = own_database(
        &world,
        "CREATE TABLE t (id int PRIMARY KEY, addr inet, wait interval, price numeric(10,2));
         INSERT INTO t VALUES (1, '10.0.0.1', '1 hour', 1.50);",
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    pyarrow_parquet(
        lake.path(),
        "t",
        "table = pa.table({'id': pa.array([1], pa.int32()), 'addr': ['10.0.0.1'], 'wait': pa.array([3600000000], pa.duration('us')), 'price': [1.5]})",
    );
    let report = run(
        &url,
        lake.path(),
        "  - { name: all, type: table_match, left: pg.t, right: lake.t }\n  - { name: comparable, type: table_match, left: pg.t, right: lake.t, exclude: [addr, wait, price] }\n",
    )
    .await;
    let all = result(&report, "all");
    assert_status(all, Status::Error);
    let error = all.error.as_deref().unwrap();
    for named in [
        "`addr` is inet",
        "`wait` is Duration(µs)",
        "`price` is numeric(10,2)",
    ] {
        assert!(error.contains(named), "{named}: {error}");
    }
    assert_status(result(&report, "comparable"), Status::Pass);
}
