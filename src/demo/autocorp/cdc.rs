//! Change data capture: the inserts, updates and deletes made in the source after the full load,
//! and the DMS change files (`Op` first, the commit time last) that carry them into the raw zone.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::columns::{framed, text, timestamps};
use super::write::raw_table;
use super::{table, to_parquet, TableData, COMMIT_TIME_COLUMN};

/// When the demo's change data was committed (after the full load).
pub const CDC_COMMIT_TIME: &str = "2026-11-21 08:00:00.000000";
/// The CDC file DMS would write for those commits.
pub const CDC_FILE: &str = "20261121-080000000.parquet";

/// One change made in the source after the full load, with the rows DMS would capture for it
/// (after-images for `I`/`U`, before-images for `D`).
pub struct CdcChange {
    pub table: &'static str,
    pub statement: String,
    pub op: &'static str,
    pub rows: RecordBatch,
}

/// The rows of `batch` whose 1-based id (its row number, as the generator numbers keys) is in `ids`.
fn rows_by_id(batch: &RecordBatch, ids: std::ops::RangeInclusive<u32>) -> RecordBatch {
    let indices = UInt32Array::from_iter_values(ids.map(|id| id - 1));
    let columns = batch
        .columns()
        .iter()
        .map(|c| take(c, &indices, None).expect("rows exist"))
        .collect();
    RecordBatch::try_new(batch.schema(), columns).expect("same schema")
}

fn replace_column(batch: &RecordBatch, name: &str, values: ArrayRef) -> RecordBatch {
    let index = batch.schema().index_of(name).expect("known column");
    let mut columns = batch.columns().to_vec();
    columns[index] = values;
    RecordBatch::try_new(batch.schema(), columns).expect("same type")
}

/// The changes the demo makes after the full load: inserts, updates and deletes.
pub fn cdc_changes(tables: &[TableData]) -> Vec<CdcChange> {
    let commit = chrono::NaiveDateTime::parse_from_str(CDC_COMMIT_TIME, "%Y-%m-%d %H:%M:%S%.f")
        .expect("valid time")
        .and_utc()
        .timestamp_micros();
    let orders = table(tables, "sales_order");
    // New orders copy the first three, numbered after the last generated one (1001.. at scale 1).
    let order_count = orders.num_rows() as i32;
    let new_orders = rows_by_id(orders, 1..=3);
    let new_ids: ArrayRef = Arc::new(Int32Array::from_iter_values(
        order_count + 1..=order_count + 3,
    ));
    let shipped = rows_by_id(orders, 1..=5);
    let shipped = replace_column(&shipped, "status", text(vec![Some("SHIPPED"); 5]));
    let shipped = replace_column(&shipped, "updated_at", timestamps(vec![commit; 5]));
    let customer = replace_column(
        &rows_by_id(table(tables, "customers"), 3..=3),
        "email",
        text(vec![Some("updated.3@example.com")]),
    );
    let at = format!("TIMESTAMPTZ '{CDC_COMMIT_TIME}+00'");
    vec![
        CdcChange {
            table: "sales_order",
            statement: format!(
                "INSERT INTO autocorp.sales_order SELECT order_id + {order_count}, customer_id, order_date, status, \
                 total_amount, created_at, updated_at FROM autocorp.sales_order WHERE order_id BETWEEN 1 AND 3"
            ),
            op: "I",
            rows: replace_column(&new_orders, "order_id", new_ids),
        },
        CdcChange {
            table: "sales_order",
            statement: format!(
                "UPDATE autocorp.sales_order SET status = 'SHIPPED', updated_at = {at} WHERE order_id BETWEEN 1 AND 5"
            ),
            op: "U",
            rows: shipped,
        },
        CdcChange {
            table: "sales_order_services",
            statement: "DELETE FROM autocorp.sales_order_services WHERE order_service_id BETWEEN 1 AND 2".into(),
            op: "D",
            rows: rows_by_id(table(tables, "sales_order_services"), 1..=2),
        },
        CdcChange {
            table: "customers",
            statement: "UPDATE autocorp.customers SET email = 'updated.3@example.com' WHERE customer_id = 3".into(),
            op: "U",
            rows: customer,
        },
    ]
}

/// A CDC batch as DMS writes it: `Op` first, the row, then the commit-time column.
pub fn cdc_batch(op: &str, rows: &RecordBatch, commit_time: &str) -> RecordBatch {
    let n = rows.num_rows();
    framed(
        vec![("Op", text(vec![Some(op); n]))],
        rows,
        vec![(COMMIT_TIME_COLUMN, text(vec![Some(commit_time); n]))],
    )
}

/// Applies the changes to Postgres and writes one DMS CDC file per changed table.
pub async fn apply_cdc(
    client: &tokio_postgres::Client,
    store: &dyn ObjectStore,
    root: &StorePath,
    changes: &[CdcChange],
) -> anyhow::Result<()> {
    let mut per_table: Vec<(&str, Vec<RecordBatch>)> = Vec::new();
    for change in changes {
        client.batch_execute(&change.statement).await?;
        let batch = cdc_batch(change.op, &change.rows, CDC_COMMIT_TIME);
        match per_table.iter_mut().find(|(t, _)| *t == change.table) {
            Some((_, batches)) => batches.push(batch),
            None => per_table.push((change.table, vec![batch])),
        }
    }
    for (table, batches) in per_table {
        let all = concat_batches(&batches[0].schema(), &batches)?;
        let path = raw_table(root, table).join(CDC_FILE);
        store.put(&path, PutPayload::from(to_parquet(&all))).await?;
    }
    Ok(())
}
