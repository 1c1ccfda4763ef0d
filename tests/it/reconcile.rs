//! Canonical values and the shared hash, run through both engines: a value must encode (and
//! hash) identically from PostgreSQL and from Parquet, and different values must not.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use lakecheck::reconcile::canonical::Canon;
use lakecheck::reconcile::hash::pg_hash;
use lakecheck::rules::{parse_rule_text, Vars};
use lakecheck::sources::Source;

use crate::harness::world;

/// A fresh database on the shared server, created with a writable connection (tests only).
pub async fn scratch_database(url_of: impl Fn(&str) -> String, name: &str, setup: &str) -> String {
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
    let world = world().await;
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
        .map(|s| format!("({})", lakecheck::sql::quote_literal(s)))
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
        assert_eq!(pg_hash(text.as_bytes()), expected, "hash of {text:?}");
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

#[tokio::test]
async fn every_type_encodes_identically_in_both_engines() {
    let world = world().await;
    let pg_url = scratch_database(|db| world.pg.url(db), "vectors", VECTORS_SQL).await;
    let lake = tempfile::tempdir().unwrap();
    write_parquet_table(lake.path(), "vectors", &vectors_batch());
    let (pg, lake_source) = sources(&pg_url, lake.path());
    let (left, right) = (
        pg.columns("vectors").await.unwrap(),
        lake_source.columns("vectors").await.unwrap(),
    );
    let mut pg_fields = Vec::new();
    let mut lake_fields = Vec::new();
    let mut canons = Vec::new();
    for l in &left {
        let r = right.iter().find(|r| r.name == l.name).unwrap();
        let canon = lakecheck::reconcile::canonical::choose(l, r).unwrap_or_else(|e| panic!("{e}"));
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
    let select = |fields: &[String], source: &Arc<dyn Source>| {
        let row = source.hash_sql(&format!("concat_ws('|', {})", fields.join(", ")));
        format!(
            "SELECT {}, {row} AS row_hash FROM {} ORDER BY 1",
            fields.join(", "),
            source.table_sql("vectors")
        )
    };
    let from_pg = pg.query(&select(&pg_fields, &pg)).await.unwrap();
    let from_lake = lake_source
        .query(&select(&lake_fields, &lake_source))
        .await
        .unwrap();
    for (row, (a, b)) in from_pg.rows.iter().zip(&from_lake.rows).enumerate() {
        for (i, (name, _)) in canons.iter().enumerate() {
            assert_eq!(a[i], b[i], "row {} column {name}", row + 1);
        }
        assert_eq!(a.last(), b.last(), "row hash of row {}", row + 1);
    }
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
    assert_eq!(
        field(0, "tstz_ms"),
        micros("2026-11-21T08:00:00.123Z").to_string()
    );
    assert_eq!(field(0, "u"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    // Concatenation is unambiguous: ('a|b', 'c') and ('a', 'b|c') differ.
    let t_and_t2 = format!("{}|{}", field(0, "t"), field(0, "t2"));
    assert_eq!(t_and_t2, "0:|3:a|b");
}
