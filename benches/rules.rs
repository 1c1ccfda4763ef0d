//! Rule-loading benchmark: a generated rule file of 1,000 checks (every check kind, seven
//! sources of every source type) timed through `parse_rule_text`, `load_paths` and the real
//! `lakecheck validate`. Loading connects to nothing, so no server is started. Prints figures.
//!
//!     ./scripts/bench                                   # with the reconcile benchmark
//!     cargo bench --profile perf --bench rules          # this one alone
//!     BENCH_CHECKS=10000 cargo bench --profile perf --bench rules
//!
//! Each figure is the fastest and the median of several runs; `validate` is timed as a child
//! process (start to exit), beside `validate` of a one-check file so process start-up is seen.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakecheck::registry::CHECK_KINDS;
use lakecheck::rules::{load_paths, parse_rule_text, Vars};

const RUNS: usize = 15;
const VALIDATE_RUNS: usize = 5;

/// Seven sources, one of every type (Postgres twice); loading must not reach any of them.
const SOURCES: &str = r#"sources:
  pg: { type: postgres, url: "postgres://reader@127.0.0.1:9/autocorp", schema: autocorp, heartbeat: { table: lakecheck_heartbeat, create: true } }
  replica: { type: postgres, url: "postgres://reader@127.0.0.1:9/autocorp", schema: autocorp, statement_timeout: 30s }
  raw: { type: lake, url: /data/raw, layout: dms, timestamp_column: commit_ts, keys: { customers: [customer_id] } }
  csv: { type: lake, url: /data/csv, format: csv }
  s3:
    type: lake
    url: s3://lake/raw
    storage: { endpoint: "http://127.0.0.1:9", allow_http: "true", region: us-east-1, access_key_id: k, secret_access_key: s }
  curated: { type: delta, url: /data/curated }
  hudi: { type: hudi, url: /data/hudi }
"#;

const LAKES: [&str; 5] = ["raw", "csv", "s3", "curated", "hudi"];
const TABLES: [&str; 4] = ["customers", "sales_order", "auto_parts", "service"];

/// The `i`-th check: kinds in turn, tables and sources varied, every check named.
fn check(i: usize) -> String {
    let kind = CHECK_KINDS[i % CHECK_KINDS.len()].name;
    let lake = LAKES[i % LAKES.len()];
    let pg = ["pg", "replica"][i % 2];
    let table = TABLES[i % TABLES.len()];
    let body = match kind {
        "row_count" => format!("table: {lake}.{table}, min: 1, max: {}", 1000 + i),
        "row_count_match" => format!("left: {pg}.{table}, right: {lake}.{table}, tolerance: 1%"),
        "not_null" => format!("table: {lake}.{table}, columns: [id, email], where: \"id > {i}\""),
        "unique" => format!("table: {pg}.{table}, columns: [id]"),
        "accepted_values" => format!("table: {lake}.{table}, column: status, values: [NEW, PAID, SHIPPED]"),
        "range" => format!("table: {pg}.{table}, column: amount, min: 0.01, max: {i}"),
        "condition" => format!("table: {lake}.{table}, expression: \"amount > 0 and id <> {i}\""),
        "sql" => format!("source: {pg}, query: \"select id from {table} where id = {i}\""),
        "schema_match" => format!("left: {pg}.{table}, right: {lake}.{table}"),
        "aggregate_match" => format!("left: {pg}.{table}, right: {lake}.{table}, tolerance: 0.01%, distinct: true"),
        "table_match" => format!("left: {pg}.{table}, right: {lake}.{table}, key: [id], exclude: [etl_timestamp]"),
        "freshness" => format!("table: {pg}.{table}, column: updated_at, warn_after: 10m, error_after: 15m"),
        "commit_freshness" => format!("table: curated.{table}, max_age: 1d"),
        "cdc_latency" => "source: pg, stages: [{ name: raw, table: raw.lakecheck_heartbeat, max_latency: 2m }], max_latency: 15m".to_string(),
        other => panic!("the benchmark has no check of kind `{other}`: add one"),
    };
    format!(
        "  - {{ name: \"check {i} {kind}\", type: {kind}, {body}, tags: [bench, t{}] }}\n",
        i % 10
    )
}

fn rule_file(checks: usize) -> String {
    let mut text = String::from(SOURCES);
    text.push_str("checks:\n");
    for i in 0..checks {
        text.push_str(&check(i));
    }
    text
}

/// Runs `f` `runs` times; the fastest and the median.
fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[runs / 2])
}

fn validate(rules: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_lakecheck"))
        .arg("validate")
        .arg(rules)
        .output()
        .expect("run lakecheck validate");
    assert!(
        output.status.success(),
        "lakecheck validate failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` asks for a list; this harness only runs on purpose.
    }
    let checks: usize = std::env::var("BENCH_CHECKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let work = tempfile::tempdir().unwrap();
    let text = rule_file(checks);
    let big = work.path().join("big.yml");
    std::fs::write(&big, &text).unwrap();
    let one = work.path().join("one.yml");
    std::fs::write(&one, rule_file(1)).unwrap();
    let vars = Arc::new(Vars::new());

    let parsed = parse_rule_text(&big, &text, &vars).unwrap_or_else(|errors| {
        panic!(
            "the generated rule file must load: {:?}",
            &errors[..errors.len().min(3)]
        )
    });
    assert_eq!(parsed.checks.len(), checks);

    let paths: Vec<PathBuf> = vec![big.clone()];
    let parse = time(RUNS, || {
        parse_rule_text(&big, &text, &vars).unwrap();
    });
    let load = time(RUNS, || {
        load_paths(&paths, &vars).unwrap();
    });
    let validate_big = time(VALIDATE_RUNS, || validate(&big));
    let validate_one = time(VALIDATE_RUNS, || validate(&one));

    println!(
        "rule file: {checks} checks of {} kinds, 7 sources, {} KiB",
        CHECK_KINDS.len(),
        text.len() / 1024
    );
    println!("| step | fastest (ms) | median (ms) |");
    println!("|---|---|---|");
    for (step, (fastest, median)) in [
        ("parse_rule_text", parse),
        ("load_paths", load),
        ("lakecheck validate (process)", validate_big),
        ("lakecheck validate, 1 check", validate_one),
    ] {
        println!("| {step} | {} | {} |", ms(fastest), ms(median));
    }
}
