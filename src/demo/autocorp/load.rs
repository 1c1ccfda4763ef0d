//! The source side: AutoCorp in PostgreSQL, loaded through `COPY` from the generated batches.

use bytes::Bytes;

use super::{to_csv, TableData, SCHEMA};
use crate::demo::ThrowawayPostgres;
use crate::model::sql::quote_ident;

/// The schema DDL, from `fixtures/autocorp/schema.sql`.
pub const SCHEMA_SQL: &str = include_str!("../../../fixtures/autocorp/schema.sql");

/// A throwaway Postgres holding AutoCorp in database `autocorp`.
pub async fn start_autocorp_postgres(tables: &[TableData]) -> anyhow::Result<ThrowawayPostgres> {
    let cluster = tokio::task::spawn_blocking(ThrowawayPostgres::start).await??;
    let (admin, connection) =
        tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls).await?;
    let admin_task = tokio::spawn(connection);
    admin.batch_execute("CREATE DATABASE autocorp").await?;
    drop(admin);
    let _ = admin_task.await;
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("autocorp"), tokio_postgres::NoTls).await?;
    let task = tokio::spawn(connection);
    load_postgres(&client, tables).await?;
    drop(client);
    let _ = task.await;
    Ok(cluster)
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
            .map(|f| quote_ident(f.name()))
            .collect();
        let copy = format!(
            "COPY {}.{} ({}) FROM STDIN (FORMAT csv)",
            quote_ident(SCHEMA),
            quote_ident(table.name),
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
