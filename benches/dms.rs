//! DMS raw-zone benchmark: a table of full-load files plus CDC files, rebuilt by the real
//! `lakecheck` binary for a `row_count` and an `accepted_values` check. Prints wall time and
//! peak RSS of each run and their medians.
//!
//!     cargo bench --bench dms                     # 1.2M full-load rows (BENCH_ROWS to change)
//!     BENCH_ROWS=12000000 cargo bench --bench dms
//!     BENCH_LAKECHECK=/path/to/lakecheck cargo bench --bench dms   # time another build
//!     BENCH_CDC_FILE_ROWS=0 cargo bench --bench dms     # all changes in one CDC file
//!     BENCH_KEEP=/tmp/dms cargo bench --bench dms       # keep the lake and rules there
//!
//! Data: `customers`, 8 columns (int key, 5 short text, decimal(12,2), timestamp) as in the
//! reconcile benchmark, written as DMS writes a full load (`LOAD00000001.parquet`, ..., at most
//! 1M rows a file, no `Op` column), then CDC files (`Op` first, named by the second DMS wrote
//! them) updating 10% of the rows (a new city) and deleting 1%. DMS writes a CDC file per batch
//! interval (`CdcMaxBatchInterval`, 60 s by default) or size (`CdcMinFileSize`), so a table's
//! changes arrive as many files: `BENCH_CDC_FILE_ROWS` changes a file (default 50,000; 0 for
//! one file holding them all). `BENCH_RUNS` runs (default 3).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

#[path = "support/customers.rs"]
mod customers;
#[path = "support/median.rs"]
mod median;
#[path = "support/timed_run.rs"]
mod timed_run;
use median::median;
use timed_run::{lakecheck_binary, measure};

/// Rows per full-load file, as a DMS task with a smaller `MaxFileSize` splits a table.
const ROWS_PER_LOAD_FILE: usize = 1_000_000;
/// CDC changes per file unless `BENCH_CDC_FILE_ROWS` says otherwise.
const DEFAULT_CDC_FILE_ROWS: usize = 50_000;
const CITIES: [&str; 4] = ["Austin", "Denver", "Seattle", "Boston"];
/// The city every CDC update moves a customer to.
const UPDATED_CITY: &str = "Reno";

/// What a CDC row does to customer `id`, if anything: 1% deleted, 10% updated.
fn change_of(id: usize) -> Option<&'static str> {
    match id % 100 {
        7 => Some("D"),
        _ if id % 10 == 3 => Some("U"),
        _ => None,
    }
}

/// Customers `ids`, with `Op` first when `op` is given (a CDC file) and the updated city where
/// the change is an update.
fn customers(ids: &[usize], ops: Option<&[&str]>) -> RecordBatch {
    let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(ids.iter().map(|i| f(*i))))
    };
    let city = |i: usize| match change_of(i).filter(|_| ops.is_some()) {
        Some("U") => UPDATED_CITY.to_string(),
        _ => CITIES[i % CITIES.len()].to_string(),
    };
    let (value, updated) = customers::value_and_update_columns(ids.iter().map(|i| *i as i64));
    let mut columns: Vec<(&str, ArrayRef)> = Vec::new();
    if let Some(ops) = ops {
        columns.push(("Op", Arc::new(StringArray::from(ops.to_vec()))));
    }
    columns.extend([
        (
            "customer_id",
            Arc::new(Int32Array::from_iter_values(ids.iter().map(|i| *i as i32))) as ArrayRef,
        ),
        ("first_name", text(&|i| format!("first{}", i % 1000))),
        ("last_name", text(&|i| format!("last{}", i % 997))),
        ("email", text(&|i| format!("customer{i}@example.com"))),
        ("city", text(&city)),
        (
            "state",
            text(&|i| ["TX", "CO", "WA", "MA"][i % 4].to_string()),
        ),
        ("lifetime_value", value),
        ("updated_at", updated),
    ]);
    RecordBatch::try_from_iter(columns).unwrap()
}

/// Writes `batches` as one Parquet file at `path`.
fn write(path: &Path, batches: impl Iterator<Item = RecordBatch>) {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let mut batches = batches.peekable();
    let schema = batches.peek().expect("a file has rows").schema();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    for batch in batches {
        writer.write(&batch).unwrap();
    }
    writer.close().unwrap();
}

/// The name DMS gives the CDC file written `n` seconds after 2026-11-21 08:00:00 UTC.
fn cdc_file_name(n: usize) -> String {
    let seconds = 8 * 3600 + n;
    format!(
        "20261121-{:02}{:02}{:02}000.parquet",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Writes the DMS folder of `customers` under `lake`, `cdc_file_rows` changes a CDC file, and
/// returns (CDC changes, CDC files, rows after them).
fn generate(lake: &Path, rows: usize, cdc_file_rows: usize) -> (usize, usize, usize) {
    let table = lake.join("customers");
    std::fs::create_dir_all(&table).unwrap();
    let chunk = 100_000;
    for (n, start) in (1..=rows).step_by(ROWS_PER_LOAD_FILE).enumerate() {
        let end = (start + ROWS_PER_LOAD_FILE).min(rows + 1);
        let batches = (start..end).step_by(chunk).map(|from| {
            let ids: Vec<usize> = (from..(from + chunk).min(end)).collect();
            customers(&ids, None)
        });
        write(&table.join(format!("LOAD{:08X}.parquet", n + 1)), batches);
    }
    let changed: Vec<usize> = (1..=rows).filter(|i| change_of(*i).is_some()).collect();
    let ops: Vec<&str> = changed.iter().filter_map(|i| change_of(*i)).collect();
    let deleted = ops.iter().filter(|op| **op == "D").count();
    let per_file = cdc_file_rows.min(changed.len()).max(1);
    let files = changed.chunks(per_file).zip(ops.chunks(per_file));
    let mut written = 0;
    for (n, (ids, ops)) in files.enumerate() {
        let batches = ids
            .chunks(chunk)
            .zip(ops.chunks(chunk))
            .map(|(ids, ops)| customers(ids, Some(ops)));
        write(&table.join(cdc_file_name(n)), batches);
        written += 1;
    }
    (changed.len(), written, rows - deleted)
}

/// The value of environment variable `name` as a number, `default` when unset.
fn number_from_env(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` asks for a list; this harness only runs on purpose.
    }
    let rows = number_from_env("BENCH_ROWS", 1_200_000);
    let cdc_file_rows = match number_from_env("BENCH_CDC_FILE_ROWS", DEFAULT_CDC_FILE_ROWS) {
        0 => usize::MAX,
        n => n,
    };
    let runs = number_from_env("BENCH_RUNS", 3);
    let binary = std::env::var_os("BENCH_LAKECHECK")
        .map(PathBuf::from)
        .unwrap_or_else(lakecheck_binary);
    assert!(
        binary.is_file(),
        "build the binary first: cargo build --profile perf (or set BENCH_LAKECHECK)"
    );
    // BENCH_KEEP: a folder the lake and rules are written to and left in, to run again by hand.
    let temporary = tempfile::tempdir().unwrap();
    let work = std::env::var_os("BENCH_KEEP").map_or(temporary.path().to_path_buf(), PathBuf::from);
    let lake = work.join("lake");
    let started = Instant::now();
    let (changes, cdc_files, current) = generate(&lake, rows, cdc_file_rows);
    eprintln!(
        "wrote {rows} full-load rows and {changes} CDC changes in {cdc_files} files in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rules = work.join("bench.yml");
    let mut cities: Vec<&str> = CITIES.to_vec();
    cities.push(UPDATED_CITY);
    std::fs::write(
        &rules,
        format!(
            "sources:\n  raw: {{ type: lake, url: \"{}\", layout: dms, keys: {{ customers: [customer_id] }} }}\n\
             checks:\n  - {{ name: count, type: row_count, table: raw.customers, equals: {current} }}\n\
             \x20 - {{ name: cities, type: accepted_values, table: raw.customers, column: city, values: [{}] }}\n",
            lake.display(),
            cities.join(", ")
        ),
    )
    .unwrap();
    let out = work.join("reports");
    println!("binary: {}", binary.display());
    println!(
        "full-load rows: {rows}, CDC changes: {changes} in {cdc_files} files, rows after them: {current}"
    );
    println!("{:>4} {:>9} {:>14}", "run", "wall (s)", "peak RSS (MB)");
    let mut timings = Vec::with_capacity(runs);
    for run in 0..runs {
        let (wall, rss, code) = measure(&binary, &rules, &out);
        assert_eq!(
            code,
            0,
            "the checks must pass (reports in {})",
            out.display()
        );
        println!("{run:>4} {wall:>9.3} {rss:>14.1}");
        timings.push((wall, rss));
    }
    println!(
        "median: {:.3} s, {:.1} MB",
        median(timings.iter().map(|t| t.0)),
        median(timings.iter().map(|t| t.1))
    );
}
