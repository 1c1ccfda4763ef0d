//! Canonical values and the shared hash, run through both engines: a value must encode (and
//! hash) identically from PostgreSQL and from Parquet, and different values must not.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use lakecheck::model::hash::{pg_hash_int8, pg_hash_seeded};
use lakecheck::model::Canon;
use lakecheck::rules::{parse_rule_text, Vars};
use lakecheck::sources::Source;

use crate::harness::{pg_world, upload_folder, world, world_with, World};

/// A fresh database on the shared server, created with a writable connection (tests only).
/// `name` is a prefix: the process id and a counter make the database each call creates its
/// own, so no other test (nor another case of the same test) drops or changes it.
pub async fn scratch_database(url_of: impl Fn(&str) -> String, name: &str, setup: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = &format!(
        "{name}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let (client, connection) = tokio_postgres::connect(&url_of("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client.batch_execute(&statement).await.unwrap();
    }
    drop(client);
    let _ = task.await;
    let (client, connection) = tokio_postgres::connect(&url_of(name), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    client.batch_execute(setup).await.unwrap();
    drop(client);
    let _ = task.await;
    url_of(name)
}

/// Writes one Parquet file as the table `name` under `root`.
pub fn write_parquet_table(root: &Path, name: &str, batch: &RecordBatch) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("part-0.parquet"),
        lakecheck::demo::autocorp::to_parquet(batch),
    )
    .unwrap();
}

fn sources(pg_url: &str, lake: &Path) -> (Arc<dyn Source>, Arc<dyn Source>) {
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"{pg_url}\", schema: public }}\n  lake: {{ type: lake, url: \"{}\" }}\nchecks: []\n",
        lake.display()
    );
    let file = parse_rule_text(Path::new("vectors.yml"), &text, &Arc::new(Vars::new())).unwrap();
    (
        file.sources.get("pg").unwrap().clone(),
        file.sources.get("lake").unwrap().clone(),
    )
}

#[tokio::test]
async fn hash_matches_postgres_bit_for_bit() {
    let world = pg_world().await;
    let inputs: Vec<String> = (0..40)
        .map(|n| {
            "abcdefghijklmnopqrstuvwxyz0123456789|:~é"[..n.min(40)]
                .chars()
                .take(n)
                .collect::<String>()
        })
        .chain(["Zoë 漢字 🚗".to_string(), "12:a|~|3:b c".to_string()])
        .collect();
    let (pg, _) = sources(&world.pg.url("autocorp"), world.lake_dir.path());
    let values = inputs
        .iter()
        .map(|s| format!("({})", lakecheck::model::sql::quote_literal(s)))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = pg
        .query(&format!(
            "SELECT s, hashtextextended(s, 0) AS h FROM (VALUES {values}) AS v(s)"
        ))
        .await
        .unwrap();
    assert_eq!(rows.rows.len(), inputs.len());
    for row in &rows.rows {
        let text = row[0].as_deref().unwrap();
        let expected: i64 = row[1].as_deref().unwrap().parse().unwrap();
        assert_eq!(
            pg_hash_seeded(text.as_bytes(), 0),
            expected,
            "hash of {text:?}"
        );
    }
    // Seeded text hashes and integer hashes, as the row hash uses them.
    let seeds = [
        0i64,
        1,
        -1,
        0x4e55_4c4c_0000_0000,
        i64::MIN,
        123_456_789_012,
    ];
    let ints = [
        0i64,
        1,
        -1,
        42,
        i32::MAX as i64 + 1,
        i64::MIN,
        i64::MAX,
        -5_000_000_000,
    ];
    let mut selects = Vec::new();
    for seed in seeds {
        for text in ["", "a", "abcdefghijkl", "Zoë 漢字 🚗"] {
            selects.push(format!(
                "SELECT 't' AS kind, {} AS v, '{seed}'::int8 AS seed, hashtextextended({0}, '{seed}'::int8) AS h",
                lakecheck::model::sql::quote_literal(text)
            ));
        }
        for int in ints {
            selects.push(format!(
                "SELECT 'i', '{int}', '{seed}'::int8, hashint8extended('{int}'::int8, '{seed}'::int8)"
            ));
        }
    }
    let rows = pg.query(&selects.join(" UNION ALL ")).await.unwrap();
    assert_eq!(rows.rows.len(), seeds.len() * (4 + ints.len()));
    for row in &rows.rows {
        let cell = |i: usize| row[i].as_deref().unwrap();
        let seed: i64 = cell(2).parse().unwrap();
        let expected: i64 = cell(3).parse().unwrap();
        let actual = match cell(0) {
            "t" => pg_hash_seeded(cell(1).as_bytes(), seed),
            _ => pg_hash_int8(cell(1).parse().unwrap(), seed),
        };
        assert_eq!(actual, expected, "{} {:?} seed {seed}", cell(0), cell(1));
    }
}

const VECTORS_SQL: &str = "
CREATE TABLE vectors (
  id int PRIMARY KEY, i2 smallint, num numeric(12,2), num_text numeric, f8 float8, f4 real,
  t text, t2 text, c char(5), b boolean, d date, ts timestamp, tstz timestamptz, tstz_ms timestamptz,
  by bytea, u uuid, u_bin uuid, j jsonb);
INSERT INTO vectors VALUES
 (1, 1, 10.10, 10.1, -0.0, 1.5, '', 'a|b', 'ab', true, '2026-01-01', '2026-01-01 00:00:00.000001',
  '2026-11-21 08:00:00.123456+00', '2026-11-21 08:00:00.123456+00', '\\x00ff', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"b\": 1, \"a\": [1, 2.50]}'),
 (2, -32768, -0.50, 0, 'NaN', 'Infinity', 'trailing ', 'c', 'abcde', false, '1969-12-31', '1969-12-31 23:59:59.999999',
  '1900-01-01 00:00:00+00', '1900-01-01 00:00:00.001+00', '\\x', '00000000-0000-0000-0000-000000000000',
  '00000000-0000-0000-0000-000000000001', '[]'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 32767, 9999999999.99, 123456789012345678901234567890.5, 'Infinity', '-Infinity', 'Zoë ''漢字''|~', '~', 'x    ', true,
  '2262-04-11', '2262-04-11 23:47:16', '2026-06-30 23:59:59.999999+00', '2026-06-30 23:59:59.999+00', '\\xdeadbeef',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null');
";

fn micros(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros()
}

/// The same rows as Arrow, with the types a lake typically holds (some wider, some as text).
fn vectors_batch() -> RecordBatch {
    let col = |a: ArrayRef| a;
    RecordBatch::try_from_iter(vec![
        ("id", col(Arc::new(Int32Array::from(vec![1, 2, 3, 4])))),
        (
            "i2",
            col(Arc::new(Int64Array::from(vec![
                Some(1),
                Some(-32768),
                None,
                Some(32767),
            ]))),
        ),
        (
            "num",
            col(Arc::new(
                Decimal128Array::from(vec![
                    Some(10_100),
                    Some(-500),
                    None,
                    Some(9_999_999_999_990),
                ])
                .with_precision_and_scale(16, 3)
                .unwrap(),
            )),
        ),
        (
            "num_text",
            col(Arc::new(StringArray::from(vec![
                Some("10.10"),
                Some("0.000"),
                None,
                Some("123456789012345678901234567890.50"),
            ]))),
        ),
        (
            "f8",
            col(Arc::new(Float64Array::from(vec![
                Some(0.0),
                Some(f64::NAN),
                None,
                Some(f64::INFINITY),
            ]))),
        ),
        (
            "f4",
            col(Arc::new(Float32Array::from(vec![
                Some(1.5),
                Some(f32::INFINITY),
                None,
                Some(f32::NEG_INFINITY),
            ]))),
        ),
        (
            "t",
            col(Arc::new(StringArray::from(vec![
                Some(""),
                Some("trailing "),
                None,
                Some("Zoë '漢字'|~"),
            ]))),
        ),
        (
            "t2",
            col(Arc::new(StringArray::from(vec![
                Some("a|b"),
                Some("c"),
                None,
                Some("~"),
            ]))),
        ),
        (
            "c",
            col(Arc::new(StringArray::from(vec![
                Some("ab   "),
                Some("abcde"),
                None,
                Some("x"),
            ]))),
        ),
        (
            "b",
            col(Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
            ]))),
        ),
        (
            "d",
            col(Arc::new(Date32Array::from(vec![
                Some(20454),
                Some(-1),
                None,
                Some(106_751),
            ]))),
        ),
        (
            "ts",
            col(Arc::new(TimestampMicrosecondArray::from(vec![
                Some(micros("2026-01-01T00:00:00.000001Z")),
                Some(micros("1969-12-31T23:59:59.999999Z")),
                None,
                Some(micros("2262-04-11T23:47:16Z")),
            ]))),
        ),
        (
            "tstz",
            col(Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(micros("2026-11-21T08:00:00.123456Z")),
                    Some(micros("1900-01-01T00:00:00Z")),
                    None,
                    Some(micros("2026-06-30T23:59:59.999999Z")),
                ])
                .with_timezone("UTC"),
            )),
        ),
        (
            "tstz_ms",
            col(Arc::new(
                TimestampMillisecondArray::from(vec![
                    Some(micros("2026-11-21T08:00:00.123Z") / 1000),
                    Some(micros("1900-01-01T00:00:00.001Z") / 1000),
                    None,
                    Some(micros("2026-06-30T23:59:59.999Z") / 1000),
                ])
                .with_timezone("UTC"),
            )),
        ),
        (
            "by",
            col(Arc::new(BinaryArray::from(vec![
                Some(&[0x00u8, 0xff][..]),
                Some(&[][..]),
                None,
                Some(&[0xde, 0xad, 0xbe, 0xef][..]),
            ]))),
        ),
        (
            "u",
            col(Arc::new(StringArray::from(vec![
                Some("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
                Some("00000000-0000-0000-0000-000000000000"),
                None,
                Some("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"),
            ]))),
        ),
        (
            "u_bin",
            col(Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![
                        Some(vec![
                            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9,
                            0xbd, 0x38, 0x0a, 0x11,
                        ]),
                        Some(vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
                        None,
                        Some(vec![0xff; 16]),
                    ]
                    .into_iter(),
                    16,
                )
                .unwrap(),
            )),
        ),
        (
            "j",
            col(Arc::new(StringArray::from(vec![
                Some("{\"a\": [1, 2.50], \"b\": 1}"),
                Some("[]"),
                None,
                Some("null"),
            ]))),
        ),
    ])
    .unwrap()
}

/// The same table in both engines: `setup` run in a scratch database, `batch` written as the
/// lake's `table`; the sources and each side's columns, the lake's in PostgreSQL's order.
struct BothEngines {
    _lake: tempfile::TempDir,
    pg: Arc<dyn Source>,
    lake: Arc<dyn Source>,
    left: Vec<lakecheck::model::Column>,
    right: Vec<lakecheck::model::Column>,
}

async fn in_both_engines(setup: &str, table: &str, batch: &RecordBatch) -> BothEngines {
    let world = pg_world().await;
    let pg_url = scratch_database(|db| world.pg.url(db), table, setup).await;
    let lake = tempfile::tempdir().unwrap();
    write_parquet_table(lake.path(), table, batch);
    let (pg, lake_source) = sources(&pg_url, lake.path());
    let left = pg.columns(table).await.unwrap();
    let right = lake_source.columns(table).await.unwrap();
    let right = left
        .iter()
        .map(|l| right.iter().find(|r| r.name == l.name).unwrap().clone())
        .collect();
    BothEngines {
        _lake: lake,
        pg,
        lake: lake_source,
        left,
        right,
    }
}

/// `SELECT <fields>, <each column's hash seeded 0>, <the row's hash under each of `row_seeds`>
/// FROM table ORDER BY 1`, in `source`'s SQL.
fn hashes_sql(
    source: &Arc<dyn Source>,
    pairs: &[(&lakecheck::model::Column, Canon)],
    fields: &[String],
    row_seeds: &[&str],
    table: &str,
) -> String {
    let per_column = pairs
        .iter()
        .map(|pair| source.row_hash_sql(std::slice::from_ref(pair), "0"));
    let rows = row_seeds
        .iter()
        .map(|seed| source.row_hash_sql(pairs, seed));
    let columns: Vec<String> = fields
        .iter()
        .cloned()
        .chain(per_column)
        .chain(rows)
        .collect();
    format!(
        "SELECT {} FROM {} ORDER BY 1",
        columns.join(", "),
        source.table_sql(table)
    )
}

#[tokio::test]
async fn every_type_encodes_identically_in_both_engines() {
    let BothEngines {
        _lake,
        pg,
        lake: lake_source,
        left,
        right,
    } = in_both_engines(VECTORS_SQL, "vectors", &vectors_batch()).await;
    let mut pg_fields = Vec::new();
    let mut lake_fields = Vec::new();
    let mut canons = Vec::new();
    for (l, r) in left.iter().zip(&right) {
        let canon = lakecheck::model::canon::choose(l, r).unwrap_or_else(|e| panic!("{e}"));
        canons.push((l.name.clone(), canon));
        pg_fields.push(pg.canonical_sql(l, canon));
        lake_fields.push(lake_source.canonical_sql(r, canon));
    }
    let expected_canons = [
        ("id", Canon::Int),
        ("i2", Canon::Int),
        ("num", Canon::Decimal),
        ("num_text", Canon::Decimal),
        ("f8", Canon::Float),
        ("f4", Canon::Float),
        ("t", Canon::Text),
        ("t2", Canon::Text),
        ("c", Canon::Padded),
        ("b", Canon::Bool),
        ("d", Canon::Date),
        ("ts", Canon::Micros),
        ("tstz", Canon::Micros),
        ("tstz_ms", Canon::Millis),
        ("by", Canon::Binary),
        ("u", Canon::Uuid),
        ("u_bin", Canon::Uuid),
        ("j", Canon::Text),
    ];
    assert_eq!(
        canons,
        expected_canons
            .iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect::<Vec<_>>()
    );
    // Each column's hash (seeded 0, so rows compare) and the whole row's hash (seeded 0 and by
    // the row's id) must equal PostgreSQL's.
    let select =
        |fields: &[String], source: &Arc<dyn Source>, columns: &[lakecheck::model::Column]| {
            let pairs: Vec<(&lakecheck::model::Column, Canon)> =
                columns.iter().zip(canons.iter().map(|(_, c)| *c)).collect();
            hashes_sql(source, &pairs, fields, &["0", "id"], "vectors")
        };
    let from_pg = pg.query(&select(&pg_fields, &pg, &left)).await.unwrap();
    let from_lake = lake_source
        .query(&select(&lake_fields, &lake_source, &right))
        .await
        .unwrap();
    let n = canons.len();
    assert_eq!(
        from_pg.rows.len(),
        4,
        "every vector row read from PostgreSQL"
    );
    assert_eq!(
        from_lake.rows.len(),
        from_pg.rows.len(),
        "both engines return every row"
    );
    for (row, (a, b)) in from_pg.rows.iter().zip(&from_lake.rows).enumerate() {
        for (i, (name, _)) in canons.iter().enumerate() {
            assert_eq!(a[i], b[i], "canonical text, row {} column {name}", row + 1);
            assert_eq!(a[n + i], b[n + i], "hash, row {} column {name}", row + 1);
        }
        assert_eq!(a[2 * n], b[2 * n], "row hash seeded 0, row {}", row + 1);
        assert_eq!(a[2 * n + 1], b[2 * n + 1], "row hash, row {}", row + 1);
    }
    // NULL and the empty string hash differently under the same seed; all rows differ.
    let hash = |row: usize, column: &str| {
        from_pg.rows[row][n + canons.iter().position(|(c, _)| c == column).unwrap()].clone()
    };
    assert_ne!(hash(0, "t"), hash(2, "t"));
    let row_hashes: std::collections::BTreeSet<_> =
        from_pg.rows.iter().map(|r| r[2 * n + 1].clone()).collect();
    assert_eq!(row_hashes.len(), from_pg.rows.len());
    assert_eq!(from_pg.rows.len(), 4);
    // Spot checks of the encodings themselves.
    let field = |row: usize, column: &str| {
        from_pg.rows[row][canons.iter().position(|(n, _)| n == column).unwrap()]
            .clone()
            .unwrap()
    };
    assert_eq!(field(0, "num"), "10.1");
    assert_eq!(field(0, "t"), "0:", "empty string");
    assert_eq!(field(2, "t"), "~", "NULL");
    assert_eq!(field(1, "t"), "9:trailing ", "trailing space kept");
    assert_eq!(field(0, "c"), "2:ab", "char(n) padding dropped");
    assert_eq!(field(0, "f8"), "0", "-0.0 equals 0.0");
    assert_eq!(field(1, "f8"), "NaN");
    assert_eq!(field(0, "tstz_ms"), "2026-11-21 08:00:00.123");
    assert_eq!(field(0, "u"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    // Concatenation is unambiguous: ('a|b', 'c') and ('a', 'b|c') differ.
    let t_and_t2 = format!("{}|{}", field(0, "t"), field(0, "t2"));
    assert_eq!(t_and_t2, "0:|3:a|b");
}

/// The text row hash (`Hashing::Text`, what a reconcile with an Athena side computes): the MD5
/// of the row's canonical text, the same from PostgreSQL, from DataFusion and from Rust.
#[tokio::test]
async fn the_text_row_hash_is_the_same_in_both_engines_and_in_rust() {
    let BothEngines {
        _lake,
        pg,
        lake: lake_source,
        left,
        right,
    } = in_both_engines(VECTORS_SQL, "vectors", &vectors_batch()).await;
    let select = |source: &Arc<dyn Source>, columns: &[lakecheck::model::Column]| {
        let fields: Vec<String> = left
            .iter()
            .zip(&right)
            .zip(columns)
            .map(|((l, r), c)| {
                source.canonical_sql(c, lakecheck::model::canon::choose(l, r).unwrap())
            })
            .collect();
        let text = fields.join(" || '|' || ");
        format!(
            "SELECT {text}, {} FROM {} ORDER BY {}",
            source.md5_int64_sql(&text),
            source.table_sql("vectors"),
            lakecheck::model::sql::quote_ident("id"),
        )
    };
    let from_pg = pg.query(&select(&pg, &left)).await.unwrap();
    let from_lake = lake_source
        .query(&select(&lake_source, &right))
        .await
        .unwrap();
    assert_eq!(from_pg.rows.len(), 4);
    assert_eq!(
        from_pg.rows, from_lake.rows,
        "canonical text and hash, row by row"
    );
    let mut hashes = std::collections::BTreeSet::new();
    for row in &from_pg.rows {
        let text = row[0].as_deref().unwrap();
        let hash: i64 = row[1].as_deref().unwrap().parse().unwrap();
        assert_eq!(
            hash,
            lakecheck::model::row_hash::md5_int64(text.as_bytes()),
            "{text}"
        );
        hashes.insert(hash);
    }
    assert_eq!(hashes.len(), 4, "every row hashes apart");
}

use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use lakecheck::results::Status;
use serde_json::json;

/// Runs `sql` over the world's raw tables in DataFusion and writes the result as `table` into
/// a fresh local lake folder.
async fn derived_table(world: &World, table: &str, sql: &str) -> tempfile::TempDir {
    let ctx = SessionContext::new();
    let raw = world.lake_dir.path().join("raw/database/autocorp");
    for name in ["customers", "sales_order"] {
        let path = raw.join(name);
        ctx.register_parquet(name, path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join(table);
    ctx.sql(sql)
        .await
        .unwrap()
        .write_parquet(
            dir.to_str().unwrap(),
            DataFrameWriteOptions::new().with_single_file_output(false),
            None,
        )
        .await
        .unwrap();
    out
}

fn changed_columns(result: &lakecheck::results::CheckResult, key: &str) -> Vec<String> {
    let samples = result.samples.as_ref().expect("samples");
    let mut columns: Vec<String> = samples
        .rows
        .iter()
        .filter(|r| r[0].as_deref() == Some("changed") && r[1].as_deref() == Some(key))
        .map(|r| r[2].clone().unwrap())
        .collect();
    columns.sort();
    columns
}

#[tokio::test]
async fn identical_tables_match_across_engines() {
    let world = world().await;
    let mut checks = String::new();
    use lakecheck::demo::autocorp::ROW_COUNTS;
    for (table, _) in ROW_COUNTS {
        for src in ["lake", "s3"] {
            checks.push_str(&format!("  - {{ name: {table} {src}, type: table_match, left: pg.{table}, right: {src}.{table} }}\n"));
        }
    }
    checks.push_str("  - { name: lake vs s3, type: table_match, left: lake.sales_order, right: s3.sales_order, key: [order_id] }\n");
    let report = world.run(&checks).await;
    crate::harness::assert_all_pass(&report);
    assert_eq!(report.results().count(), 2 * ROW_COUNTS.len() + 1);
    for (table, rows) in ROW_COUNTS {
        for src in ["lake", "s3"] {
            let name = format!("{table} {src}");
            let result = report.results().find(|r| r.name == name).unwrap();
            assert_eq!(result.metrics["matched"], json!(rows), "{name}");
            assert_eq!(result.metrics["left_rows"], json!(rows), "{name}");
            assert_eq!(result.metrics["right_rows"], json!(rows), "{name}");
        }
    }
    let both = report.results().find(|r| r.name == "lake vs s3").unwrap();
    assert_eq!(both.metrics["matched"], json!(1000));
    let customers = report
        .results()
        .find(|r| r.name == "customers lake")
        .unwrap();
    assert_eq!(
        customers.metrics["key"],
        json!(["customer_id"]),
        "the Postgres primary key is the default key"
    );
}

const CUSTOMER_CHANGES: &str = "
SELECT customer_id,
       CASE WHEN customer_id = 11 THEN first_name || ' ' ELSE first_name END AS first_name,
       last_name,
       CASE WHEN customer_id = 10 THEN 'someone.else@example.com' ELSE email END AS email,
       CASE WHEN customer_id = 22 THEN '' ELSE phone END AS phone,
       city, state, created_at,
       CASE WHEN customer_id = 12 THEN updated_at + INTERVAL '1 microsecond' ELSE updated_at END AS updated_at,
       now() AS etl_timestamp
FROM customers WHERE customer_id <> 5
UNION ALL
SELECT customer_id + 100000, first_name, last_name, email, phone, city, state, created_at, updated_at, now()
FROM customers WHERE customer_id = 1
UNION ALL
SELECT customer_id, first_name, last_name, email, phone, city, state, created_at, updated_at, now()
FROM customers WHERE customer_id = 20";

#[rstest::rstest]
#[case::local("local")]
#[case::s3("s3")]
#[tokio::test]
async fn every_kind_of_difference_is_found_with_its_key(#[case] place: &str) {
    let sources: &[&str] = if place == "s3" {
        &["pg", "s3"]
    } else {
        &["pg"]
    };
    let world = world_with(sources).await;
    let local = derived_table(&world, "customers", CUSTOMER_CHANGES).await;
    if place == "s3" {
        let folder = local.path().join("customers");
        upload_folder(&world.s3, &folder, "changed-s3/customers").await;
    }
    let source = if place == "local" {
        format!("{{ type: lake, url: \"{}\" }}", local.path().display())
    } else {
        format!(
            "{{ type: lake, url: \"s3://lake/changed-s3\", storage: {{ endpoint: \"{}\", allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }} }}",
            world.s3.endpoint
        )
    };
    let text = format!(
        "{}  changed: {source}\nchecks:\n  - {{ name: diff, type: table_match, left: pg.customers, right: changed.customers }}\n",
        world.sources_yaml()
    );
    let file = parse_rule_text(Path::new("diff.yml"), &text, &world.vars()).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let result = report.results().next().unwrap();
    assert_eq!(
        result.status,
        Status::Fail,
        "{} {:?}",
        result.message,
        result.error
    );
    let m = &result.metrics;
    assert_eq!(m["left_rows"], json!(1149));
    assert_eq!(m["right_rows"], json!(1150));
    assert_eq!(m["missing_in_target"], json!(1));
    assert_eq!(m["missing_keys"], json!(["customer_id=5"]));
    // Key 20 twice in the target: one copy pairs with the source row, the other is extra.
    assert_eq!(m["extra_in_target"], json!(2));
    assert_eq!(
        m["extra_keys"],
        json!(["customer_id=100001", "customer_id=20"])
    );
    assert_eq!(m["changed"], json!(4));
    assert_eq!(m["duplicate_keys"], json!(1));
    assert_eq!(m["duplicate_keys_right"], json!(1));
    assert_eq!(m["matched"], json!(1149 - 1 - 4));
    assert_eq!(
        m["ignored_columns"],
        json!(["etl_timestamp"]),
        "a target-only column is ignored"
    );
    assert_eq!(changed_columns(result, "customer_id=10"), vec!["email"]);
    assert_eq!(
        changed_columns(result, "customer_id=11"),
        vec!["first_name"],
        "a trailing space is a difference"
    );
    assert_eq!(
        changed_columns(result, "customer_id=12"),
        vec!["updated_at"],
        "a 1 µs shift is a difference"
    );
    assert_eq!(
        changed_columns(result, "customer_id=22"),
        vec!["phone"],
        "NULL is not an empty string"
    );
    insta::assert_json_snapshot!(
        format!("table_match_differences_{place}"),
        json!({ "status": result.status, "observed": result.observed, "metrics": result.metrics, "samples": result.samples })
    );
    let samples = result.samples.as_ref().unwrap();
    let email = samples
        .rows
        .iter()
        .find(|r| r[1].as_deref() == Some("customer_id=10"))
        .unwrap();
    assert_eq!(email[4].as_deref(), Some("someone.else@example.com"));
    assert!(samples
        .rows
        .iter()
        .any(|r| r[0].as_deref() == Some("duplicate key")
            && r[1].as_deref().unwrap().starts_with("customer_id=20 ")));
}

#[tokio::test]
async fn decimals_compare_by_value_not_scale() {
    let world = pg_world().await;
    let sql = "SELECT order_id, customer_id, order_date, status,
                      CAST(CASE WHEN order_id = 7 THEN total_amount + 0.01 ELSE total_amount END AS DECIMAL(14,4)) AS total_amount,
                      created_at, updated_at FROM sales_order";
    let local = derived_table(&world, "sales_order", sql).await;
    let text = format!(
        "{}  wide: {{ type: lake, url: \"{}\" }}\nchecks:\n  - {{ name: diff, type: table_match, left: pg.sales_order, right: wide.sales_order }}\n  - {{ name: same, type: table_match, left: pg.sales_order, right: wide.sales_order, left_where: \"order_id <> 7\", right_where: \"order_id <> 7\" }}\n",
        world.sources_yaml(),
        local.path().display()
    );
    let file = parse_rule_text(Path::new("decimals.yml"), &text, &world.vars()).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let diff = report.results().find(|r| r.name == "diff").unwrap();
    assert_eq!(diff.metrics["changed"], json!(1), "{}", diff.message);
    // numeric(10,2) and Decimal(14,4) both declare a scale: hashed as text at scale 4.
    let compared = diff.metrics["compared_columns"].as_array().unwrap();
    assert!(
        compared.contains(&json!("total_amount (scaled4)")),
        "{compared:?}"
    );
    assert_eq!(changed_columns(diff, "order_id=7"), vec!["total_amount"]);
    let same = report.results().find(|r| r.name == "same").unwrap();
    assert_eq!(
        same.status,
        Status::Pass,
        "numeric(10,2) equals Decimal(14,4) value for value: {}",
        same.message
    );
}

#[tokio::test]
async fn a_change_in_any_type_is_found_in_its_column() {
    let world = pg_world().await;
    let pg_url = scratch_database(|db| world.pg.url(db), "vectors_diff", VECTORS_SQL).await;
    let same = tempfile::tempdir().unwrap();
    write_parquet_table(same.path(), "vectors", &vectors_batch());
    // Row 4 changed in every column but the key, each by the smallest step its type allows.
    let changed = tempfile::tempdir().unwrap();
    let ctx = SessionContext::new();
    ctx.register_batch("v", vectors_batch()).unwrap();
    let altered = ctx
        .sql(
            "SELECT id, CASE WHEN id = 4 THEN i2 - 1 ELSE i2 END AS i2,
                    CASE WHEN id = 4 THEN num - 0.001 ELSE num END AS num,
                    CASE WHEN id = 4 THEN '123456789012345678901234567890.51' ELSE num_text END AS num_text,
                    CASE WHEN id = 4 THEN CAST('-Infinity' AS DOUBLE) ELSE f8 END AS f8,
                    CASE WHEN id = 4 THEN CAST(1.0 AS REAL) ELSE f4 END AS f4,
                    CASE WHEN id = 4 THEN 'Zoë ''漢字''|~ ' ELSE t END AS t,
                    CASE WHEN id = 4 THEN '~~' ELSE t2 END AS t2,
                    CASE WHEN id = 4 THEN 'y' ELSE c END AS c,
                    CASE WHEN id = 4 THEN false ELSE b END AS b,
                    CASE WHEN id = 4 THEN d - INTERVAL '1 day' ELSE d END AS d,
                    CASE WHEN id = 4 THEN ts - INTERVAL '1 microsecond' ELSE ts END AS ts,
                    CASE WHEN id = 4 THEN tstz + INTERVAL '1 microsecond' ELSE tstz END AS tstz,
                    CASE WHEN id = 4 THEN tstz_ms - INTERVAL '1 millisecond' ELSE tstz_ms END AS tstz_ms,
                    CASE WHEN id = 4 THEN X'DEADBEEE' ELSE by END AS by,
                    CASE WHEN id = 4 THEN 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFE' ELSE u END AS u,
                    u_bin,
                    CASE WHEN id = 4 THEN 'null ' ELSE j END AS j
             FROM v",
        )
        .await
        .unwrap();
    let batches = altered.collect().await.unwrap();
    write_parquet_table(changed.path(), "vectors", &batches[0]);
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"{pg_url}\", schema: public }}\n  same: {{ type: lake, url: \"{}\" }}\n  changed: {{ type: lake, url: \"{}\" }}\n\
         checks:\n  - {{ name: same, type: table_match, left: pg.vectors, right: same.vectors, timestamp_precision: {{ tstz_ms: ms }} }}\n  - {{ name: changed, type: table_match, left: pg.vectors, right: changed.vectors, timestamp_precision: {{ tstz_ms: ms }} }}\n",
        same.path().display(),
        changed.path().display()
    );
    let file = parse_rule_text(Path::new("vectors.yml"), &text, &Arc::new(Vars::new())).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let same = report.results().find(|r| r.name == "same").unwrap();
    assert_eq!(
        same.status,
        Status::Pass,
        "{} {:?}",
        same.message,
        same.error
    );
    assert_eq!(same.metrics["matched"], json!(4));
    let changed = report.results().find(|r| r.name == "changed").unwrap();
    assert_eq!(
        changed.metrics["changed"],
        json!(1),
        "{} {:?}",
        changed.message,
        changed.error
    );
    let mut expected: Vec<String> = [
        "i2", "num", "num_text", "f8", "f4", "t", "t2", "c", "b", "d", "ts", "tstz", "tstz_ms",
        "by", "u", "j",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expected.sort();
    assert_eq!(changed_columns(changed, "id=4"), expected);
}

fn differing_measures(result: &lakecheck::results::CheckResult) -> Vec<(String, String)> {
    result
        .samples
        .as_ref()
        .map(|s| {
            s.rows
                .iter()
                .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn aggregate_profiles_agree_across_engines_and_name_what_differs() {
    let world = world().await;
    let changed = derived_table(&world, "customers", CUSTOMER_CHANGES).await;
    let wide_sql = "SELECT order_id, customer_id, order_date, status,
                      CAST(CASE WHEN order_id = 7 THEN total_amount + 0.01 ELSE total_amount END AS DECIMAL(14,4)) AS total_amount,
                      created_at, updated_at FROM sales_order";
    let wide = derived_table(&world, "sales_order", wide_sql).await;
    let text = format!(
        "{}  changed: {{ type: lake, url: \"{}\" }}\n  wide: {{ type: lake, url: \"{}\" }}\nchecks:\n\
         \x20 - {{ name: lake, type: aggregate_match, left: pg.sales_order, right: lake.sales_order }}\n\
         \x20 - {{ name: s3, type: aggregate_match, left: pg.customers, right: s3.customers }}\n\
         \x20 - {{ name: changed, type: aggregate_match, left: pg.customers, right: changed.customers }}\n\
         \x20 - {{ name: wide, type: aggregate_match, left: pg.sales_order, right: wide.sales_order }}\n\
         \x20 - {{ name: wide without 7, type: aggregate_match, left: pg.sales_order, right: wide.sales_order, left_where: \"order_id <> 7\", right_where: \"order_id <> 7\" }}\n\
         \x20 - {{ name: tolerated, type: aggregate_match, left: pg.sales_order, right: wide.sales_order, columns: [total_amount], distinct: false, tolerance: 0.01% }}\n",
        world.sources_yaml(),
        changed.path().display(),
        wide.path().display()
    );
    let file = parse_rule_text(Path::new("aggregates.yml"), &text, &world.vars()).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let get = |name: &str| report.results().find(|r| r.name == name).unwrap();
    let lake = get("lake");
    assert_eq!(
        lake.status,
        Status::Pass,
        "{} {:?} {:?}",
        lake.message,
        lake.error,
        lake.samples
    );
    // rows + 7 columns x (non_null, distinct, min, max) + sums of order_id, customer_id, total_amount
    assert_eq!(lake.metrics["measures_compared"], json!(1 + 7 * 4 + 3));
    assert_eq!(get("s3").status, Status::Pass, "{}", get("s3").message);
    let changed = get("changed");
    assert_eq!(changed.status, Status::Fail);
    let measures = differing_measures(changed);
    for expected in [
        ("*", "rows"),
        ("phone", "non_null"),
        ("customer_id", "max"),
        ("customer_id", "sum"),
        ("email", "distinct"),
    ] {
        assert!(
            measures.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} in {measures:?}"
        );
    }
    let wide = get("wide");
    assert_eq!(wide.status, Status::Fail);
    assert!(
        differing_measures(wide).contains(&("total_amount".into(), "sum".into())),
        "{:?}",
        differing_measures(wide)
    );
    assert_eq!(
        get("wide without 7").status,
        Status::Pass,
        "{}",
        get("wide without 7").message
    );
    assert_eq!(
        get("tolerated").status,
        Status::Pass,
        "{}",
        get("tolerated").message
    );
}

#[tokio::test]
async fn composite_keys_are_segmented_by_key_hash_and_find_the_same_differences() {
    let world = pg_world().await;
    let local = derived_table(&world, "customers", CUSTOMER_CHANGES).await;
    let text = format!(
        "{}  changed: {{ type: lake, url: \"{}\" }}\nchecks:\n\
         \x20 - {{ name: composite, type: table_match, left: pg.customers, right: changed.customers, key: [customer_id, state] }}\n\
         \x20 - {{ name: ranged, type: table_match, left: pg.customers, right: changed.customers }}\n",
        world.sources_yaml(),
        local.path().display()
    );
    let file = parse_rule_text(Path::new("composite.yml"), &text, &world.vars()).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let composite = report.results().find(|r| r.name == "composite").unwrap();
    let ranged = report.results().find(|r| r.name == "ranged").unwrap();
    assert_eq!(composite.metrics["segmented_by"], json!("key hash"));
    assert_eq!(ranged.metrics["segmented_by"], json!("key range"));
    for measure in [
        "left_rows",
        "right_rows",
        "matched",
        "missing_in_target",
        "extra_in_target",
        "changed",
        "duplicate_keys",
    ] {
        assert_eq!(
            composite.metrics[measure], ranged.metrics[measure],
            "{measure}"
        );
    }
    let missing = composite.metrics["missing_keys"][0].as_str().unwrap();
    assert!(missing.starts_with("customer_id=5, state="), "{missing}");
    assert_eq!(
        changed_columns(
            composite,
            &format!("customer_id=10, state={}", {
                let samples = composite.samples.as_ref().unwrap();
                let row = samples
                    .rows
                    .iter()
                    .find(|r| r[1].as_deref().unwrap().starts_with("customer_id=10,"))
                    .unwrap();
                row[1]
                    .as_deref()
                    .unwrap()
                    .split("state=")
                    .nth(1)
                    .unwrap()
                    .to_string()
            })
        ),
        vec!["email"]
    );
}

/// A badly mismatched table with a text key (segments by key hash, so every read of rows is a
/// scan) stops reading at `max_differences`: one read of rows per side, not one per chunk, and
/// the result says how many differences are certain.
#[tokio::test]
async fn a_reconcile_stops_reading_past_max_differences() {
    let world = pg_world().await;
    let url = scratch_database(
        |d| world.pg.url(d),
        "max_differences",
        "CREATE TABLE a (code text PRIMARY KEY, amount int NOT NULL);
         INSERT INTO a SELECT 'k' || g, g FROM generate_series(1, 250000) g;
         CREATE TABLE b (code text PRIMARY KEY, amount int NOT NULL);
         INSERT INTO b SELECT 'k' || g, g + 1 FROM generate_series(1, 250000) g;",
    )
    .await;
    let run = |max: &str| {
        let text = format!(
            "sources:\n  db: {{ type: postgres, url: \"{url}\" }}\nchecks:\n\
             \x20 - {{ name: mismatched, type: table_match, left: db.a, right: db.b{max} }}\n"
        );
        async move {
            let file =
                parse_rule_text(Path::new("cap.yml"), &text, &Arc::new(Vars::new())).unwrap();
            crate::harness::run_files(&[file]).await
        }
    };
    // Rows of differing segments are read by a list of key-hash buckets.
    let segment_list = format!("& {}) IN (", lakecheck::reconcile::SEGMENTS - 1);
    let rows_reads = |result: &lakecheck::results::CheckResult| {
        result
            .queries
            .iter()
            .filter(|q| q.sql.contains(&segment_list))
            .count()
    };

    let capped = run(", max_differences: 1000").await;
    let result = crate::harness::result(&capped, "mismatched");
    crate::harness::assert_status(result, lakecheck::results::Status::Fail);
    let metrics = &result.metrics;
    assert_eq!(metrics["max_differences"], 1000);
    let at_least = metrics["differences_at_least"].as_u64().unwrap();
    assert!(at_least > 1000, "{metrics:?}");
    assert!(
        result.message.contains("more than 1000 differences")
            && result.message.contains("raise `max_differences`"),
        "{}",
        result.message
    );
    let changed = metrics["changed"].as_u64().unwrap();
    assert!(
        changed > 0 && changed < 250_000,
        "one chunk was read: {metrics:?}"
    );
    assert!(!result.samples.as_ref().unwrap().rows.is_empty());
    assert_eq!(rows_reads(result), 2, "one read of rows per side");

    // The default cap (100,000) stops this one too; above the differences, every one is read
    // and counted.
    let default = run("").await;
    let result = crate::harness::result(&default, "mismatched");
    assert_eq!(result.metrics["max_differences"], 100_000);
    assert!(result.metrics["differences_at_least"].as_u64().unwrap() > 100_000);
    let uncapped = run(", max_differences: 1000000").await;
    let result = crate::harness::result(&uncapped, "mismatched");
    assert_eq!(result.metrics["changed"], 250_000);
    assert!(result.metrics.get("differences_at_least").is_none());
    assert!(rows_reads(result) > 2, "every chunk was read");
}

const SCALED_SQL: &str = "
CREATE TABLE amounts (id int PRIMARY KEY, a numeric(10,2), m numeric(18,4), z numeric(5,0));
INSERT INTO amounts VALUES
 (1, 0, 0, 0),
 (2, -1.5, -0.0001, -1),
 (3, 99999999.99, 99999999999999.9999, 99999),
 (4, -99999999.99, -99999999999999.9999, -99999),
 (5, 1.5, 1.5, 7),
 (6, 1.50, 2, NULL),
 (7, NULL, NULL, 0);
CREATE TABLE nan_amounts (id int PRIMARY KEY, a numeric(10,2));
INSERT INTO nan_amounts VALUES (1, 'NaN'), (2, NULL);
";

/// The lake's copy of `amounts`: `a` at a larger scale (Decimal(12,4)), `m` alike, `z` narrower;
/// row 6 differs by the smallest step of the lake's scale (1.50 vs 1.5001).
fn scaled_batch() -> RecordBatch {
    let decimals = |values: Vec<Option<i128>>, precision: u8, scale: i8| -> ArrayRef {
        Arc::new(
            Decimal128Array::from(values)
                .with_precision_and_scale(precision, scale)
                .unwrap(),
        )
    };
    RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5, 6, 7])) as ArrayRef,
        ),
        (
            "a",
            decimals(
                vec![
                    Some(0),
                    Some(-15_000),
                    Some(999_999_999_900),
                    Some(-999_999_999_900),
                    Some(15_000),
                    Some(15_001),
                    None,
                ],
                12,
                4,
            ),
        ),
        (
            "m",
            decimals(
                vec![
                    Some(0),
                    Some(-1),
                    Some(999_999_999_999_999_999),
                    Some(-999_999_999_999_999_999),
                    Some(15_000),
                    Some(20_000),
                    None,
                ],
                18,
                4,
            ),
        ),
        (
            "z",
            decimals(
                vec![
                    Some(0),
                    Some(-1),
                    Some(99_999),
                    Some(-99_999),
                    Some(7),
                    None,
                    Some(0),
                ],
                5,
                0,
            ),
        ),
    ])
    .unwrap()
}

/// Decimals that both declare a scale hash as their text at the larger scale, identically in
/// both engines: 1.5 in numeric(10,2) equals 1.5000 in Decimal(12,4), 1.50 differs from 1.5001,
/// and the extremes of each precision agree.
#[tokio::test]
async fn scaled_decimals_hash_identically_in_both_engines() {
    use lakecheck::model::canon::scaled_decimal;
    let both = in_both_engines(SCALED_SQL, "amounts", &scaled_batch()).await;
    let (pg, lake_source) = (&both.pg, &both.lake);
    let (left, right) = (&both.left, &both.right);
    let canons: Vec<Canon> = left
        .iter()
        .zip(right)
        .map(|(l, r)| scaled_decimal(l, r).unwrap_or(Canon::Int))
        .collect();
    assert_eq!(
        canons,
        [
            Canon::Int,
            Canon::Scaled(4),
            Canon::Scaled(4),
            Canon::Scaled(0)
        ]
    );
    let select = |source: &Arc<dyn Source>, columns: &[lakecheck::model::Column], table: &str| {
        let pairs: Vec<(&lakecheck::model::Column, Canon)> =
            columns.iter().zip(canons.iter().copied()).collect();
        let fields: Vec<String> = pairs
            .iter()
            .map(|(c, canon)| source.canonical_sql(c, *canon))
            .collect();
        hashes_sql(source, &pairs, &fields, &["id"], table)
    };
    let from_pg = pg.query(&select(pg, left, "amounts")).await.unwrap();
    let from_lake = lake_source
        .query(&select(lake_source, right, "amounts"))
        .await
        .unwrap();
    assert_eq!(from_pg.rows.len(), 7);
    assert_eq!(from_lake.rows.len(), 7);
    let n = canons.len();
    for (row, (a, b)) in from_pg.rows.iter().zip(&from_lake.rows).enumerate() {
        let id = row + 1;
        for (i, column) in left.iter().enumerate().skip(1) {
            let name = &column.name;
            if id == 6 && name == "a" {
                // 1.50 vs 1.5001: the text and the hash differ, so does the row.
                assert_eq!(a[i].as_deref(), Some("1.5"));
                assert_eq!(b[i].as_deref(), Some("1.5001"));
                assert_ne!(a[n + i], b[n + i], "1.50 vs 1.5001 hash apart");
                continue;
            }
            assert_eq!(a[i], b[i], "canonical text, row {id} column {name}");
            assert_eq!(a[n + i], b[n + i], "hash, row {id} column {name}");
        }
        if id == 6 {
            assert_ne!(a[2 * n], b[2 * n], "row 6 differs");
        } else {
            assert_eq!(a[2 * n], b[2 * n], "row hash, row {id}");
        }
    }
    // The hash is of the text at the canon's scale: 1.5 → `1.5000`, -0.0001, the largest
    // numeric(18,4), and -99999 at scale 0 (each column hashed alone, seed 0).
    let hash_of = |row: usize, column: usize| -> i64 {
        from_pg.rows[row][n + column]
            .as_deref()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(hash_of(4, 1), pg_hash_seeded(b"1.5000", 0));
    assert_eq!(hash_of(1, 2), pg_hash_seeded(b"-0.0001", 0));
    assert_eq!(hash_of(2, 2), pg_hash_seeded(b"99999999999999.9999", 0));
    assert_eq!(hash_of(3, 3), pg_hash_seeded(b"-99999", 0));
    assert_eq!(from_pg.rows[2][1].as_deref(), Some("99999999.99"));
    // NaN, which numeric(10,2) admits and no lake decimal holds, hashes as its (padded) text.
    let nan_columns = pg.columns("nan_amounts").await.unwrap();
    let pairs = [(&nan_columns[1], Canon::Scaled(4))];
    let nan = pg
        .query(&format!(
            "SELECT {} FROM {} ORDER BY id",
            pg.row_hash_sql(&pairs, "0"),
            pg.table_sql("nan_amounts")
        ))
        .await
        .unwrap();
    let nan_hash: i64 = nan.rows[0][0].as_deref().unwrap().parse().unwrap();
    assert_eq!(nan_hash, pg_hash_seeded(b"NaN00", 0));
    let null_hash: i64 = nan.rows[1][0].as_deref().unwrap().parse().unwrap();
    assert_eq!(
        null_hash,
        lakecheck::model::row_hash::null_hash(0, 0),
        "NULL keeps the NULL hash"
    );
}
