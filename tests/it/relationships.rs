//! The constraint checks of `rules/autocorp.yml` (tag `constraints`): every foreign key the
//! source declares holds in raw and curated, and the CSV drop keeps emails, states and phones
//! in shape. They pass on the clean AutoCorp lake, and each fails, naming what broke, when one
//! orphan or one bad value is injected into a copy of the lake. Also: a cross-source
//! relationship with the orphans on the lake's side of the reference.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Decimal128Type, Int32Type};
use lakecheck::demo::autocorp::{self, TableData};
use lakecheck::results::{RunReport, Status};
use lakecheck::rules::{parse_rule_text, Vars};
use lakecheck::runner::{self, Selection};
use rstest::rstest;
use serde_json::{json, Value};

use crate::harness::{assert_status, pg_world, result, World};

/// A zone of the AutoCorp lake, as `rules/autocorp.yml` declares it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Zone {
    /// The DMS raw zone (`raw`).
    Raw,
    /// The CSV drops (`csv`).
    Csv,
    /// The curated Delta tables (`curated`).
    Delta,
    /// The curated Hudi tables (`hudi`).
    Hudi,
}

/// One value changed in one zone's copy of a table.
struct Edit {
    zone: Zone,
    table: &'static str,
    column: &'static str,
    /// The row changed: the first one the zone keeps (Hudi drops zero-value orders).
    value: Value,
}

/// `tables` with `edit` applied (or unchanged when it is for another zone).
fn edited(tables: &[TableData], edit: Option<&Edit>, zone: Zone) -> Vec<TableData> {
    let mut tables = tables.to_vec();
    let Some(edit) = edit.filter(|e| e.zone == zone) else {
        return tables;
    };
    let table = tables.iter_mut().find(|t| t.name == edit.table).unwrap();
    let batch = &table.batch;
    let row = match (zone, edit.table) {
        (Zone::Hudi, "sales_order") => first_kept_order(batch),
        _ => 0,
    };
    let index = batch.schema().index_of(edit.column).unwrap();
    let array = batch.column(index);
    let replaced: ArrayRef = match &edit.value {
        Value::Number(n) => {
            let ints = array.as_primitive::<Int32Type>();
            Arc::new(Int32Array::from_iter((0..ints.len()).map(|i| {
                Some(match i == row {
                    true => n.as_i64().unwrap() as i32,
                    false => ints.value(i),
                })
            })))
        }
        Value::String(s) => {
            let texts = array.as_string::<i32>();
            Arc::new(StringArray::from_iter((0..texts.len()).map(|i| {
                match i == row {
                    true => Some(s.clone()),
                    false => (!texts.is_null(i)).then(|| texts.value(i).to_string()),
                }
            })))
        }
        other => panic!("edit with a number or text, not {other}"),
    };
    let mut columns = batch.columns().to_vec();
    columns[index] = replaced;
    table.batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
    tables
}

/// The first order the curated ETL keeps (`total_amount > 0`).
fn first_kept_order(orders: &RecordBatch) -> usize {
    let amounts = orders
        .column_by_name("total_amount")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    (0..amounts.len()).find(|&i| amounts.value(i) > 0).unwrap()
}

/// The AutoCorp lake as the demo lays it out (raw zone, CSV drops, curated Delta and Hudi),
/// full load only, with `edit` applied to its zone.
async fn autocorp_lake(world: &World, edit: Option<&Edit>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    autocorp::write_local_lake(root, &edited(&world.tables, edit, Zone::Raw))
        .await
        .unwrap();
    let csv = edited(&world.tables, edit, Zone::Csv);
    std::fs::write(
        root.join("raw/csv/customers/customers.csv"),
        autocorp::to_csv(autocorp::table(&csv, "customers"), true),
    )
    .unwrap();
    autocorp::write_curated_delta(
        &root.join("curated"),
        &edited(&world.tables, edit, Zone::Delta),
    )
    .await
    .unwrap();
    autocorp::write_curated_hudi(
        &root.join("curated-hudi"),
        &edited(&world.tables, edit, Zone::Hudi),
        &[],
    )
    .await
    .unwrap();
    dir
}

/// Runs the checks of `rules/autocorp.yml` tagged `constraints` against the world's
/// PostgreSQL and the lake under `lake`.
async fn run_constraints(world: &World, lake: &Path) -> RunReport {
    let mut vars = Vars::new();
    vars.insert("LAKECHECK_PG_URL".into(), world.pg.url("autocorp"));
    let url = url::Url::from_directory_path(lake).unwrap();
    vars.insert(
        "LAKECHECK_LAKE_URL".into(),
        url.as_str().trim_end_matches('/').to_string(),
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/autocorp.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file = parse_rule_text(Path::new("rules/autocorp.yml"), &text, &Arc::new(vars))
        .unwrap_or_else(|e| panic!("{}", e[0]));
    let selection = Selection {
        tags: vec!["constraints".into()],
        ..Selection::default()
    };
    let files = [file];
    let planned = runner::plan(&files, &selection).unwrap();
    runner::run(&files, planned, 4, Default::default(), &|_| {}).await
}

const RAW_KEYS: &str = "every foreign key holds in raw";
const DELTA_KEYS: &str = "service_parts foreign keys hold in curated (Delta)";
const HUDI_KEYS: &str = "sales_order foreign keys hold in curated (Hudi)";
const CROSS_SOURCE: &str = "raw orders reference customers in the source";
const EMAILS: &str = "customer emails in the CSV drop";
const STATES: &str = "customer states in the CSV drop";
const PHONES: &str = "customer phones in the CSV drop";

/// Asserts exactly the checks in `failing` failed and every other constraint check passed.
fn assert_only_failing(report: &RunReport, failing: &[&str]) {
    let names: Vec<&str> = report.results().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    for r in report.results() {
        let expected = match failing.contains(&r.name.as_str()) {
            true => Status::Fail,
            false => Status::Pass,
        };
        assert_status(r, expected);
    }
}

/// The verdict on one foreign key of a `from_schema` result.
fn foreign_key<'a>(report: &'a RunReport, check: &str, key: &str) -> &'a Value {
    let keys = result(report, check).metrics["by_foreign_key"]
        .as_array()
        .unwrap();
    keys.iter()
        .find(|k| k["foreign_key"] == json!(key))
        .unwrap_or_else(|| panic!("no foreign key `{key}` in {keys:?}"))
}

#[tokio::test]
async fn the_autocorp_constraints_hold_on_clean_data_one_verdict_per_foreign_key() {
    let world = pg_world().await;
    let lake = autocorp_lake(&world, None).await;
    let report = run_constraints(&world, lake.path()).await;
    assert_only_failing(&report, &[]);
    let declared = |check: &str| -> Vec<String> {
        result(&report, check).metrics["by_foreign_key"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                assert_eq!(k["holds"], json!(true), "{k}");
                k["foreign_key"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(
        declared(RAW_KEYS),
        [
            "raw.sales_order (customer_id) → raw.customers (customer_id)",
            "raw.sales_order_parts (order_id) → raw.sales_order (order_id)",
            "raw.sales_order_parts (part_id) → raw.auto_parts (part_id)",
            "raw.sales_order_services (order_id) → raw.sales_order (order_id)",
            "raw.sales_order_services (service_id) → raw.service (service_id)",
            "raw.service_parts (part_id) → raw.auto_parts (part_id)",
            "raw.service_parts (service_id) → raw.service (service_id)",
        ]
    );
    assert_eq!(
        declared(DELTA_KEYS),
        [
            "curated.service_parts (part_id) → curated.auto_parts (part_id)",
            "curated.service_parts (service_id) → curated.service (service_id)",
        ]
    );
    assert_eq!(
        declared(HUDI_KEYS),
        ["hudi.sales_order (customer_id) → hudi.customers (customer_id)"]
    );
    let raw = result(&report, RAW_KEYS);
    assert_eq!(raw.metrics["foreign_keys"], json!(7));
    assert_eq!(raw.samples.as_ref().unwrap().rows.len(), 7);
    assert_eq!(
        result(&report, CROSS_SOURCE).metrics["method"],
        json!("segmented key sets")
    );
}

/// Each foreign key of the source, broken by one orphan in the raw zone: the `from_schema`
/// result fails on that key alone, naming the orphan.
#[rstest]
#[case::orders_customers("sales_order", "customer_id", "raw.customers (customer_id)")]
#[case::lines_orders("sales_order_parts", "order_id", "raw.sales_order (order_id)")]
#[case::lines_parts("sales_order_parts", "part_id", "raw.auto_parts (part_id)")]
#[case::services_orders("sales_order_services", "order_id", "raw.sales_order (order_id)")]
#[case::services_services("sales_order_services", "service_id", "raw.service (service_id)")]
#[case::service_parts_parts("service_parts", "part_id", "raw.auto_parts (part_id)")]
#[case::service_parts_services("service_parts", "service_id", "raw.service (service_id)")]
#[tokio::test]
async fn each_foreign_key_fails_on_an_orphan_in_raw(
    #[case] table: &'static str,
    #[case] column: &'static str,
    #[case] to: &str,
) {
    let world = pg_world().await;
    let edit = Edit {
        zone: Zone::Raw,
        table,
        column,
        value: json!(999_999),
    };
    let lake = autocorp_lake(&world, Some(&edit)).await;
    let report = run_constraints(&world, lake.path()).await;
    let failing: &[&str] = match (table, column) {
        ("sales_order", "customer_id") => &[RAW_KEYS, CROSS_SOURCE],
        _ => &[RAW_KEYS],
    };
    assert_only_failing(&report, failing);
    let raw = result(&report, RAW_KEYS);
    assert_eq!(raw.metrics["broken_foreign_keys"], json!(1));
    assert_eq!(raw.failing_rows, Some(1));
    let key = foreign_key(&report, RAW_KEYS, &format!("raw.{table} ({column}) → {to}"));
    assert_eq!(key["holds"], json!(false));
    assert_eq!(key["orphan_rows"], json!(1));
    assert_eq!(key["orphan_keys"], json!(1));
    assert_eq!(
        key["orphan_samples"],
        json!(format!("{column}=999999 (1 row)"))
    );
    assert!(
        raw.message.contains(&format!("{column}=999999")),
        "{}",
        raw.message
    );
}

/// The curated zones: an orphan in Delta's service_parts or Hudi's sales_order fails that
/// zone's check only.
#[rstest]
#[case::delta_parts(Zone::Delta, "service_parts", "part_id", DELTA_KEYS)]
#[case::delta_services(Zone::Delta, "service_parts", "service_id", DELTA_KEYS)]
#[case::hudi_customers(Zone::Hudi, "sales_order", "customer_id", HUDI_KEYS)]
#[tokio::test]
async fn an_orphan_in_a_curated_zone_fails_its_check(
    #[case] zone: Zone,
    #[case] table: &'static str,
    #[case] column: &'static str,
    #[case] check: &str,
) {
    let world = pg_world().await;
    let edit = Edit {
        zone,
        table,
        column,
        value: json!(999_999),
    };
    let lake = autocorp_lake(&world, Some(&edit)).await;
    let report = run_constraints(&world, lake.path()).await;
    assert_only_failing(&report, &[check]);
    let failed = result(&report, check);
    assert_eq!(failed.metrics["broken_foreign_keys"], json!(1));
    assert_eq!(failed.failing_rows, Some(1));
}

/// One bad value in the CSV drop fails its format check, with the row as the sample.
#[rstest]
#[case::email_without_at("email", "ana.lopez.1 at example.com", EMAILS)]
#[case::email_with_space("email", "ana lopez.1@example.com", EMAILS)]
#[case::state_spelt_out("state", "Texas", STATES)]
#[case::state_lowercase("state", "tx", STATES)]
#[case::state_empty_is_null("state", "", STATES)]
#[case::phone_without_prefix("phone", "555-123-4567", PHONES)]
#[tokio::test]
async fn a_bad_value_in_the_csv_drop_fails_its_format(
    #[case] column: &'static str,
    #[case] value: &str,
    #[case] check: &str,
) {
    let world = pg_world().await;
    let edit = Edit {
        zone: Zone::Csv,
        table: "customers",
        column,
        value: json!(value),
    };
    let lake = autocorp_lake(&world, Some(&edit)).await;
    let report = run_constraints(&world, lake.path()).await;
    assert_only_failing(&report, &[check]);
    let failed = result(&report, check);
    assert_eq!(failed.failing_rows, Some(1));
    let samples = failed.samples.as_ref().unwrap();
    let at = samples
        .columns
        .iter()
        .position(|c| c == "customer_id")
        .unwrap();
    assert_eq!(samples.rows[0][at].as_deref(), Some("1"));
}

/// Across sources with the orphans on PostgreSQL's side: the lake lost a customer, so the
/// source's orders of that customer reference a key the lake lacks.
#[tokio::test]
async fn a_customer_lost_in_the_lake_orphans_the_source_orders_across_sources() {
    let world = pg_world().await;
    let orders = &world.table("sales_order").batch;
    let customer_ids = orders
        .column_by_name("customer_id")
        .unwrap()
        .as_primitive::<Int32Type>();
    let lost = customer_ids.value(0);
    let orphan_rows = customer_ids.iter().filter(|c| *c == Some(lost)).count();
    let customers = &world.table("customers").batch;
    let ids = customers
        .column_by_name("customer_id")
        .unwrap()
        .as_primitive::<Int32Type>();
    let keep = BooleanArray::from_iter(ids.iter().map(|id| Some(id != Some(lost))));
    let dir = tempfile::tempdir().unwrap();
    crate::reconcile::write_parquet_table(
        dir.path(),
        "customers",
        &filter_record_batch(customers, &keep).unwrap(),
    );
    let text = format!(
        "{}  kept: {{ type: lake, url: \"{}\", format: parquet }}\nchecks:\n\
         \x20 - {{ name: orders, type: relationships, table: pg.sales_order, column: customer_id, to: kept.customers }}\n\
         \x20 - {{ name: filtered, type: relationships, table: pg.sales_order, column: customer_id, to: kept.customers, where: \"customer_id <> {lost}\" }}\n",
        world.sources_yaml(),
        dir.path().display()
    );
    let file = parse_rule_text(Path::new("t.yml"), &text, &world.vars())
        .unwrap_or_else(|e| panic!("{}", e[0]));
    let report = crate::harness::run_files(&[file]).await;
    let orders = result(&report, "orders");
    assert_status(orders, Status::Fail);
    assert_eq!(orders.metrics["method"], json!("segmented key sets"));
    assert_eq!(orders.metrics["orphan_keys"], json!(1));
    assert_eq!(orders.metrics["orphan_rows"], json!(orphan_rows));
    let samples = orders.samples.as_ref().unwrap();
    assert_eq!(
        samples.rows,
        vec![vec![Some(lost.to_string()), Some(orphan_rows.to_string())]]
    );
    assert_status(result(&report, "filtered"), Status::Pass);
}

/// A table with no reference to check proves nothing: it fails unless `allow_empty: true`.
#[tokio::test]
async fn no_reference_to_check_fails_unless_allowed() {
    let world = pg_world().await;
    let report = world
        .run(
            "  - { name: none, type: relationships, table: lake.sales_order, column: customer_id, to: pg.customers, where: \"customer_id < 0\" }\n\
             \x20 - { name: allowed, type: relationships, table: lake.sales_order, column: customer_id, to: pg.customers, where: \"customer_id < 0\", allow_empty: true }\n",
        )
        .await;
    let none = result(&report, "none");
    assert_status(none, Status::Fail);
    assert!(none.message.contains("proves nothing"), "{}", none.message);
    assert_status(result(&report, "allowed"), Status::Pass);
}

/// `from_schema` without `in` checks the keys in PostgreSQL itself (anti-joins there); on a
/// table that declares no foreign key it cannot run: an error, not a pass.
#[tokio::test]
async fn from_schema_in_the_source_itself_and_without_foreign_keys() {
    let world = pg_world().await;
    let report = world
        .run(
            "  - { name: none, type: relationships, from_schema: true, table: pg.customers, in: lake }\n\
             \x20 - { name: source, type: relationships, from_schema: true, source: pg }\n",
        )
        .await;
    let source = result(&report, "source");
    assert_status(source, Status::Pass);
    assert_eq!(source.metrics["foreign_keys"], json!(7));
    let keys = source.metrics["by_foreign_key"].as_array().unwrap();
    assert!(
        keys.iter().all(|k| k["method"] == json!("anti-join")),
        "{keys:?}"
    );
    let error = crate::harness::error_of(&report, "none");
    assert!(
        error.contains("no foreign key is declared on pg.customers"),
        "{error}"
    );
}

/// A value of the property test: mostly small (keys shared between the sides), sometimes any
/// 64-bit integer (key ranges wider than BIGINT can segment fall back to key-hash buckets).
fn key_value() -> impl proptest::strategy::Strategy<Value = i64> {
    use proptest::prelude::*;
    prop_oneof![8 => 0i64..400, 1 => any::<i64>()]
}

/// Across sources, in both directions and for integer keys (key-range segments) and text keys
/// (key-hash segments): the orphans found are exactly the child's non-NULL keys the parent
/// lacks, with their rows, and the check passes exactly when there is none (and something was
/// checked). `PROPTEST_CASES` raises the case count (default 24).
#[test]
fn cross_source_orphans_are_exactly_the_missing_keys() {
    use std::collections::BTreeSet;

    use datafusion::arrow::array::Int64Array;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    let runtime = crate::harness::property_runtime();
    let world = runtime.block_on(pg_world());
    let url = runtime.block_on(crate::reconcile::scratch_database(
        |db| world.pg.url(db),
        "relationships_property",
        "SELECT 1",
    ));
    let mut runner = crate::harness::property_runner(24);
    let case = std::sync::atomic::AtomicU32::new(0);
    let strategy = (
        vec(proptest::option::weighted(0.9, key_value()), 0..200),
        vec(key_value(), 0..200),
    );
    let outcome = runner.run(&strategy, |(child, parent)| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let parent_set: BTreeSet<i64> = parent.iter().copied().collect();
        let orphans: Vec<i64> = child
            .iter()
            .flatten()
            .copied()
            .filter(|v| !parent_set.contains(v))
            .collect();
        let orphan_keys = orphans.iter().collect::<BTreeSet<_>>().len() as u64;
        let checked = child.iter().flatten().count() as u64;
        let text = |v: i64| format!("k{v}");
        let results = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let task = tokio::spawn(connection);
            let values = |rows: &[Option<i64>]| -> String {
                rows.iter()
                    .map(|v| match v {
                        Some(v) => format!("({v}, '{}')", text(*v)),
                        None => "(NULL, NULL)".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut sql = String::new();
            for (name, rows) in [
                ("child", child.clone()),
                ("parent", parent.iter().copied().map(Some).collect()),
            ] {
                sql.push_str(&format!(
                    "CREATE TABLE {name}_{case} (id bigint, code text);"
                ));
                if !rows.is_empty() {
                    sql.push_str(&format!("INSERT INTO {name}_{case} VALUES {};", values(&rows)));
                }
            }
            client.batch_execute(&sql).await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            for (name, rows) in [
                ("child", child.clone()),
                ("parent", parent.iter().copied().map(Some).collect::<Vec<_>>()),
            ] {
                let batch = RecordBatch::try_from_iter([
                    ("id", Arc::new(Int64Array::from(rows.clone())) as ArrayRef),
                    (
                        "code",
                        Arc::new(StringArray::from_iter(rows.iter().map(|v| v.map(text)))) as _,
                    ),
                ])
                .unwrap();
                crate::reconcile::write_parquet_table(dir.path(), &format!("{name}_{case}"), &batch);
            }
            let mut checks = String::new();
            for (name, column) in [("int", "id"), ("text", "code")] {
                for (child_side, parent_side) in [("pg", "lake"), ("lake", "pg")] {
                    checks.push_str(&format!(
                        "  - {{ name: {name} {child_side}, type: relationships, table: {child_side}.child_{case}, column: {column}, to: {parent_side}.parent_{case} }}\n"
                    ));
                }
            }
            let text = format!(
                "sources:\n  pg: {{ type: postgres, url: \"{url}\", schema: public }}\n  lake: {{ type: lake, url: \"{}\" }}\nchecks:\n{checks}",
                dir.path().display()
            );
            let file = parse_rule_text(Path::new("property.yml"), &text, &Default::default())
                .unwrap();
            let report = crate::harness::run_files(&[file]).await;
            client
                .batch_execute(&format!("DROP TABLE child_{case}; DROP TABLE parent_{case};"))
                .await
                .unwrap();
            drop(client);
            let _ = task.await;
            report.results().cloned().collect::<Vec<_>>()
        });
        prop_assert_eq!(results.len(), 4);
        for r in &results {
            prop_assert_ne!(r.status, Status::Error, "{}: {:?}", r.name, r.error);
            let metric = |name: &str| r.metrics[name].as_u64();
            prop_assert_eq!(metric("orphan_keys"), Some(orphan_keys), "{}", r.name);
            prop_assert_eq!(metric("orphan_rows"), Some(orphans.len() as u64), "{}", r.name);
            prop_assert_eq!(metric("checked_rows"), Some(checked), "{}", r.name);
            prop_assert_eq!(
                r.status == Status::Pass,
                orphan_keys == 0 && checked > 0,
                "{}",
                r.name
            );
        }
        Ok::<(), TestCaseError>(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
