//! The curated zone the ETL writes from the raw one: Delta tables, and Hudi copy-on-write tables
//! with the change data upserted, each row stamped with the ETL's `etl_timestamp`.

use std::path::Path;

use datafusion::arrow::array::{BooleanArray, Decimal128Array, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;

use super::columns::{framed, timestamps};
use super::{table, CdcChange, TableData};

/// Tables the Glue ETL keeps as Delta in the curated zone.
pub const CURATED_DELTA_TABLES: [&str; 3] = ["auto_parts", "service", "service_parts"];

/// Tables the Glue ETL keeps as Hudi copy-on-write tables in the curated zone.
pub const CURATED_HUDI_TABLES: [(&str, &str); 2] =
    [("sales_order", "order_id"), ("customers", "customer_id")];

/// Writes the curated Delta tables under `root` the way the ETL would: an `etl_timestamp` column
/// added, in two commits (most rows, then the rest) so time travel has a version to go back to.
pub async fn write_curated_delta(root: &Path, tables: &[TableData]) -> anyhow::Result<()> {
    use deltalake::protocol::SaveMode;
    for name in CURATED_DELTA_TABLES {
        let batch = curate(
            name,
            table(tables, name),
            chrono::Utc::now().timestamp_micros(),
        )?;
        let url = table_folder(root, name)?;
        let first = batch.num_rows() - batch.num_rows() / 10;
        let delta_table = deltalake::DeltaTable::try_from_url(url).await?;
        let delta_table = delta_table
            .write(vec![batch.slice(0, first)])
            .with_save_mode(SaveMode::ErrorIfExists)
            .await?;
        delta_table
            .write(vec![batch.slice(first, batch.num_rows() - first)])
            .with_save_mode(SaveMode::Append)
            .await?;
    }
    Ok(())
}

/// Writes the curated Hudi tables under `root`: the full load as a first commit, then the CDC
/// inserts and updates upserted on the record key (precombine on `updated_at`), filtered and
/// stamped as the ETL does.
pub async fn write_curated_hudi(
    root: &Path,
    tables: &[TableData],
    changes: &[CdcChange],
) -> anyhow::Result<()> {
    let etl = chrono::Utc::now().timestamp_micros();
    for (name, key) in CURATED_HUDI_TABLES {
        let uri = table_folder(root, name)?;
        let mut hudi_table = hudi::table::Table::create(uri.as_str().trim_end_matches('/'))
            .with_table_name(name)
            .with_record_key_fields([key])
            .with_ordering_fields(["updated_at"])
            .with_metadata_table_enabled(false)
            .create()
            .await?;
        let full_load = curate(name, table(tables, name), etl)?;
        hudi_table.upsert(vec![full_load]).await?;
        let upserts: Vec<RecordBatch> = changes
            .iter()
            .filter(|c| c.table == name && c.op != "D")
            .map(|c| curate(name, &c.rows, etl))
            .collect::<anyhow::Result<_>>()?;
        if !upserts.is_empty() {
            hudi_table.upsert(upserts).await?;
        }
    }
    Ok(())
}

/// Creates `<root>/<name>` and returns its `file://` URL (with a trailing slash).
fn table_folder(root: &Path, name: &str) -> anyhow::Result<url::Url> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir)?;
    url::Url::from_directory_path(&dir).map_err(|_| anyhow::anyhow!("bad path {}", dir.display()))
}

/// Adds the ETL's `etl_timestamp` column and drops orders with `total_amount <= 0`, as the
/// Spark ETL does.
fn curate(name: &str, batch: &RecordBatch, etl_micros: i64) -> anyhow::Result<RecordBatch> {
    let batch = match batch
        .column_by_name("total_amount")
        .filter(|_| name == "sales_order")
    {
        Some(amounts) => {
            let amounts = amounts
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .ok_or_else(|| anyhow::anyhow!("total_amount is not a decimal"))?;
            let keep =
                BooleanArray::from_iter(amounts.iter().map(|v| Some(v.is_some_and(|v| v > 0))));
            filter_record_batch(batch, &keep)?
        }
        None => batch.clone(),
    };
    let stamps = timestamps(vec![etl_micros; batch.num_rows()]);
    Ok(framed(vec![], &batch, vec![("etl_timestamp", stamps)]))
}
