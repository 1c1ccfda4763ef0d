//! The raw zone as the lake receives it: one DMS full-load Parquet file per table, and the CSV
//! export's drops of `customers` and `sales_order`.

use std::path::Path;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::columns::{framed, text};
use super::{TableData, SCHEMA};

/// When the demo's full load transferred its rows (before the change data).
pub const FULL_LOAD_TIME: &str = "2026-11-21 07:00:00.000000";
/// The DMS `TimestampColumnName` the demo uses.
pub const COMMIT_TIME_COLUMN: &str = "commit_ts";

/// A batch as CSV text (header optional). Timestamps are written in RFC 3339, which both
/// Postgres `COPY` and DataFusion's CSV reader understand.
pub fn to_csv(batch: &RecordBatch, header: bool) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut writer = WriterBuilder::new().with_header(header).build(&mut out);
        writer.write(batch).expect("CSV of generated data");
    }
    out
}

/// A batch as one Parquet file.
pub fn to_parquet(batch: &RecordBatch) -> Vec<u8> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).expect("parquet writer");
    writer.write(batch).expect("parquet of generated data");
    writer.close().expect("parquet footer");
    out
}

/// Writes the AutoCorp raw zone under a local folder (created if missing).
pub async fn write_local_lake(dir: &Path, tables: &[TableData]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let store = LocalFileSystem::new_with_prefix(dir)?;
    write_lake(&store, &StorePath::default(), tables).await?;
    Ok(())
}

/// Writes the raw zone: DMS-style Parquet per table, and the CSV drops (`customers`, `sales_order`).
pub async fn write_lake(
    store: &dyn ObjectStore,
    root: &StorePath,
    tables: &[TableData],
) -> object_store::Result<()> {
    for table in tables {
        let path = raw_table(root, table.name).join("LOAD00000001.parquet");
        store
            .put(
                &path,
                PutPayload::from(to_parquet(&full_load_batch(&table.batch))),
            )
            .await?;
    }
    let csv_root = root.clone().join("raw").join("csv");
    if let Some(customers) = tables.iter().find(|t| t.name == "customers") {
        let path = csv_root.clone().join("customers").join("customers.csv");
        store
            .put(&path, PutPayload::from(to_csv(&customers.batch, true)))
            .await?;
    }
    if let Some(orders) = tables.iter().find(|t| t.name == "sales_order") {
        // Sales orders arrive as several files, as the upstream export splits them.
        let chunk = 250;
        for (i, offset) in (0..orders.batch.num_rows()).step_by(chunk).enumerate() {
            let part = orders
                .batch
                .slice(offset, chunk.min(orders.batch.num_rows() - offset));
            let path = csv_root
                .clone()
                .join("sales_order")
                .join(format!("sales_order_{:04}.csv", i + 1));
            store
                .put(&path, PutPayload::from(to_csv(&part, true)))
                .await?;
        }
    }
    Ok(())
}

/// The folder DMS writes `table`'s files to: `<root>/raw/database/autocorp/<table>`.
pub(super) fn raw_table(root: &StorePath, table: &str) -> StorePath {
    root.clone()
        .join("raw")
        .join("database")
        .join(SCHEMA)
        .join(table)
}

/// A full-load batch as DMS writes it with `TimestampColumnName`: the row, then the time the
/// load transferred it.
fn full_load_batch(rows: &RecordBatch) -> RecordBatch {
    let load_time = text(vec![Some(FULL_LOAD_TIME); rows.num_rows()]);
    framed(vec![], rows, vec![(COMMIT_TIME_COLUMN, load_time)])
}
