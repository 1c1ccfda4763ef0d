//! `freshness`: every measure passes at its threshold and fails a second past it, with the
//! run's clock fixed (`--now`): a column on PostgreSQL, Parquet (local and S3) and CSV, Delta and
//! Hudi commits, the newest file of a local and an S3 folder, a DMS raw zone's newest change.
//! A newest time beyond `max_skew` in the future fails naming the zone; nothing to date is an
//! error. Expected times come from the generated data or the files as written, never from
//! lakecheck.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::concat_batches;
use lakecheck::demo::autocorp::{self, cdc_batch, to_parquet, CDC_COMMIT_TIME};
use lakecheck::model::format_duration;
use lakecheck::probe::Clock;
use lakecheck::results::{RunReport, Status};
use serde_json::json;

use crate::harness::{assert_status, error_of, parse_rules, result, run_files_at, world, World};

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The largest value of a timestamp column of the generated data.
fn newest_in_data(world: &World, table: &str, column: &str) -> DateTime<Utc> {
    let batch = &world.table(table).batch;
    let values = batch
        .column_by_name(column)
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    let newest = values.iter().flatten().max().unwrap();
    DateTime::from_timestamp_micros(newest).unwrap()
}

/// What a check observed.
fn observed(result: &lakecheck::results::CheckResult) -> &str {
    result.observed.as_deref().unwrap_or_default()
}

/// Runs `checks` under the world's sources and `extra` ones at `at`.
async fn run_at(world: &World, extra: &str, checks: &str, at: DateTime<Utc>) -> RunReport {
    let text = format!(
        "{}checks:\n{checks}",
        world
            .sources_yaml()
            .replace("sources:\n", &format!("sources:\n{extra}"))
    );
    let file = parse_rules("freshness.yml", &text, &world.vars());
    run_files_at(&[file], Clock::Fixed(at)).await
}

/// Runs `checks` at `newest + limit`, where the check `name` must pass, and a second later,
/// where it must fail; returns the report at the limit.
async fn at_limit_and_past(
    world: &World,
    extra: &str,
    checks: &str,
    name: &str,
    newest: DateTime<Utc>,
    limit: chrono::Duration,
) -> RunReport {
    let past = run_at(
        world,
        extra,
        checks,
        newest + limit + chrono::Duration::seconds(1),
    )
    .await;
    assert_status(result(&past, name), Status::Fail);
    let at_limit = run_at(world, extra, checks, newest + limit).await;
    assert_status(result(&at_limit, name), Status::Pass);
    at_limit
}

/// Sets a file's last-modified time.
fn touch(path: &Path, at: DateTime<Utc>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if !path.exists() {
        std::fs::write(path, "id,amount\n1,2\n").unwrap();
    }
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::from(at)).unwrap();
}

#[tokio::test]
async fn a_column_passes_at_error_after_and_fails_a_second_past_it() {
    let world = world().await;
    let updated = newest_in_data(&world, "sales_order", "updated_at");
    // CSV keeps no zone: the reader infers zone-less timestamps, read as UTC by default.
    let created = newest_in_data(&world, "sales_order", "created_at");
    let checks = "  - { name: pg, type: freshness, table: pg.sales_order, column: updated_at, error_after: 15m }\n\
                  \x20 - { name: parquet, type: freshness, table: lake.sales_order, column: updated_at, error_after: 15m }\n\
                  \x20 - { name: s3, type: freshness, table: s3.sales_order, column: updated_at, error_after: 15m }\n\
                  \x20 - { name: warned, type: freshness, table: pg.sales_order, column: updated_at, warn_after: 10m, error_after: 1h }\n";
    let csv = "  - { name: csv, type: freshness, table: csv.sales_order, column: created_at, error_after: 15m }\n";
    let fifteen = chrono::Duration::minutes(15);

    let at_limit = at_limit_and_past(&world, "", checks, "pg", updated, fifteen).await;
    for name in ["pg", "parquet", "s3"] {
        let found = result(&at_limit, name);
        assert_status(found, Status::Pass);
        assert_eq!(found.metrics["newest"], json!(rfc3339(updated)), "{name}");
        assert_eq!(found.metrics["lag_seconds"], json!(900.0), "{name}");
        assert_eq!(found.metrics["measure"], json!("column"), "{name}");
        assert_eq!(
            observed(found),
            format!("newest updated_at 15m old ({})", rfc3339(updated))
        );
    }
    let warned = result(&at_limit, "warned");
    assert_status(warned, Status::Warn);
    assert_eq!(
        warned.message,
        format!(
            "older than warn_after 10m: newest updated_at 15m old ({})",
            rfc3339(updated)
        )
    );
    assert_eq!(
        warned.expected.as_deref(),
        Some(
            "newest updated_at no older than 1h (warn past 10m), and no more than 1m in the future"
        )
    );
    // The maximum is pushed down to PostgreSQL.
    assert_eq!(
        result(&at_limit, "pg").queries[0].sql,
        "SELECT max(\"updated_at\") AS newest FROM \"autocorp\".\"sales_order\""
    );

    for name in ["parquet", "s3"] {
        let past = at_limit_and_past(&world, "", checks, name, updated, fifteen).await;
        assert_eq!(result(&past, name).metrics["lag_seconds"], json!(900.0));
    }

    let report = at_limit_and_past(&world, "", csv, "csv", created, fifteen).await;
    assert_eq!(
        result(&report, "csv").metrics["newest"],
        json!(rfc3339(created))
    );
    assert_eq!(result(&report, "csv").metrics["timezone"], json!("UTC"));
}

/// Times without a zone are wall-clock times in `timezone:`; a zoned column refuses one.
#[tokio::test]
async fn zone_less_times_are_read_in_the_stated_zone() {
    let world = world().await;
    let created = newest_in_data(&world, "sales_order", "created_at");
    // The CSV holds the UTC wall clock: read in Chicago it is that wall clock there.
    let chicago = chrono_tz::America::Chicago
        .from_local_datetime(&created.naive_utc())
        .single()
        .unwrap()
        .to_utc();
    let checks = "  - { name: chicago, type: freshness, table: csv.sales_order, column: created_at, timezone: America/Chicago, error_after: 15m }\n\
                  \x20 - { name: zoned, type: freshness, table: pg.sales_order, column: updated_at, timezone: America/Chicago, error_after: 15m }\n";
    let report = run_at(&world, "", checks, chicago + chrono::Duration::minutes(15)).await;
    let found = result(&report, "chicago");
    assert_status(found, Status::Pass);
    assert_eq!(found.metrics["newest"], json!(rfc3339(chicago)));
    assert_eq!(found.metrics["timezone"], json!("America/Chicago"));
    assert_eq!(
        error_of(&report, "zoned"),
        "cannot measure pg.sales_order: `timezone: America/Chicago` reads times without a \
         zone, and `updated_at` (timestamp with time zone) holds instants; remove `timezone`"
    );
}

/// A newest time further in the future than `max_skew` fails, naming the likely zone mix-up;
/// within it, clocks may disagree a little.
#[tokio::test]
async fn a_newest_time_beyond_max_skew_in_the_future_fails_naming_the_zone() {
    let world = world().await;
    let created = newest_in_data(&world, "sales_order", "created_at");
    let checks = "  - { name: ahead, type: freshness, table: csv.sales_order, column: created_at, error_after: 15m }\n\
                  \x20 - { name: wide skew, type: freshness, table: csv.sales_order, column: created_at, error_after: 15m, max_skew: 3h }\n";
    let now = created - chrono::Duration::hours(2);
    let report = run_at(&world, "", checks, now).await;
    let ahead = result(&report, "ahead");
    assert_status(ahead, Status::Fail);
    assert_eq!(
        observed(ahead),
        format!(
            "newest created_at 2h in the future ({}, now {}), beyond max_skew 1m: `created_at` \
             holds times without a zone, read in UTC (`timezone:`): if they were written in a \
             zone east of it, set `timezone:` to the writer's zone; otherwise the writer's clock \
             runs ahead of this machine's, or `--now` is set before them",
            rfc3339(created),
            rfc3339(now)
        )
    );
    assert_eq!(ahead.metrics["lag_seconds"], json!(-7200.0));
    assert_eq!(ahead.metrics["in_future"], json!(true));
    let wide = result(&report, "wide skew");
    assert_status(wide, Status::Pass);
    assert_eq!(
        observed(wide),
        format!(
            "newest created_at 2h in the future ({}), within max_skew 3h",
            rfc3339(created)
        )
    );
}

/// Nothing to date is an error, never a pass: no rows, only NULLs, a column that holds no times,
/// a source without commits or files.
#[tokio::test]
async fn nothing_to_date_is_an_error() {
    let world = world().await;
    let lake = tempfile::tempdir().unwrap();
    let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![None::<i64>, None]));
    let nulls = RecordBatch::try_from_iter([("ts", ts.clone())]).unwrap();
    for (table, batch) in [("nulls", nulls.clone()), ("empty", nulls.slice(0, 0))] {
        std::fs::create_dir_all(lake.path().join(table)).unwrap();
        std::fs::write(
            lake.path().join(table).join("part-0.parquet"),
            to_parquet(&batch),
        )
        .unwrap();
    }
    let extra = format!(
        "  scratch: {{ type: lake, url: \"{}\" }}\n",
        lake.path().display()
    );
    let checks = "  - { name: no rows, type: freshness, table: pg.sales_order, column: updated_at, where: \"order_id < 0\", error_after: 1d }\n\
                  \x20 - { name: empty file, type: freshness, table: scratch.empty, column: ts, error_after: 1d }\n\
                  \x20 - { name: only nulls, type: freshness, table: scratch.nulls, column: ts, error_after: 1d }\n\
                  \x20 - { name: text, type: freshness, table: pg.sales_order, column: status, error_after: 1d }\n\
                  \x20 - { name: no column, type: freshness, table: pg.sales_order, column: shipped_at, error_after: 1d }\n\
                  \x20 - { name: no commits, type: freshness, table: pg.sales_order, error_after: 1d }\n\
                  \x20 - { name: no files, type: freshness, table: pg.sales_order, arrival: true, error_after: 1d }\n";
    let report = run_at(&world, &extra, checks, Utc::now()).await;
    let error = |name: &str| error_of(&report, name);
    assert_eq!(
        error("no rows"),
        "cannot measure pg.sales_order: it holds no rows after `where`, so nothing dates it"
    );
    assert_eq!(
        error("empty file"),
        "cannot measure scratch.empty: it holds no rows, so nothing dates it"
    );
    assert_eq!(
        error("only nulls"),
        "cannot measure scratch.nulls: every `ts` is NULL (2 rows), so nothing dates it"
    );
    assert_eq!(
        error("text"),
        "cannot measure pg.sales_order: `status` is text (text); freshness dates timestamp and \
         date columns (text orders as text, not as time)"
    );
    assert!(
        error("no column").starts_with(
            "cannot measure pg.sales_order: `shipped_at` is not one of its columns (order_id, "
        ),
        "{}",
        error("no column")
    );
    assert!(
        error("no commits").contains("records no commits or changes of its tables"),
        "{}",
        error("no commits")
    );
    assert_eq!(
        error("no files"),
        "cannot measure pg.sales_order: source `pg` (postgres) keeps no files; `arrival` dates a \
         lake table folder by its newest file"
    );
}

/// Delta and Hudi tables are dated by their last commit, exactly to the millisecond.
#[tokio::test]
async fn delta_and_hudi_commits_pass_at_error_after_and_fail_just_past_it() {
    let world = world().await;
    let root = tempfile::tempdir().unwrap();
    let changes = autocorp::cdc_changes(&world.tables);
    autocorp::write_curated_delta(&root.path().join("delta"), &world.tables)
        .await
        .unwrap();
    autocorp::write_curated_hudi(&root.path().join("hudi"), &world.tables, &changes)
        .await
        .unwrap();
    let extra = format!(
        "  delta: {{ type: delta, url: \"{root}/delta\" }}\n  hudi: {{ type: hudi, url: \"{root}/hudi\" }}\n",
        root = root.path().display()
    );
    let probe = run_at(
        &world,
        &extra,
        "  - { name: d, type: row_count, table: delta.service, min: 1 }\n\
         \x20 - { name: h, type: row_count, table: hudi.customers, min: 1 }\n",
        Utc::now(),
    )
    .await;
    let last = |name: &str, table: &str| {
        let text = result(&probe, name).table_metadata[table]["last_commit"]
            .as_str()
            .unwrap()
            .to_string();
        DateTime::parse_from_rfc3339(&text).unwrap().to_utc()
    };
    let (delta, hudi) = (last("d", "delta.service"), last("h", "hudi.customers"));
    let now = delta.max(hudi) + chrono::Duration::minutes(10);
    let limit = |last: DateTime<Utc>, slack_ms: i64| {
        let ms = (now - last).num_milliseconds() - slack_ms;
        format_duration(std::time::Duration::from_millis(ms as u64))
    };
    let checks = format!(
        "  - {{ name: delta at limit, type: freshness, table: delta.service, error_after: \"{}\" }}\n\
         \x20 - {{ name: delta past limit, type: freshness, table: delta.service, error_after: \"{}\" }}\n\
         \x20 - {{ name: hudi at limit, type: freshness, table: hudi.customers, commit: true, error_after: \"{}\" }}\n\
         \x20 - {{ name: hudi past limit, type: commit_freshness, table: hudi.customers, max_age: \"{}\" }}\n",
        limit(delta, 0),
        limit(delta, 1),
        limit(hudi, 0),
        limit(hudi, 1),
    );
    let report = run_at(&world, &extra, &checks, now).await;
    crate::harness::assert_statuses(&report, |name| {
        if name.ends_with("at limit") {
            Status::Pass
        } else {
            Status::Fail
        }
    });
    assert_eq!(
        result(&report, "delta at limit").metrics["newest"],
        json!(rfc3339(delta))
    );
    assert_eq!(
        result(&report, "hudi past limit").metrics["newest"],
        json!(rfc3339(hudi))
    );
    assert_eq!(result(&report, "hudi past limit").kind, "commit_freshness");
    assert!(observed(result(&report, "hudi at limit")).starts_with("last commit 10m old ("));
}

/// `arrival` dates a folder by its newest file at any depth; an empty folder is an error.
#[tokio::test]
async fn arrival_dates_a_local_folder_by_its_newest_file() {
    let world = world().await;
    let lake = tempfile::tempdir().unwrap();
    let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
    let newest = at("2026-12-02T10:03:00Z");
    touch(
        &lake.path().join("orders/orders_0001.csv"),
        at("2026-12-02T09:00:00Z"),
    );
    touch(
        &lake.path().join("orders/2026/12/02/orders_0002.csv"),
        newest,
    );
    touch(
        &lake.path().join("orders/orders_0003.csv"),
        at("2026-12-01T23:00:00Z"),
    );
    std::fs::create_dir_all(lake.path().join("nothing_yet")).unwrap();
    let extra = format!(
        "  drops: {{ type: lake, url: \"{}\", format: csv }}\n",
        lake.path().display()
    );
    let checks = "  - { name: orders, type: freshness, table: drops.orders, arrival: true, error_after: 15m }\n\
                  \x20 - { name: nothing yet, type: freshness, table: drops.nothing_yet, arrival: true, error_after: 15m }\n";
    let fifteen = chrono::Duration::minutes(15);
    let report = at_limit_and_past(&world, &extra, checks, "orders", newest, fifteen).await;
    let orders = result(&report, "orders");
    let file = url::Url::from_file_path(lake.path().join("orders/2026/12/02/orders_0002.csv"))
        .unwrap()
        .to_string();
    assert_eq!(
        observed(orders),
        format!("newest file 15m old (2026-12-02T10:03:00Z, {file})")
    );
    assert_eq!(orders.metrics["origin"], json!(file));
    assert_eq!(orders.metrics["measure"], json!("arrival"));
    let error = error_of(&report, "nothing yet");
    assert!(
        error.contains("table `nothing_yet` not found: no file (of any kind, at any depth) in ")
            && error.contains("(tables here: nothing_yet, orders)"),
        "{error}"
    );
}

/// On S3 the newest object's last-modified time is the storage's; a bucket that cannot be listed
/// is an error, not an empty folder.
#[tokio::test]
async fn arrival_dates_an_s3_folder_by_its_newest_object() {
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
    let world = world().await;
    let store = world.s3.store();
    let prefix = format!("drops-{}", std::process::id());
    for name in [
        "customers/customers_0001.csv",
        "customers/2026/12/customers_0002.csv",
    ] {
        let path = object_store::path::Path::from(format!("{prefix}/{name}"));
        store.put(&path, PutPayload::from("id\n1\n")).await.unwrap();
    }
    let listed = {
        use futures::TryStreamExt;
        let folder = object_store::path::Path::from(format!("{prefix}/customers"));
        let objects: Vec<_> = store.list(Some(&folder)).try_collect().await.unwrap();
        objects.into_iter().map(|o| o.last_modified).max().unwrap()
    };
    let storage = format!(
        "storage: {{ endpoint: \"{}\", allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }}",
        world.s3.endpoint
    );
    let extra = format!(
        "  drops: {{ type: lake, url: \"s3://lake/{prefix}\", format: csv, {storage} }}\n\
         \x20 nobucket: {{ type: lake, url: \"s3://no-such-bucket/{prefix}\", format: csv, {storage} }}\n"
    );
    let checks = "  - { name: customers, type: freshness, table: drops.customers, arrival: true, error_after: 15m }\n\
                  \x20 - { name: no bucket, type: freshness, table: nobucket.customers, arrival: true, error_after: 15m }\n";
    let fifteen = chrono::Duration::minutes(15);
    let report = at_limit_and_past(&world, &extra, checks, "customers", listed, fifteen).await;
    let customers = result(&report, "customers");
    assert_eq!(customers.metrics["newest"], json!(rfc3339(listed)));
    assert!(
        customers.metrics["origin"]
            .as_str()
            .unwrap()
            .starts_with(&format!("s3://lake/{prefix}/customers/")),
        "{:?}",
        customers.metrics
    );
    let error = error_of(&report, "no bucket");
    assert!(
        error.contains("cannot list s3://no-such-bucket/"),
        "a storage error is an error, never an empty folder: {error}"
    );
}

/// A DMS raw zone is dated by its newest change file: by the largest `timestamp_column` value
/// when the source names one, else by the time in the file's name. Neither needs `keys`.
#[tokio::test]
async fn dms_tables_are_dated_by_their_newest_change() {
    let world = world().await;
    let zone = tempfile::tempdir().unwrap();
    let full_load = world.lake_dir.path().join("raw/database/autocorp");
    for table in ["sales_order", "auto_parts"] {
        std::fs::create_dir_all(zone.path().join(table)).unwrap();
        std::fs::copy(
            full_load.join(table).join("LOAD00000001.parquet"),
            zone.path().join(table).join("LOAD00000001.parquet"),
        )
        .unwrap();
    }
    // Committed at 08:00, written by DMS a quarter of an hour later, under a date folder.
    let changes = autocorp::cdc_changes(&world.tables);
    let captured: Vec<RecordBatch> = changes
        .iter()
        .filter(|c| c.table == "sales_order")
        .map(|c| cdc_batch(c.op, &c.rows, CDC_COMMIT_TIME))
        .collect();
    let cdc = concat_batches(&captured[0].schema(), &captured).unwrap();
    let dated = zone.path().join("sales_order/2026/11/21");
    std::fs::create_dir_all(&dated).unwrap();
    std::fs::write(dated.join("20261121-081500000.parquet"), to_parquet(&cdc)).unwrap();
    // A change whose commit time DMS left NULL.
    std::fs::create_dir_all(zone.path().join("broken")).unwrap();
    let broken = RecordBatch::try_from_iter(cdc.schema().fields().iter().zip(cdc.columns()).map(
        |(field, column)| {
            let column = if field.name() == autocorp::COMMIT_TIME_COLUMN {
                datafusion::arrow::array::new_null_array(column.data_type(), column.len())
            } else {
                column.clone()
            };
            (field.name().clone(), column)
        },
    ))
    .unwrap();
    std::fs::write(
        zone.path().join("broken/20261121-081500000.parquet"),
        to_parquet(&broken),
    )
    .unwrap();
    let extra = format!(
        "  dms: {{ type: lake, url: \"{root}\", layout: dms, timestamp_column: commit_ts }}\n\
         \x20 names: {{ type: lake, url: \"{root}\", layout: dms }}\n",
        root = zone.path().display()
    );
    let checks = "  - { name: by commit time, type: freshness, table: dms.sales_order, error_after: 15m }\n\
                  \x20 - { name: by file name, type: freshness, table: names.sales_order, commit: true, error_after: 15m }\n\
                  \x20 - { name: full load only, type: freshness, table: dms.auto_parts, error_after: 1h15m }\n\
                  \x20 - { name: full load without commit times, type: freshness, table: names.auto_parts, error_after: 1d }\n\
                  \x20 - { name: commit time missing, type: freshness, table: dms.broken, error_after: 1d }\n";
    let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
    let report = run_at(&world, &extra, checks, at("2026-11-21T08:15:00Z")).await;
    let by_commit = result(&report, "by commit time");
    assert_status(by_commit, Status::Pass);
    let file = url::Url::from_file_path(dated.join("20261121-081500000.parquet"))
        .unwrap()
        .to_string();
    assert_eq!(
        observed(by_commit),
        format!("newest change 15m old (2026-11-21T08:00:00Z, `commit_ts` of {file})")
    );
    let by_name = result(&report, "by file name");
    assert_status(by_name, Status::Pass);
    assert_eq!(by_name.metrics["newest"], json!("2026-11-21T08:15:00Z"));
    assert_eq!(
        by_name.metrics["origin"],
        json!(format!("the name of {file}"))
    );
    // The full load was stamped 07:00 (the DMS load time).
    let full = result(&report, "full load only");
    assert_status(full, Status::Pass);
    assert_eq!(full.metrics["lag_seconds"], json!(4500.0));
    let unnamed = error_of(&report, "full load without commit times");
    assert!(
        unnamed.contains(
            "the table holds only full-load files, whose names carry no time; set `timestamp_column`"
        ),
        "{unnamed}"
    );
    let missing = error_of(&report, "commit time missing");
    assert!(
        missing.contains("row 1: commit time `commit_ts` is NULL, so the newest change is unknown"),
        "{missing}"
    );

    let report = run_at(&world, &extra, checks, at("2026-11-21T08:15:01Z")).await;
    assert_status(result(&report, "by commit time"), Status::Fail);
    assert_status(result(&report, "by file name"), Status::Pass);
}

/// `lakecheck run --now` fixes the clock of every check, and the JSON report shows it.
#[tokio::test]
async fn the_cli_clock_is_fixed_by_now() {
    let world = world().await;
    let updated = newest_in_data(&world, "sales_order", "updated_at");
    let dir = tempfile::tempdir().unwrap();
    let sources = world
        .sources_yaml()
        .replace("${PG_URL}", &world.pg.url("autocorp"))
        .replace("${LAKE_URL}", &world.lake_url())
        .replace("${S3_ENDPOINT}", &world.s3.endpoint);
    std::fs::write(
        dir.path().join("rules.yml"),
        format!(
            "{sources}checks:\n  - {{ name: orders, type: freshness, table: pg.sales_order, column: updated_at, error_after: 15m }}\n"
        ),
    )
    .unwrap();
    let lakecheck = |now: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lakecheck"))
            .args(["run", "rules.yml", "--now", now, "--reports-dir", "out"])
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let now = rfc3339(updated + chrono::Duration::minutes(7) + chrono::Duration::seconds(12));
    let out = lakecheck(&now);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/lakecheck.json")).unwrap())
            .unwrap();
    let metrics = &json["suites"][0]["results"][0]["metrics"];
    assert_eq!(metrics["now"], json!(now));
    assert_eq!(metrics["lag_seconds"], json!(432.0));
    assert!(text.contains("newest updated_at 7m12s old"), "{text}");
    let stale = lakecheck(&rfc3339(updated + chrono::Duration::hours(1)));
    assert_eq!(stale.status.code(), Some(1));
    let bad = lakecheck("yesterday");
    assert_eq!(bad.status.code(), Some(2));
    let error = String::from_utf8_lossy(&bad.stderr);
    assert!(
        error.contains("invalid value 'yesterday' for '--now <RFC3339>': not an RFC 3339 time"),
        "{error}"
    );
}
