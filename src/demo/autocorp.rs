//! The AutoCorp reference data set, generated deterministically with the reference row counts.
//!
//! One generator feeds both sides: the batches are loaded into Postgres and written to the lake,
//! so any difference a check finds was put there on purpose.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::csv::WriterBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// The schema DDL, from `fixtures/autocorp/schema.sql`.
pub const SCHEMA_SQL: &str = include_str!("../../fixtures/autocorp/schema.sql");

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

/// One generated table.
#[derive(Debug, Clone)]
pub struct TableData {
    pub name: &'static str,
    pub batch: RecordBatch,
}

/// A small deterministic generator (splitmix64): same seed, same data, on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const FIRST_NAMES: &[&str] = &[
    "José",
    "Zoë",
    "Björn",
    "Łukasz",
    "Mårten",
    "Søren",
    "François",
    "Aoife",
    "Chloé",
    "Ömer",
    "Ana",
    "John",
    "Mei",
    "Priya",
    "Kwame",
    "Olga",
    "Dmitri",
    "Sofía",
    "Liam",
    "Noah",
    "Emma",
    "Ava",
    "Hiroshi",
    "Fatima",
    "Renée",
    "Jürgen",
];
const LAST_NAMES: &[&str] = &[
    "Núñez",
    "Müller",
    "O'Brien",
    "Øvergaard",
    "García",
    "Smith",
    "Nguyễn",
    "Kowalski",
    "Dubois",
    "Johansson",
    "Patel",
    "Okafor",
    "Rossi",
    "Yılmaz",
    "Schröder",
    "Brown",
    "Tanaka",
    "Silva",
    "D'Angelo",
    "Łęcki",
];
const CITIES: &[(&str, &str)] = &[
    ("Austin", "TX"),
    ("Denver", "CO"),
    ("Seattle", "WA"),
    ("Boston", "MA"),
    ("Miami", "FL"),
    ("Phoenix", "AZ"),
    ("Portland", "OR"),
    ("Chicago", "IL"),
    ("San José", "CA"),
    ("Albuquerque", "NM"),
    ("Coeur d'Alene", "ID"),
];
const CATEGORIES: &[&str] = &[
    "Brakes",
    "Engine",
    "Suspension",
    "Electrical",
    "Exhaust",
    "Cooling",
    "Filters",
    "Lighting",
];
const MANUFACTURERS: &[&str] = &[
    "Bosch",
    "Denso",
    "ACDelco",
    "Brembo",
    "Valeo",
    "Mahle",
    "NGK",
    "Febi Bilstein",
];
const PART_WORDS: &[&str] = &[
    "Pad Set",
    "Rotor",
    "Spark Plug",
    "Oil Filter",
    "Shock Absorber",
    "Alternator",
    "Radiator",
    "Headlamp",
];
const SERVICES: &[&str] = &[
    "Oil change",
    "Brake service",
    "Tire rotation",
    "Engine diagnostics",
    "A/C recharge",
    "Wheel alignment",
];
const VEHICLES: &[&str] = &["sedan", "SUV", "pickup", "hybrid", "EV", "van"];
const STATUSES: &[&str] = &["NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"];

fn micros(date: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .timestamp_micros()
}

fn timestamps(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

fn money(values: Vec<i128>, precision: u8) -> ArrayRef {
    Arc::new(
        Decimal128Array::from(values)
            .with_precision_and_scale(precision, 2)
            .expect("valid decimal"),
    )
}

fn ids(n: usize) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(1..=n as i32))
}

fn text<S: AsRef<str>>(values: Vec<Option<S>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(
        values.iter().map(|v| v.as_ref().map(|s| s.as_ref())),
    ))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(
        columns
            .into_iter()
            .map(|(name, array)| (name.to_string(), array)),
    )
    .expect("consistent columns")
}

/// Generates all seven tables in foreign-key load order.
pub fn generate() -> Vec<TableData> {
    let mut rng = Rng(0x00A0_70C0_4B52_2026);
    let epoch = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    let base = micros(epoch);
    let day = 86_400_000_000i64;
    let stamp = |rng: &mut Rng| base + rng.between(0, 300 * day);
    let count = |name: &str| {
        ROW_COUNTS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("known table")
            .1
    };

    let n = count("customers");
    let (mut first, mut last, mut email, mut phone, mut city, mut state, mut created, mut updated) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for id in 1..=n {
        let f = rng.pick(FIRST_NAMES);
        let l = rng.pick(LAST_NAMES);
        let (c, s) = CITIES[(rng.next() % CITIES.len() as u64) as usize];
        let login: String = format!("{f}.{l}")
            .to_lowercase()
            .chars()
            .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '.')
            .collect();
        first.push(Some(f.to_string()));
        last.push(Some(l.to_string()));
        email.push((id % 47 != 0).then(|| format!("{login}.{id}@example.com")));
        phone.push((id % 11 != 0).then(|| {
            format!(
                "+1-555-{:03}-{:04}",
                rng.between(100, 999),
                rng.between(0, 9999)
            )
        }));
        city.push(Some(c));
        state.push(Some(s));
        let t = stamp(&mut rng);
        created.push(t);
        updated.push(t + rng.between(0, 30 * day));
    }
    let customers = batch(vec![
        ("customer_id", ids(n)),
        ("first_name", text(first)),
        ("last_name", text(last)),
        ("email", text(email)),
        ("phone", text(phone)),
        ("city", text(city)),
        ("state", text(state)),
        ("created_at", timestamps(created)),
        ("updated_at", timestamps(updated)),
    ]);

    let n = count("auto_parts");
    let (
        mut number,
        mut name,
        mut category,
        mut maker,
        mut price,
        mut stock,
        mut discontinued,
        mut updated,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for id in 1..=n {
        let cat = rng.pick(CATEGORIES);
        number.push(Some(format!("AP-{id:05}")));
        name.push(Some(format!("{cat} {}", rng.pick(PART_WORDS))));
        category.push(Some(cat));
        maker.push(Some(rng.pick(MANUFACTURERS)));
        price.push(rng.between(499, 149_999) as i128);
        stock.push(rng.between(0, 500) as i32);
        discontinued.push(id % 13 == 0);
        updated.push(stamp(&mut rng));
    }
    let auto_parts = batch(vec![
        ("part_id", ids(n)),
        ("part_number", text(number)),
        ("part_name", text(name)),
        ("category", text(category)),
        ("manufacturer", text(maker)),
        ("unit_price", money(price, 10)),
        ("stock_quantity", Arc::new(Int32Array::from(stock))),
        ("discontinued", Arc::new(BooleanArray::from(discontinued))),
        ("updated_at", timestamps(updated)),
    ]);
    let parts = n as i64;

    let n = count("service");
    let (mut name, mut description, mut hours, mut price, mut updated) =
        (vec![], vec![], vec![], vec![], vec![]);
    for id in 1..=n {
        let what = rng.pick(SERVICES);
        let vehicle = rng.pick(VEHICLES);
        name.push(Some(format!("{what} — {vehicle} #{id}")));
        description.push(
            (id % 9 != 0).then(|| format!("{what} for a {vehicle}, parts and labour included")),
        );
        hours.push(rng.between(25, 800) as i128);
        price.push(rng.between(2_500, 120_000) as i128);
        updated.push(stamp(&mut rng));
    }
    let service = batch(vec![
        ("service_id", ids(n)),
        ("service_name", text(name)),
        ("description", text(description)),
        ("labor_hours", money(hours, 5)),
        ("price", money(price, 10)),
        ("updated_at", timestamps(updated)),
    ]);
    let services = n as i64;

    let n = count("service_parts");
    let (mut service_id, mut part_id, mut quantity, mut updated) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        service_id.push((i as i64 % services + 1) as i32);
        part_id.push(rng.between(1, parts) as i32);
        quantity.push(rng.between(1, 4) as i32);
        updated.push(stamp(&mut rng));
    }
    let service_parts = batch(vec![
        ("service_part_id", ids(n)),
        ("service_id", Arc::new(Int32Array::from(service_id))),
        ("part_id", Arc::new(Int32Array::from(part_id))),
        ("quantity", Arc::new(Int32Array::from(quantity))),
        ("updated_at", timestamps(updated)),
    ]);

    let customer_count = count("customers") as i64;
    let n = count("sales_order");
    let (mut customer, mut date, mut status, mut total, mut created, mut updated) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let epoch_days = (epoch - NaiveDate::from_ymd_opt(1970, 1, 1).expect("date")).num_days() as i32;
    for _ in 0..n {
        let s = rng.pick(STATUSES);
        let offset = rng.between(0, 300);
        customer.push(rng.between(1, customer_count) as i32);
        date.push(epoch_days + offset as i32);
        status.push(Some(s));
        total.push(if s == "CANCELLED" {
            0
        } else {
            rng.between(2_000, 500_000) as i128
        });
        let t = base + offset * day + rng.between(0, day - 1);
        created.push(t);
        updated.push(t + rng.between(0, 5 * day));
    }
    let sales_order = batch(vec![
        ("order_id", ids(n)),
        ("customer_id", Arc::new(Int32Array::from(customer))),
        ("order_date", Arc::new(Date32Array::from(date))),
        ("status", text(status)),
        ("total_amount", money(total, 10)),
        ("created_at", timestamps(created)),
        ("updated_at", timestamps(updated)),
    ]);
    let orders = n as i64;

    let n = count("sales_order_parts");
    let (mut order_id, mut part_id, mut quantity, mut price, mut updated) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        order_id.push(rng.between(1, orders) as i32);
        part_id.push(rng.between(1, parts) as i32);
        quantity.push(rng.between(1, 6) as i32);
        price.push(rng.between(499, 149_999) as i128);
        updated.push(stamp(&mut rng));
    }
    let sales_order_parts = batch(vec![
        ("order_part_id", ids(n)),
        ("order_id", Arc::new(Int32Array::from(order_id))),
        ("part_id", Arc::new(Int32Array::from(part_id))),
        ("quantity", Arc::new(Int32Array::from(quantity))),
        ("unit_price", money(price, 10)),
        ("updated_at", timestamps(updated)),
    ]);

    let n = count("sales_order_services");
    let (mut order_id, mut service_id, mut price, mut updated) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        order_id.push(rng.between(1, orders) as i32);
        service_id.push(rng.between(1, services) as i32);
        price.push(rng.between(2_500, 120_000) as i128);
        updated.push(stamp(&mut rng));
    }
    let sales_order_services = batch(vec![
        ("order_service_id", ids(n)),
        ("order_id", Arc::new(Int32Array::from(order_id))),
        ("service_id", Arc::new(Int32Array::from(service_id))),
        ("price", money(price, 10)),
        ("updated_at", timestamps(updated)),
    ]);

    vec![
        TableData {
            name: "customers",
            batch: customers,
        },
        TableData {
            name: "auto_parts",
            batch: auto_parts,
        },
        TableData {
            name: "service",
            batch: service,
        },
        TableData {
            name: "service_parts",
            batch: service_parts,
        },
        TableData {
            name: "sales_order",
            batch: sales_order,
        },
        TableData {
            name: "sales_order_parts",
            batch: sales_order_parts,
        },
        TableData {
            name: "sales_order_services",
            batch: sales_order_services,
        },
    ]
}

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

/// Loads the schema and every table into Postgres through `COPY`.
pub async fn load_postgres(
    client: &tokio_postgres::Client,
    tables: &[TableData],
) -> Result<(), tokio_postgres::Error> {
    use futures::SinkExt;
    client.batch_execute(SCHEMA_SQL).await?;
    for table in tables {
        let columns: Vec<String> = table
            .batch
            .schema()
            .fields()
            .iter()
            .map(|f| crate::model::sql::quote_ident(f.name()))
            .collect();
        let copy = format!(
            "COPY {}.{} ({}) FROM STDIN (FORMAT csv)",
            crate::model::sql::quote_ident(SCHEMA),
            crate::model::sql::quote_ident(table.name),
            columns.join(", ")
        );
        let sink = client.copy_in::<_, Bytes>(&copy).await?;
        futures::pin_mut!(sink);
        sink.send(Bytes::from(to_csv(&table.batch, false))).await?;
        sink.close().await?;
    }
    client.batch_execute("ANALYZE").await?;
    Ok(())
}

/// Writes the raw zone: DMS-style Parquet per table, and the CSV drops (`customers`, `sales_order`).
pub async fn write_lake(
    store: &dyn ObjectStore,
    root: &StorePath,
    tables: &[TableData],
) -> object_store::Result<()> {
    for table in tables {
        let path = root
            .clone()
            .join("raw")
            .join("database")
            .join(SCHEMA)
            .join(table.name)
            .join("LOAD00000001.parquet");
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

/// A full-load batch as DMS writes it with `TimestampColumnName`: the row, then the time the
/// load transferred it.
fn full_load_batch(rows: &RecordBatch) -> RecordBatch {
    let mut columns: Vec<(String, ArrayRef)> = rows
        .schema()
        .fields()
        .iter()
        .zip(rows.columns())
        .map(|(field, column)| (field.name().clone(), column.clone()))
        .collect();
    columns.push((
        COMMIT_TIME_COLUMN.into(),
        text(vec![Some(FULL_LOAD_TIME); rows.num_rows()]),
    ));
    RecordBatch::try_from_iter(columns).expect("consistent columns")
}

/// When the demo's full load transferred its rows (before the change data).
pub const FULL_LOAD_TIME: &str = "2026-11-21 07:00:00.000000";
/// When the demo's change data was committed (after the full load).
pub const CDC_COMMIT_TIME: &str = "2026-11-21 08:00:00.000000";
/// The CDC file DMS would write for those commits.
pub const CDC_FILE: &str = "20261121-080000000.parquet";
/// The DMS `TimestampColumnName` the demo uses.
pub const COMMIT_TIME_COLUMN: &str = "commit_ts";

/// One change made in the source after the full load, with the rows DMS would capture for it
/// (after-images for `I`/`U`, before-images for `D`).
pub struct CdcChange {
    pub table: &'static str,
    pub statement: String,
    pub op: &'static str,
    pub rows: RecordBatch,
}

fn rows_by_id(batch: &RecordBatch, ids: std::ops::RangeInclusive<u32>) -> RecordBatch {
    let indices = datafusion::arrow::array::UInt32Array::from_iter_values(ids.map(|id| id - 1));
    let columns = batch
        .columns()
        .iter()
        .map(|c| datafusion::arrow::compute::take(c, &indices, None).expect("rows exist"))
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
    let table = |name: &str| {
        &tables
            .iter()
            .find(|t| t.name == name)
            .expect("generated")
            .batch
    };
    let commit = chrono::NaiveDateTime::parse_from_str(CDC_COMMIT_TIME, "%Y-%m-%d %H:%M:%S%.f")
        .expect("valid time")
        .and_utc()
        .timestamp_micros();
    let orders = table("sales_order");
    let new_orders = rows_by_id(orders, 1..=3);
    let new_ids: ArrayRef = Arc::new(Int32Array::from(vec![1001, 1002, 1003]));
    let shipped = rows_by_id(orders, 1..=5);
    let shipped = replace_column(&shipped, "status", text(vec![Some("SHIPPED"); 5]));
    let shipped = replace_column(&shipped, "updated_at", timestamps(vec![commit; 5]));
    let customer = replace_column(
        &rows_by_id(table("customers"), 3..=3),
        "email",
        text(vec![Some("updated.3@example.com")]),
    );
    let at = format!("TIMESTAMPTZ '{CDC_COMMIT_TIME}+00'");
    vec![
        CdcChange {
            table: "sales_order",
            statement: "INSERT INTO autocorp.sales_order SELECT order_id + 1000, customer_id, order_date, status, \
                        total_amount, created_at, updated_at FROM autocorp.sales_order WHERE order_id BETWEEN 1 AND 3"
                .into(),
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
            rows: rows_by_id(table("sales_order_services"), 1..=2),
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
    let mut columns: Vec<(String, ArrayRef)> = vec![("Op".into(), text(vec![Some(op); n]))];
    for (field, column) in rows.schema().fields().iter().zip(rows.columns()) {
        columns.push((field.name().clone(), column.clone()));
    }
    columns.push((COMMIT_TIME_COLUMN.into(), text(vec![Some(commit_time); n])));
    RecordBatch::try_from_iter(columns).expect("consistent columns")
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
        let all = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches)?;
        let path = root
            .clone()
            .join("raw")
            .join("database")
            .join(SCHEMA)
            .join(table)
            .join(CDC_FILE);
        store.put(&path, PutPayload::from(to_parquet(&all))).await?;
    }
    Ok(())
}

/// Tables the Glue ETL keeps as Delta in the curated zone.
pub const CURATED_DELTA_TABLES: [&str; 3] = ["auto_parts", "service", "service_parts"];

/// Writes the curated Delta tables under `root` the way the ETL would: an `etl_timestamp` column
/// added, in two commits (most rows, then the rest) so time travel has a version to go back to.
pub async fn write_curated_delta(
    root: &std::path::Path,
    tables: &[TableData],
) -> anyhow::Result<()> {
    use deltalake::protocol::SaveMode;
    for name in CURATED_DELTA_TABLES {
        let batch = &tables
            .iter()
            .find(|t| t.name == name)
            .expect("generated")
            .batch;
        let batch = curate(name, batch, chrono::Utc::now().timestamp_micros())?;
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let url = url::Url::from_directory_path(&dir)
            .map_err(|_| anyhow::anyhow!("bad path {}", dir.display()))?;
        let first = batch.num_rows() - batch.num_rows() / 10;
        let table = deltalake::DeltaTable::try_from_url(url).await?;
        let table = table
            .write(vec![batch.slice(0, first)])
            .with_save_mode(SaveMode::ErrorIfExists)
            .await?;
        table
            .write(vec![batch.slice(first, batch.num_rows() - first)])
            .with_save_mode(SaveMode::Append)
            .await?;
    }
    Ok(())
}

/// Tables the Glue ETL keeps as Hudi copy-on-write tables in the curated zone.
pub const CURATED_HUDI_TABLES: [(&str, &str); 2] =
    [("sales_order", "order_id"), ("customers", "customer_id")];

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
            datafusion::arrow::compute::filter_record_batch(batch, &keep)?
        }
        None => batch.clone(),
    };
    let mut columns: Vec<(String, ArrayRef)> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| (f.name().clone(), c.clone()))
        .collect();
    columns.push((
        "etl_timestamp".into(),
        timestamps(vec![etl_micros; batch.num_rows()]),
    ));
    Ok(RecordBatch::try_from_iter(columns)?)
}

/// Writes the curated Hudi tables under `root`: the full load as a first commit, then the CDC
/// inserts and updates upserted on the record key (precombine on `updated_at`), filtered and
/// stamped as the ETL does.
pub async fn write_curated_hudi(
    root: &std::path::Path,
    tables: &[TableData],
    changes: &[CdcChange],
) -> anyhow::Result<()> {
    let etl = chrono::Utc::now().timestamp_micros();
    for (name, key) in CURATED_HUDI_TABLES {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let uri = url::Url::from_directory_path(&dir)
            .map_err(|_| anyhow::anyhow!("bad path {}", dir.display()))?;
        let mut table = hudi::table::Table::create(uri.as_str().trim_end_matches('/'))
            .with_table_name(name)
            .with_record_key_fields([key])
            .with_ordering_fields(["updated_at"])
            .with_metadata_table_enabled(false)
            .create()
            .await?;
        let full_load = &tables
            .iter()
            .find(|t| t.name == name)
            .expect("generated")
            .batch;
        table.upsert(vec![curate(name, full_load, etl)?]).await?;
        let upserts: Vec<RecordBatch> = changes
            .iter()
            .filter(|c| c.table == name && c.op != "D")
            .map(|c| curate(name, &c.rows, etl))
            .collect::<anyhow::Result<_>>()?;
        if !upserts.is_empty() {
            table.upsert(upserts).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_reference_row_counts_deterministically() {
        let first = generate();
        for (table, (name, rows)) in first.iter().zip(ROW_COUNTS) {
            assert_eq!(table.name, name);
            assert_eq!(table.batch.num_rows(), rows, "{name}");
        }
        let again = generate();
        assert!(
            first.iter().zip(&again).all(|(a, b)| a.batch == b.batch),
            "same seed, same data"
        );
    }
}
