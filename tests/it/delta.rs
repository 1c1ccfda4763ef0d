//! Delta Lake tables: every check kind, time travel by version and time, commit metadata.

use std::path::Path;

use deltalake::protocol::SaveMode;
use lakecheck::probe::Clock;
use lakecheck::results::{RunReport, Status};
use lakecheck::rules::parse_rule_text;
use rstest::rstest;
use serde_json::json;

use crate::harness::{local_world, pg_world, upload_folder, world, world_with, World};

/// Writes `auto_parts` as a Delta table in two commits (390 rows, then 10 more) under
/// `<root>/auto_parts`.
async fn write_auto_parts(world: &World, root: &Path) {
    let batch = &world.table("auto_parts").batch;
    let dir = root.join("auto_parts");
    std::fs::create_dir_all(&dir).unwrap();
    let url = url::Url::from_directory_path(&dir).unwrap();
    let table = deltalake::DeltaTable::try_from_url(url).await.unwrap();
    let table = table
        .write(vec![batch.slice(0, 390)])
        .with_save_mode(SaveMode::ErrorIfExists)
        .await
        .unwrap();
    table
        .write(vec![batch.slice(390, 10)])
        .with_save_mode(SaveMode::Append)
        .await
        .unwrap();
}

async fn run(world: &World, extra_sources: &str, checks: &str) -> RunReport {
    run_at(world, extra_sources, checks, Clock::System).await
}

/// Runs `checks` with the run's clock at `clock` (`lakecheck run --now`).
async fn run_at(world: &World, extra_sources: &str, checks: &str, clock: Clock) -> RunReport {
    let text = format!("{}{extra_sources}checks:\n{checks}", world.sources_yaml());
    let file = crate::harness::parse_rules("delta.yml", &text, &world.vars());
    crate::harness::run_files_at(&[file], clock).await
}

/// The last commit time of `curated.auto_parts` as lakecheck reports it.
async fn last_commit(world: &World, source: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let probe = run(
        world,
        source,
        "  - { name: count, type: row_count, table: curated.auto_parts, min: 1 }\n",
    )
    .await;
    let last = probe.results().next().unwrap().table_metadata["curated.auto_parts"]["last_commit"]
        .as_str()
        .unwrap()
        .to_string();
    chrono::DateTime::parse_from_rfc3339(&last).unwrap()
}

fn delta_source(world: &World, place: &str, root: &Path, prefix: &str) -> String {
    if place == "local" {
        format!(
            "  curated: {{ type: delta, url: \"{}\" }}\n",
            root.display()
        )
    } else {
        format!(
            "  curated: {{ type: delta, url: \"s3://lake/{prefix}\", storage: {{ endpoint: \"{}\", allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }} }}\n",
            world.s3.endpoint
        )
    }
}

#[rstest]
#[case::local("local")]
#[case::s3("s3")]
#[tokio::test]
async fn every_check_kind_works_on_delta(#[case] place: &str) {
    let sources: &[&str] = if place == "s3" {
        &["pg", "s3"]
    } else {
        &["pg"]
    };
    let world = world_with(sources).await;
    let root = tempfile::tempdir().unwrap();
    let prefix = format!("curated-{place}");
    write_auto_parts(&world, root.path()).await;
    if place == "s3" {
        let folder = root.path().join("auto_parts");
        upload_folder(&world.s3, &folder, &format!("{prefix}/auto_parts")).await;
    }
    let checks = r#"
  - { name: count, type: row_count, table: curated.auto_parts, equals: 400 }
  - { name: count at version 0, type: row_count, table: curated.auto_parts@0, equals: 390 }
  - { name: count match, type: row_count_match, left: pg.auto_parts, right: curated.auto_parts }
  - { name: not null, type: not_null, table: curated.auto_parts, columns: [part_id, part_number, unit_price] }
  - { name: unique, type: unique, table: curated.auto_parts, columns: [part_number] }
  - { name: categories, type: accepted_values, table: curated.auto_parts, column: category, values: [Brakes, Engine, Suspension, Electrical, Exhaust, Cooling, Filters, Lighting] }
  - { name: prices, type: range, table: curated.auto_parts, column: unit_price, min: 0.01, max: 10000 }
  - { name: positive, type: condition, table: curated.auto_parts, expression: "unit_price > 0" }
  - { name: sql, type: sql, source: curated, query: "SELECT part_id FROM auto_parts WHERE stock_quantity < 0" }
  - { name: schema, type: schema_match, left: pg.auto_parts, right: curated.auto_parts }
  - { name: rows, type: table_match, left: pg.auto_parts, right: curated.auto_parts }
  - { name: profile, type: aggregate_match, left: pg.auto_parts, right: curated.auto_parts }
  - { name: rows at version 0, type: table_match, left: pg.auto_parts, right: curated.auto_parts@0 }
  - { name: too strict, type: row_count, table: curated.auto_parts, max: 399 }
"#;
    let report = run(
        &world,
        &delta_source(&world, place, root.path(), &prefix),
        checks,
    )
    .await;
    crate::harness::assert_statuses(&report, |name| match name {
        "rows at version 0" | "too strict" => Status::Fail,
        _ => Status::Pass,
    });
    let old = report
        .results()
        .find(|r| r.name == "rows at version 0")
        .unwrap();
    assert_eq!(old.metrics["missing_in_target"], json!(10));
    assert_eq!(old.metrics["missing_keys"][0], json!("part_id=391"));
    let facts = &report
        .results()
        .find(|r| r.name == "count")
        .unwrap()
        .table_metadata["curated.auto_parts"];
    assert_eq!(facts["format"], json!("delta"));
    assert_eq!(facts["version"], json!(1));
    assert_eq!(facts["commits"], json!(2));
    assert_eq!(facts["files"], json!(2));
    assert!(facts["bytes"].as_i64().unwrap() > 0);
    let pinned = &report
        .results()
        .find(|r| r.name == "count at version 0")
        .unwrap()
        .table_metadata["curated.auto_parts@0"];
    assert_eq!(pinned["version"], json!(0));
    assert_eq!(pinned["files"], json!(1));
}

#[tokio::test]
async fn time_travel_and_commit_freshness() {
    let world = local_world().await;
    let root = tempfile::tempdir().unwrap();
    write_auto_parts(&world, root.path()).await;
    let source = delta_source(&world, "local", root.path(), "");
    let last = last_commit(&world, &source).await;
    let later = Clock::Fixed((last + chrono::Duration::minutes(10)).to_utc());
    let before = (last - chrono::Duration::days(1)).to_rfc3339();
    let checks = format!(
        "  - {{ name: fresh, type: freshness, table: curated.auto_parts, error_after: 1h }}\n\
         \x20 - {{ name: stale, type: freshness, table: curated.auto_parts, commit: true, error_after: 5m }}\n\
         \x20 - {{ name: not a table format, type: freshness, table: lake.auto_parts, error_after: 5m }}\n\
         \x20 - {{ name: as of now, type: row_count, table: \"curated.auto_parts@{last}\", equals: 400 }}\n\
         \x20 - {{ name: before the first commit, type: row_count, table: \"curated.auto_parts@{before}\", min: 0 }}\n",
        last = last.to_rfc3339()
    );
    let report = run_at(&world, &source, &checks, later).await;
    let get = |name: &str| report.results().find(|r| r.name == name).unwrap();
    assert_eq!(
        get("fresh").status,
        Status::Pass,
        "{}",
        get("fresh").message
    );
    assert_eq!(get("fresh").metrics["lag_seconds"], json!(600.0));
    assert_eq!(get("fresh").metrics["measure"], json!("commit"));
    assert_eq!(get("stale").status, Status::Fail);
    assert_eq!(
        get("stale").observed.as_deref().unwrap().split(" (").next(),
        Some("last commit 10m old")
    );
    let not_delta = get("not a table format");
    assert_eq!(not_delta.status, Status::Error);
    assert!(
        not_delta
            .error
            .as_deref()
            .unwrap()
            .contains("records no commits or changes of its tables"),
        "{:?}",
        not_delta.error
    );
    assert_eq!(
        get("as of now").status,
        Status::Pass,
        "{} {:?}",
        get("as of now").message,
        get("as of now").error
    );
    let before = get("before the first commit");
    assert_eq!(
        before.status,
        Status::Error,
        "no version existed then: {}",
        before.message
    );
    let error = before.error.as_deref().unwrap();
    assert!(
        error.starts_with("source `curated`")
            && error.contains("Delta table `auto_parts`: no version existed at ")
            && error.contains("(the first commit is at "),
        "{error}"
    );
}

/// A last commit in the future is not fresh: beyond `max_skew` (default 60s) the check fails
/// and names the likely cause, a writer whose clock or time zone is ahead of the reader's;
/// within it, clocks may disagree a little.
#[tokio::test]
async fn a_commit_in_the_future_beyond_max_skew_fails() {
    let world = local_world().await;
    let root = tempfile::tempdir().unwrap();
    write_auto_parts(&world, root.path()).await;
    let source = delta_source(&world, "local", root.path(), "");
    let last = last_commit(&world, &source).await;
    let hour_before = (last - chrono::Duration::hours(1)).to_utc();
    let moments_before = (last - chrono::Duration::seconds(30)).to_utc();
    let checks = "  - { name: an hour ahead, type: freshness, table: curated.auto_parts, error_after: 2h }\n\
         \x20 - { name: wide skew, type: freshness, table: curated.auto_parts, error_after: 2h, max_skew: 2h }\n";
    let report = run_at(&world, &source, checks, Clock::Fixed(hour_before)).await;
    crate::harness::assert_statuses(&report, |name| match name {
        "an hour ahead" => Status::Fail,
        _ => Status::Pass,
    });
    let get = |name: &str| report.results().find(|r| r.name == name).unwrap();
    let ahead = get("an hour ahead");
    let observed = ahead.observed.as_deref().unwrap();
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(
        observed,
        format!(
            "last commit 1h in the future ({}, now {}), beyond max_skew 1m: the writer's \
             clock (or the time zone it stamped commits in) runs ahead of this machine's, or \
             `--now` is set before the commit",
            at(last.to_utc()),
            at(hour_before)
        )
    );
    assert_eq!(
        ahead.expected.as_deref(),
        Some("last commit no older than 2h, and no more than 1m in the future")
    );
    assert_eq!(ahead.metrics["lag_seconds"], json!(-3600.0));
    assert_eq!(ahead.metrics["max_skew_seconds"], json!(60.0));
    assert_eq!(ahead.metrics["in_future"], json!(true));
    assert_eq!(get("wide skew").metrics["max_skew_seconds"], json!(7200.0));
    let checks =
        "  - { name: within skew, type: freshness, table: curated.auto_parts, error_after: 2h }\n";
    let report = run_at(&world, &source, checks, Clock::Fixed(moments_before)).await;
    crate::harness::assert_all_pass(&report);
    let get = |name: &str| report.results().find(|r| r.name == name).unwrap();
    let within = get("within skew");
    assert_eq!(
        within.observed.as_deref().unwrap().split(" (").next(),
        Some("last commit 30s in the future")
    );
    assert_eq!(within.metrics["in_future"], json!(false));
}

/// Delta commits on S3 are conditional puts: two writers that both start from version 0 each
/// append, and neither commit is lost (one wins version 1, the other retries as version 2).
/// With a server that ignored `If-None-Match`, the second commit would overwrite the first.
#[tokio::test]
async fn delta_writes_to_s3_commit_with_conditional_put() {
    use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
    use std::future::IntoFuture;
    use std::sync::Arc;
    let world = world().await;
    lakecheck::sources::delta::register_s3_log_store();
    let store: Arc<dyn ObjectStore> = Arc::new(world.s3.store());
    let url = url::Url::parse("s3://lake/written/auto_parts").unwrap();
    let batch = &world.table("auto_parts").batch;
    let table = deltalake::DeltaTableBuilder::from_url(url.clone())
        .unwrap()
        .with_storage_backend(store.clone(), url.clone())
        .build()
        .unwrap()
        .write(vec![batch.slice(0, 100)])
        .with_save_mode(SaveMode::ErrorIfExists)
        .await
        .unwrap();
    assert_eq!(table.version(), Some(0));
    let first = table
        .clone()
        .write(vec![batch.slice(100, 150)])
        .into_future();
    let second = table
        .clone()
        .write(vec![batch.slice(250, 150)])
        .into_future();
    let (first, second) = tokio::join!(first, second);
    let versions = [first.unwrap().version(), second.unwrap().version()];
    let mut sorted = versions;
    sorted.sort();
    assert_eq!(
        sorted,
        [Some(1), Some(2)],
        "both appends committed: {versions:?}"
    );

    // The server refuses to replace a commit file that exists.
    let commit =
        object_store::path::Path::from("written/auto_parts/_delta_log/00000000000000000001.json");
    let refused = store
        .put_opts(
            &commit,
            PutPayload::from_static(b"{}"),
            PutMode::Create.into(),
        )
        .await;
    assert!(
        matches!(refused, Err(object_store::Error::AlreadyExists { .. })),
        "{refused:?}"
    );
    assert!(
        store
            .get(&commit)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len()
            > 2
    );

    // lakecheck reads the table written to S3 in full, with its history.
    let source = format!(
        "  curated: {{ type: delta, url: \"s3://lake/written\", storage: {{ endpoint: \"{}\", allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }} }}\n",
        world.s3.endpoint
    );
    let report = run(
        &world,
        &source,
        "  - { name: count, type: row_count, table: curated.auto_parts, equals: 400 }\n\
         \x20 - { name: same as source, type: table_match, left: pg.auto_parts, right: curated.auto_parts }\n\
         \x20 - { name: first commit, type: row_count, table: \"curated.auto_parts@0\", equals: 100 }\n",
    )
    .await;
    crate::harness::assert_all_pass(&report);
    let facts = &report.results().next().unwrap().table_metadata["curated.auto_parts"];
    assert_eq!(facts["version"], json!(2));
    assert_eq!(facts["commits"], json!(3));
}

#[tokio::test]
async fn a_folder_that_is_not_a_delta_table_is_an_error() {
    let world = local_world().await;
    let source = format!(
        "  curated: {{ type: delta, url: \"{}/raw/database/autocorp\" }}\n",
        world.lake_url()
    );
    let report = run(&world, &source, "  - { name: count, type: row_count, table: curated.customers, min: 1 }\n  - { name: ghost, type: row_count, table: curated.ghost, min: 1 }\n").await;
    for result in report.results() {
        assert_eq!(result.status, Status::Error, "{}", result.name);
    }
    let count = report.results().find(|r| r.name == "count").unwrap();
    let error = count.error.as_deref().unwrap();
    assert!(
        error.starts_with("source `curated`")
            && error.contains("table `customers` not found: no Delta log (_delta_log/) in ")
            && error.contains("/raw/database/autocorp/customers/"),
        "a Parquet folder is not a Delta table: {error}"
    );
    let ghost = report.results().find(|r| r.name == "ghost").unwrap();
    assert!(
        ghost
            .error
            .as_deref()
            .unwrap()
            .contains("table `ghost` not found"),
        "{:?}",
        ghost.error
    );
}

/// A Delta table written by another writer: the `deltalake` Python package (delta-rs bindings,
/// installed from PyPI beside moto by scripts/ensure-deps), two commits with a delete between.
const PYTHON_WRITER: &str = r#"
import sys, datetime, decimal
import pyarrow as pa
from deltalake import write_deltalake, DeltaTable
path = sys.argv[1]
schema = pa.schema([
    ("id", pa.int64()), ("name", pa.string()), ("price", pa.decimal128(10, 2)),
    ("day", pa.date32()), ("at", pa.timestamp("us", tz="UTC")), ("active", pa.bool_()),
])
utc = datetime.timezone.utc
rows = [
    (1, "Zoë", decimal.Decimal("10.10"), datetime.date(2026, 11, 1), datetime.datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=utc), True),
    (2, "O'Brien", decimal.Decimal("0.00"), datetime.date(1999, 12, 31), datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=utc), False),
    (3, "trailing ", None, None, None, None),
]
table = pa.Table.from_pylist([dict(zip(schema.names, r)) for r in rows], schema=schema)
write_deltalake(path, table)
write_deltalake(path, pa.Table.from_pylist([dict(zip(schema.names, (4, "Dana", decimal.Decimal("99999999.99"), datetime.date(2026, 1, 1), datetime.datetime(2026, 1, 1, tzinfo=utc), True)))], schema=schema), mode="append")
DeltaTable(path).delete("id = 2")
"#;

#[tokio::test]
async fn tables_written_by_the_python_deltalake_package_read_exactly() {
    let root = tempfile::tempdir().unwrap();
    let table = root.path().join("items");
    let output = std::process::Command::new(crate::harness::venv_python())
        .args(["-c", PYTHON_WRITER])
        .arg(&table)
        .output()
        .expect("run the Python deltalake writer");
    assert!(
        output.status.success(),
        "python deltalake: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = format!(
        "sources:\n  py: {{ type: delta, url: \"{}\" }}\nchecks: []\n",
        root.path().display()
    );
    let file = parse_rule_text(
        Path::new("py.yml"),
        &text,
        &std::sync::Arc::new(lakecheck::rules::Vars::new()),
    )
    .unwrap();
    let source = file.sources.get("py").unwrap().clone();
    let rows = source
        .query("SELECT id, name, CAST(price AS VARCHAR) AS price, CAST(day AS VARCHAR) AS day, CAST(at AS VARCHAR) AS at, active FROM items ORDER BY id")
        .await
        .unwrap();
    let got: Vec<Vec<Option<String>>> = rows.rows;
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        got,
        vec![
            vec![
                s("1"),
                s("Zoë"),
                s("10.10"),
                s("2026-11-01"),
                s("2026-11-21T08:00:00.123456Z"),
                s("true")
            ],
            vec![s("3"), s("trailing "), None, None, None, None],
            vec![
                s("4"),
                s("Dana"),
                s("99999999.99"),
                s("2026-01-01"),
                s("2026-01-01T00:00:00Z"),
                s("true")
            ],
        ]
    );
    let facts = source.table_metadata("items").await.unwrap().unwrap();
    assert_eq!(facts["version"], json!(2), "write, append, delete");
    assert_eq!(facts["commits"], json!(3));
    let before_delete = source
        .query("SELECT count(*) AS n FROM \"items@1\"")
        .await
        .unwrap();
    assert_eq!(before_delete.first("n"), Some("4"));
}

/// The curated Delta tables the demo writes (the ETL's `etl_timestamp` added, two commits each),
/// against the source: every check kind fails where the two differ, naming the difference.
#[tokio::test]
async fn every_check_kind_fails_on_delta_where_it_should() {
    let world = pg_world().await;
    let root = tempfile::tempdir().unwrap();
    lakecheck::demo::autocorp::write_curated_delta(root.path(), &world.tables)
        .await
        .unwrap();
    let source = delta_source(&world, "local", root.path(), "");
    let checks = r#"
  - { name: count, type: row_count, table: curated.service, max: 100 }
  - { name: count match at version 0, type: row_count_match, left: pg.service, right: curated.service@0 }
  - { name: not null, type: not_null, table: curated.service, columns: [service_id, description] }
  - { name: unique, type: unique, table: curated.service_parts, columns: [service_id] }
  - { name: categories, type: accepted_values, table: curated.auto_parts, column: category, values: [Brakes, Engine] }
  - { name: prices, type: range, table: curated.auto_parts, column: unit_price, min: 50 }
  - { name: condition, type: condition, table: curated.auto_parts, expression: "stock_quantity > 10" }
  - { name: sql, type: sql, source: curated, query: "SELECT part_id FROM auto_parts WHERE discontinued" }
  - { name: schema, type: schema_match, left: pg.auto_parts, right: curated.service }
  - { name: rows at version 0, type: table_match, left: pg.service_parts, right: curated.service_parts@0 }
  - { name: profile at version 0, type: aggregate_match, left: pg.service_parts, right: curated.service_parts@0 }
  - { name: stale, type: freshness, table: curated.auto_parts, error_after: 1m }
"#;
    // The clock only moves the commit's age: every other check reads the tables as they are.
    let clock = crate::harness::fixed_clock("2100-01-01T00:00:00Z");
    let report = run_at(&world, &source, checks, clock).await;
    crate::harness::assert_statuses(&report, |_| Status::Fail);
    let get = |name: &str| report.results().find(|r| r.name == name).unwrap();
    let services = world.table("service").batch.num_rows() as i64;
    let parts = world.table("service_parts").batch.num_rows() as i64;
    // The first commit holds all but the last tenth of each table.
    let first_parts = parts - parts / 10;
    assert_eq!(get("count").metrics["row_count"], json!(services));
    assert_eq!(
        get("count match at version 0").metrics["difference"],
        json!(-(services / 10))
    );
    let rows = get("rows at version 0");
    assert_eq!(
        rows.metrics["missing_in_target"],
        json!(parts - first_parts)
    );
    assert_eq!(rows.metrics["matched"], json!(first_parts));
    assert_eq!(rows.metrics["changed"], json!(0));
    let missing = rows.metrics["missing_keys"].as_array().unwrap();
    assert!(!missing.is_empty());
    for key in missing {
        let id: i64 = key
            .as_str()
            .unwrap()
            .strip_prefix("service_part_id=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(id > first_parts, "{key} was in the first commit");
    }
    assert!(
        get("profile at version 0").metrics["measures_differing"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        get("schema").metrics["removed"]
            .as_array()
            .map(|a| a.is_empty()),
        Some(false)
    );
    for name in [
        "not null",
        "unique",
        "categories",
        "prices",
        "condition",
        "sql",
    ] {
        let result = get(name);
        assert!(result.failing_rows.unwrap() > 0, "{name}");
        assert!(result.samples.is_some(), "{name}");
    }
    assert_eq!(get("stale").metrics["in_future"], json!(false));
}

/// Reading a Delta table fails, naming the table and what is wrong, when a pinned version does
/// not exist or the log is broken.
#[tokio::test]
async fn a_missing_version_or_a_broken_log_is_an_error_naming_the_table() {
    let world = local_world().await;
    let root = tempfile::tempdir().unwrap();
    lakecheck::demo::autocorp::write_curated_delta(root.path(), &world.tables)
        .await
        .unwrap();
    // service: the second commit file is not JSON any more; service_parts: the first commit
    // (protocol and metadata) is gone, only version 1 remains.
    let log = |table: &str, version: u32| {
        root.path()
            .join(table)
            .join("_delta_log")
            .join(format!("{version:020}.json"))
    };
    std::fs::write(log("service", 1), b"{ this is not a delta action").unwrap();
    std::fs::remove_file(log("service_parts", 0)).unwrap();
    let source = delta_source(&world, "local", root.path(), "");
    let report = run(
        &world,
        &source,
        "  - { name: pinned, type: row_count, table: \"curated.auto_parts@999\", min: 0 }\n\
         \x20 - { name: corrupt commit, type: row_count, table: curated.service, min: 0 }\n\
         \x20 - { name: lost commit, type: row_count, table: curated.service_parts, min: 0 }\n",
    )
    .await;
    for (name, cause) in [
        (
            "pinned",
            "Delta table `auto_parts`: cannot open the Delta table at version 999",
        ),
        (
            "corrupt commit",
            "Delta table `service`: not a readable Delta table: Kernel error: Json error",
        ),
        (
            "lost commit",
            "Delta table `service_parts`: not a readable Delta table: Kernel error: No table metadata or protocol found",
        ),
    ] {
        let result = report.results().find(|r| r.name == name).unwrap();
        assert_eq!(result.status, Status::Error, "{name}: {}", result.message);
        let error = result.error.as_deref().unwrap();
        assert!(
            error.starts_with("source `curated`") && error.contains(cause),
            "{name}: {error}"
        );
    }
}
