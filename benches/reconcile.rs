//! Reconcile benchmark: PostgreSQL vs the same table as Parquet and as CSV, through the real
//! `lakecheck` binary, clean and with injected differences. Prints wall time and peak RSS per
//! scenario and lake format, and the CSV figure beside the Parquet one.
//!
//!     ./scripts/bench                 # 1.2M rows (BENCH_ROWS to change), perf build
//!     ./scripts/bench-peers reconcile csv   # the same, with reladiff 0.6 timed beside it
//!
//! Data: `customers` (benches/support/customers.rs), 8 columns (int key, 5 short text,
//! numeric(12,2), timestamptz), as in PERF-NOTES. The harness writes the data, then times
//! `lakecheck run` as a child process, so the figures are the tool's own and comparable with
//! another tool's CLI. The Parquet and CSV runs alternate, so drift on the shared machine
//! touches both alike.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use lakecheck::demo::ThrowawayPostgres;

#[path = "support/customers.rs"]
mod customers;
#[path = "support/median.rs"]
mod median;
#[path = "support/timed_run.rs"]
mod timed_run;
use median::median;
use timed_run::{lakecheck_binary, measure};

/// One timed run of `lakecheck run`.
struct Timing {
    scenario: &'static str,
    format: &'static str,
    run: usize,
    wall_s: f64,
    rss_mb: f64,
}

/// One copy of the table in the lake: its format, its one file, and the rule file comparing it
/// with PostgreSQL.
struct LakeCopy {
    format: &'static str,
    file: PathBuf,
    rules: PathBuf,
    reports: PathBuf,
}

/// Writes a `table_match` of `pg.customers` against `lake.customers` in `format`, and makes
/// the table's folder for its file.
fn lake_copy(work: &Path, pg: &ThrowawayPostgres, format: &'static str) -> LakeCopy {
    let lake = work.join(format);
    let file = lake.join(format!("customers/part-0.{format}"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let rules = work.join(format!("bench-{format}.yml"));
    std::fs::write(
        &rules,
        format!(
            "sources:\n  pg: {{ type: postgres, url: \"{}\" }}\n  lake: {{ type: lake, url: \"{}\", format: {format} }}\n\
             checks:\n  - {{ name: customers, type: table_match, left: pg.customers, right: lake.customers }}\n",
            pg.url("bench"),
            lake.display()
        ),
    )
    .unwrap();
    LakeCopy {
        format,
        file,
        rules,
        reports: work.join("reports").join(format),
    }
}

/// Times each copy `runs` times, alternating copies; every run must exit `expected_exit`.
fn time_runs(
    binary: &Path,
    copies: &[LakeCopy],
    scenario: &'static str,
    expected_exit: i32,
    report: &mut Vec<Timing>,
) {
    for run in 0..3 {
        for copy in copies {
            let (wall, rss, code) = measure(binary, &copy.rules, &copy.reports);
            assert_eq!(
                code, expected_exit,
                "{scenario} against {}: exit {code}, expected {expected_exit}",
                copy.format
            );
            report.push(Timing {
                scenario,
                format: copy.format,
                run,
                wall_s: wall,
                rss_mb: rss,
            });
        }
    }
}

/// What the last run of `copy` found, and each of its queries, slowest first.
fn print_last_run(copy: &LakeCopy) {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.reports.join("lakecheck.json")).unwrap())
            .unwrap();
    let result = &json["suites"][0]["results"][0];
    println!(
        "{}: found missing {} changed {} ({})",
        copy.format,
        result["metrics"]["missing_keys"],
        result["metrics"]["changed_keys"],
        result["message"]
    );
    if let Some(queries) = result["queries"].as_array() {
        let mut queries: Vec<&serde_json::Value> = queries.iter().collect();
        queries.sort_by_key(|q| std::cmp::Reverse(q["duration_ms"].as_u64().unwrap_or(0)));
        println!("  queries of the last run, slowest first (source, ms, SQL start):");
        for query in queries.iter().take(8) {
            let sql: String = query["sql"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "  {:<5} {:>5}  {}",
                query["source"].as_str().unwrap_or_default(),
                query["duration_ms"],
                sql.chars().take(100).collect::<String>()
            );
        }
    }
}

#[tokio::main]
async fn main() {
    if customers::listing_only() {
        return;
    }
    let rows = customers::rows();
    let binary = lakecheck_binary();
    assert!(
        binary.is_file(),
        "build the binary first: cargo build --profile perf (scripts/bench does)"
    );
    let work = tempfile::tempdir().unwrap();
    let pg = tokio::task::spawn_blocking(ThrowawayPostgres::start)
        .await
        .unwrap()
        .unwrap();
    let copies = [
        lake_copy(work.path(), &pg, "parquet"),
        lake_copy(work.path(), &pg, "csv"),
    ];
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let mut parquet = ArrowWriter::try_new(
        File::create(&copies[0].file).unwrap(),
        customers::batch(0, 1).schema(),
        Some(props),
    )
    .unwrap();
    let mut csv = std::io::BufWriter::new(File::create(&copies[1].file).unwrap());
    let mut csv_header = true;
    let started = Instant::now();
    customers::load(&pg, rows, |batch| {
        parquet.write(batch).unwrap();
        csv.write_all(&lakecheck::demo::autocorp::to_csv(batch, csv_header))
            .unwrap();
        csv_header = false;
    })
    .await;
    parquet.close().unwrap();
    csv.flush().unwrap();
    eprintln!(
        "loaded {rows} rows into PostgreSQL, Parquet and CSV in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Warm the caches once, as the reference figures were taken warm.
    for copy in &copies {
        measure(&binary, &copy.rules, &copy.reports);
    }
    let mut report = Vec::new();
    time_runs(&binary, &copies, "identical", 0, &mut report);
    let client = customers::connect(&pg, "bench").await;
    let changed = rows / 2;
    let extra = rows + 1;
    client
        .batch_execute(&format!(
            "UPDATE customers SET email = 'changed@example.com' WHERE customer_id = {changed}; \
             INSERT INTO customers VALUES ({extra}, 'Extra', 'Row', 'extra@example.com', 'Austin', 'TX', 1.00, now())"
        ))
        .await
        .unwrap();
    time_runs(&binary, &copies, "1 changed + 1 missing", 1, &mut report);
    println!("rows: {rows}");
    for copy in &copies {
        print_last_run(copy);
    }
    println!(
        "{:<24} {:<8} {:>4} {:>9} {:>12}",
        "scenario", "lake", "run", "wall (s)", "peak RSS (MB)"
    );
    for t in &report {
        println!(
            "{:<24} {:<8} {:>4} {:>9.3} {:>12.1}",
            t.scenario, t.format, t.run, t.wall_s, t.rss_mb
        );
    }
    println!("medians, CSV against Parquet:");
    for scenario in ["identical", "1 changed + 1 missing"] {
        let of = |format: &str, figure: fn(&Timing) -> f64| {
            median(
                report
                    .iter()
                    .filter(|t| t.scenario == scenario && t.format == format)
                    .map(figure),
            )
        };
        let parquet_wall = of("parquet", |t| t.wall_s);
        let csv_wall = of("csv", |t| t.wall_s);
        println!(
            "{scenario:<24} parquet {parquet_wall:.3} s {:.1} MB, csv {csv_wall:.3} s {:.1} MB: {:.2}x",
            of("parquet", |t| t.rss_mb),
            of("csv", |t| t.rss_mb),
            csv_wall / parquet_wall
        );
    }
    std::io::stdout().flush().unwrap();
    // The peers compare identical tables: undo the differences first.
    client
        .batch_execute(&format!(
            "DELETE FROM customers WHERE customer_id = {extra}; \
             UPDATE customers SET email = 'customer{changed}@example.com' WHERE customer_id = {changed}"
        ))
        .await
        .unwrap();
    customers::keep_for_peers(&[
        pg.url("bench"),
        copies[0].file.display().to_string(),
        copies[0].rules.display().to_string(),
        copies[1].rules.display().to_string(),
    ]);
}
