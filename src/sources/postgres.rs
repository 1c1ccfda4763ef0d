//! PostgreSQL, queried where the data lives.
//!
//! Every session is read-only twice over: the session default is `default_transaction_read_only`
//! and each query runs inside an explicit `READ ONLY` transaction that is rolled back, so even a
//! user query that changes session settings cannot write. A statement timeout bounds every query.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, Semaphore};
use tokio_postgres::{Client, Config, NoTls};

use super::{columns, Column, LogicalType, Rows, Source, SourceError, SourceKind};
use crate::reconcile::{canonical, Canon};
use crate::rules::{MapReader, RuleError};
use crate::sql::{quote_ident, quote_literal, strip_trailing_semicolons};

pub const KIND: SourceKind = SourceKind {
    name: "postgres",
    parse,
};

const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_CONNECTIONS: u64 = 4;

/// A Postgres database reached through a `postgres://` URL.
pub struct PostgresSource {
    name: String,
    config: Config,
    schema: String,
    statement_timeout: Duration,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: show only what `describe` shows.
        f.debug_struct("PostgresSource")
            .field("name", &self.name)
            .field("target", &self.describe())
            .finish()
    }
}

fn parse(name: &str, options: &mut MapReader) -> Result<Arc<dyn Source>, RuleError> {
    let url = options.required_string("url", "\"${LAKECHECK_PG_URL}\"")?;
    let schema = options
        .string("schema")?
        .map(|s| s.value)
        .unwrap_or_else(|| "public".into());
    let statement_timeout = options
        .duration("statement_timeout")?
        .map(|d| d.value)
        .unwrap_or(DEFAULT_STATEMENT_TIMEOUT);
    let connect_timeout = options
        .duration("connect_timeout")?
        .map(|d| d.value)
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let max_connections = options
        .u64("max_connections")?
        .map(|n| n.value)
        .unwrap_or(DEFAULT_MAX_CONNECTIONS)
        .max(1);
    options.finish()?;

    let mut config: Config = url.value.parse().map_err(|e: tokio_postgres::Error| {
        // The parser's message never echoes the URL, so no password leaks through it.
        RuleError::new(
            url.location.clone(),
            format!("`url` of source `{name}` is not a valid Postgres URL: {e}"),
        )
        .with_help(
            "write postgres://user@host:5432/database (the password from PGPASSWORD or the URL)",
        )
    })?;
    if config.get_password().is_none() {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
    }
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    config.connect_timeout(connect_timeout);
    config.application_name("lakecheck");
    Ok(Arc::new(PostgresSource {
        name: name.to_string(),
        config,
        schema,
        statement_timeout,
        idle: Mutex::new(Vec::new()),
        permits: Semaphore::new(max_connections as usize),
    }))
}

impl PostgresSource {
    async fn connect(&self) -> Result<Client, SourceError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| {
            SourceError::new(self, format!("cannot connect: {}", describe_error(&e)))
        })?;
        tokio::spawn(async move {
            // Errors surface on the next query through the client; nothing to do here.
            let _ = connection.await;
        });
        // Pinned settings make rendered values independent of server and role defaults.
        let setup = format!(
            "SET default_transaction_read_only = on; \
             SET statement_timeout = {}; \
             SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
             SET extra_float_digits = 3; SET bytea_output = 'hex'",
            self.statement_timeout.as_millis()
        );
        client.batch_execute(&setup).await.map_err(|e| {
            SourceError::new(
                self,
                format!("cannot prepare session: {}", describe_error(&e)),
            )
        })?;
        Ok(client)
    }

    async fn run(&self, client: &mut Client, sql: &str) -> Result<Rows, tokio_postgres::Error> {
        let sql = strip_trailing_semicolons(sql);
        let tx = client.build_transaction().read_only(true).start().await?;
        let statement = tx.prepare(sql).await?;
        let columns: Vec<String> = statement
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        // Render every column as text on the server: exact for numeric, uniform for every type.
        // Positional aliases keep duplicate column names (a join's two `id`s) apart.
        let aliases: Vec<String> = (1..=columns.len()).map(|i| format!("c{i}")).collect();
        let rows = if columns.is_empty() {
            let count = tx
                .query(&format!("SELECT 1 FROM (\n{sql}\n) AS q"), &[])
                .await?
                .len();
            vec![Vec::new(); count]
        } else {
            let wrapped = format!(
                "SELECT ARRAY[{}]::text[] FROM (\n{sql}\n) AS q({})",
                aliases
                    .iter()
                    .map(|a| format!("{a}::text"))
                    .collect::<Vec<_>>()
                    .join(", "),
                aliases.join(", ")
            );
            tx.query(&wrapped, &[])
                .await?
                .iter()
                .map(|row| row.try_get::<_, Vec<Option<String>>>(0))
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.rollback().await?;
        Ok(Rows { columns, rows })
    }
}

#[async_trait]
impl Source for PostgresSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        let host = self
            .config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_default();
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let database = self.config.get_dbname().unwrap_or("postgres");
        format!("postgres {host}:{port}/{database}")
    }

    fn table_sql(&self, table: &str) -> String {
        match table.split_once('.') {
            Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
            None => format!("{}.{}", quote_ident(&self.schema), quote_ident(table)),
        }
    }

    async fn columns(&self, table: &str) -> Result<Vec<Column>, SourceError> {
        let (schema, name) = table.split_once('.').unwrap_or((&self.schema, table));
        let rows = self
            .query(&format!(
                "SELECT column_name, data_type, numeric_precision, numeric_scale, character_maximum_length, \
                 datetime_precision FROM information_schema.columns WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
                quote_literal(schema),
                quote_literal(name)
            ))
            .await?;
        if rows.rows.is_empty() {
            return Err(SourceError::new(
                self,
                format!("table `{schema}.{name}` not found (or not visible to this user)"),
            ));
        }
        Ok(rows
            .rows
            .iter()
            .map(|row| {
                let text = |i: usize| row.get(i).cloned().flatten();
                let number = |i: usize| text(i).and_then(|v| v.parse::<i64>().ok());
                let data_type = text(1).unwrap_or_default();
                let engine_type = match (data_type.as_str(), number(2), number(3), number(4)) {
                    ("numeric", Some(p), Some(s), _) => format!("numeric({p},{s})"),
                    (_, _, _, Some(length)) => format!("{data_type}({length})"),
                    _ => data_type.clone(),
                };
                let precision = if data_type == "numeric" {
                    number(2)
                } else {
                    None
                };
                let logical = columns::from_postgres(&data_type, precision, number(3));
                let millisecond_precision = matches!(
                    logical,
                    LogicalType::Timestamp | LogicalType::TimestampTz | LogicalType::Time
                ) && number(5).is_some_and(|p| p <= 3);
                Column {
                    name: text(0).unwrap_or_default(),
                    logical,
                    engine_type,
                    millisecond_precision,
                }
            })
            .collect())
    }

    async fn primary_key(&self, table: &str) -> Result<Option<Vec<String>>, SourceError> {
        let rows = self
            .query(&format!(
                "SELECT a.attname FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = {}::regclass AND i.indisprimary \
                 ORDER BY array_position(i.indkey::int2[], a.attnum)",
                quote_literal(&self.table_sql(table))
            ))
            .await?;
        let key: Vec<String> = rows
            .rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        Ok((!key.is_empty()).then_some(key))
    }

    fn canonical_sql(&self, column: &Column, canon: Canon) -> String {
        canonical::postgres_sql(&quote_ident(&column.name), column.logical, canon)
    }

    fn row_hash_sql(&self, columns: &[(&Column, Canon)], seed: &str) -> String {
        crate::reconcile::row_hash::postgres_sql(columns, seed)
    }

    fn ordered_aggregate_sql(&self, function: &str, column: &Column) -> String {
        let ident = quote_ident(&column.name);
        match column.logical {
            // The database's collation may order text differently from byte order.
            LogicalType::Text | LogicalType::PaddedText => {
                format!("{function}({ident} COLLATE \"C\")")
            }
            // PostgreSQL has no min/max for boolean: false < true, as in DataFusion.
            LogicalType::Bool if function == "min" => format!("bool_and({ident})"),
            LogicalType::Bool => format!("bool_or({ident})"),
            _ => format!("{function}({ident})"),
        }
    }

    fn parallel_queries(&self) -> usize {
        // One backend uses one core: spread segment checksums over the pool, up to the cores
        // this machine has (loopback servers share them with us).
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        self.permits.available_permits().clamp(1, cores.max(2))
    }

    async fn query(&self, sql: &str) -> Result<Rows, SourceError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| SourceError::new(self, "connection pool closed"))?;
        let pooled = self.idle.lock().await.pop();
        let mut client = match pooled {
            Some(client) if !client.is_closed() => client,
            _ => self.connect().await?,
        };
        let result = self.run(&mut client, sql).await;
        if !client.is_closed() {
            self.idle.lock().await.push(client);
        }
        result.map_err(|e| SourceError::new(self, describe_error(&e)))
    }
}

/// The server's own words (message, detail, hint) when there are some, else the client's.
fn describe_error(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = db.message().to_string();
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}
