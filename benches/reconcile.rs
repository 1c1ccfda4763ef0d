//! Reconcile benchmark: PostgreSQL vs the same table as Parquet, through the real `lakecheck`
//! binary, clean and with injected differences. Prints wall time and peak RSS per scenario.
//!
//!     ./scripts/bench                 # 1.2M rows (BENCH_ROWS to change), release build
//!     BENCH_ROWS=12000000 ./scripts/bench
//!
//! Data: `customers`, 8 columns (int key, 5 short text, numeric(12,2), timestamptz), as in
//! PERF-NOTES. The harness writes the data, then times `lakecheck run` as a child process, so
//! the figures are the tool's own and comparable with another tool's CLI.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, Decimal128Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use futures::SinkExt;
use lakecheck::demo::ThrowawayPostgres;

#[path = "support/timed_run.rs"]
mod timed_run;
use timed_run::{lakecheck_binary, measure};

const CITIES: [&str; 8] = [
    "Austin",
    "Denver",
    "Seattle",
    "Boston",
    "Miami",
    "Phoenix",
    "Portland",
    "San José",
];
const STATES: [&str; 8] = ["TX", "CO", "WA", "MA", "FL", "AZ", "OR", "CA"];
const FIRST: [&str; 8] = ["José", "Zoë", "Ana", "John", "Mei", "Priya", "Olga", "Liam"];
const LAST: [&str; 8] = [
    "Núñez", "Müller", "O'Brien", "Smith", "Nguyễn", "Patel", "Rossi", "Brown",
];

fn batch(start: usize, len: usize) -> RecordBatch {
    let ids: Vec<i32> = (start..start + len).map(|i| i as i32 + 1).collect();
    let pick = |set: &[&'static str; 8], salt: usize| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| set[(*i as usize * 7 + salt) % 8]),
        ))
    };
    let emails =
        StringArray::from_iter_values(ids.iter().map(|i| format!("customer{i}@example.com")));
    let value =
        Decimal128Array::from_iter_values(ids.iter().map(|i| (*i as i128 * 7919) % 10_000_000))
            .with_precision_and_scale(12, 2)
            .unwrap();
    let base = 1_767_225_600_000_000i64; // 2026-01-01T00:00:00Z
    let updated = TimestampMicrosecondArray::from_iter_values(
        ids.iter().map(|i| base + *i as i64 * 1_000_003),
    )
    .with_timezone("UTC");
    RecordBatch::try_from_iter(vec![
        (
            "customer_id",
            Arc::new(Int32Array::from(ids.clone())) as ArrayRef,
        ),
        ("first_name", pick(&FIRST, 1)),
        ("last_name", pick(&LAST, 3)),
        ("email", Arc::new(emails) as ArrayRef),
        ("city", pick(&CITIES, 5)),
        ("state", pick(&STATES, 5)),
        ("lifetime_value", Arc::new(value) as ArrayRef),
        ("updated_at", Arc::new(updated) as ArrayRef),
    ])
    .unwrap()
}

async fn load(pg: &ThrowawayPostgres, lake: &Path, rows: usize) {
    let (admin, connection) = tokio_postgres::connect(&pg.url("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    admin.batch_execute("CREATE DATABASE bench").await.unwrap();
    let (client, connection) = tokio_postgres::connect(&pg.url("bench"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE customers (customer_id int PRIMARY KEY, first_name text, last_name text, email text,
             city text, state text, lifetime_value numeric(12,2), updated_at timestamptz)",
        )
        .await
        .unwrap();
    let dir = lake.join("customers");
    std::fs::create_dir_all(&dir).unwrap();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let file = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch(0, 1).schema(), Some(props)).unwrap();
    let sink = client
        .copy_in::<_, Bytes>("COPY customers FROM STDIN (FORMAT csv)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    let chunk = 100_000;
    for start in (0..rows).step_by(chunk) {
        let b = batch(start, chunk.min(rows - start));
        writer.write(&b).unwrap();
        sink.send(Bytes::from(lakecheck::demo::autocorp::to_csv(&b, false)))
            .await
            .unwrap();
    }
    sink.close().await.unwrap();
    writer.close().unwrap();
    client
        .batch_execute("VACUUM ANALYZE customers")
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` asks for a list; this harness only runs on purpose.
    }
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_200_000);
    let binary = lakecheck_binary();
    assert!(
        binary.is_file(),
        "build the binary first: cargo build --profile perf (scripts/bench does)"
    );
    let work = tempfile::tempdir().unwrap();
    let lake = work.path().join("lake");
    let pg = tokio::task::spawn_blocking(ThrowawayPostgres::start)
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    load(&pg, &lake, rows).await;
    eprintln!(
        "loaded {rows} rows into PostgreSQL and Parquet in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rules = work.path().join("bench.yml");
    std::fs::write(
        &rules,
        format!(
            "sources:\n  pg: {{ type: postgres, url: \"{}\" }}\n  lake: {{ type: lake, url: \"{}\" }}\n\
             checks:\n  - {{ name: customers, type: table_match, left: pg.customers, right: lake.customers }}\n",
            pg.url("bench"),
            lake.display()
        ),
    )
    .unwrap();
    let out = work.path().join("reports");
    // Warm the caches once, as the reference figures were taken warm.
    measure(&binary, &rules, &out);
    let mut report = Vec::new();
    for run in 0..3 {
        let (wall, rss, code) = measure(&binary, &rules, &out);
        assert_eq!(code, 0, "identical tables must pass");
        report.push(("identical", run, wall, rss));
    }
    let (client, connection) = tokio_postgres::connect(&pg.url("bench"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "UPDATE customers SET email = 'changed@example.com' WHERE customer_id = {}; \
             INSERT INTO customers VALUES ({}, 'Extra', 'Row', 'extra@example.com', 'Austin', 'TX', 1.00, now())",
            rows / 2,
            rows + 1
        ))
        .await
        .unwrap();
    for run in 0..3 {
        let (wall, rss, code) = measure(&binary, &rules, &out);
        assert_eq!(code, 1, "differences must fail the check");
        report.push(("1 changed + 1 missing", run, wall, rss));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("lakecheck.json")).unwrap()).unwrap();
    let metrics = &json["suites"][0]["results"][0]["metrics"];
    println!("rows: {rows}");
    println!(
        "found: missing {} changed {} ({})",
        metrics["missing_keys"],
        metrics["changed_keys"],
        json["suites"][0]["results"][0]["message"]
    );
    // Where the time goes: each query of the last run, slowest first.
    if let Some(queries) = json["suites"][0]["results"][0]["queries"].as_array() {
        let mut queries: Vec<&serde_json::Value> = queries.iter().collect();
        queries.sort_by_key(|q| std::cmp::Reverse(q["duration_ms"].as_u64().unwrap_or(0)));
        println!("queries of the last run, slowest first (source, ms, SQL start):");
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
    println!(
        "{:<24} {:>4} {:>9} {:>12}",
        "scenario", "run", "wall (s)", "peak RSS (MB)"
    );
    for (scenario, run, wall, rss) in &report {
        println!("{scenario:<24} {run:>4} {wall:>9.3} {rss:>12.1}");
    }
    std::io::stdout().flush().unwrap();
    if let Ok(path) = std::env::var("BENCH_KEEP_POSTGRES_FOR") {
        // scripts/bench-reladiff times the peer tool against the same server and files.
        std::fs::write(
            &path,
            format!(
                "{}\n{}\n",
                pg.url("bench"),
                lake.join("customers/part-0.parquet").display()
            ),
        )
        .unwrap();
        eprintln!("keeping PostgreSQL and the lake until stdin closes ({path})");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
}
