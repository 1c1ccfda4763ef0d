//! The exactness contract as a property, on the real PostgreSQL against Parquet: for a random
//! table and random edits to its lake copy, `table_match` passes exactly when the two sides hold
//! the same multiset of rows, every key is present and unique, no column was dropped and there
//! is at least one row. `PROPTEST_CASES` raises the case count for a long run (default 256).

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use lakecheck::results::Status;
use lakecheck::rules::parse_rule_text;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use crate::harness::pg_world;
use crate::reconcile::scratch_database;

const MAX_ROWS: usize = 200;
const DROPPABLE: [&str; 4] = ["amount", "at", "name", "flag"];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    id: Option<i64>,
    /// Cents of a numeric(12,2).
    amount: Option<i64>,
    /// Microseconds since 1970 of a timestamp.
    at: Option<i64>,
    name: Option<String>,
    flag: Option<bool>,
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(Index),
    Duplicate(Index),
    /// The smallest step of the decimal: one cent.
    StepAmount(Index),
    NullKey(Index),
    ShiftTimeOneMicro(Index),
    /// NULL becomes '', a value gains a trailing space.
    TouchName(Index),
    DropColumn(usize),
    /// A copy of a row with its key NULLed, added (extra rows with a NULL key).
    AppendNullKeyCopy(Index),
    /// Every row whose key is NULL removed (they never reached the lake).
    DeleteNullKeyRows,
}

/// Rows a source without a primary key may hold besides its unique keys.
#[derive(Debug, Clone)]
enum Irregular {
    NullKeyCopy(Index),
    Duplicate(Index),
}

fn values() -> impl Strategy<Value = (Option<i64>, Option<i64>, Option<String>, Option<bool>)> {
    (
        proptest::option::of(-99_999_999_999i64..99_999_999_999),
        proptest::option::of(946_684_800_000_000i64..1_893_456_000_000_000),
        proptest::option::of("[a-z|~:é ]{0,6}"),
        proptest::option::of(any::<bool>()),
    )
}

fn source_rows() -> impl Strategy<Value = Vec<Row>> {
    (0..=MAX_ROWS)
        .prop_flat_map(|n| {
            let sequential = (
                prop_oneof![Just(0i64), Just(i64::MAX - 1_000), Just(i64::MIN)],
                1i64..5,
            )
                .prop_map(move |(base, step)| {
                    (0..n as i64).map(|i| base + i * step).collect::<Vec<_>>()
                });
            let scattered = proptest::collection::btree_set(any::<i64>(), n)
                .prop_map(|ids| ids.into_iter().collect::<Vec<_>>());
            (
                prop_oneof![sequential, scattered],
                proptest::collection::vec(values(), n),
            )
        })
        .prop_map(|(ids, values)| {
            ids.into_iter()
                .zip(values)
                .map(|(id, (amount, at, name, flag))| Row {
                    id: Some(id),
                    amount,
                    at,
                    name,
                    flag,
                })
                .collect()
        })
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        any::<Index>().prop_map(Edit::Delete),
        any::<Index>().prop_map(Edit::Duplicate),
        any::<Index>().prop_map(Edit::StepAmount),
        any::<Index>().prop_map(Edit::NullKey),
        any::<Index>().prop_map(Edit::ShiftTimeOneMicro),
        any::<Index>().prop_map(Edit::TouchName),
        (0..DROPPABLE.len()).prop_map(Edit::DropColumn),
        any::<Index>().prop_map(Edit::AppendNullKeyCopy),
        Just(Edit::DeleteNullKeyRows),
    ];
    proptest::collection::vec(edit, 0..4)
}

fn irregular_rows() -> impl Strategy<Value = Vec<Irregular>> {
    let one = prop_oneof![
        any::<Index>().prop_map(Irregular::NullKeyCopy),
        any::<Index>().prop_map(Irregular::Duplicate),
    ];
    proptest::collection::vec(one, 0..3)
}

/// The source with its irregular rows (only where no primary key forbids them).
fn with_irregular(mut rows: Vec<Row>, irregular: &[Irregular], primary_key: bool) -> Vec<Row> {
    if primary_key || rows.is_empty() {
        return rows;
    }
    for extra in irregular {
        let (Irregular::NullKeyCopy(i) | Irregular::Duplicate(i)) = extra;
        let mut row = rows[i.index(rows.len())].clone();
        if matches!(extra, Irregular::NullKeyCopy(_)) {
            row.id = None;
        }
        rows.push(row);
    }
    rows
}

/// The lake copy after the edits, and the columns dropped from it.
fn apply(source: &[Row], edits: &[Edit]) -> (Vec<Row>, Vec<&'static str>) {
    let mut rows = source.to_vec();
    let mut dropped = Vec::new();
    for edit in edits {
        let len = rows.len();
        let pick = |i: &Index| (len > 0).then(|| i.index(len));
        match edit {
            Edit::Delete(i) => {
                if let Some(i) = pick(i) {
                    rows.remove(i);
                }
            }
            Edit::Duplicate(i) => {
                if let Some(i) = pick(i) {
                    rows.push(rows[i].clone());
                }
            }
            Edit::StepAmount(i) => {
                if let Some(i) = pick(i) {
                    rows[i].amount = Some(rows[i].amount.map_or(0, |a| a + 1));
                }
            }
            Edit::NullKey(i) => {
                if let Some(i) = pick(i) {
                    rows[i].id = None;
                }
            }
            Edit::ShiftTimeOneMicro(i) => {
                if let Some(i) = pick(i) {
                    rows[i].at = rows[i].at.map(|t| t + 1);
                }
            }
            Edit::TouchName(i) => {
                if let Some(i) = pick(i) {
                    rows[i].name = Some(rows[i].name.clone().map_or(String::new(), |n| n + " "));
                }
            }
            Edit::AppendNullKeyCopy(i) => {
                if let Some(i) = pick(i) {
                    let mut row = rows[i].clone();
                    row.id = None;
                    rows.push(row);
                }
            }
            Edit::DeleteNullKeyRows => rows.retain(|r| r.id.is_some()),
            Edit::DropColumn(c) => {
                if !dropped.contains(&DROPPABLE[*c]) {
                    dropped.push(DROPPABLE[*c]);
                }
            }
        }
    }
    (rows, dropped)
}

/// Whether `table_match` must pass: the contract, stated on the model.
fn must_pass(source: &[Row], lake: &[Row], dropped: &[&str]) -> bool {
    let keys_sound = |rows: &[Row]| {
        let mut keys: Vec<Option<i64>> = rows.iter().map(|r| r.id).collect();
        keys.sort();
        keys.iter().all(Option::is_some) && keys.windows(2).all(|w| w[0] != w[1])
    };
    let (mut a, mut b) = (source.to_vec(), lake.to_vec());
    a.sort();
    b.sort();
    dropped.is_empty() && keys_sound(source) && keys_sound(lake) && a == b && !a.is_empty()
}

fn sql_literal<T: ToString>(value: &Option<T>, quote: bool) -> String {
    match value {
        None => "NULL".into(),
        Some(v) if quote => lakecheck::model::sql::quote_literal(&v.to_string()),
        Some(v) => v.to_string(),
    }
}

fn insert_sql(table: &str, rows: &[Row], primary_key: bool) -> String {
    let mut sql = format!(
        "CREATE TABLE {table} (id bigint{}, amount numeric(12,2), at timestamp, name text, flag boolean);",
        if primary_key { " PRIMARY KEY" } else { "" }
    );
    if !rows.is_empty() {
        let values: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "({}, {}, {}, {}, {})",
                    sql_literal(&r.id, false),
                    r.amount
                        .map_or("NULL".into(), |c| format!("{c}::numeric / 100")),
                    r.at.map_or("NULL".into(), |t| format!(
                        "TIMESTAMP '1970-01-01' + interval '{t} microseconds'"
                    )),
                    sql_literal(&r.name, true),
                    sql_literal(&r.flag, false),
                )
            })
            .collect();
        sql.push_str(&format!(
            "INSERT INTO {table} VALUES {};",
            values.join(", ")
        ));
    }
    sql
}

fn lake_batch(rows: &[Row], dropped: &[&str]) -> RecordBatch {
    let mut fields = vec![Field::new("id", DataType::Int64, true)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(
        rows.iter().map(|r| r.id).collect::<Vec<_>>(),
    ))];
    let mut add = |name: &str, data_type: DataType, array: ArrayRef| {
        if !dropped.contains(&name) {
            fields.push(Field::new(name, data_type, true));
            columns.push(array);
        }
    };
    add(
        "amount",
        DataType::Decimal128(12, 2),
        Arc::new(
            Decimal128Array::from(
                rows.iter()
                    .map(|r| r.amount.map(i128::from))
                    .collect::<Vec<_>>(),
            )
            .with_precision_and_scale(12, 2)
            .unwrap(),
        ),
    );
    add(
        "at",
        DataType::Timestamp(TimeUnit::Microsecond, None),
        Arc::new(TimestampMicrosecondArray::from(
            rows.iter().map(|r| r.at).collect::<Vec<_>>(),
        )),
    );
    add(
        "name",
        DataType::Utf8,
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        )),
    );
    add(
        "flag",
        DataType::Boolean,
        Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.flag).collect::<Vec<_>>(),
        )),
    );
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

#[test]
fn table_match_fails_exactly_when_the_sides_differ() {
    let runtime = crate::harness::property_runtime();
    let world = runtime.block_on(pg_world());
    let database = format!("exact_property_{}", std::process::id());
    let url = runtime.block_on(scratch_database(
        |db| world.pg.url(db),
        &database,
        "SELECT 1",
    ));
    let mut runner = crate::harness::property_runner(256);
    let case = std::sync::atomic::AtomicU32::new(0);
    let outcome = runner.run(
        &(source_rows(), irregular_rows(), edits(), any::<bool>()),
        |(source, irregular, edits, primary_key)| {
            let source = with_irregular(source, &irregular, primary_key);
            let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (lake, dropped) = apply(&source, &edits);
            let expected = must_pass(&source, &lake, &dropped);
            let table = format!("t{case}");
            let status = runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let task = tokio::spawn(connection);
                client.batch_execute(&insert_sql(&table, &source, primary_key)).await.unwrap();
                let dir = tempfile::tempdir().unwrap();
                crate::reconcile::write_parquet_table(dir.path(), &table, &lake_batch(&lake, &dropped));
                let text = format!(
                    "sources:\n  pg: {{ type: postgres, url: \"{url}\", schema: public }}\n  lake: {{ type: lake, url: \"{}\" }}\nchecks:\n  - {{ name: m, type: table_match, left: pg.{table}, right: lake.{table}, key: [id] }}\n",
                    dir.path().display()
                );
                let file = parse_rule_text(Path::new("property.yml"), &text, &Default::default()).unwrap();
                let report = crate::harness::run_files(&[file]).await;
                let result = report.results().next().unwrap().clone();
                client.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
                drop(client);
                let _ = task.await;
                result
            });
            prop_assert_ne!(status.status, Status::Error, "could not run: {:?}", status.error);
            prop_assert_eq!(
                status.status == Status::Pass,
                expected,
                "irregular source rows {:?}, edits {:?} (primary key: {}): {}",
                irregular,
                edits,
                primary_key,
                status.observed.as_deref().unwrap_or_default()
            );
            Ok::<(), TestCaseError>(())
        },
    );
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
