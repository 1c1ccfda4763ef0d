//! Lake sources on production storage: S3 failing for a moment (retried, and counted in the
//! result) or for good (an error within the retry budget, naming the source and the cause),
//! damaged tables, and the run's memory limit. Every fault leaves the other checks of the run
//! running, and the run ends with exit code 2 and its reports written.
//!
//! S3 failures come from a proxy in front of moto that fails requests on cue
//! (`harness::FaultProxy`); S3 not listening at all is in `errors.rs`.

use std::path::Path;
use std::sync::Arc;

use lakecheck::app::{self, RunOptions};
use lakecheck::results::{RunReport, Status};
use lakecheck::rules::{parse_rule_text_with, RuleFile};
use lakecheck::runner;
use lakecheck::sources::memory::MemoryLimit;
use lakecheck::sources::RunResources;
use rstest::rstest;
use serde_json::json;

use crate::harness::{
    assert_names, assert_status, curated_hudi, error_of, local_world, result, run_files, s3_world,
    Fault, FaultProxy, World,
};

/// Parses `checks` with `sources` declared before the world's own, the lake sessions sharing
/// `resources`.
fn rules(world: &World, sources: &str, checks: &str, resources: &RunResources) -> RuleFile {
    let text = format!(
        "{}checks:\n{checks}",
        world
            .sources_yaml()
            .replace("sources:\n", &format!("sources:\n{sources}"))
    );
    parse_rule_text_with(Path::new("faults.yml"), &text, &world.vars(), resources)
        .unwrap_or_else(|errors| panic!("rules should parse: {errors:?}"))
}

async fn run(world: &World, sources: &str, checks: &str) -> RunReport {
    run_files(&[rules(world, sources, checks, &RunResources::default())]).await
}

/// Source `flaky`: the S3 raw zone, reached through `proxy`, with `options` added.
fn flaky_source(proxy: &FaultProxy, options: &str) -> String {
    format!(
        "  flaky: {{ type: lake, url: \"s3://lake/raw/database/autocorp\", storage: {{ endpoint: \"{}\", \
         allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }}{options} }}\n",
        proxy.endpoint
    )
}

/// A check on the flaky source and one on the local lake, which no S3 fault touches.
fn checks(world: &World) -> String {
    let customers = world.table("customers").batch.num_rows();
    format!(
        "  - {{ name: flaky, type: row_count, table: flaky.customers, equals: {customers} }}\n\
         \x20 - {{ name: local, type: row_count, table: lake.customers, equals: {customers} }}\n"
    )
}

/// The error of check `name`, asserting it could not run and names `source` first.
fn source_error<'a>(report: &'a RunReport, name: &str, source: &str) -> &'a str {
    let error = error_of(report, name);
    assert!(error.starts_with(&format!("source `{source}`")), "{error}");
    error
}

/// Fewer failures than the budget: the check passes, and its result says how many requests
/// were sent again, which is exactly how many the proxy failed.
#[rstest]
#[case::unavailable(Fault::Unavailable)]
#[case::dropped(Fault::Dropped)]
#[tokio::test]
async fn transient_s3_failures_are_retried_and_counted_in_the_result(#[case] fault: Fault) {
    let world = s3_world().await;
    let proxy = FaultProxy::start(&world.s3.endpoint).await;
    proxy.fail_next(2, fault);
    let report = run(&world, &flaky_source(&proxy, ""), &checks(&world)).await;
    let flaky = result(&report, "flaky");
    assert_status(flaky, Status::Pass);
    assert_eq!(proxy.faults(), 2);
    assert_eq!(
        flaky.table_metadata["flaky.customers"],
        json!({ "object_store_retries": 2 })
    );
    assert!(result(&report, "local").table_metadata.is_empty());
    assert_eq!(report.exit_code, 0);
}

/// A request that fails more often than the budget allows is given up: the check is an error
/// naming the source, the cause and the budget, the other check passes, the run exits 2 and
/// writes its reports.
#[rstest]
#[case::unavailable(Fault::Unavailable, &["503 Service Unavailable", "ServiceUnavailable"])]
#[case::dropped(Fault::Dropped, &["connection closed before message completed"])]
#[tokio::test]
async fn persistent_s3_failure_is_an_error_within_the_retry_budget(
    #[case] fault: Fault,
    #[case] cause: &[&str],
) {
    let world = s3_world().await;
    let proxy = FaultProxy::start(&world.s3.endpoint).await;
    proxy.fail_after(0, fault);
    let file = rules(
        &world,
        &flaky_source(&proxy, ", retries: 2, retry_timeout: 20s"),
        &checks(&world),
        &RunResources::default(),
    );
    let reports = tempfile::tempdir().unwrap();
    let options = RunOptions {
        selection: Default::default(),
        jobs: 2,
        outputs: app::report_outputs(reports.path(), &[]),
        verbose: false,
        clock: Default::default(),
        history: None,
        failures: None,
    };
    let (exit, report) = app::execute(&[file], &options).await;
    let report = report.expect("the run finished");
    let error = source_error(&report, "flaky", "flaky");
    assert_names(error, cause);
    assert_names(
        error,
        &[
            "gave up after 2 retries in ",
            "the source allows `retries: 2` within `retry_timeout: 20s`",
        ],
    );
    assert_status(result(&report, "local"), Status::Pass);
    assert_eq!(exit, 2);
    let json = std::fs::read_to_string(reports.path().join("lakecheck.json")).unwrap();
    assert!(json.contains("gave up after 2 retries"), "{json}");
    // Every failed request was tried three times, never more.
    assert_eq!(proxy.faults() % 3, 0, "{} faults", proxy.faults());
}

/// S3 failing part-way: the table's folder is listed, then every read fails. The error names
/// the table and the failed read.
#[tokio::test]
async fn s3_failing_mid_read_is_an_error_naming_the_table() {
    let world = s3_world().await;
    let proxy = FaultProxy::start(&world.s3.endpoint).await;
    proxy.fail_after(2, Fault::Dropped);
    let report = run(&world, &flaky_source(&proxy, ""), &checks(&world)).await;
    let error = source_error(&report, "flaky", "flaky");
    assert_names(
        error,
        &[
            "Parquet table `customers`",
            "Error performing GET http://",
            "/lake/raw/database/autocorp/customers/",
            "connection closed before message completed",
            "gave up after 3 retries",
        ],
    );
    assert_status(result(&report, "local"), Status::Pass);
    assert_eq!(report.exit_code, 2);
    assert!(proxy.requests() > 1);
}

/// Retry options are for S3: on local files, and out of range, they are refused where written.
#[rstest]
#[case::local(
    "  files: { type: lake, url: \"/tmp\", retries: 2 }\n",
    "`retries` and `retry_timeout` of source `files` apply to s3:// URLs only"
)]
#[case::not_a_duration(
    "  files: { type: lake, url: \"s3://lake/raw\", retry_timeout: soon }\n",
    "`retry_timeout` in source `files` is not a duration: `soon`"
)]
#[case::too_many(
    "  files: { type: lake, url: \"s3://lake/raw\", retries: 99999999999 }\n",
    "`retries` of 99999999999 is too many"
)]
fn retry_options_are_refused_where_they_cannot_apply(#[case] source: &str, #[case] message: &str) {
    let text = format!("sources:\n{source}checks: []\n");
    let errors = lakecheck::rules::parse_rule_text(
        Path::new("faults.yml"),
        &text,
        &Arc::new(Default::default()),
    )
    .unwrap_err();
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        all.iter().any(|e| e.contains(message)),
        "`{message}` missing from {all:?}"
    );
}

/// A Delta log that names a data file no longer there: an error naming that file.
#[tokio::test]
async fn a_delta_log_naming_a_deleted_file_is_an_error_naming_it() {
    let world = local_world().await;
    let root = tempfile::tempdir().unwrap();
    lakecheck::demo::autocorp::write_curated_delta(root.path(), &world.tables)
        .await
        .unwrap();
    let table = root.path().join("auto_parts");
    let data = std::fs::read_dir(&table)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a data file");
    std::fs::remove_file(&data).unwrap();
    let sources = format!(
        "  curated: {{ type: delta, url: \"{}\" }}\n",
        root.path().display()
    );
    let report = run(
        &world,
        &sources,
        "  - { name: deleted, type: row_count, table: curated.auto_parts, min: 1 }\n\
         \x20 - { name: local, type: row_count, table: lake.customers, min: 1 }\n",
    )
    .await;
    let error = source_error(&report, "deleted", "curated");
    assert_names(
        error,
        &[
            &format!("Delta table `auto_parts`, file `file://{}`", data.display()),
            "the Delta log names this data file, and it is not in storage",
        ],
    );
    assert_status(result(&report, "local"), Status::Pass);
    assert_eq!(report.exit_code, 2);
}

/// A Hudi timeline whose newest instant is still in flight, its data files half written: the
/// table reads as of the last completed commit, as Hudi readers do.
#[tokio::test]
async fn a_hudi_commit_in_flight_is_not_read() {
    let world = local_world().await;
    let (root, source) = curated_hudi(&world).await;
    let checks = "  - { name: customers, type: row_count, table: hudi.customers, min: 1 }\n";
    let before = run(&world, &source, checks).await;
    let customers = result(&before, "customers");
    assert_status(customers, Status::Pass);
    let count = customers.metrics["row_count"].clone();
    let last_commit = customers.table_metadata["hudi.customers"]["last_commit"].clone();

    let table = root.path().join("customers");
    let timeline = timeline_dir(&table);
    let instant = "29991231235959999";
    std::fs::write(timeline.join(format!("{instant}.commit.requested")), b"").unwrap();
    std::fs::write(timeline.join(format!("{instant}.inflight")), b"").unwrap();
    // A data file of the instant in flight, cut short, beside the committed ones.
    let committed = std::fs::read_dir(&table)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a committed data file");
    let name = committed.file_name().unwrap().to_string_lossy().to_string();
    let (file_id, _) = name.split_once('_').unwrap();
    std::fs::write(
        table.join(format!("{file_id}_0-0-0_{instant}.parquet")),
        b"half a parquet file",
    )
    .unwrap();

    let after = run(&world, &source, checks).await;
    let customers = result(&after, "customers");
    assert_status(customers, Status::Pass);
    assert_eq!(customers.metrics["row_count"], count);
    assert_eq!(
        customers.table_metadata["hudi.customers"]["last_commit"],
        last_commit
    );
}

/// Where a Hudi table keeps its instants: `.hoodie/timeline/` (table version 8), else `.hoodie/`.
fn timeline_dir(table: &Path) -> std::path::PathBuf {
    let hoodie = table.join(".hoodie");
    let v8 = hoodie.join("timeline");
    if v8.is_dir() {
        v8
    } else {
        hoodie
    }
}

/// Every pair of customers' e-mail addresses in one array (tens of MB): an aggregate without
/// groups keeps its whole state in memory and cannot spill.
const GREEDY: &str = "SELECT a FROM (SELECT array_agg(concat(x.email, y.email)) AS a FROM customers x CROSS JOIN customers y) WHERE cardinality(a) < 0";

/// A run whose memory limit is far below what one query needs: that check is an error naming
/// the limit and how to raise it; the checks that fit still run and pass.
#[tokio::test]
async fn the_memory_limit_reached_is_an_error_naming_the_limit() {
    let world = local_world().await;
    let limit = MemoryLimit::parse("1MiB").unwrap();
    let file = rules(
        &world,
        "",
        &format!(
            "  - {{ name: greedy, type: sql, source: lake, query: \"{GREEDY}\" }}\n\
             \x20 - {{ name: count, type: row_count, table: lake.customers, min: 1 }}\n"
        ),
        &RunResources::with_memory_limit(limit),
    );
    // One check at a time: checks running at once share the limit, and one running beside the
    // greedy check could find the pool full.
    let planned = runner::plan(std::slice::from_ref(&file), &Default::default()).unwrap();
    let report = runner::run(&[file], planned, 1, Default::default(), &|_| {}).await;
    let error = source_error(&report, "greedy", "lake");
    assert_names(
        error,
        &[
            "memory limit of 1.0 MiB reached (set by --memory-limit)",
            "--memory-limit 8GiB",
        ],
    );
    assert_status(result(&report, "count"), Status::Pass);
    assert_eq!(report.exit_code, 2);
}

/// `--memory-limit` on the command line: a size that is no size is refused before anything
/// runs; a tiny one fails the check that needs memory, naming the limit, and the run exits 2.
#[tokio::test]
async fn memory_limit_on_the_command_line() {
    let world = local_world().await;
    let dir = tempfile::tempdir().unwrap();
    let lake = format!("{}/raw/database/autocorp", world.lake_url());
    std::fs::write(
        dir.path().join("rules.yml"),
        format!(
            "sources:\n  lake: {{ type: lake, url: \"{lake}\" }}\nchecks:\n\
             \x20 - {{ name: greedy, type: sql, source: lake, query: \"{GREEDY}\" }}\n"
        ),
    )
    .unwrap();
    let lakecheck = |limit: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_lakecheck"))
            .args(["run", "rules.yml", "--memory-limit", limit, "-q"])
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    };
    let (code, text) = lakecheck("lots");
    assert_eq!(code, Some(2), "{text}");
    assert_names(&text, &["`lots` is not a memory size", "`512MiB`"]);
    let (code, text) = lakecheck("1MiB");
    assert_eq!(code, Some(2), "{text}");
    assert_names(
        &text,
        &["memory limit of 1.0 MiB reached (set by --memory-limit)"],
    );
    assert!(dir.path().join("reports/lakecheck.json").is_file());
}

/// A sort of far more data than the memory limit holds spills to disk and passes.
#[tokio::test]
async fn a_sort_beyond_the_memory_limit_spills() {
    let world = local_world().await;
    let customers = &world.table("customers").batch;
    // Every pair of customers: each e-mail address once per customer, beside an id.
    let sorted_bytes = (customers
        .column_by_name("email")
        .unwrap()
        .get_array_memory_size()
        + 8 * customers.num_rows())
        * customers.num_rows();
    let limit = MemoryLimit::parse("4MiB").unwrap();
    assert!(
        sorted_bytes as u64 > 10 * limit.bytes,
        "the sort holds only {sorted_bytes} bytes"
    );
    let checks = "  - { name: sorted, type: sql, source: lake, query: \"SELECT * FROM (SELECT x.customer_id, y.email, row_number() OVER (ORDER BY y.email DESC, x.customer_id) AS n FROM customers x CROSS JOIN customers y) WHERE n < 1\" }\n";
    let file = rules(&world, "", checks, &RunResources::with_memory_limit(limit));
    let report = run_files(&[file]).await;
    assert_status(result(&report, "sorted"), Status::Pass);
}
