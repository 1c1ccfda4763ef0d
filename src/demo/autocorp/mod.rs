//! The AutoCorp reference data set, generated deterministically with the reference row counts.
//!
//! One generator feeds both sides: the batches are loaded into Postgres and written to the lake,
//! so any difference a check finds was put there on purpose. Each way the data travels is its own
//! module:
//!
//! - `generate`: the seven tables, the same on every run;
//! - `load`: the source side, a throwaway PostgreSQL loaded through `COPY`;
//! - `write`: the raw zone as DMS and the CSV export leave it (Parquet full loads, CSV drops);
//! - `cdc`: changes made in the source after the full load, and the DMS change files for them;
//! - `curated`: the ETL's Delta and Hudi tables.
//!
//! Everything is re-exported here, so callers name `autocorp::to_parquet`, not the module.

mod cdc;
mod columns;
mod curated;
mod generate;
mod load;
mod write;

use datafusion::arrow::array::RecordBatch;

// Without `test-support` only the demo uses these, and not all of them.
#[cfg_attr(not(feature = "test-support"), allow(unused_imports))]
pub use self::{
    cdc::{apply_cdc, cdc_batch, cdc_changes, CdcChange, CDC_COMMIT_TIME, CDC_FILE},
    curated::{write_curated_delta, write_curated_hudi, CURATED_DELTA_TABLES, CURATED_HUDI_TABLES},
    generate::{generate, generate_scaled},
    load::{load_postgres, start_autocorp_postgres, SCHEMA_SQL},
    write::{to_csv, to_parquet, write_lake, write_local_lake, COMMIT_TIME_COLUMN, FULL_LOAD_TIME},
};

/// The Postgres schema holding the AutoCorp tables.
pub const SCHEMA: &str = "autocorp";

/// Reference row counts, in foreign-key load order.
pub const ROW_COUNTS: [(&str, usize); 7] = [
    ("customers", 1149),
    ("auto_parts", 400),
    ("service", 110),
    ("service_parts", 1074),
    ("sales_order", 1000),
    ("sales_order_parts", 2135),
    ("sales_order_services", 644),
];

/// The largest `--scale`: 10,000 times the reference is 21 million order lines, keys well inside
/// PostgreSQL's `integer` (and memory long before that is the limit).
pub const MAX_SCALE: usize = 10_000;

/// One generated table.
#[derive(Debug, Clone)]
pub struct TableData {
    pub name: &'static str,
    pub batch: RecordBatch,
}

/// The rows of the generated table `name`.
///
/// # Panics
/// If `tables` has no such table: callers name AutoCorp's own tables, so that is a bug.
pub fn table<'a>(tables: &'a [TableData], name: &str) -> &'a RecordBatch {
    &tables
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("AutoCorp has no table `{name}`"))
        .batch
}
