//! The `customers` table the reconcile and basic-checks benchmarks share: 8 columns (int key,
//! 5 short text, numeric(12,2), timestamptz), generated deterministically from the row number
//! and loaded into a throwaway PostgreSQL database `bench`.
// Each benchmark includes this file (`#[path]`) and uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, Decimal128Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use futures::SinkExt;
use lakecheck::demo::ThrowawayPostgres;

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
/// Every `state` a generated row holds.
pub const STATES: [&str; 8] = ["TX", "CO", "WA", "MA", "FL", "AZ", "OR", "CA"];
const FIRST: [&str; 8] = ["José", "Zoë", "Ana", "John", "Mei", "Priya", "Olga", "Liam"];
const LAST: [&str; 8] = [
    "Núñez", "Müller", "O'Brien", "Smith", "Nguyễn", "Patel", "Rossi", "Brown",
];
/// Bounds every generated `lifetime_value` lies within (0.00 to 99,999.99).
pub const LIFETIME_VALUE_RANGE: (f64, f64) = (0.0, 99_999.99);

/// Rows the benchmark generates: `BENCH_ROWS`, 1.2M when unset.
pub fn rows() -> usize {
    std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_200_000)
}

/// Whether cargo only asked for a list of tests (`cargo test --benches`): the harnesses run only
/// on purpose.
pub fn listing_only() -> bool {
    std::env::args().any(|a| a == "--list" || a == "--test")
}

/// The `lifetime_value` (numeric(12,2)) and `updated_at` (timestamptz) columns of customers `ids`.
pub fn value_and_update_columns(ids: impl Iterator<Item = i64> + Clone) -> (ArrayRef, ArrayRef) {
    let value =
        Decimal128Array::from_iter_values(ids.clone().map(|i| (i as i128 * 7919) % 10_000_000))
            .with_precision_and_scale(12, 2)
            .unwrap();
    let base = 1_767_225_600_000_000i64; // 2026-01-01T00:00:00Z
    let updated = TimestampMicrosecondArray::from_iter_values(ids.map(|i| base + i * 1_000_003))
        .with_timezone("UTC");
    (Arc::new(value), Arc::new(updated))
}

/// Rows `start + 1 ..= start + len` (customer ids from 1).
pub fn batch(start: usize, len: usize) -> RecordBatch {
    let ids: Vec<i32> = (start..start + len).map(|i| i as i32 + 1).collect();
    let pick = |set: &[&'static str; 8], salt: usize| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| set[(*i as usize * 7 + salt) % 8]),
        ))
    };
    let emails =
        StringArray::from_iter_values(ids.iter().map(|i| format!("customer{i}@example.com")));
    let (value, updated) = value_and_update_columns(ids.iter().map(|i| *i as i64));
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
        ("lifetime_value", value),
        ("updated_at", updated),
    ])
    .unwrap()
}

/// A client of database `database` on `pg`, its connection driven in the background.
pub async fn connect(pg: &ThrowawayPostgres, database: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg.url(database), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Creates database `bench` with `rows` customers, handing each generated batch to `also`
/// (the lake files a benchmark writes beside the table), then vacuums and analyses the table.
pub async fn load(pg: &ThrowawayPostgres, rows: usize, mut also: impl FnMut(&RecordBatch)) {
    let chunk = 100_000;
    let batches = (0..rows).step_by(chunk).map(|start| {
        let b = batch(start, chunk.min(rows - start));
        also(&b);
        Bytes::from(lakecheck::demo::autocorp::to_csv(&b, false))
    });
    load_table(
        pg,
        "CREATE TABLE customers (customer_id int PRIMARY KEY, first_name text, last_name text, email text,
         city text, state text, lifetime_value numeric(12,2), updated_at timestamptz)",
        batches,
    )
    .await;
}

/// Creates database `bench` with the one table `ddl` creates (named `customers`), copies the
/// CSV `chunks` into it, then vacuums and analyses it.
pub async fn load_table(pg: &ThrowawayPostgres, ddl: &str, chunks: impl Iterator<Item = Bytes>) {
    connect(pg, "postgres")
        .await
        .batch_execute("CREATE DATABASE bench")
        .await
        .unwrap();
    let client = connect(pg, "bench").await;
    client.batch_execute(ddl).await.unwrap();
    let sink = client
        .copy_in::<_, Bytes>("COPY customers FROM STDIN (FORMAT csv)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    for chunk in chunks {
        sink.send(chunk).await.unwrap();
    }
    sink.close().await.unwrap();
    client
        .batch_execute("VACUUM ANALYZE customers")
        .await
        .unwrap();
}

/// Keeps `pg` (and whatever files the caller holds) alive for a peer tool when
/// `BENCH_KEEP_POSTGRES_FOR` names a file: writes `lines` there (what the peer needs: the
/// server's URL, file paths), then waits until stdin closes. scripts/bench-peers holds stdin
/// open through a fifo while it times the peers on the same server and data.
pub fn keep_for_peers(lines: &[String]) {
    let Ok(path) = std::env::var("BENCH_KEEP_POSTGRES_FOR") else {
        return;
    };
    // Written whole, then renamed: the script starts reading as soon as the file is there.
    let partial = format!("{path}.partial");
    std::fs::write(&partial, lines.join("\n") + "\n").unwrap();
    std::fs::rename(&partial, &path).unwrap();
    eprintln!("keeping PostgreSQL and the files until stdin closes ({path})");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
