//! The raw zone as AWS DMS writes it: full load + CDC files rebuilt to the current state.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray,
};
use lakecheck::demo::autocorp::to_parquet;
use lakecheck::results::Status;
use lakecheck::rules::{parse_rule_text, Vars};
use rstest::rstest;
use serde_json::json;

use crate::harness::pg_world;
use crate::reconcile::scratch_database;

const FINAL_STATE_SQL: &str = "
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL, updated_at timestamptz NOT NULL);
INSERT INTO items VALUES
  (1, 'a', 1, '2026-11-20 00:00:00+00'), (2, 'b', 200, '2026-11-21 09:00:00+00'), (4, 'd', 4, '2026-11-20 00:00:00+00'),
  (5, 'e', 5, '2026-11-20 00:00:00+00'), (6, 'f', 6, '2026-11-20 00:00:00+00'), (7, 'g', 7, '2026-11-21 08:00:00+00');";

/// (op, id, name, qty, updated_at)
type Change = (&'static str, i32, &'static str, i32, &'static str);

fn batch(rows: &[Change], with_op: bool, commit_ts: Option<&str>) -> RecordBatch {
    let micros = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_micros()
    };
    let mut columns: Vec<(&str, ArrayRef)> = Vec::new();
    if with_op {
        columns.push((
            "Op",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        ));
    }
    columns.push((
        "id",
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1))),
    ));
    columns.push((
        "name",
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
    ));
    columns.push((
        "qty",
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.3))),
    ));
    columns.push((
        "updated_at",
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| micros(r.4)))
                .with_timezone("UTC"),
        ),
    ));
    if let Some(ts) = commit_ts {
        columns.push((
            "commit_ts",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|_| ts))),
        ));
    }
    RecordBatch::try_from_iter(columns).unwrap()
}

const LOAD1: &[Change] = &[
    ("I", 1, "a", 1, "2026-11-20T00:00:00Z"),
    ("I", 2, "b", 2, "2026-11-20T00:00:00Z"),
    ("I", 3, "c", 3, "2026-11-20T00:00:00Z"),
    ("I", 4, "d", 4, "2026-11-20T00:00:00Z"),
];
const LOAD2: &[Change] = &[
    ("I", 5, "e", 5, "2026-11-20T00:00:00Z"),
    ("I", 6, "f", 6, "2026-11-20T00:00:00Z"),
];
const CDC1: &[Change] = &[
    ("U", 2, "b", 20, "2026-11-21T08:00:00Z"),
    ("D", 3, "c", 3, "2026-11-20T00:00:00Z"),
    ("I", 7, "g", 7, "2026-11-21T08:00:00Z"),
];
const CDC2: &[Change] = &[
    ("U", 2, "b", 200, "2026-11-21T09:00:00Z"),
    ("I", 8, "h", 8, "2026-11-21T09:00:00Z"),
    ("D", 8, "h", 8, "2026-11-21T09:00:00Z"),
];

struct Layout {
    date_folders: bool,
    commit_ts: bool,
    with_op: bool,
}

/// Writes the DMS folder for `items` with the given CDC files.
fn write_items(root: &Path, layout: &Layout, cdc: &[(&str, &[Change], &str)]) {
    let table = root.join("items");
    std::fs::create_dir_all(&table).unwrap();
    let load_ts = layout.commit_ts.then_some("2026-11-20 00:00:00.000000");
    std::fs::write(
        table.join("LOAD00000001.parquet"),
        to_parquet(&batch(LOAD1, false, load_ts)),
    )
    .unwrap();
    std::fs::write(
        table.join("LOAD00000002.parquet"),
        to_parquet(&batch(LOAD2, false, load_ts)),
    )
    .unwrap();
    for (file, rows, ts) in cdc {
        let dir = if layout.date_folders {
            table.join("2026/11/21")
        } else {
            table.clone()
        };
        std::fs::create_dir_all(&dir).unwrap();
        let ts = layout.commit_ts.then_some(*ts);
        std::fs::write(dir.join(file), to_parquet(&batch(rows, layout.with_op, ts))).unwrap();
    }
}

const BOTH_CDC: &[(&str, &[Change], &str)] = &[
    (
        "20261121-080000000.parquet",
        CDC1,
        "2026-11-21 08:00:00.000000",
    ),
    (
        "20261121-090000000.parquet",
        CDC2,
        "2026-11-21 09:00:00.000000",
    ),
];

fn dms_source(root: &Path, layout: &Layout, extra: &str) -> String {
    let ts = if layout.commit_ts {
        ", timestamp_column: commit_ts"
    } else {
        ""
    };
    format!(
        "{{ type: lake, url: \"{}\", layout: dms, keys: {{ items: [id] }}{ts}{extra} }}",
        root.display()
    )
}

async fn state(text: &str, pg_url: &str) -> Vec<(i32, i32)> {
    let file = parse_rule_text(
        Path::new("dms.yml"),
        &text.replace("${PG}", pg_url),
        &Arc::new(Vars::new()),
    )
    .unwrap();
    let rows = file
        .sources
        .get("raw")
        .unwrap()
        .query("SELECT id, qty FROM items ORDER BY id")
        .await
        .unwrap();
    rows.rows
        .iter()
        .map(|r| {
            (
                r[0].as_deref().unwrap().parse().unwrap(),
                r[1].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[rstest]
#[case::flat(false, true)]
#[case::date_folders(true, true)]
#[case::flat_without_commit_times(false, false)]
#[case::date_folders_without_commit_times(true, false)]
#[tokio::test]
async fn full_load_and_cdc_rebuild_the_current_state(
    #[case] date_folders: bool,
    #[case] commit_ts: bool,
) {
    let world = pg_world().await;
    let db = format!("dms_{}_{}", date_folders as u8, commit_ts as u8);
    let pg_url = scratch_database(|d| world.pg.url(d), &db, FINAL_STATE_SQL).await;
    let lake = tempfile::tempdir().unwrap();
    let layout = Layout {
        date_folders,
        commit_ts,
        with_op: true,
    };
    write_items(lake.path(), &layout, BOTH_CDC);

    let now = format!("sources:\n  raw: {}\n  pg: {{ type: postgres, url: \"${{PG}}\", schema: public }}\nchecks: []\n", dms_source(lake.path(), &layout, ""));
    assert_eq!(
        state(&now, &pg_url).await,
        vec![(1, 1), (2, 200), (4, 4), (5, 5), (6, 6), (7, 7)]
    );
    let before = now.replace(" }\n  pg:", ", as_of: \"2026-11-21T08:30:00Z\" }\n  pg:");
    assert_eq!(
        state(&before, &pg_url).await,
        vec![(1, 1), (2, 20), (4, 4), (5, 5), (6, 6), (7, 7)],
        "as of 08:30"
    );
    let at_load = now.replace(" }\n  pg:", ", as_of: \"2026-11-20T12:00:00Z\" }\n  pg:");
    assert_eq!(
        state(&at_load, &pg_url).await,
        vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)],
        "as of the full load"
    );

    // Every check kind runs on the rebuilt table.
    let checks = r#"
  - { name: count, type: row_count, table: raw.items, equals: 6 }
  - { name: count match, type: row_count_match, left: pg.items, right: raw.items }
  - { name: not null, type: not_null, table: raw.items, columns: [id, name, qty] }
  - { name: unique, type: unique, table: raw.items, columns: [id] }
  - { name: names, type: accepted_values, table: raw.items, column: name, values: [a, b, d, e, f, g] }
  - { name: range, type: range, table: raw.items, column: qty, min: 1, max: 200 }
  - { name: condition, type: condition, table: raw.items, expression: "qty > 0" }
  - { name: sql, type: sql, source: raw, query: "SELECT id FROM items WHERE id IN (3, 8)" }
  - { name: schema, type: schema_match, left: pg.items, right: raw.items }
  - { name: match, type: table_match, left: pg.items, right: raw.items }
"#;
    let file = parse_rule_text(
        Path::new("dms.yml"),
        &format!(
            "{}{checks}",
            now.replace("checks: []\n", "checks:\n")
                .replace("${PG}", &pg_url)
        ),
        &Arc::new(Vars::new()),
    )
    .unwrap();
    let report = crate::harness::run_files(&[file]).await;
    crate::harness::assert_all_pass(&report);
}

#[tokio::test]
async fn a_cdc_delete_that_never_arrived_is_an_extra_row() {
    let world = pg_world().await;
    let pg_url = scratch_database(|d| world.pg.url(d), "dms_lost_delete", FINAL_STATE_SQL).await;
    let lake = tempfile::tempdir().unwrap();
    let layout = Layout {
        date_folders: false,
        commit_ts: true,
        with_op: true,
    };
    let without_delete: Vec<Change> = CDC1.iter().copied().filter(|c| c.0 != "D").collect();
    let cdc: Vec<(&str, &[Change], &str)> = vec![
        (
            "20261121-080000000.parquet",
            &without_delete,
            "2026-11-21 08:00:00.000000",
        ),
        (
            "20261121-090000000.parquet",
            CDC2,
            "2026-11-21 09:00:00.000000",
        ),
    ];
    write_items(lake.path(), &layout, &cdc);
    let text = format!(
        "sources:\n  raw: {}\n  pg: {{ type: postgres, url: \"{pg_url}\", schema: public }}\nchecks:\n  - {{ name: match, type: table_match, left: pg.items, right: raw.items }}\n",
        dms_source(lake.path(), &layout, "")
    );
    let file = parse_rule_text(Path::new("dms.yml"), &text, &Arc::new(Vars::new())).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let result = report.results().next().unwrap();
    assert_eq!(
        result.status,
        Status::Fail,
        "{} {:?}",
        result.message,
        result.error
    );
    assert_eq!(result.metrics["extra_in_target"], json!(1));
    assert_eq!(result.metrics["extra_keys"], json!(["id=3"]));
    assert_eq!(result.metrics["missing_in_target"], json!(0));
    assert_eq!(result.metrics["changed"], json!(0));
}

#[tokio::test]
async fn insert_only_cdc_is_an_error_for_reconciliation_not_a_false_mismatch() {
    let world = pg_world().await;
    let pg_url = scratch_database(|d| world.pg.url(d), "dms_inserts_only", FINAL_STATE_SQL).await;
    let lake = tempfile::tempdir().unwrap();
    let layout = Layout {
        date_folders: false,
        commit_ts: false,
        with_op: false,
    };
    write_items(lake.path(), &layout, BOTH_CDC);
    let text = format!(
        "sources:\n  raw: {}\n  pg: {{ type: postgres, url: \"{pg_url}\", schema: public }}\nchecks:\n\
         \x20 - {{ name: match, type: table_match, left: pg.items, right: raw.items }}\n\
         \x20 - {{ name: referenced, type: relationships, table: pg.items, column: id, to: raw.items }}\n\
         \x20 - {{ name: count, type: row_count, table: raw.items, min: 1 }}\n",
        dms_source(lake.path(), &layout, "")
    );
    let file = parse_rule_text(Path::new("dms.yml"), &text, &Arc::new(Vars::new())).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    // A deleted key would still look present in the insert-only table: a relationship to it
    // could pass on an orphan, so it is refused like the reconcile.
    for name in ["match", "referenced"] {
        let refused = report.results().find(|r| r.name == name).unwrap();
        assert_eq!(refused.status, Status::Error, "{name}: {}", refused.message);
        let error = refused.error.as_deref().unwrap();
        assert!(
            error.contains("insert-only DMS change data")
                && error.contains("updates and deletes cannot be reconciled"),
            "{name}: {error}"
        );
    }
    assert_eq!(
        report.results().find(|r| r.name == "count").unwrap().status,
        Status::Pass
    );
}

#[tokio::test]
async fn cdc_without_a_key_is_a_clear_error() {
    let lake = tempfile::tempdir().unwrap();
    let layout = Layout {
        date_folders: false,
        commit_ts: false,
        with_op: true,
    };
    write_items(lake.path(), &layout, BOTH_CDC);
    let text = format!(
        "sources:\n  raw: {{ type: lake, url: \"{}\", layout: dms }}\nchecks:\n  - {{ name: count, type: row_count, table: raw.items, min: 1 }}\n",
        lake.path().display()
    );
    let file = parse_rule_text(Path::new("dms.yml"), &text, &Arc::new(Vars::new())).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let error = report.results().next().unwrap().error.clone().unwrap();
    assert!(
        error.contains("has CDC files: give its key under `keys:`"),
        "{error}"
    );
}

// --- Issue 12: no input the rebuild cannot read correctly passes silently. ---

/// `batch(rows, with_op, None)` followed by `extra` columns (commit time, sequence) as given.
fn with_columns(rows: &[Change], with_op: bool, extra: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let base = batch(rows, with_op, None);
    let schema = base.schema();
    let mut columns: Vec<(&str, ArrayRef)> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .zip(base.columns().iter().cloned())
        .collect();
    columns.extend(extra);
    RecordBatch::try_from_iter(columns).unwrap()
}

/// Commit times as DMS writes them into a string column; `None` is NULL.
fn text_times(times: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(times.to_vec()))
}

/// Writes `files` (name relative to the `items` folder, batch) under `root/items`.
fn write_files(root: &Path, files: &[(&str, RecordBatch)]) {
    for (name, batch) in files {
        let path = root.join("items").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, to_parquet(batch)).unwrap();
    }
}

/// The full load (LOAD1, LOAD2) with string commit times at the load.
fn full_load_files() -> Vec<(&'static str, RecordBatch)> {
    let load_time = |n: usize| text_times(&vec![Some("2026-11-20 00:00:00.000000"); n]);
    vec![
        (
            "LOAD00000001.parquet",
            with_columns(LOAD1, false, vec![("commit_ts", load_time(LOAD1.len()))]),
        ),
        (
            "LOAD00000002.parquet",
            with_columns(LOAD2, false, vec![("commit_ts", load_time(LOAD2.len()))]),
        ),
    ]
}

/// A rule file reading `items` of the DMS folder `root` with `options`, and `checks`.
fn raw_rules(root: &Path, options: &str, checks: &str) -> String {
    format!(
        "sources:\n  raw: {{ type: lake, url: \"{}\", layout: dms, keys: {{ items: [id] }}{options} }}\nchecks:\n{checks}",
        root.display()
    )
}

/// Runs a `row_count` of `raw.items` and returns its error, asserting the check could not run.
async fn count_error(root: &Path, options: &str) -> String {
    let text = raw_rules(
        root,
        options,
        "  - { name: count, type: row_count, table: raw.items, min: 0 }\n",
    );
    let file = parse_rule_text(Path::new("dms.yml"), &text, &Arc::new(Vars::new())).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let result = report.results().next().unwrap();
    assert_eq!(
        result.status,
        Status::Error,
        "{} observed {:?}",
        result.message,
        result.observed
    );
    result.error.clone().unwrap()
}

#[rstest]
#[case::zone_less_iso(
    Some("2026-11-21T08:00:00"),
    "row 2: commit time `commit_ts` = `2026-11-21T08:00:00` is not a time"
)]
#[case::words(Some("soon"), "row 2: commit time `commit_ts` = `soon` is not a time")]
#[case::null(None, "row 2: commit time `commit_ts` is NULL")]
#[tokio::test]
async fn a_cdc_commit_time_that_is_not_a_time_is_an_error_naming_file_and_row(
    #[case] bad: Option<&str>,
    #[case] expected: &str,
) {
    let lake = tempfile::tempdir().unwrap();
    let mut files = full_load_files();
    let times = text_times(&[
        Some("2026-11-21 08:00:00.000000"),
        bad,
        Some("2026-11-21 08:00:00.000000"),
    ]);
    files.push((
        "20261121-080000000.parquet",
        with_columns(CDC1, true, vec![("commit_ts", times)]),
    ));
    write_files(lake.path(), &files);
    let options = ", timestamp_column: commit_ts, as_of: \"2026-11-21T08:30:00Z\"";
    let error = count_error(lake.path(), options).await;
    assert!(
        error.contains(&format!("/items/20261121-080000000.parquet`, {expected}")),
        "{error}"
    );
    assert!(error.contains("or remove `as_of`"), "{error}");
}

#[tokio::test]
async fn a_null_commit_time_in_a_full_load_file_is_an_error_too() {
    let lake = tempfile::tempdir().unwrap();
    let mut files = full_load_files();
    files[1].1 = with_columns(
        LOAD2,
        false,
        vec![(
            "commit_ts",
            text_times(&[Some("2026-11-20 00:00:00.000000"), None]),
        )],
    );
    write_files(lake.path(), &files);
    let error = count_error(
        lake.path(),
        ", timestamp_column: commit_ts, as_of: \"2026-11-21T00:00:00Z\"",
    )
    .await;
    assert!(
        error.contains("/items/LOAD00000002.parquet`, row 2: commit time `commit_ts` is NULL")
            && error.contains("DMS fills `TimestampColumnName` for every full-load and CDC row"),
        "{error}"
    );
    // Without `as_of` commit times are not needed: the table reads as before.
    assert_eq!(
        state(
            &raw_rules(lake.path(), ", timestamp_column: commit_ts", "  []\n"),
            ""
        )
        .await,
        vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)]
    );
}

#[tokio::test]
async fn a_file_without_the_commit_time_column_is_an_error_under_as_of() {
    let lake = tempfile::tempdir().unwrap();
    let mut files = full_load_files();
    files.push(("20261121-080000000.parquet", batch(CDC1, true, None)));
    write_files(lake.path(), &files);
    let error = count_error(
        lake.path(),
        ", timestamp_column: commit_ts, as_of: \"2026-11-21T08:30:00Z\"",
    )
    .await;
    assert!(
        error.contains(
            "/items/20261121-080000000.parquet` has no column `commit_ts` (the `timestamp_column`)"
        ) && error.contains("its columns are `Op`, `id`, `name`, `qty`, `updated_at`"),
        "{error}"
    );
}

/// Commit times typed as Parquet timestamps, in each unit and zone DMS may write.
fn typed_times(unit: &str, zone: Option<&str>, times: &[&str]) -> ArrayRef {
    let micros = times.iter().map(|t| {
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    });
    match unit {
        "ms" => Arc::new(
            TimestampMillisecondArray::from_iter_values(micros.map(|m| m / 1000))
                .with_timezone_opt(zone),
        ),
        "us" => {
            Arc::new(TimestampMicrosecondArray::from_iter_values(micros).with_timezone_opt(zone))
        }
        "ns" => Arc::new(
            TimestampNanosecondArray::from_iter_values(micros.map(|m| m * 1000))
                .with_timezone_opt(zone),
        ),
        _ => unreachable!("unit {unit}"),
    }
}

#[rstest]
#[case::micros("us", None)]
#[case::micros_utc("us", Some("UTC"))]
#[case::millis("ms", None)]
#[case::millis_utc("ms", Some("UTC"))]
#[case::nanos("ns", None)]
#[case::nanos_utc("ns", Some("UTC"))]
#[tokio::test]
async fn a_typed_timestamp_commit_column_is_honoured_by_as_of(
    #[case] unit: &str,
    #[case] zone: Option<&str>,
) {
    let lake = tempfile::tempdir().unwrap();
    let times = |n: usize, at: &str| typed_times(unit, zone, &vec![at; n]);
    // Files written an hour after their commits: file times alone would cut elsewhere.
    let files = vec![
        (
            "LOAD00000001.parquet",
            with_columns(
                LOAD1,
                false,
                vec![("commit_ts", times(4, "2026-11-20 00:00:00"))],
            ),
        ),
        (
            "LOAD00000002.parquet",
            with_columns(
                LOAD2,
                false,
                vec![("commit_ts", times(2, "2026-11-20 00:00:00"))],
            ),
        ),
        (
            "20261121-090000000.parquet",
            with_columns(
                CDC1,
                true,
                vec![("commit_ts", times(3, "2026-11-21 08:00:00.001"))],
            ),
        ),
        (
            "20261121-100000000.parquet",
            with_columns(
                CDC2,
                true,
                vec![("commit_ts", times(3, "2026-11-21 09:00:00"))],
            ),
        ),
    ];
    write_files(lake.path(), &files);
    let at = |as_of: &str| {
        raw_rules(
            lake.path(),
            &format!(", timestamp_column: commit_ts, as_of: \"{as_of}\""),
            "  []\n",
        )
    };
    assert_eq!(
        state(&at("2026-11-21T08:30:00Z"), "").await,
        vec![(1, 1), (2, 20), (4, 4), (5, 5), (6, 6), (7, 7)],
        "as of 08:30"
    );
    assert_eq!(
        state(&at("2026-11-21T08:00:00Z"), "").await,
        vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)],
        "one millisecond before the first CDC commit"
    );
    assert_eq!(
        state(&at("2026-11-21T09:00:00Z"), "").await,
        vec![(1, 1), (2, 200), (4, 4), (5, 5), (6, 6), (7, 7)],
        "at the second commit"
    );
}

#[rstest]
#[case::aws_documented_four_digits(&["20261121-0800000000.parquet", "20261121-0900000000.parquet"])]
#[case::seconds(&["20261121-080000.parquet", "20261121-090000.parquet"])]
#[case::nanos_in_date_folders(&["2026/11/21/20261121-080000000000000.parquet", "2026/11/21/20261121-090000000000000.parquet"])]
#[tokio::test]
async fn cdc_file_names_in_every_dms_pattern_are_cut_by_as_of(#[case] names: &[&str]) {
    let lake = tempfile::tempdir().unwrap();
    let mut files: Vec<(&str, RecordBatch)> = vec![
        ("LOAD00000001.parquet", batch(LOAD1, false, None)),
        ("LOAD00000002.parquet", batch(LOAD2, false, None)),
    ];
    files.push((names[0], batch(CDC1, true, None)));
    files.push((names[1], batch(CDC2, true, None)));
    write_files(lake.path(), &files);
    let at = |options: &str| raw_rules(lake.path(), options, "  []\n");
    assert_eq!(
        state(&at(", as_of: \"2026-11-21T08:30:00Z\""), "").await,
        vec![(1, 1), (2, 20), (4, 4), (5, 5), (6, 6), (7, 7)],
        "the 09:00 file is after as_of"
    );
    assert_eq!(
        state(&at(""), "").await,
        vec![(1, 1), (2, 200), (4, 4), (5, 5), (6, 6), (7, 7)],
        "both files, in time order"
    );
}

#[tokio::test]
async fn a_cdc_file_name_that_is_not_a_time_is_an_error_when_as_of_needs_it() {
    let lake = tempfile::tempdir().unwrap();
    let files = vec![
        ("LOAD00000001.parquet", batch(LOAD1, false, None)),
        ("LOAD00000002.parquet", batch(LOAD2, false, None)),
        ("20261121-080000000.parquet", batch(CDC1, true, None)),
        ("changes-0001.parquet", batch(CDC2, true, None)),
    ];
    write_files(lake.path(), &files);
    let error = count_error(lake.path(), ", as_of: \"2026-11-21T08:30:00Z\"").await;
    assert!(
        error.contains("/items/changes-0001.parquet` is neither a full-load file")
            && error.contains("set `timestamp_column`"),
        "{error}"
    );
    // Without `as_of` the file is read, ordered by its name (after `20261121-...`).
    assert_eq!(
        state(&raw_rules(lake.path(), "", "  []\n"), "").await,
        vec![(1, 1), (2, 200), (4, 4), (5, 5), (6, 6), (7, 7)]
    );
}

/// The DMS change-sequence header: commit time, then a sequence number, 35 digits.
fn change_seq(n: u64) -> String {
    format!("20261121080000000000{n:015}")
}

#[tokio::test]
async fn ar_h_change_seq_orders_changes_not_file_order() {
    let world = pg_world().await;
    let pg_url = scratch_database(|d| world.pg.url(d), "dms_change_seq", FINAL_STATE_SQL).await;
    let lake = tempfile::tempdir().unwrap();
    let seq = |values: &[u64]| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            values.iter().map(|n| change_seq(*n)),
        ))
    };
    // In one file, key 2's later update (seq 5) is written before its earlier one (seq 4); the
    // next file holds changes older than both (seq 1..3): file order and sequence disagree.
    let reversed: &[Change] = &[
        ("U", 2, "b", 200, "2026-11-21T09:00:00Z"),
        ("U", 2, "b", 20, "2026-11-21T08:00:00Z"),
        ("I", 8, "h", 8, "2026-11-21T09:00:00Z"),
        ("D", 8, "h", 8, "2026-11-21T09:00:00Z"),
    ];
    let older: &[Change] = &[
        ("D", 3, "c", 3, "2026-11-20T00:00:00Z"),
        ("I", 7, "g", 7, "2026-11-21T08:00:00Z"),
        ("U", 2, "b", 2000, "2026-11-21T07:00:00Z"),
    ];
    let files = vec![
        ("LOAD00000001.parquet", batch(LOAD1, false, None)),
        ("LOAD00000002.parquet", batch(LOAD2, false, None)),
        (
            "20261121-080000000.parquet",
            with_columns(
                reversed,
                true,
                vec![("AR_H_CHANGE_SEQ", seq(&[5, 4, 6, 7]))],
            ),
        ),
        (
            "20261121-090000000.parquet",
            with_columns(older, true, vec![("AR_H_CHANGE_SEQ", seq(&[1, 2, 3]))]),
        ),
    ];
    write_files(lake.path(), &files);
    let text = format!(
        "sources:\n  raw: {{ type: lake, url: \"{}\", layout: dms, keys: {{ items: [id] }} }}\n  \
         pg: {{ type: postgres, url: \"{pg_url}\", schema: public }}\nchecks:\n  \
         - {{ name: match, type: table_match, left: pg.items, right: raw.items }}\n  \
         - {{ name: header, type: sql, source: raw, query: \"SELECT id FROM items WHERE \\\"AR_H_CHANGE_SEQ\\\" IS NULL AND id NOT IN (1, 4, 5, 6)\" }}\n",
        lake.path().display()
    );
    assert_eq!(
        state(&text, &pg_url).await,
        vec![(1, 1), (2, 200), (4, 4), (5, 5), (6, 6), (7, 7)]
    );
    let file = parse_rule_text(Path::new("dms.yml"), &text, &Arc::new(Vars::new())).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    crate::harness::assert_all_pass(&report);
    // The header stays visible: key 2's winning change carries its sequence.
    let raw = parse_rule_text(Path::new("dms.yml"), &text, &Arc::new(Vars::new())).unwrap();
    let rows = raw
        .sources
        .get("raw")
        .unwrap()
        .query("SELECT \"AR_H_CHANGE_SEQ\" FROM items WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(rows.rows[0][0].as_deref(), Some(change_seq(5).as_str()));
}

#[rstest]
#[case::configured_integer_sequence(", sequence_column: change_no", vec![(1, 1), (2, 200), (4, 4), (5, 5), (6, 6), (7, 7)])]
#[case::file_order_without_one("", vec![(1, 1), (2, 20), (4, 4), (5, 5), (6, 6), (7, 7)])]
#[tokio::test]
async fn a_configured_sequence_column_orders_changes(
    #[case] options: &str,
    #[case] expected: Vec<(i32, i32)>,
) {
    let lake = tempfile::tempdir().unwrap();
    let numbers = |values: &[i32]| -> ArrayRef { Arc::new(Int32Array::from(values.to_vec())) };
    // CDC2 (qty 200) is written first but numbered after CDC1 (qty 20); key 2's numbers 7 and 10
    // would order the other way as text.
    let files = vec![
        ("LOAD00000001.parquet", batch(LOAD1, false, None)),
        ("LOAD00000002.parquet", batch(LOAD2, false, None)),
        (
            "20261121-080000000.parquet",
            with_columns(CDC2, true, vec![("change_no", numbers(&[10, 11, 12]))]),
        ),
        (
            "20261121-090000000.parquet",
            with_columns(CDC1, true, vec![("change_no", numbers(&[7, 8, 9]))]),
        ),
    ];
    write_files(lake.path(), &files);
    assert_eq!(
        state(&raw_rules(lake.path(), options, "  []\n"), "").await,
        expected
    );
}

#[tokio::test]
async fn a_configured_sequence_column_that_is_missing_is_an_error() {
    let lake = tempfile::tempdir().unwrap();
    let mut files = full_load_files();
    files.push(("20261121-080000000.parquet", batch(CDC1, true, None)));
    write_files(lake.path(), &files);
    let error = count_error(lake.path(), ", sequence_column: change_no").await;
    assert!(
        error.contains("sequence column `change_no` is not in the files of `items`"),
        "{error}"
    );
}

// --- Issue 17: the rebuild streams; filters, pruning, duplicates and memory. ---

/// A batch of `columns`, after an `Op` column of `ops` when given (a CDC file).
fn op_first(ops: Option<Vec<&str>>, columns: Vec<(&'static str, ArrayRef)>) -> RecordBatch {
    let op = ops.map(|ops| ("Op", Arc::new(StringArray::from(ops)) as ArrayRef));
    RecordBatch::try_from_iter(op.into_iter().chain(columns)).unwrap()
}

/// (op, id, city) rows; the `Op` column only when `with_op`.
fn cities(rows: &[(&str, i32, &str)], with_op: bool) -> RecordBatch {
    op_first(
        with_op.then(|| rows.iter().map(|r| r.0).collect()),
        vec![
            (
                "id",
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1))),
            ),
            (
                "city",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            ),
        ],
    )
}

/// The `(id, city)` rows of `raw.items` that `sql_where` selects, by id.
async fn cities_where(rules: &str, sql_where: &str) -> Vec<(String, String)> {
    let file = parse_rule_text(Path::new("dms.yml"), rules, &Arc::new(Vars::new())).unwrap();
    let rows = file
        .sources
        .get("raw")
        .unwrap()
        .query(&format!(
            "SELECT id, city FROM items WHERE {sql_where} ORDER BY id"
        ))
        .await
        .unwrap();
    rows.rows
        .iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect()
}

/// A `where:` applies to the rebuilt state, never to the files: a row updated from Austin to
/// Reno is not counted under `city = 'Austin'`, and a deleted row is counted under no filter.
#[tokio::test]
async fn a_where_filter_sees_the_rebuilt_state_not_the_files() {
    let lake = tempfile::tempdir().unwrap();
    write_files(
        lake.path(),
        &[
            (
                "LOAD00000001.parquet",
                cities(
                    &[("I", 1, "Austin"), ("I", 2, "Austin"), ("I", 3, "Denver")],
                    false,
                ),
            ),
            (
                "20261121-080000000.parquet",
                cities(&[("U", 1, "Reno"), ("D", 2, "Austin")], true),
            ),
        ],
    );
    let checks = "  - { name: austin, type: row_count, table: raw.items, where: \"city = 'Austin'\", equals: 0 }\n\
         \x20 - { name: reno, type: row_count, table: raw.items, where: \"city = 'Reno'\", equals: 1 }\n\
         \x20 - { name: deleted, type: row_count, table: raw.items, where: \"id = 2\", equals: 0 }\n\
         \x20 - { name: all, type: row_count, table: raw.items, where: \"id > 0\", equals: 2 }\n\
         \x20 - { name: cities, type: accepted_values, table: raw.items, column: city, values: [Reno, Denver], where: \"id < 3\" }\n";
    let rules = raw_rules(lake.path(), "", checks);
    let file = parse_rule_text(Path::new("dms.yml"), &rules, &Arc::new(Vars::new())).unwrap();
    crate::harness::assert_all_pass(&crate::harness::run_files(&[file]).await);
    assert_eq!(cities_where(&rules, "city = 'Austin'").await, vec![]);
    assert_eq!(
        cities_where(&rules, "city = 'Reno' OR id = 2").await,
        vec![("1".to_string(), "Reno".to_string())]
    );
}

/// `as_of` without commit times leaves out the CDC files written after it without reading
/// them: a damaged file there is no error, and it is one once `as_of` no longer excludes it.
#[tokio::test]
async fn a_cdc_file_after_as_of_is_never_read() {
    let lake = tempfile::tempdir().unwrap();
    write_files(
        lake.path(),
        &[
            ("LOAD00000001.parquet", batch(LOAD1, false, None)),
            ("LOAD00000002.parquet", batch(LOAD2, false, None)),
            ("20261121-080000000.parquet", batch(CDC1, true, None)),
        ],
    );
    let damaged = lake.path().join("items/20261121-090000000.parquet");
    std::fs::write(&damaged, b"PAR1 not a parquet file PAR1").unwrap();
    assert_eq!(
        state(
            &raw_rules(lake.path(), ", as_of: \"2026-11-21T08:30:00Z\"", "  []\n"),
            ""
        )
        .await,
        vec![(1, 1), (2, 20), (4, 4), (5, 5), (6, 6), (7, 7)]
    );
    let error = count_error(lake.path(), "").await;
    assert!(
        error.contains("/items/20261121-090000000.parquet"),
        "{error}"
    );
}

/// The full load copies a table that has the key, so two full-load rows with one key are data
/// a `unique` check must find; a CDC change of the key replaces them both.
#[tokio::test]
async fn duplicate_keys_in_the_full_load_stay_visible_until_a_change_replaces_them() {
    let lake = tempfile::tempdir().unwrap();
    let mut load = LOAD1.to_vec();
    load.push(("I", 2, "b", 22, "2026-11-20T00:00:00Z"));
    let mut files = vec![
        ("LOAD00000001.parquet", batch(&load, false, None)),
        ("LOAD00000002.parquet", batch(LOAD2, false, None)),
    ];
    write_files(lake.path(), &files);
    let checks = "  - { name: unique, type: unique, table: raw.items, columns: [id] }\n";
    let run = |rules: String| async move {
        let file = parse_rule_text(Path::new("dms.yml"), &rules, &Arc::new(Vars::new())).unwrap();
        crate::harness::run_files(&[file]).await
    };
    let report = run(raw_rules(lake.path(), "", checks)).await;
    crate::harness::assert_status(crate::harness::result(&report, "unique"), Status::Fail);
    let mut rows = state(&raw_rules(lake.path(), "", "  []\n"), "").await;
    rows.sort();
    assert_eq!(
        rows,
        vec![(1, 1), (2, 2), (2, 22), (3, 3), (4, 4), (5, 5), (6, 6)]
    );
    files.push((
        "20261121-080000000.parquet",
        batch(&[("U", 2, "b", 20, "2026-11-21T08:00:00Z")], true, None),
    ));
    write_files(lake.path(), &files);
    let report = run(raw_rules(lake.path(), "", checks)).await;
    crate::harness::assert_status(crate::harness::result(&report, "unique"), Status::Pass);
    assert_eq!(
        state(&raw_rules(lake.path(), "", "  []\n"), "").await,
        vec![(1, 1), (2, 20), (3, 3), (4, 4), (5, 5), (6, 6)]
    );
}

/// Items `ids` (qty = id, a 13-character name), with `Op` = `op` when given.
fn many_items(ids: std::ops::Range<i32>, op: Option<&str>) -> RecordBatch {
    op_first(
        op.map(|op| ids.clone().map(|_| op).collect()),
        vec![
            ("id", Arc::new(Int32Array::from_iter_values(ids.clone()))),
            (
                "name",
                Arc::new(StringArray::from_iter_values(
                    ids.clone().map(|i| format!("item-{i:08}")),
                )),
            ),
            ("qty", Arc::new(Int32Array::from_iter_values(ids))),
        ],
    )
}

/// What the rebuild holds in memory grows with the keys CDC changed, not with the full load: a
/// full load larger than the memory limit is counted and filtered under it, while the same
/// limit refuses a table with more changed keys than it holds, naming the limit.
#[tokio::test]
async fn memory_held_grows_with_changed_keys_not_with_the_full_load() {
    use lakecheck::rules::parse_rule_text_with;
    use lakecheck::sources::memory::MemoryLimit;
    use lakecheck::sources::RunResources;
    const ROWS: i32 = 400_000;
    let limit = MemoryLimit::parse("8MiB").unwrap();
    let load = many_items(0..ROWS, None);
    assert!(
        load.get_array_memory_size() as u64 > limit.bytes,
        "the full load decodes to only {} bytes",
        load.get_array_memory_size()
    );
    let lake = tempfile::tempdir().unwrap();
    let mut files = vec![
        ("LOAD00000001.parquet", load),
        ("20261121-080000000.parquet", many_items(0..100, Some("D"))),
    ];
    write_files(lake.path(), &files);
    let checks = format!(
        "  - {{ name: count, type: row_count, table: raw.items, equals: {} }}\n\
         \x20 - {{ name: kept, type: row_count, table: raw.items, where: \"id < 200\", equals: 100 }}\n",
        ROWS - 100
    );
    let run = |rules: String| async move {
        let resources = RunResources::with_memory_limit(limit);
        let file = parse_rule_text_with(
            Path::new("dms.yml"),
            &rules,
            &Arc::new(Vars::new()),
            &resources,
        )
        .unwrap();
        crate::harness::run_files(&[file]).await
    };
    crate::harness::assert_all_pass(&run(raw_rules(lake.path(), "", &checks)).await);

    files[1].1 = many_items(0..600_000, Some("U"));
    write_files(lake.path(), &files);
    let report = run(raw_rules(lake.path(), "", &checks)).await;
    let result = crate::harness::result(&report, "count");
    crate::harness::assert_status(result, Status::Error);
    crate::harness::assert_names(
        result.error.as_deref().unwrap(),
        &[
            "memory limit of 8.0 MiB reached (set by --memory-limit)",
            "DMS table `items` held in memory",
        ],
    );
}

/// One change in a generated CDC file: (delete?, key, sequence value; `None` is NULL).
type GeneratedChange = (bool, i32, Option<i32>);

/// A generated raw zone: full-load files of keys, then CDC files of changes (each with or
/// without the sequence column), and whether `sequence_column` orders them.
#[derive(Debug, Clone)]
struct GeneratedZone {
    full_load: Vec<Vec<i32>>,
    cdc: Vec<(bool, Vec<GeneratedChange>)>,
    sequenced: bool,
}

/// The state the rebuild must give, by the module's contract told simply: every full-load row
/// (duplicates too) unless its key has a CDC change; CDC changes in sequence order (a missing
/// or NULL value first, ties in file/row order), the last of a key winning, deletes dropped.
/// Each row is (id, qty), qty numbering the rows of the zone from 1 in file order.
fn expected_state(zone: &GeneratedZone) -> Vec<(i32, i32)> {
    let mut qty = 0;
    let mut full_load = Vec::new();
    for file in &zone.full_load {
        for id in file {
            qty += 1;
            full_load.push((*id, qty));
        }
    }
    let mut changes = Vec::new();
    for (has_sequence, file) in &zone.cdc {
        for (delete, id, sequence) in file {
            qty += 1;
            let sequence = sequence.filter(|_| *has_sequence && zone.sequenced);
            changes.push((sequence, *delete, *id, qty));
        }
    }
    // A stable sort: equal sequence values keep file/row order.
    changes.sort_by_key(|change| change.0);
    let mut last = std::collections::BTreeMap::new();
    for (_, delete, id, qty) in changes {
        last.insert(id, (delete, qty));
    }
    let mut state: Vec<(i32, i32)> = full_load
        .into_iter()
        .filter(|(id, _)| !last.contains_key(id))
        .collect();
    state.extend(
        last.into_iter()
            .filter(|(_, (delete, _))| !delete)
            .map(|(id, (_, qty))| (id, qty)),
    );
    state.sort();
    state
}

/// Writes `zone` as DMS files under `root/items`, qty numbering the rows as [`expected_state`].
fn write_zone(root: &Path, zone: &GeneratedZone) {
    let table = root.join("items");
    let _ = std::fs::remove_dir_all(&table);
    std::fs::create_dir_all(&table).unwrap();
    let mut qty = 0;
    let mut numbered = |rows: usize| -> Vec<i32> {
        (0..rows)
            .map(|_| {
                qty += 1;
                qty
            })
            .collect()
    };
    for (n, ids) in zone.full_load.iter().enumerate() {
        let qtys = numbered(ids.len());
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int32Array::from(ids.clone())) as ArrayRef),
            ("qty", Arc::new(Int32Array::from(qtys)) as ArrayRef),
        ])
        .unwrap();
        std::fs::write(
            table.join(format!("LOAD{:08X}.parquet", n + 1)),
            to_parquet(&batch),
        )
        .unwrap();
    }
    for (n, (has_sequence, changes)) in zone.cdc.iter().enumerate() {
        let qtys = numbered(changes.len());
        let mut columns: Vec<(&str, ArrayRef)> = vec![
            (
                "id",
                Arc::new(Int32Array::from_iter_values(changes.iter().map(|c| c.1))),
            ),
            ("qty", Arc::new(Int32Array::from(qtys))),
        ];
        if *has_sequence {
            columns.push((
                "change_no",
                Arc::new(Int32Array::from(
                    changes.iter().map(|c| c.2).collect::<Vec<_>>(),
                )),
            ));
        }
        let ops = changes
            .iter()
            .map(|c| if c.0 { "D" } else { "U" })
            .collect();
        let batch = op_first(Some(ops), columns);
        std::fs::write(
            table.join(format!("20261121-0800{n:02}000.parquet")),
            to_parquet(&batch),
        )
        .unwrap();
    }
}

fn generated_zones() -> impl proptest::strategy::Strategy<Value = GeneratedZone> {
    use proptest::prelude::*;
    const KEYS: i32 = 6;
    let full_load = proptest::collection::vec(proptest::collection::vec(0..KEYS, 0..6), 1..3);
    let change = (any::<bool>(), 0..KEYS, proptest::option::of(0..4));
    let cdc = proptest::collection::vec(
        (any::<bool>(), proptest::collection::vec(change, 1..6)),
        0..4,
    );
    (full_load, cdc, any::<bool>()).prop_map(|(full_load, mut cdc, sequenced)| {
        // `sequence_column` names a column some file has.
        if let Some(first) = cdc.first_mut().filter(|_| sequenced) {
            first.0 = true;
        }
        GeneratedZone {
            full_load,
            cdc,
            sequenced,
        }
    })
}

/// For random full loads and changes over a few keys, in several files, with and without a
/// sequence column, the streamed rebuild gives exactly the state of the contract's model.
#[test]
fn the_streamed_rebuild_equals_the_last_change_per_key_model() {
    let runtime = crate::harness::property_runtime();
    let lake = tempfile::tempdir().unwrap();
    let mut runner = crate::harness::property_runner(64);
    let outcome = runner.run(&generated_zones(), |zone| {
        write_zone(lake.path(), &zone);
        let options = if zone.sequenced && !zone.cdc.is_empty() {
            ", sequence_column: change_no"
        } else {
            ""
        };
        let mut rebuilt = runtime.block_on(state(&raw_rules(lake.path(), options, "  []\n"), ""));
        rebuilt.sort();
        proptest::prop_assert_eq!(rebuilt, expected_state(&zone), "{:?}", zone);
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
