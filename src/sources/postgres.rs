//! PostgreSQL, queried where the data lives, and safe to point at a production server.
//!
//! Every session is read-only twice over: the session default is `default_transaction_read_only`
//! and each query runs inside an explicit `READ ONLY` transaction that is rolled back, so even a
//! user query that changes session settings cannot write. Every session also sets
//! `application_name = lakecheck` (so a DBA can find it), a `statement_timeout`, a short
//! `lock_timeout` (lakecheck never queues behind DDL: it fails instead) and an
//! `idle_in_transaction_session_timeout`.
//!
//! Connections come from one pool per server for the whole run (`postgres_pool.rs`):
//! `max_connections` caps what lakecheck opens to a server however many rule files name it.
//! A query whose future is dropped before it completes (a check's `timeout`) is cancelled on
//! the server, and its connection is not reused. TLS follows libpq's `sslmode` and
//! `sslrootcert` (`postgres_tls.rs`).
//!
//! The one exception to read-only is opted into per source (`heartbeat: { table: ..., create:
//! true }`): a `cdc_latency` probe writes one marker row to that table, in its own `BEGIN READ
//! WRITE` … `COMMIT` on a connection of its own (the same settings, read-only by default,
//! statement timeout), counted against the cap and closed afterwards. No other statement
//! lakecheck sends can write.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::{CancelToken, Client, Config, SimpleQueryMessage};

use super::changes::{HeartbeatMarker, PROBE_COLUMN, SEQ_COLUMN, WRITTEN_AT_COLUMN};
use super::postgres_pool::{Lease, ServerFacts, ServerKey, ServerPool, Slot};
use super::postgres_tls::{split_tls_params, RustlsConnector, TlsMode, TlsSettings};
use super::{postgres_canon, Source, SourceContext, SourceError, SourceKind};
use crate::model::columns::{self, Column, LogicalType};
use crate::model::sql::{quote_ident, quote_literal, strip_trailing_semicolons};
use crate::model::{Canon, MapReader, Rows, RuleError, Spanned};

pub const KIND: SourceKind = SourceKind {
    name: "postgres",
    parse,
};

const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Short: a lakecheck query waiting for a lock (behind a migration's `ALTER TABLE`) would make
/// every query queued behind the DDL wait too.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a pooled connection may sit unused before it is closed.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_CONNECTIONS: u64 = 4;
/// What every session reports in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "lakecheck";

/// A Postgres database reached through a `postgres://` URL.
pub struct PostgresSource {
    name: String,
    config: Config,
    schema: String,
    tls: TlsSettings,
    /// The TLS connector, built on first connection (it reads `sslrootcert`).
    connector: OnceLock<RustlsConnector>,
    /// The `SET` statements that prepare each session.
    session_setup: String,
    /// The session settings in words: only connections prepared alike are shared between
    /// sources of one server.
    profile: String,
    /// The server's connections, shared with every source of the run naming the same server.
    pool: Arc<ServerPool>,
    /// `parallel_queries:` as the rule gives it; else the server's `max_parallel_workers`.
    parallel_queries: Option<usize>,
    /// Where `cdc_latency` may write its markers, if the rule opted in.
    heartbeat: Option<Heartbeat>,
}

/// A source's `heartbeat:` option: the table heartbeat markers go to.
#[derive(Debug, Clone)]
struct Heartbeat {
    /// As the rule names it: `lakecheck_heartbeat` (in the source's schema) or `ops.heartbeat`.
    table: String,
    /// Create the table (`CREATE TABLE IF NOT EXISTS`) when it is missing.
    create: bool,
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

/// PostgreSQL runs lakecheck's canon and row hash as plain SQL (`postgres_canon.rs`), so the
/// functions in `context` are not needed here; its pool comes from `context.resources`.
fn parse(
    name: &str,
    options: &mut MapReader,
    context: &SourceContext,
) -> Result<Arc<dyn Source>, RuleError> {
    let url = options.required_string("url", "\"${LAKECHECK_PG_URL}\"")?;
    let schema = options
        .string("schema")?
        .map(|s| s.value)
        .unwrap_or_else(|| "public".into());
    let mut duration = |key: &'static str, default: Duration| {
        Ok::<_, RuleError>(options.duration(key)?.map(|d| d.value).unwrap_or(default))
    };
    let statement_timeout = duration("statement_timeout", DEFAULT_STATEMENT_TIMEOUT)?;
    let connect_timeout = duration("connect_timeout", DEFAULT_CONNECT_TIMEOUT)?;
    let lock_timeout = duration("lock_timeout", DEFAULT_LOCK_TIMEOUT)?;
    let idle_in_transaction = duration(
        "idle_in_transaction_session_timeout",
        DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT,
    )?;
    let idle_timeout = duration("idle_timeout", DEFAULT_IDLE_TIMEOUT)?;
    let max_connections = options
        .u64("max_connections")?
        .map(|n| n.value)
        .unwrap_or(DEFAULT_MAX_CONNECTIONS)
        .max(1);
    let parallel_queries = options
        .u64("parallel_queries")?
        .map(|n| (n.value as usize).max(1));
    let sslmode = options.string("sslmode")?;
    let sslrootcert = options.string("sslrootcert")?;
    let heartbeat = parse_heartbeat(name, options)?;
    options.finish()?;

    let (url_text, url_sslmode, url_sslrootcert) = split_tls_params(&url.value);
    let tls = tls_settings(
        name,
        &url,
        (sslmode, url_sslmode),
        (sslrootcert, url_sslrootcert),
    )?;
    let mut config: Config = url_text.parse().map_err(|e: tokio_postgres::Error| {
        // The parser's message never echoes the URL, so no password leaks through it.
        RuleError::new(
            url.location.clone(),
            format!("`url` of source `{name}` is not a valid Postgres URL: {e}"),
        )
        .with_help(
            "write postgres://user@host:5432/database (the password from PGPASSWORD or the URL)",
        )
    })?;
    // The URL parser splits user from host at the first `@`: a password holding a raw `@`
    // would leave its tail in the host name, which `describe` (and so every error) prints.
    let host_has_at = config
        .get_hosts()
        .iter()
        .any(|h| matches!(h, tokio_postgres::config::Host::Tcp(host) if host.contains('@')));
    if host_has_at {
        return Err(RuleError::new(
            url.location.clone(),
            format!("`url` of source `{name}` has more than one `@`"),
        )
        .with_help("percent-encode an `@` in the user or password as `%40`, or take the password from PGPASSWORD"));
    }
    if config.get_password().is_none() {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
    }
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    config.connect_timeout(connect_timeout);
    config.application_name(APPLICATION_NAME);
    config.ssl_mode(tls.mode.ssl_mode());
    // Pinned settings make rendered values independent of server and role defaults.
    let session_setup = format!(
        "SET default_transaction_read_only = on; \
         SET statement_timeout = {}; SET lock_timeout = {}; \
         SET idle_in_transaction_session_timeout = {}; \
         SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
         SET extra_float_digits = 3; SET bytea_output = 'hex'",
        statement_timeout.as_millis(),
        lock_timeout.as_millis(),
        idle_in_transaction.as_millis(),
    );
    let profile = format!("{} {session_setup}", tls.profile());
    let pool = context.resources.postgres.pool(
        server_key(&config),
        max_connections as usize,
        idle_timeout,
    );
    Ok(Arc::new(PostgresSource {
        name: name.to_string(),
        config,
        schema,
        tls,
        connector: OnceLock::new(),
        session_setup,
        profile,
        pool,
        parallel_queries,
        heartbeat,
    }))
}

/// `sslmode` and `sslrootcert`, each from the source's options or the URL (not both), else
/// from libpq's `PGSSLMODE` / `PGSSLROOTCERT`; `prefer` by default, as libpq.
fn tls_settings(
    name: &str,
    url: &Spanned<String>,
    (mode_option, mode_in_url): (Option<Spanned<String>>, Option<String>),
    (root_option, root_in_url): (Option<Spanned<String>>, Option<String>),
) -> Result<TlsSettings, RuleError> {
    let pick =
        |key: &str, option: Option<Spanned<String>>, in_url: Option<String>, env: &str| match (
            option, in_url,
        ) {
            (Some(option), Some(_)) => Err(RuleError::new(
                option.location,
                format!("source `{name}` gives `{key}` twice: as an option and in its `url`"),
            )
            .with_help(format!("keep one `{key}`"))),
            (Some(option), None) => Ok(Some((option.value, option.location))),
            (None, Some(value)) => Ok(Some((value, url.location.clone()))),
            (None, None) => Ok(std::env::var(env).ok().map(|v| (v, url.location.clone()))),
        };
    let mode = match pick("sslmode", mode_option, mode_in_url, "PGSSLMODE")? {
        None => TlsMode::Prefer,
        Some((text, location)) => TlsMode::parse(&text).map_err(|e| {
            RuleError::new(location, format!("source `{name}`: {e}"))
                .with_help("verify-full checks the server's certificate and host name")
        })?,
    };
    let root_cert = pick("sslrootcert", root_option, root_in_url, "PGSSLROOTCERT")?
        .map(|(path, _)| PathBuf::from(path));
    Ok(TlsSettings { mode, root_cert })
}

/// The server a config points at, as pools are shared: host, port, database, user.
fn server_key(config: &Config) -> ServerKey {
    let user = config.get_user().unwrap_or_default().to_string();
    ServerKey {
        host: first_host(config),
        port: config.get_ports().first().copied().unwrap_or(5432),
        database: config.get_dbname().unwrap_or(&user).to_string(),
        user,
    }
}

fn first_host(config: &Config) -> String {
    config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default()
}

/// `heartbeat: { table: lakecheck_heartbeat, create: true }`: the opt-in to the one write.
fn parse_heartbeat(name: &str, options: &mut MapReader) -> Result<Option<Heartbeat>, RuleError> {
    let Some(node) = options.node("heartbeat") else {
        return Ok(None);
    };
    let mut heartbeat = MapReader::new(
        options.context(),
        node,
        format!("`heartbeat` of source `{name}`"),
    )?;
    let table = heartbeat.required_string("table", "lakecheck_heartbeat")?;
    let create = heartbeat.bool("create")?.is_some_and(|c| c.value);
    heartbeat.finish()?;
    Ok(Some(Heartbeat {
        table: table.value,
        create,
    }))
}

/// A time as PostgreSQL renders a `timestamptz` under `DateStyle = ISO` (`2026-11-21
/// 08:00:00.123456+00`).
fn parse_timestamptz(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl PostgresSource {
    /// The TLS connector of this source's settings, built once.
    fn connector(&self) -> Result<RustlsConnector, SourceError> {
        if let Some(connector) = self.connector.get() {
            return Ok(connector.clone());
        }
        let connector = self
            .tls
            .connector()
            .map_err(|e| SourceError::new(self, e))?;
        Ok(self.connector.get_or_init(|| connector).clone())
    }

    /// Opens a session prepared with this source's settings, holding `slot` until the
    /// connection has closed.
    async fn connect(&self, slot: Slot) -> Result<Client, SourceError> {
        let tls = self.connector()?;
        let (client, connection) = self.config.connect(tls).await.map_err(|e| {
            let mut cause = self
                .tls
                .explain(&e, &first_host(&self.config))
                .unwrap_or_else(|| describe_error(&e));
            // pg_hba.conf's words for a server taking TLS connections only (`hostssl`).
            if self.tls.mode == TlsMode::Disable && cause.ends_with("no encryption") {
                cause.push_str(
                    "; the server accepts encrypted connections only: set sslmode to require, \
                     verify-ca or verify-full",
                );
            }
            SourceError::new(self, format!("cannot connect: {cause}"))
        })?;
        tokio::spawn(async move {
            // Errors surface on the next query through the client; nothing to do here. The slot
            // goes back once the socket is closed, not before.
            let _ = connection.await;
            drop(slot);
        });
        let failed = |what: &'static str| {
            move |e: tokio_postgres::Error| {
                SourceError::new(self, format!("{what}: {}", describe_error(&e)))
            }
        };
        client
            .batch_execute(&self.session_setup)
            .await
            .map_err(failed("cannot prepare session"))?;
        if self.pool.facts().is_none() {
            let facts = client
                .query_one(
                    "SELECT current_setting('server_version_num'), \
                     current_setting('max_parallel_workers', true)",
                    &[],
                )
                .await
                .map_err(failed("cannot read the server version"))?;
            self.pool.learn(ServerFacts {
                version_num: facts.get::<_, String>(0).parse().ok(),
                // Absent before PostgreSQL 10 (no parallel query worth speaking of): one at a time.
                max_parallel_workers: facts
                    .get::<_, Option<String>>(1)
                    .and_then(|w| w.parse().ok())
                    .unwrap_or(1),
            });
        }
        Ok(client)
    }

    /// A session for one query: an idle one of the pool prepared alike, or a new one.
    async fn session(&self) -> Result<Client, SourceError> {
        match self.pool.lease(&self.profile).await {
            Lease::Open(client) => Ok(client),
            Lease::New(slot) => self.connect(slot).await,
        }
    }

    /// Why the heartbeat write failed, and what to do about it.
    fn heartbeat_error(&self, table: &str, error: &tokio_postgres::Error) -> String {
        let code = error.code();
        let help = if code == Some(&SqlState::UNDEFINED_TABLE) {
            "; create it (the README gives its DDL) or set `create: true` under `heartbeat:`"
        } else if code == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
            "; grant the role SELECT and INSERT on it (and CREATE on its schema for `create: true`)"
        } else if code == Some(&SqlState::READ_ONLY_SQL_TRANSACTION) {
            "; the server takes no writes (a standby?): point the source at the primary the \
             pipeline replicates"
        } else if code == Some(&SqlState::UNIQUE_VIOLATION) {
            "; another probe with the same `probe:` id wrote at the same moment: give each \
             cdc_latency check an id of its own"
        } else {
            ""
        };
        format!(
            "cannot write the heartbeat to {table}: {}{help}",
            describe_error(error)
        )
    }

    /// The server's `server_version_num` (e.g. `150004` for 15.4), once a connection was made.
    /// Some SQL lakecheck generates needs a recent server (see [`missing_function_hint`]).
    pub fn server_version_num(&self) -> Option<u32> {
        self.pool.facts().and_then(|facts| facts.version_num)
    }

    /// A query error in words, naming the PostgreSQL version needed when the server is too old
    /// for a function lakecheck uses.
    fn explain(&self, error: &tokio_postgres::Error) -> String {
        if error.code() == Some(&SqlState::UNDEFINED_FUNCTION) {
            if let Some(db) = error.as_db_error() {
                if let Some(hint) = missing_function_hint(db.message(), self.server_version_num()) {
                    return hint;
                }
            }
        }
        describe_error(error)
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
        let host = first_host(&self.config);
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

    async fn unique_keys(&self, table: &str) -> Result<Vec<Vec<String>>, SourceError> {
        // Primary keys and unique indexes without expressions or predicates: what the server
        // enforces. NULLs may repeat under a unique index, but reconciles never pair NULL keys.
        let rows = self
            .query(&format!(
                "SELECT string_agg(a.attname, chr(31) ORDER BY array_position(i.indkey::int2[], a.attnum)) \
                 AS columns FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                 WHERE i.indrelid = {}::regclass AND i.indisunique AND i.indpred IS NULL \
                 AND i.indexprs IS NULL GROUP BY i.indexrelid ORDER BY 1",
                quote_literal(&self.table_sql(table))
            ))
            .await?;
        Ok(rows
            .rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .map(|columns| columns.split('\u{1f}').map(str::to_string).collect())
            .collect())
    }

    fn canonical_sql(&self, column: &Column, canon: Canon) -> String {
        postgres_canon::canonical_sql(&quote_ident(&column.name), column.logical, canon)
    }

    fn row_hash_sql(&self, columns: &[(&Column, Canon)], seed: &str) -> String {
        postgres_canon::row_hash_sql(columns, seed)
    }

    fn md5_int64_sql(&self, text: &str) -> String {
        format!("('x' || substr(md5({text}), 1, 16))::bit(64)::int8")
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

    fn heartbeat_table(&self) -> Option<String> {
        let table = &self.heartbeat.as_ref()?.table;
        Some(match table.contains('.') {
            true => table.clone(),
            false => format!("{}.{table}", self.schema),
        })
    }

    fn heartbeat_sql(&self, probe: &str) -> Option<String> {
        let heartbeat = self.heartbeat.as_ref()?;
        let table = self.table_sql(&heartbeat.table);
        let (p, s, w) = (PROBE_COLUMN, SEQ_COLUMN, WRITTEN_AT_COLUMN);
        let create = match heartbeat.create {
            true => format!(
                "CREATE TABLE IF NOT EXISTS {table} ({p} text NOT NULL, {s} bigint NOT NULL, \
                 {w} timestamptz NOT NULL, PRIMARY KEY ({p}, {s}));\n"
            ),
            false => String::new(),
        };
        let probe = quote_literal(probe);
        Some(format!(
            "BEGIN READ WRITE;\n{create}\
             WITH previous AS (\n  SELECT {s}, {w} FROM {table} WHERE {p} = {probe} ORDER BY {s} DESC LIMIT 1\n), \
             marker AS (\n  INSERT INTO {table} ({p}, {s}, {w})\n  \
             SELECT {probe}, coalesce((SELECT {s} FROM previous), 0) + 1, clock_timestamp()\n  \
             RETURNING {s}, {w}\n)\n\
             SELECT marker.{s}, marker.{w}, previous.{s} AS previous_{s}, previous.{w} AS previous_{w}\n\
             FROM marker LEFT JOIN previous ON true;\n\
             COMMIT;\n\
             SELECT clock_timestamp() AS committed_by"
        ))
    }

    async fn write_heartbeat(&self, probe: &str) -> Result<HeartbeatMarker, SourceError> {
        let (Some(table), Some(sql)) = (self.heartbeat_table(), self.heartbeat_sql(probe)) else {
            return Err(SourceError::new(
                self,
                "no heartbeat table: add `heartbeat: { table: lakecheck_heartbeat, create: true }` \
                 to the source to let cdc_latency write its marker",
            ));
        };
        // A connection of its own, never pooled, closed when done (counted against the cap
        // while open): the one read-write transaction lakecheck runs happens on it and nowhere
        // else.
        let client = self.connect(self.pool.fresh_slot().await).await?;
        let messages = client
            .simple_query(&sql)
            .await
            .map_err(|e| SourceError::new(self, self.heartbeat_error(&table, &e)))?;
        drop(client);
        let rows: Vec<_> = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .collect();
        let value = |column: &str| {
            rows.iter()
                .find_map(|row| row.try_get(column).ok().flatten())
        };
        let time = |column: &str| value(column).and_then(parse_timestamptz);
        let unexpected = || {
            SourceError::new(
                self,
                format!("the heartbeat write to {table} answered without its marker"),
            )
        };
        let seq = value(SEQ_COLUMN)
            .and_then(|v| v.parse().ok())
            .ok_or_else(unexpected)?;
        let previous = match value(&format!("previous_{SEQ_COLUMN}")) {
            None => None,
            Some(previous) => Some((
                previous.parse().map_err(|_| unexpected())?,
                time(&format!("previous_{WRITTEN_AT_COLUMN}")).ok_or_else(unexpected)?,
            )),
        };
        let written_at = time(WRITTEN_AT_COLUMN).ok_or_else(unexpected)?;
        let committed_by = time("committed_by").ok_or_else(unexpected)?;
        Ok(HeartbeatMarker {
            table,
            probe: probe.to_string(),
            seq,
            written_at,
            committed_by,
            previous,
        })
    }

    /// `parallel_queries:` if the rule sets it, else the server's `max_parallel_workers` (the
    /// server's capacity, not this machine's), never more than the pool's cap.
    async fn parallel_queries(&self) -> usize {
        let wanted = match self.parallel_queries {
            Some(n) => n,
            None => {
                if self.pool.facts().is_none() {
                    // Connects (reading the setting) if nothing has yet; a failure shows on the
                    // queries that follow.
                    let _ = self.query("SELECT 1").await;
                }
                self.pool
                    .facts()
                    .map_or(1, |facts| facts.max_parallel_workers)
            }
        };
        wanted.clamp(1, self.pool.cap())
    }

    async fn query(&self, sql: &str) -> Result<Rows, SourceError> {
        let mut client = self.session().await?;
        let cancel = CancelOnDrop {
            token: Some(client.cancel_token()),
            tls: self.connector()?,
        };
        let result = self.run(&mut client, sql).await;
        cancel.completed();
        self.pool.give_back(&self.profile, client);
        result.map_err(|e| SourceError::new(self, self.explain(&e)))
    }
}

/// Cancels the query running on a session when the future waiting for it is dropped (a check's
/// `timeout`): without it the server would go on running a query nobody waits for. The
/// session itself is dropped with the future, so it never goes back to the pool.
struct CancelOnDrop {
    /// `None` once the query completed.
    token: Option<CancelToken>,
    tls: RustlsConnector,
}

impl CancelOnDrop {
    fn completed(mut self) {
        self.token = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let tls = self.tls.clone();
            runtime.spawn(async move {
                // Best effort: if the cancel request cannot reach the server, the statement
                // timeout still ends the query.
                let _ = token.cancel_query(tls).await;
            });
        }
    }
}

/// Functions lakecheck's generated SQL calls that older PostgreSQL versions lack, with the
/// `server_version_num` that introduced them.
const NEWER_FUNCTIONS: &[(&str, u32, &str)] = &[
    ("trim_scale", 130000, "comparing decimals"),
    ("hashtextextended", 110000, "row hashes"),
    ("hashint8extended", 110000, "row hashes"),
    ("timestamp_hash_extended", 110000, "row hashes"),
    ("time_hash_extended", 110000, "row hashes"),
];

/// For a server error `function <name>(...) does not exist` about a function newer than the
/// server, a message naming the version needed and the version the server runs. `None` when
/// the function is not one of lakecheck's or the server is new enough (then the server's own
/// words say more).
fn missing_function_hint(message: &str, server_version_num: Option<u32>) -> Option<String> {
    let called = message
        .strip_prefix("function ")?
        .split_once('(')
        .map(|(name, _)| name.trim())?;
    let name = called.rsplit('.').next().unwrap_or(called);
    let (function, needed, used_for) = NEWER_FUNCTIONS.iter().find(|(f, _, _)| *f == name)?;
    if server_version_num.is_some_and(|running| running >= *needed) {
        return None;
    }
    let running = match server_version_num {
        Some(number) => format!("this server runs PostgreSQL {}", version_text(number)),
        None => "this server's version is unknown".to_string(),
    };
    Some(format!(
        "lakecheck needs PostgreSQL {} or newer for `{function}` ({used_for}); {running} \
         (server error: {message})",
        version_text(*needed),
    ))
}

/// `150004` as `15.4`, `90624` as `9.6.24`, `140000` as `14`.
fn version_text(number: u32) -> String {
    if number >= 100_000 {
        match number % 10_000 {
            0 => format!("{}", number / 10_000),
            minor => format!("{}.{minor}", number / 10_000),
        }
    } else {
        format!(
            "{}.{}.{}",
            number / 10_000,
            number / 100 % 100,
            number % 100
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::trim_scale_on_12(
        "function trim_scale(numeric) does not exist",
        Some(120017),
        Some("lakecheck needs PostgreSQL 13 or newer for `trim_scale` (comparing decimals); this server runs PostgreSQL 12.17 (server error: function trim_scale(numeric) does not exist)")
    )]
    #[case::qualified_on_9_6(
        "function pg_catalog.hashtextextended(text, bigint) does not exist",
        Some(90624),
        Some("lakecheck needs PostgreSQL 11 or newer for `hashtextextended` (row hashes); this server runs PostgreSQL 9.6.24 (server error: function pg_catalog.hashtextextended(text, bigint) does not exist)")
    )]
    #[case::version_unknown(
        "function trim_scale(numeric) does not exist",
        None,
        Some("lakecheck needs PostgreSQL 13 or newer for `trim_scale` (comparing decimals); this server's version is unknown (server error: function trim_scale(numeric) does not exist)")
    )]
    // Segment checksums are sums, not `bit_xor` (PostgreSQL 14+): not a function of ours.
    #[case::bit_xor_is_not_ours("function bit_xor(bigint) does not exist", Some(130011), None)]
    // A new enough server lacks the function for another reason (argument types): its own
    // words say more.
    #[case::new_enough("function trim_scale(text) does not exist", Some(150004), None)]
    #[case::not_ours("function no_such_thing(integer) does not exist", Some(130011), None)]
    #[case::other_error("relation \"x\" does not exist", Some(130011), None)]
    fn old_servers_are_named_with_the_version_needed(
        #[case] message: &str,
        #[case] server_version_num: Option<u32>,
        #[case] expected: Option<&str>,
    ) {
        assert_eq!(
            missing_function_hint(message, server_version_num).as_deref(),
            expected
        );
    }

    #[rstest]
    #[case(150004, "15.4")]
    #[case(140000, "14")]
    #[case(130011, "13.11")]
    #[case(90624, "9.6.24")]
    fn server_versions_read_as_released(#[case] number: u32, #[case] text: &str) {
        assert_eq!(version_text(number), text);
    }
}
