//! A lake: a folder (local or S3) whose sub-folders are tables, queried with DataFusion.
//!
//! A table is the folder of that name under the source URL, opened on first use through a
//! DataFusion schema provider, so generated SQL and user SQL alike can name any table folder.
//! How a folder becomes a table is the source's [`TableFormat`] (`table_format.rs`): this file
//! knows no format, as DataFusion's `ListingSchemaProvider` knows none.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::{SQLOptions, SessionContext, SessionState};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionConfig;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::ObjectStore;
use tokio::sync::Mutex;
use url::Url;

use super::changes::{ChangePosition, Changes};
use super::glue::GlueCatalog;
use super::memory::RunMemory;
use super::pin::Pin;
use super::retries::{RetryBudget, RetryCounts, RetryingConnector};
use super::table_format::{
    self, NewestTime, OpenedTable, TableChanges, TableError, TableFolder, TableFormat,
    TableFormatKind,
};
use super::{Source, SourceContext, SourceError, SourceKind};
use crate::model::columns::{self, Column};
use crate::model::sql::quote_ident;
use crate::model::{Canon, Location, MapReader, Rows, RuleError};

/// `type: lake`, and `type: <format>` for formats with a source type of their own (`delta`).
pub const KIND: SourceKind = SourceKind {
    name: "lake",
    parse,
};

/// Suffix naming a table's all-text twin (`Source::text_twin`); `#` cannot appear in a table
/// name a rule writes, since rule references are `source.table[@pin]`.
const TEXT_TWIN: &str = "#text";

/// The format of a lake without `format:`.
const DEFAULT_FORMAT: &str = "parquet";

/// A lake source: one DataFusion session whose default schema lists the table folders.
pub struct LakeSource {
    name: String,
    /// Where its tables are, for messages: `lake s3://bucket/raw/`.
    describe: String,
    ctx: SessionContext,
    tables: Arc<TableFolders>,
    /// S3 requests sent again, by table (always zero for local files).
    retries: Arc<RetryCounts>,
    /// The run's memory, which the session's queries share with every other lake session.
    memory: RunMemory,
}

impl LakeSource {
    /// Opens (and caches) a table, with what its format knows of it.
    async fn open_table(&self, table: &str) -> Result<Arc<OpenedTable>, SourceError> {
        self.tables
            .open(table)
            .await
            .map_err(|e| SourceError::table(self, e))
    }

    fn error(&self, error: &DataFusionError) -> SourceError {
        match error.find_root() {
            DataFusionError::External(inner) => match inner.downcast_ref::<TableError>() {
                Some(table) => SourceError::table(self, table.clone()),
                None => SourceError::new(self, inner.to_string()),
            },
            root => SourceError::new(self, self.cause(root)),
        }
    }

    /// What went wrong, in words: the run's memory limit, where that is what was reached.
    fn cause(&self, error: &DataFusionError) -> String {
        match error.find_root() {
            DataFusionError::ResourcesExhausted(detail) => self.memory.limit.exceeded(detail),
            _ => describe_error(error),
        }
    }

    /// The error of a failed query, naming the tables it read and, where the format can find
    /// it, the file that could not be read.
    async fn query_error(&self, plan: &LogicalPlan, error: &DataFusionError) -> SourceError {
        let cause = self.cause(error);
        let tables = scanned_tables(plan);
        let memory = matches!(error.find_root(), DataFusionError::ResourcesExhausted(_));
        for table in tables.iter().filter(|_| !memory) {
            if let Some(file) = self.tables.find_unreadable_file(table).await {
                return SourceError::new(self, format!("table `{table}`, file `{file}`: {cause}"));
            }
        }
        if tables.is_empty() {
            return SourceError::new(self, cause);
        }
        let names: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
        SourceError::new(self, format!("reading table {}: {cause}", names.join(", ")))
    }
}

impl std::fmt::Debug for LakeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeSource")
            .field("name", &self.name)
            .field("describe", &self.describe)
            .finish()
    }
}

/// Reads a lake source: its URL, storage options and table format (fixed by the source type,
/// or `format:` / `layout:`), then the format's own options.
fn parse(
    name: &str,
    options: &mut MapReader,
    context: &SourceContext,
) -> Result<Arc<dyn Source>, RuleError> {
    let catalog = GlueCatalog::parse(name, options)?;
    let url = match &catalog {
        None => Some(
            options.required_string("url", "\"${LAKECHECK_LAKE_URL}/raw/database/autocorp\"")?,
        ),
        Some(_) => {
            match options.string("url")? {
                None => None,
                Some(url) => return Err(RuleError::new(
                    url.location,
                    format!("source `{name}` has both `url` and `catalog`"),
                )
                .with_help(
                    "keep `catalog:` (each table is where Glue says) or `url:` (each table is a \
                     folder under it)",
                )),
            }
        }
    };
    // A format the rule names holds for every table; without one, a catalog's entries say.
    let format_declared =
        context.format.is_some() || options.is_unread("format") || options.is_unread("layout");
    let kind = match context.format {
        Some(kind) => kind,
        None => read_format(name, options, context.formats)?,
    };
    let storage_location = options.location_of("storage");
    let storage = options.string_map("storage")?;
    let retry = read_retry_budget(options)?;
    let format = (kind.parse)(name, options)?;
    reject_options_of_other_formats(name, options, kind, context.formats)?;
    options.finish()?;
    let storage = Storage {
        options: storage,
        location: storage_location,
        retry,
    };
    let places = match (url, catalog) {
        (Some(url), _) => Places::Folders(root_url(&url.value).map_err(|e| {
            RuleError::new(
                url.location.clone(),
                format!("`url` of source `{name}`: {e}"),
            )
            .with_help("write a local path, file:///path, or s3://bucket/prefix")
        })?),
        (None, Some(catalog)) => Places::Catalog {
            catalog,
            formats: (!format_declared).then_some(context.formats),
            resolved: Mutex::new(HashMap::new()),
        },
        (None, None) => unreachable!("`url` is required without `catalog`"),
    };
    let location = options.location();
    build(name, places, &location, format, storage, context)
}

/// The S3 options of a lake source: object_store's settings (`storage:`), and how often a
/// failed request is sent again (`retries:`, `retry_timeout:`).
struct Storage {
    options: Vec<(String, String)>,
    location: Location,
    /// The budget, and where the rule set it (S3 sources only; `None` when not written).
    retry: Option<(RetryBudget, Location)>,
}

/// `retries:` and `retry_timeout:`, each defaulting to [`RetryBudget::default`]'s.
fn read_retry_budget(
    options: &mut MapReader,
) -> Result<Option<(RetryBudget, Location)>, RuleError> {
    let retries = options.u64("retries")?;
    let timeout = options.duration("retry_timeout")?;
    let location = match (&retries, &timeout) {
        (None, None) => return Ok(None),
        (Some(r), _) => r.location.clone(),
        (None, Some(t)) => t.location.clone(),
    };
    let default = RetryBudget::default();
    let budget = RetryBudget {
        retries: match retries {
            Some(r) => u32::try_from(r.value).map_err(|_| {
                RuleError::new(r.location, format!("`retries` of {} is too many", r.value))
                    .with_help("a handful (the default is 3) rides out a brief outage")
            })?,
            None => default.retries,
        },
        timeout: timeout.map_or(default.timeout, |t| t.value),
    };
    Ok(Some((budget, location)))
}

/// The format named by `format:` (default Parquet); `layout: dms` is `format: dms`.
fn read_format(
    name: &str,
    options: &mut MapReader,
    formats: &'static [TableFormatKind],
) -> Result<&'static TableFormatKind, RuleError> {
    let format = options.string("format")?;
    let layout = options.string("layout")?;
    let mut chosen = format
        .as_ref()
        .map(|f| f.value.to_ascii_lowercase())
        .unwrap_or_else(|| DEFAULT_FORMAT.to_string());
    match &layout {
        None => {}
        Some(l) if l.value == "plain" => {}
        Some(l) if l.value == "dms" => {
            if chosen != DEFAULT_FORMAT && chosen != "dms" {
                return Err(RuleError::new(
                    options.location_of("format"),
                    format!("`layout: dms` of source `{name}` reads Parquet only"),
                ));
            }
            chosen = "dms".into();
        }
        Some(l) => {
            return Err(RuleError::new(l.location.clone(), format!("unknown layout `{}` in source `{name}`", l.value))
                .with_help("expected one of: `plain` (files directly in the table folder), `dms` (AWS DMS full load + CDC)"))
        }
    }
    formats.iter().find(|f| f.name == chosen).ok_or_else(|| {
        let location = format
            .map(|f| f.location)
            .unwrap_or_else(|| options.location_of("format"));
        RuleError::new(
            location,
            format!("unknown lake format `{chosen}` in source `{name}`"),
        )
        .with_help(format!(
            "expected one of: {}",
            formats
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// A key that only another format reads (`keys` without `layout: dms`) is named with the
/// format it belongs to, rather than as an unknown key.
fn reject_options_of_other_formats(
    name: &str,
    options: &MapReader,
    chosen: &TableFormatKind,
    formats: &'static [TableFormatKind],
) -> Result<(), RuleError> {
    for other in formats.iter().filter(|f| f.name != chosen.name) {
        if let Some(key) = other.options.iter().find(|k| options.is_unread(k)) {
            let how = if other.name == "dms" {
                "add `layout: dms`".to_string()
            } else {
                format!("add `format: {}`", other.name)
            };
            return Err(RuleError::new(
                options.location_of(key),
                format!(
                    "`{key}` of source `{name}` is an option of format `{}`, and this source reads `{}`",
                    other.name, chosen.name
                ),
            )
            .with_help(format!("{how}, or remove `{key}`")));
        }
    }
    Ok(())
}

fn build(
    name: &str,
    places: Places,
    location: &Location,
    format: Arc<dyn TableFormat>,
    storage: Storage,
    context: &SourceContext,
) -> Result<Arc<dyn Source>, RuleError> {
    // No list-files cache: DataFusion would otherwise keep a folder's file list for the whole
    // session, and a live table re-read (settle, freshness, probes) would never see new files.
    // Memory and spill space are the run's, shared by every lake session (`memory.rs`).
    let memory = &context.resources.memory;
    let mut runtime = RuntimeEnvBuilder::new()
        .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
        .with_memory_pool(memory.pool.clone());
    runtime.disk_manager = Some(memory.disk.clone());
    let runtime = runtime.build_arc().map_err(|e| {
        RuleError::new(
            location.clone(),
            format!("cannot set up source `{name}`: {e}"),
        )
    })?;
    let retries = Arc::new(RetryCounts::default());
    let s3 = S3Access {
        options: storage.options.clone(),
        budget: storage.retry.as_ref().map(|(b, _)| *b).unwrap_or_default(),
        retries: retries.clone(),
    };
    let on_s3 = match &places {
        Places::Folders(root) => root.scheme() == "s3",
        // Whatever the catalog names may be on S3: its stores are made as tables are found.
        Places::Catalog { .. } => true,
    };
    if let Some(root) = places.folders().filter(|r| r.scheme() == "s3") {
        let store = s3.store(root).map_err(|e| {
            RuleError::new(
                storage.location.clone(),
                format!("storage options of source `{name}`: {e}"),
            )
        })?;
        runtime.register_object_store(&bucket_url(root), store);
    } else if !on_s3 && !storage.options.is_empty() {
        return Err(RuleError::new(
            storage.location,
            format!("`storage` options of source `{name}` apply to s3:// URLs only"),
        ));
    } else if let Some((_, location)) = storage.retry.filter(|_| !on_s3) {
        return Err(RuleError::new(
            location,
            format!("`retries` and `retry_timeout` of source `{name}` apply to s3:// URLs only"),
        )
        .with_help("local files are read without retries: remove them, or point `url` at s3://"));
    }
    let mut config = SessionConfig::new().with_information_schema(false);
    // A sort keeps this much back to merge what it spilled (DataFusion: 10 MiB each); under a
    // small limit that reserve alone would fill the pool, and no sort could spill.
    let options = &mut config.options_mut().execution;
    options.sort_spill_reservation_bytes = options
        .sort_spill_reservation_bytes
        .min(memory.limit.sort_reserve());
    let state = SessionStateBuilder::new()
        .with_config(config.clone())
        .with_runtime_env(runtime.clone())
        .with_default_features()
        .build();
    let describe = places.describe();
    let tables = Arc::new(TableFolders {
        places,
        s3,
        format,
        storage: storage.options,
        state,
        memory: memory.clone(),
        opened: Mutex::new(HashMap::new()),
    });
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    for function in &context.functions {
        ctx.register_udf(function.as_ref().clone());
    }
    let setup_error = |e: String| {
        RuleError::new(
            location.clone(),
            format!("cannot set up source `{name}`: {e}"),
        )
    };
    ctx.catalog("datafusion")
        .ok_or_else(|| setup_error("no default catalog".into()))?
        .register_schema("public", tables.clone())
        .map_err(|e| setup_error(e.to_string()))?;
    Ok(Arc::new(LakeSource {
        name: name.to_string(),
        describe,
        ctx,
        tables,
        retries,
        memory: memory.clone(),
    }))
}

/// Normalizes a plain path, `file://` or `s3://` URL into a folder URL ending in `/`.
fn root_url(text: &str) -> Result<Url, String> {
    let mut url = match Url::parse(text) {
        Ok(url) if url.scheme() == "file" || url.scheme() == "s3" => url,
        Ok(url) if url.scheme().len() > 1 => {
            return Err(format!("unsupported URL scheme `{}`", url.scheme()));
        }
        // A plain path (or a Windows drive letter parsed as a scheme).
        _ => {
            let path = std::path::absolute(text)
                .map_err(|e| format!("cannot resolve path `{text}`: {e}"))?;
            Url::from_directory_path(&path)
                .map_err(|_| format!("`{text}` is not a usable folder path"))?
        }
    };
    if url.scheme() == "s3" && url.host_str().is_none_or(str::is_empty) {
        return Err("s3:// URL has no bucket".into());
    }
    // The URL is printed in every message about the source: it must not carry a secret.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the URL holds credentials (`user:secret@`); give them as `storage:` options \
                    (access_key_id, secret_access_key) or in the AWS environment variables"
                .into(),
        );
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// What a lake source needs to reach S3: its `storage` options and retry budget, and the
/// counts of requests sent again, by table.
#[derive(Debug, Clone)]
struct S3Access {
    options: Vec<(String, String)>,
    budget: RetryBudget,
    retries: Arc<RetryCounts>,
}

impl S3Access {
    /// An S3 client from the standard AWS variables, overridden by the source's `storage`
    /// options (`endpoint`, `region`, `allow_http`, `access_key_id`, ... as object_store names
    /// them). Requests are retried within the budget by the client, and counted by table: the
    /// folder after `root`'s path.
    fn store(&self, root: &Url) -> Result<Arc<dyn ObjectStore>, String> {
        s3_store(root, &self.options, self.budget, self.retries.clone())
    }
}

/// `s3://bucket`, under which a session registers the bucket's store.
fn bucket_url(url: &Url) -> Url {
    let mut bucket = url.clone();
    bucket.set_path("");
    bucket
}

fn s3_store(
    root: &Url,
    storage: &[(String, String)],
    budget: RetryBudget,
    retries: Arc<RetryCounts>,
) -> Result<Arc<dyn ObjectStore>, String> {
    let bucket = root.host_str().unwrap_or_default();
    let prefix = root.path().trim_start_matches('/');
    let mut builder = AmazonS3Builder::from_env()
        .with_url(root.as_str())
        .with_retry(budget.object_store_config())
        .with_http_connector(RetryingConnector::new(budget, retries, bucket, prefix));
    for (key, value) in storage {
        let config_key =
            AmazonS3ConfigKey::from_str(key).map_err(|_| format!("unknown S3 option `{key}`"))?;
        if config_key == AmazonS3ConfigKey::Endpoint {
            check_endpoint(value)?;
        }
        builder = builder.with_config(config_key, value);
    }
    builder
        .build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| e.to_string())
}

/// object_store takes any endpoint text and panics on the first request if it is no URI; and
/// credentials in it would reach error messages. Neither value is echoed: it may hold a secret.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let url = Url::parse(endpoint).ok().filter(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|h| !h.is_empty())
            && endpoint.is_ascii()
            && !endpoint.contains(char::is_whitespace)
    });
    match url {
        None => Err("`endpoint` must be an http:// or https:// URL, e.g. http://127.0.0.1:9000".into()),
        Some(url) if !url.username().is_empty() || url.password().is_some() => Err(
            "`endpoint` holds credentials (`user:secret@`); give them as access_key_id and secret_access_key".into(),
        ),
        Some(_) => Ok(()),
    }
}

#[async_trait]
impl Source for LakeSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn table_sql(&self, table: &str) -> String {
        quote_ident(table)
    }

    async fn columns(&self, table: &str) -> Result<Vec<Column>, SourceError> {
        let frame = self
            .ctx
            .sql_with_options(
                &format!("SELECT * FROM {}", quote_ident(table)),
                read_only(),
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(frame
            .schema()
            .fields()
            .iter()
            .map(|f| Column {
                name: f.name().clone(),
                engine_type: f.data_type().to_string(),
                logical: columns::from_arrow(f.data_type()),
                millisecond_precision: matches!(
                    f.data_type(),
                    DataType::Timestamp(TimeUnit::Second | TimeUnit::Millisecond, _)
                        | DataType::Time32(_)
                ),
            })
            .collect())
    }

    fn text_twin(&self, table: &str) -> Option<String> {
        self.tables
            .format
            .keeps_text_only()
            .then(|| format!("{table}{TEXT_TWIN}"))
    }

    async fn primary_key(&self, table: &str) -> Result<Option<Vec<String>>, SourceError> {
        Ok(self.open_table(table).await?.key.clone())
    }

    /// The format's commit metadata, plus `object_store_retries`: how many S3 requests for the
    /// table's objects were sent again so far in the run, where any were.
    async fn table_metadata(&self, table: &str) -> Result<Option<serde_json::Value>, SourceError> {
        let metadata = self.open_table(table).await?.metadata.clone();
        let folder = Pin::split(table.strip_suffix(TEXT_TWIN).unwrap_or(table))
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|_| table.to_string());
        let retries = self.retries.of_table(&folder);
        if retries == 0 {
            return Ok(metadata);
        }
        let mut metadata = match metadata {
            Some(serde_json::Value::Object(map)) => map,
            Some(other) => serde_json::Map::from_iter([("format".to_string(), other)]),
            None => serde_json::Map::new(),
        };
        metadata.insert("object_store_retries".into(), retries.into());
        Ok(Some(serde_json::Value::Object(metadata)))
    }

    async fn caveat(&self, table: &str) -> Result<Option<String>, SourceError> {
        Ok(self.open_table(table).await?.caveat.clone())
    }

    async fn refresh(&self, table: &str) {
        if table.contains('@') {
            return; // a pinned version or time does not change
        }
        let mut opened = self.tables.opened.lock().await;
        opened.remove(table);
        opened.remove(&format!("{table}{TEXT_TWIN}"));
    }

    async fn newest_change(&self, table: &str) -> Result<Option<NewestTime>, SourceError> {
        self.tables
            .newest_change(table)
            .await
            .map_err(|e| SourceError::table(self, e))
    }

    async fn newest_object(&self, table: &str) -> Result<Option<NewestTime>, SourceError> {
        self.tables
            .newest_object(table)
            .await
            .map(Some)
            .map_err(|e| SourceError::table(self, e))
    }

    fn canonical_sql(&self, column: &Column, canon: Canon) -> String {
        format!(
            "lakecheck_canon('{}', {})",
            canon.name(),
            quote_ident(&column.name)
        )
    }

    fn md5_int64_sql(&self, text: &str) -> String {
        format!("lakecheck_md5_int64({text})")
    }

    fn row_hash_sql(&self, columns: &[(&Column, Canon)], seed: &str) -> String {
        // One fused function: every column hashed in one pass, no column per field.
        let canons: Vec<&str> = columns.iter().map(|(_, canon)| canon.name()).collect();
        let idents: Vec<String> = columns.iter().map(|(c, _)| quote_ident(&c.name)).collect();
        format!(
            "lakecheck_row_hash('{}', CAST({seed} AS BIGINT), {})",
            canons.join(","),
            idents.join(", ")
        )
    }

    async fn changes(
        &self,
        table: &str,
        from: &ChangePosition,
    ) -> Result<Changes<Rows>, SourceError> {
        self.tables
            .changes(table, from)
            .await
            .map_err(|e| SourceError::table(self, e))?
            .try_map(|batches| batches_to_rows(&batches))
            .map_err(|e| SourceError::new(self, format!("table `{table}`: {e}")))
    }

    async fn query(&self, sql: &str) -> Result<Rows, SourceError> {
        refuse_ddl(sql).map_err(|e| SourceError::new(self, e))?;
        let frame = self
            .ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(|e| self.error(&e))?;
        let plan = frame.logical_plan().clone();
        let columns = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = match frame.collect().await {
            Ok(batches) => batches,
            Err(e) => return Err(self.query_error(&plan, &e).await),
        };
        // The answer is lakecheck's to hold now, outside DataFusion: it counts while it is
        // turned into text rows.
        let result = MemoryConsumer::new(format!("query result of source `{}`", self.name))
            .register(&self.memory.pool);
        let bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        result.try_grow(bytes).map_err(|e| self.error(&e))?;
        let rows = batches_to_text(&batches).map_err(|e| SourceError::new(self, e))?;
        Ok(Rows { columns, rows })
    }
}

/// Refuses DDL before DataFusion plans it: planning `CREATE EXTERNAL TABLE x` looks `x` up
/// first, which would report a missing table rather than the refusal.
fn refuse_ddl(sql: &str) -> Result<(), String> {
    use datafusion::sql::parser::{DFParser, Statement};
    // A statement that does not parse is left to DataFusion, which reports where.
    let Ok(statements) = DFParser::parse_sql(sql) else {
        return Ok(());
    };
    for statement in statements {
        let ddl = match &statement {
            Statement::CreateExternalTable(_) => true,
            Statement::Statement(inner) => {
                let text = inner.to_string().to_ascii_uppercase();
                ["CREATE ", "DROP ", "ALTER ", "TRUNCATE "]
                    .iter()
                    .any(|verb| text.starts_with(verb))
            }
            _ => false,
        };
        if ddl {
            return Err(format!(
                "DDL not supported: lake SQL is read-only, `{}` is refused",
                first_words(&statement.to_string())
            ));
        }
    }
    Ok(())
}

/// The first three words of a statement, to name it in a message without repeating it whole.
fn first_words(statement: &str) -> String {
    statement
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The tables (references as the SQL names them) a plan scans, subqueries included.
fn scanned_tables(plan: &LogicalPlan) -> Vec<String> {
    let mut tables = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let table = scan.table_name.table().to_string();
            if !tables.contains(&table) {
                tables.push(table);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    tables
}

/// Options under which lake SQL may read, never create files, tables or settings.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// DataFusion wraps errors in context layers; the innermost message is the useful one.
fn describe_error(error: &DataFusionError) -> String {
    match error.find_root() {
        DataFusionError::External(inner) => inner.to_string(),
        root => root.to_string(),
    }
}

/// Renders every value as text, keeping NULL apart from an empty string.
pub(crate) fn batches_to_text(batches: &[RecordBatch]) -> Result<Vec<Vec<Option<String>>>, String> {
    let options = FormatOptions::default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        // Logical nulls: a `NULL` literal's column (type Null) has no null buffer at all.
        let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
        for row in 0..batch.num_rows() {
            rows.push(
                nulls
                    .iter()
                    .zip(&formatters)
                    .map(|(nulls, formatter)| {
                        let null = nulls.as_ref().is_some_and(|n| n.is_null(row));
                        (!null).then(|| formatter.value(row).to_string())
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// Batches of one file or commit as text rows: the columns of every batch, in order of first
/// appearance, a column a batch lacks NULL in its rows.
fn batches_to_rows(batches: &[RecordBatch]) -> Result<Rows, String> {
    let mut columns: Vec<String> = Vec::new();
    for batch in batches {
        for field in batch.schema().fields() {
            if !columns.contains(field.name()) {
                columns.push(field.name().clone());
            }
        }
    }
    let mut rows = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        let positions: Vec<Option<usize>> =
            columns.iter().map(|c| schema.index_of(c).ok()).collect();
        for row in batches_to_text(std::slice::from_ref(batch))? {
            rows.push(
                positions
                    .iter()
                    .map(|p| p.and_then(|p| row[p].clone()))
                    .collect(),
            );
        }
    }
    Ok(Rows { columns, rows })
}

/// A table's location and format, as its catalog entry gives them.
type CatalogPlace = (Url, Arc<dyn TableFormat>);

/// Where a lake source's tables are.
enum Places {
    /// Every folder under the root is a table.
    Folders(Url),
    /// Each table is where the Glue Data Catalog says it is.
    Catalog {
        catalog: GlueCatalog,
        /// The formats to recognise an entry's format among; `None` when the source declares
        /// its format, which then holds for every table.
        formats: Option<&'static [TableFormatKind]>,
        /// Tables found so far: their location and format.
        resolved: Mutex<HashMap<String, CatalogPlace>>,
    },
}

impl Places {
    fn folders(&self) -> Option<&Url> {
        match self {
            Places::Folders(root) => Some(root),
            Places::Catalog { .. } => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Places::Folders(root) => format!("lake {root}"),
            Places::Catalog { catalog, .. } => format!("lake of {}", catalog.describe()),
        }
    }
}

/// The schema of a lake source: every folder under the root (or every table of its catalog) is
/// a table, opened on first use.
struct TableFolders {
    places: Places,
    /// To reach the S3 buckets a catalog names.
    s3: S3Access,
    /// The source's format (`format:`, or the source type's).
    format: Arc<dyn TableFormat>,
    /// The source's `storage` options, for formats that open their own storage (Hudi).
    storage: Vec<(String, String)>,
    /// Used to infer file schemas; shares the object stores of the querying session.
    state: SessionState,
    /// The run's memory (the pool `state` draws on too), for tables held in memory.
    memory: RunMemory,
    /// Tables by reference (`orders`, `orders@3`, `orders#text`), once opened.
    opened: Mutex<HashMap<String, Arc<OpenedTable>>>,
}

impl std::fmt::Debug for TableFolders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableFolders")
            .field("places", &self.places.describe())
            .field("format", &self.format.name())
            .finish()
    }
}

/// Where a table folder lives, resolved from its name, and the format it is read in.
struct FolderPlace {
    url: Url,
    prefix: object_store::path::Path,
    store: Arc<dyn ObjectStore>,
    format: Arc<dyn TableFormat>,
}

impl TableFolders {
    async fn open(&self, reference: &str) -> Result<Arc<OpenedTable>, TableError> {
        let mut opened = self.opened.lock().await;
        if let Some(table) = opened.get(reference) {
            return Ok(table.clone());
        }
        let (base, as_text) = match reference.strip_suffix(TEXT_TWIN) {
            Some(base) => (base, true),
            None => (reference, false),
        };
        let (name, pin) = Pin::split(base).map_err(TableError::BadReference)?;
        let place = self.place(name).await?;
        let folder = self.folder(name, pin.as_ref(), &place, as_text);
        if !place.format.exists(&folder).await? {
            return Err(self.not_found(name, &place).await);
        }
        let table = Arc::new(place.format.open(&folder).await?);
        opened.insert(reference.to_string(), table.clone());
        Ok(table)
    }

    /// What arrived in table `name` after `from`, as its format reads changes.
    async fn changes(&self, name: &str, from: &ChangePosition) -> TableChanges {
        if Pin::split(name)
            .map_err(TableError::BadReference)?
            .1
            .is_some()
        {
            return Err(TableError::Unsupported {
                reference: name.to_string(),
                reason: "changes are read from the latest state on; remove the pin".into(),
            });
        }
        let place = self.place(name).await?;
        let folder = self.folder(name, None, &place, false);
        if !place.format.exists(&folder).await? {
            return Err(self.not_found(name, &place).await);
        }
        place.format.changes(&folder, from).await
    }

    /// The table folder `name` as its format sees it.
    fn folder<'a>(
        &'a self,
        name: &'a str,
        pin: Option<&'a Pin>,
        place: &'a FolderPlace,
        as_text: bool,
    ) -> TableFolder<'a> {
        TableFolder {
            name,
            pin,
            url: &place.url,
            prefix: &place.prefix,
            store: place.store.clone(),
            state: &self.state,
            storage: &self.storage,
            memory: &self.memory,
            as_text,
        }
    }

    async fn place(&self, name: &str) -> Result<FolderPlace, TableError> {
        let bad = |cause: String| TableError::BadReference(format!("table `{name}`: {cause}"));
        let (url, format) = match &self.places {
            Places::Folders(root) => (
                root.join(&format!("{name}/"))
                    .map_err(|e| bad(e.to_string()))?,
                self.format.clone(),
            ),
            Places::Catalog {
                catalog,
                formats,
                resolved,
            } => {
                let mut resolved = resolved.lock().await;
                match resolved.get(name) {
                    Some(found) => found.clone(),
                    None => {
                        let found = self.look_up(catalog, *formats, name).await?;
                        resolved.insert(name.to_string(), found.clone());
                        found
                    }
                }
            }
        };
        let listing = ListingTableUrl::parse(url.as_str()).map_err(|e| bad(e.to_string()))?;
        let store = self
            .state
            .runtime_env()
            .object_store(listing.object_store())
            .map_err(|e| TableError::Unreachable {
                folder: url.to_string(),
                cause: e.to_string(),
            })?;
        Ok(FolderPlace {
            prefix: listing.prefix().clone(),
            url,
            store,
            format,
        })
    }

    /// Table `name`'s location and format as the catalog records them; registers a store for
    /// its S3 bucket when the session has none yet.
    async fn look_up(
        &self,
        catalog: &GlueCatalog,
        formats: Option<&'static [TableFormatKind]>,
        name: &str,
    ) -> Result<CatalogPlace, TableError> {
        let unusable = |cause: String| TableError::Catalog {
            catalog: catalog.describe(),
            table: name.to_string(),
            cause,
        };
        let entry = catalog.table(name).await.map_err(&unusable)?;
        let location = entry
            .location
            .as_deref()
            .ok_or_else(|| unusable("its entry has no storage location".into()))?;
        let url =
            root_url(location).map_err(|e| unusable(format!("location `{location}`: {e}")))?;
        let format = match formats {
            None => self.format.clone(),
            Some(formats) => table_format::in_catalog(formats, &entry).map_err(&unusable)?,
        };
        if url.scheme() == "s3" {
            let bucket = bucket_url(&url);
            let runtime = self.state.runtime_env();
            if runtime.object_store_registry.get_store(&bucket).is_err() {
                let store = self
                    .s3
                    .store(&bucket)
                    .map_err(|e| TableError::Unreachable {
                        folder: url.to_string(),
                        cause: e,
                    })?;
                runtime.register_object_store(&bucket, store);
            }
        }
        Ok((url, format))
    }

    /// The newest change `reference`'s format records (`TableFormat::newest_change`).
    async fn newest_change(&self, reference: &str) -> Result<Option<NewestTime>, TableError> {
        let (name, pin) = Pin::split(reference).map_err(TableError::BadReference)?;
        let place = self.place(name).await?;
        let folder = self.folder(name, pin.as_ref(), &place, false);
        if !place.format.exists(&folder).await? {
            return Err(self.not_found(name, &place).await);
        }
        place.format.newest_change(&folder).await
    }

    /// The newest object at any depth below the folder `reference` names, whatever the format
    /// (a CSV drop's `_SUCCESS` marker counts as much as its data). A folder without objects is
    /// a table not found.
    async fn newest_object(&self, reference: &str) -> Result<NewestTime, TableError> {
        let (name, pin) = Pin::split(reference).map_err(TableError::BadReference)?;
        if pin.is_some() {
            return Err(TableError::Unsupported {
                reference: reference.to_string(),
                reason: "stored objects keep only their last-modified time, not versions: remove the pin".into(),
            });
        }
        let place = self.place(name).await?;
        let folder = self.folder(name, None, &place, false);
        let newest = folder
            .objects()
            .await?
            .into_iter()
            .max_by(|a, b| (a.last_modified, &a.location).cmp(&(b.last_modified, &b.location)));
        match newest {
            Some(object) => Ok(NewestTime {
                at: object.last_modified,
                origin: folder.file_url(&object.location),
            }),
            None => Err(self
                .not_found_marked(name, &place, "file (of any kind, at any depth)".into())
                .await),
        }
    }

    /// After a query over `reference` failed: the file its format cannot read, if any.
    async fn find_unreadable_file(&self, reference: &str) -> Option<String> {
        let base = reference.strip_suffix(TEXT_TWIN).unwrap_or(reference);
        let (name, pin) = Pin::split(base).ok()?;
        let place = self.place(name).await.ok()?;
        let folder = self.folder(name, pin.as_ref(), &place, false);
        place
            .format
            .find_unreadable_file(&folder)
            .await
            .map(|(file, _)| file)
    }

    async fn not_found(&self, name: &str, place: &FolderPlace) -> TableError {
        self.not_found_marked(name, place, place.format.marker())
            .await
    }

    /// A table not found, saying it lacks `marker` and naming the tables that are there.
    async fn not_found_marked(
        &self,
        name: &str,
        place: &FolderPlace,
        marker: String,
    ) -> TableError {
        let root = self
            .places
            .folders()
            .and_then(|root| ListingTableUrl::parse(root.as_str()).ok());
        let mut siblings: Vec<String> = match root {
            Some(root) => place
                .store
                .list_with_delimiter(Some(root.prefix()))
                .await
                .map(|l| {
                    l.common_prefixes
                        .iter()
                        .filter_map(|p| p.filename().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        siblings.sort();
        TableError::NotFound {
            table: name.to_string(),
            marker,
            folder: place.url.to_string(),
            siblings,
        }
    }
}

#[async_trait]
impl SchemaProvider for TableFolders {
    fn table_names(&self) -> Vec<String> {
        self.opened
            .try_lock()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        match self.open(name).await {
            Ok(table) => Ok(Some(table.provider.clone())),
            Err(e) => Err(DataFusionError::External(Box::new(e))),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.opened
            .try_lock()
            .map(|o| o.contains_key(name))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_root_urls() {
        assert_eq!(
            root_url("s3://bucket/raw").unwrap().as_str(),
            "s3://bucket/raw/"
        );
        assert_eq!(
            root_url("file:///data/lake/").unwrap().as_str(),
            "file:///data/lake/"
        );
        assert_eq!(
            root_url("/data/lake").unwrap().as_str(),
            "file:///data/lake/"
        );
        assert!(root_url("gs://bucket/x")
            .unwrap_err()
            .contains("unsupported URL scheme `gs`"));
        assert!(root_url("s3:///x").is_err());
    }
}
