//! The raw zone as AWS DMS writes it: full load + CDC files rebuilt to the current state.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use lakecheck::demo::autocorp::to_parquet;
use lakecheck::results::Status;
use lakecheck::rules::{parse_rule_text, Vars};
use rstest::rstest;
use serde_json::json;

use crate::harness::world;
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
    let world = world().await;
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
    let world = world().await;
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
    let world = world().await;
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
         \x20 - {{ name: count, type: row_count, table: raw.items, min: 1 }}\n",
        dms_source(lake.path(), &layout, "")
    );
    let file = parse_rule_text(Path::new("dms.yml"), &text, &Arc::new(Vars::new())).unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let matched = report.results().find(|r| r.name == "match").unwrap();
    assert_eq!(matched.status, Status::Error);
    let error = matched.error.as_deref().unwrap();
    assert!(
        error.contains("insert-only DMS change data")
            && error.contains("updates and deletes cannot be reconciled"),
        "{error}"
    );
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
