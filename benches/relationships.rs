//! Cross-source `relationships` benchmark: orders in Parquet referencing 1.2M customers in
//! PostgreSQL, through the real `lakecheck` binary. Prints wall time, peak RSS and what the
//! segmented key-set comparison read, per scenario:
//!
//! - every customer referenced once (the key sets are equal: no segment differs);
//! - the same with 10 orphans (10 segments differ);
//! - half the customers referenced (unreferenced parent keys make most segments differ: the
//!   worst case, where the keys of those segments are read).
//!
//!     ./scripts/bench-relationships            # BENCH_KEYS (default 1.2M), profile `perf`
//!
//! Like `benches/reconcile.rs`, the harness writes the data, then times `lakecheck run` as a
//! child process of the binary built with the same profile.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch};
use lakecheck::demo::ThrowawayPostgres;

#[path = "support/customers.rs"]
mod customers;
#[path = "support/timed_run.rs"]
mod timed_run;
use timed_run::{lakecheck_binary, measure};

/// Orders referencing `customers`, one per customer id given.
fn orders(customers: impl Iterator<Item = i32>) -> RecordBatch {
    let customer_ids: Vec<i32> = customers.collect();
    let order_ids = Int32Array::from_iter_values(1..=customer_ids.len() as i32);
    RecordBatch::try_from_iter(vec![
        ("order_id", Arc::new(order_ids) as ArrayRef),
        (
            "customer_id",
            Arc::new(Int32Array::from(customer_ids)) as ArrayRef,
        ),
    ])
    .unwrap()
}

/// Loads `keys` customers into PostgreSQL database `bench`.
async fn load_customers(pg: &ThrowawayPostgres, keys: usize) {
    let chunk = 100_000;
    let chunks = (1..=keys).step_by(chunk).map(|start| {
        let end = (start + chunk).min(keys + 1);
        Bytes::from(
            (start..end)
                .map(|i| format!("{i},customer {i}\n"))
                .collect::<String>(),
        )
    });
    customers::load_table(
        pg,
        "CREATE TABLE customers (customer_id int PRIMARY KEY, name text NOT NULL)",
        chunks,
    )
    .await;
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` asks for a list; this harness only runs on purpose.
    }
    let keys: usize = std::env::var("BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_200_000);
    let binary = lakecheck_binary();
    assert!(
        binary.is_file(),
        "build the binary first (scripts/bench-relationships does)"
    );
    let work = tempfile::tempdir().unwrap();
    let lake = work.path().join("lake");
    let pg = tokio::task::spawn_blocking(ThrowawayPostgres::start)
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    load_customers(&pg, keys).await;
    let n = keys as i32;
    let scenarios: [(&str, RecordBatch, i32); 3] = [
        ("every customer referenced", orders(1..=n), 0),
        (
            "10 orphans",
            orders((1..=n).map(|i| if i % (n / 10) == 0 { n + i } else { i })),
            1,
        ),
        (
            "half the customers referenced",
            orders((1..=n).step_by(2)),
            0,
        ),
    ];
    for (i, (_, batch, _)) in scenarios.iter().enumerate() {
        let dir = lake.join(format!("orders_{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("part-0.parquet"),
            lakecheck::demo::autocorp::to_parquet(batch),
        )
        .unwrap();
    }
    eprintln!(
        "loaded {keys} customers into PostgreSQL and 3 order tables into Parquet in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("customers (keys in PostgreSQL): {keys}");
    println!(
        "{:<30} {:>4} {:>9} {:>13}  found",
        "scenario", "run", "wall (s)", "peak RSS (MB)"
    );
    for (i, (scenario, _, exit)) in scenarios.iter().enumerate() {
        let rules = work.path().join(format!("bench_{i}.yml"));
        std::fs::write(
            &rules,
            format!(
                "sources:\n  pg: {{ type: postgres, url: \"{}\", schema: public }}\n  lake: {{ type: lake, url: \"{}\" }}\n\
                 checks:\n  - {{ name: orders, type: relationships, table: lake.orders_{i}, column: customer_id, to: pg.customers }}\n",
                pg.url("bench"),
                lake.display()
            ),
        )
        .unwrap();
        let out = work.path().join(format!("reports_{i}"));
        measure(&binary, &rules, &out); // warm the caches, as the reconcile figures are
        for run in 0..3 {
            let (wall, rss, code) = measure(&binary, &rules, &out);
            assert_eq!(code, *exit, "{scenario}: unexpected exit code");
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("lakecheck.json")).unwrap())
                    .unwrap();
            let metrics = &json["suites"][0]["results"][0]["metrics"];
            println!(
                "{scenario:<30} {run:>4} {wall:>9.3} {rss:>13.1}  orphans {}, differing segments {}, keys read {}",
                metrics["orphan_keys"], metrics["differing_segments"], metrics["keys_read"]
            );
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("lakecheck.json")).unwrap()).unwrap();
        for query in json["suites"][0]["results"][0]["queries"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let sql: String = query["sql"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(60)
                .collect();
            println!(
                "    {:<5} {:>6} ms  {sql}",
                query["source"].as_str().unwrap_or_default(),
                query["duration_ms"]
            );
        }
    }
}
