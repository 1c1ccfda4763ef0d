//! Basic checks benchmark: six checks on one 1.2M-row PostgreSQL table (`row_count`,
//! `not_null`, `unique`, `accepted_values`, `range` on two columns), through the real `lakecheck`
//! binary. Prints wall time, peak RSS and the queries each run sent.
//!
//!     cargo bench --profile perf --bench basic_checks   # BENCH_ROWS (default 1.2M), BENCH_RUNS (5)
//!     ./scripts/bench-peers basic                        # the same, with Soda Core 3.5.6 beside it
//!
//! The table is `customers` of the reconcile benchmark (benches/support/customers.rs). With
//! `BENCH_KEEP_POSTGRES_FOR` the harness also writes the same six checks in SodaCL, with a Soda
//! configuration for the same server, and keeps the server until stdin closes, so
//! scripts/bench-peers times Soda on the same table in turn with lakecheck.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use lakecheck::demo::ThrowawayPostgres;

#[path = "support/customers.rs"]
mod customers;
#[path = "support/median.rs"]
mod median;
#[path = "support/timed_run.rs"]
mod timed_run;
use customers::{LIFETIME_VALUE_RANGE, STATES};
use median::median;
use timed_run::{lakecheck_binary, measure};

/// The six checks as a lakecheck rule file.
fn lakecheck_rules(url: &str, rows: usize) -> String {
    let (low, high) = LIFETIME_VALUE_RANGE;
    format!(
        "sources:\n  pg: {{ type: postgres, url: \"{url}\" }}\n\
         checks:\n\
         \x20 - {{ type: row_count, table: pg.customers, min: 1 }}\n\
         \x20 - {{ type: not_null, table: pg.customers, columns: [email] }}\n\
         \x20 - {{ type: unique, table: pg.customers, columns: [customer_id] }}\n\
         \x20 - {{ type: accepted_values, table: pg.customers, column: state, values: [{}] }}\n\
         \x20 - {{ type: range, table: pg.customers, column: lifetime_value, min: {low}, max: {high} }}\n\
         \x20 - {{ type: range, table: pg.customers, column: customer_id, min: 1, max: {rows} }}\n",
        STATES.join(", ")
    )
}

/// The same six checks in SodaCL. The ranges are `min(..)`/`max(..)` metrics: Soda computes
/// them in its one aggregate query per table, as it does `row_count`, `missing_count` and
/// `invalid_count` (only `duplicate_count` takes a query of its own); `invalid_count` with
/// `valid min`/`valid max` would cost a `CASE` per row and per column on top.
fn soda_checks(rows: usize) -> String {
    let (low, high) = LIFETIME_VALUE_RANGE;
    let states: Vec<String> = STATES.iter().map(|s| format!("'{s}'")).collect();
    format!(
        "checks for customers:\n\
         \x20 - row_count > 0\n\
         \x20 - missing_count(email) = 0\n\
         \x20 - duplicate_count(customer_id) = 0\n\
         \x20 - invalid_count(state) = 0:\n\
         \x20     valid values: [{}]\n\
         \x20 - min(lifetime_value) >= {low}\n\
         \x20 - max(lifetime_value) <= {high}\n\
         \x20 - min(customer_id) >= 1\n\
         \x20 - max(customer_id) <= {rows}\n",
        states.join(", ")
    )
}

/// A Soda data source `bench` for database `bench` on `pg` (trust authentication: no password).
fn soda_configuration(pg: &ThrowawayPostgres) -> String {
    format!(
        "data_source bench:\n  type: postgres\n  host: 127.0.0.1\n  port: {}\n  username: {}\n  \
         password: \"\"\n  database: bench\n  schema: public\n",
        pg.port(),
        lakecheck::demo::postgres::SUPERUSER
    )
}

/// A run's report: every check must have passed; returns the queries sent, counting a query
/// once however many checks report it as theirs.
fn queries_sent(reports: &Path) -> usize {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.join("lakecheck.json")).unwrap()).unwrap();
    let results = json["suites"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 6, "six checks in the report");
    let mut queries = BTreeSet::new();
    for result in results {
        assert_eq!(
            result["status"], "pass",
            "{}: {}",
            result["name"], result["message"]
        );
        for query in result["queries"].as_array().unwrap() {
            queries.insert((query["source"].to_string(), query["sql"].to_string()));
        }
    }
    queries.len()
}

#[tokio::main]
async fn main() {
    if customers::listing_only() {
        return;
    }
    let rows = customers::rows();
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let binary = lakecheck_binary();
    assert!(
        binary.is_file(),
        "build the binary first: cargo build --profile perf (scripts/bench-peers does)"
    );
    let work = tempfile::tempdir().unwrap();
    let pg = tokio::task::spawn_blocking(ThrowawayPostgres::start)
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    customers::load(&pg, rows, |_| {}).await;
    eprintln!(
        "loaded {rows} rows into PostgreSQL in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rules = work.path().join("basic.yml");
    std::fs::write(&rules, lakecheck_rules(&pg.url("bench"), rows)).unwrap();
    let reports = work.path().join("reports");
    // Warm the caches once, as the other benchmarks do.
    measure(&binary, &rules, &reports);
    println!("rows: {rows}, six basic checks on pg.customers");
    println!(
        "{:>4} {:>9} {:>13} {:>8}",
        "run", "wall (s)", "peak RSS (MB)", "queries"
    );
    let mut timings = Vec::new();
    for run in 0..runs {
        let (wall, rss, code) = measure(&binary, &rules, &reports);
        assert_eq!(code, 0, "every check passes on the generated table");
        let queries = queries_sent(&reports);
        println!("{run:>4} {wall:>9.3} {rss:>13.1} {queries:>8}");
        timings.push((wall, rss));
    }
    println!(
        "median: {:.3} s, {:.1} MB",
        median(timings.iter().map(|t| t.0)),
        median(timings.iter().map(|t| t.1))
    );
    std::io::stdout().flush().unwrap();
    let soda_checks_path = work.path().join("soda-checks.yml");
    let soda_configuration_path = work.path().join("soda-configuration.yml");
    std::fs::write(&soda_checks_path, soda_checks(rows)).unwrap();
    std::fs::write(&soda_configuration_path, soda_configuration(&pg)).unwrap();
    customers::keep_for_peers(&[
        rules.display().to_string(),
        soda_configuration_path.display().to_string(),
        soda_checks_path.display().to_string(),
    ]);
}
