//! Folders of Parquet or CSV files on a local disk or S3, queried with DataFusion.
//!
//! A table is the folder of that name under the source URL. Tables are opened lazily through a
//! DataFusion schema provider, so generated SQL and user SQL alike can name any table folder.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionContext, SessionState};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::Mutex;
use url::Url;

use super::dms::{self, ChangeCapture, DmsOptions};
use super::pin::Pin;
use super::{Source, SourceContext, SourceError, SourceKind};
use crate::model::columns::{self, Column};
use crate::model::sql::quote_ident;
use crate::model::{Canon, Location, MapReader, Rows, RuleError, Spanned};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::datasource::MemTable;

pub const KIND: SourceKind = SourceKind {
    name: "lake",
    parse,
};

/// `type: delta`: a lake whose tables are Delta Lake tables, opened by `sources/delta.rs`.
/// Declared here, not in `delta.rs`, so the table format stays below the lake source that
/// opens it (delta.rs only opens tables; it never builds a source).
pub const DELTA_KIND: SourceKind = SourceKind {
    name: "delta",
    parse: |name, options, context| {
        parse_with_format(name, options, context, Some(LakeFormat::Delta))
    },
};

/// `type: hudi`: a lake whose tables are Apache Hudi tables, opened by `sources/hudi.rs`.
/// Declared here for the same reason as [`DELTA_KIND`].
pub const HUDI_KIND: SourceKind = SourceKind {
    name: "hudi",
    parse: |name, options, context| {
        parse_with_format(name, options, context, Some(LakeFormat::Hudi))
    },
};

/// Suffix naming a CSV table's all-text twin (`Source::text_twin`); `#` cannot appear in a
/// table name a rule writes, since rule references are `source.table[@pin]`.
const TEXT_TWIN: &str = "#text";

/// File format of a lake source's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LakeFormat {
    Parquet,
    Csv,
    /// Delta Lake tables (`type: delta`), opened through `sources/delta.rs`.
    Delta,
    /// Apache Hudi tables (`type: hudi`), opened through `sources/hudi.rs`.
    Hudi,
}

impl LakeFormat {
    const CHOICES: &'static [&'static str] = &["parquet", "csv"];

    fn extension(self) -> &'static str {
        match self {
            LakeFormat::Parquet => ".parquet",
            LakeFormat::Csv => ".csv",
            LakeFormat::Delta => ".json",
            LakeFormat::Hudi => ".parquet",
        }
    }
}

/// Options of a lake source, as written in the rule file.
#[derive(Debug, Clone)]
struct LakeOptions {
    format: LakeFormat,
    extension: String,
    csv_delimiter: u8,
    csv_header: bool,
    /// `layout: dms`: tables are AWS DMS full-load + CDC folders, rebuilt to current state.
    dms: Option<DmsOptions>,
    /// S3 options, for table formats that open their own storage (Hudi).
    storage: Vec<(String, String)>,
}

impl LakeOptions {
    /// A table-format source (Delta, Hudi): its files are the format's own.
    fn of_format(format: LakeFormat) -> Self {
        Self {
            format,
            extension: format.extension().to_string(),
            csv_delimiter: b',',
            csv_header: true,
            dms: None,
            storage: Vec::new(),
        }
    }
}

/// A lake source: one DataFusion session whose default schema lists the table folders.
pub struct LakeSource {
    name: String,
    root: Url,
    ctx: SessionContext,
    tables: Arc<TableFolders>,
}

impl LakeSource {
    /// Opens (and caches) a table so its DMS capture, Hudi key or commit metadata is known.
    async fn open_table(&self, table: &str) -> Result<(), SourceError> {
        self.tables
            .open(table)
            .await
            .map(|_| ())
            .map_err(|e| SourceError::new(self, describe_error(&e)))
    }
}

impl std::fmt::Debug for LakeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeSource")
            .field("name", &self.name)
            .field("root", &self.root.as_str())
            .finish()
    }
}

fn parse(
    name: &str,
    options: &mut MapReader,
    context: &SourceContext,
) -> Result<Arc<dyn Source>, RuleError> {
    parse_with_format(name, options, context, None)
}

/// Reads a folder-of-tables source. `fixed` is the format of a table-format source kind
/// (`delta`); plain lakes read `format` from the rule.
fn parse_with_format(
    name: &str,
    options: &mut MapReader,
    context: &SourceContext,
    fixed: Option<LakeFormat>,
) -> Result<Arc<dyn Source>, RuleError> {
    let url = options.required_string("url", "\"${LAKECHECK_LAKE_URL}/raw/database/autocorp\"")?;
    let format = match fixed {
        Some(format) => format,
        None => read_format(name, options)?,
    };
    let mut lake_options = if fixed.is_some() {
        LakeOptions::of_format(format)
    } else {
        read_file_options(name, options, format)?
    };
    let storage_location = options.location_of("storage");
    lake_options.storage = options.string_map("storage")?;
    options.finish()?;
    build(name, &url, lake_options, storage_location, context)
}

fn read_format(name: &str, options: &mut MapReader) -> Result<LakeFormat, RuleError> {
    Ok(match options.string("format")? {
        None => LakeFormat::Parquet,
        Some(f) => match f.value.to_ascii_lowercase().as_str() {
            "parquet" => LakeFormat::Parquet,
            "csv" => LakeFormat::Csv,
            other => {
                return Err(RuleError::new(
                    f.location,
                    format!("unknown lake format `{other}` in source `{name}`"),
                )
                .with_help(format!(
                    "expected one of: {}",
                    LakeFormat::CHOICES.join(", ")
                )))
            }
        },
    })
}

/// File extension, CSV delimiter and header, DMS layout of a folder of plain files.
fn read_file_options(
    name: &str,
    options: &mut MapReader,
    format: LakeFormat,
) -> Result<LakeOptions, RuleError> {
    let extension = options
        .string("extension")?
        .map(|e| e.value)
        .unwrap_or_else(|| format.extension().to_string());
    let csv_delimiter = match options.string("delimiter")? {
        None => b',',
        Some(d) if d.value.len() == 1 => d.value.as_bytes()[0],
        Some(d) => {
            return Err(RuleError::new(
                d.location,
                format!(
                    "`delimiter` of source `{name}` must be one character, found `{}`",
                    d.value
                ),
            ))
        }
    };
    let csv_header = options.bool("header")?.map(|h| h.value).unwrap_or(true);
    let dms = parse_layout(name, options, format)?;
    Ok(LakeOptions {
        format,
        extension,
        csv_delimiter,
        csv_header,
        dms,
        storage: Vec::new(),
    })
}

fn build(
    name: &str,
    url: &Spanned<String>,
    lake_options: LakeOptions,
    storage_location: Location,
    context: &SourceContext,
) -> Result<Arc<dyn Source>, RuleError> {
    let storage = &lake_options.storage;
    let root = root_url(&url.value).map_err(|e| {
        RuleError::new(
            url.location.clone(),
            format!("`url` of source `{name}`: {e}"),
        )
        .with_help("write a local path, file:///path, or s3://bucket/prefix")
    })?;
    let runtime = Arc::new(RuntimeEnv::default());
    if root.scheme() == "s3" {
        let store = s3_store(&root, storage).map_err(|e| {
            RuleError::new(
                storage_location,
                format!("storage options of source `{name}`: {e}"),
            )
        })?;
        let bucket = Url::parse(&format!("s3://{}", root.host_str().unwrap_or_default()))
            .expect("bucket url");
        runtime.register_object_store(&bucket, store);
    } else if !storage.is_empty() {
        return Err(RuleError::new(
            storage_location,
            format!("`storage` options of source `{name}` apply to s3:// URLs only"),
        ));
    }
    let config = SessionConfig::new().with_information_schema(false);
    let state = SessionStateBuilder::new()
        .with_config(config.clone())
        .with_runtime_env(runtime.clone())
        .with_default_features()
        .build();
    let tables = Arc::new(TableFolders {
        root: root.clone(),
        options: lake_options,
        state,
        opened: Mutex::new(HashMap::new()),
        captures: Mutex::new(HashMap::new()),
        metadata: Mutex::new(HashMap::new()),
        keys: Mutex::new(HashMap::new()),
    });
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    for function in &context.functions {
        ctx.register_udf(function.as_ref().clone());
    }
    ctx.catalog("datafusion")
        .expect("default catalog")
        .register_schema("public", tables.clone())
        .map_err(|e| {
            RuleError::new(
                url.location.clone(),
                format!("cannot set up source `{name}`: {e}"),
            )
        })?;
    Ok(Arc::new(LakeSource {
        name: name.to_string(),
        root,
        ctx,
        tables,
    }))
}

/// Reads `layout` and the DMS options, which only make sense with `layout: dms`.
fn parse_layout(
    name: &str,
    options: &mut MapReader,
    format: LakeFormat,
) -> Result<Option<DmsOptions>, RuleError> {
    let layout = options.string("layout")?;
    let keys_location = options.location_of("keys");
    let keys = options.string_list_map("keys")?;
    let timestamp_column = options.string("timestamp_column")?;
    let as_of = options.string("as_of")?;
    let sequence_column = options.string("sequence_column")?;
    let is_dms = match &layout {
        None => false,
        Some(l) if l.value == "plain" => false,
        Some(l) if l.value == "dms" => true,
        Some(l) => {
            return Err(RuleError::new(l.location.clone(), format!("unknown layout `{}` in source `{name}`", l.value))
                .with_help("expected one of: `plain` (files directly in the table folder), `dms` (AWS DMS full load + CDC)"))
        }
    };
    if !is_dms {
        if !keys.is_empty()
            || timestamp_column.is_some()
            || as_of.is_some()
            || sequence_column.is_some()
        {
            return Err(RuleError::new(
                keys_location,
                format!(
                    "`keys`, `timestamp_column`, `as_of` and `sequence_column` of source `{name}` need `layout: dms`"
                ),
            )
            .with_help("add `layout: dms`, or remove them"));
        }
        return Ok(None);
    }
    if format != LakeFormat::Parquet {
        return Err(RuleError::new(
            options.location_of("format"),
            format!("`layout: dms` of source `{name}` reads Parquet only"),
        ));
    }
    let as_of = match as_of {
        None => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(&text.value)
                .map_err(|e| {
                    RuleError::new(
                        text.location.clone(),
                        format!("`as_of` of source `{name}` is not a time: {e}"),
                    )
                    .with_help("write RFC 3339 UTC, e.g. `as_of: \"2026-11-22T00:00:00Z\"`")
                })?
                .with_timezone(&chrono::Utc),
        ),
    };
    Ok(Some(DmsOptions {
        keys: keys.into_iter().collect(),
        timestamp_column: timestamp_column.map(|t| t.value),
        as_of,
        sequence_column: sequence_column.map(|s| s.value),
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
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// An S3 client from the standard AWS variables, overridden by the source's `storage` options
/// (`endpoint`, `region`, `allow_http`, `access_key_id`, ... as object_store names them).
fn s3_store(root: &Url, storage: &[(String, String)]) -> Result<Arc<dyn ObjectStore>, String> {
    let mut builder = AmazonS3Builder::from_env().with_url(root.as_str());
    for (key, value) in storage {
        let config_key =
            AmazonS3ConfigKey::from_str(key).map_err(|_| format!("unknown S3 option `{key}`"))?;
        builder = builder.with_config(config_key, value);
    }
    builder
        .build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| e.to_string())
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
        format!("lake {}", self.root)
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
            .map_err(|e| SourceError::new(self, describe_error(&e)))?;
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
        (self.tables.options.format == LakeFormat::Csv).then(|| format!("{table}{TEXT_TWIN}"))
    }

    async fn primary_key(&self, table: &str) -> Result<Option<Vec<String>>, SourceError> {
        if self.tables.options.format != LakeFormat::Hudi {
            return Ok(None);
        }
        self.open_table(table).await?;
        Ok(self.tables.keys.lock().await.get(table).cloned())
    }

    async fn table_metadata(&self, table: &str) -> Result<Option<serde_json::Value>, SourceError> {
        if !matches!(
            self.tables.options.format,
            LakeFormat::Delta | LakeFormat::Hudi
        ) {
            return Ok(None);
        }
        self.open_table(table).await?;
        Ok(self.tables.metadata.lock().await.get(table).cloned())
    }

    async fn caveat(&self, table: &str) -> Result<Option<String>, SourceError> {
        if self.tables.options.dms.is_none() {
            return Ok(None);
        }
        self.open_table(table).await?;
        let capture = self.tables.captures.lock().await.get(table).cloned();
        Ok((capture == Some(ChangeCapture::InsertsOnly)).then(|| {
            format!(
                "`{table}` holds insert-only DMS change data (CDC files without an `{}` column): updates and deletes \
                 cannot be reconciled; enable DMS `IncludeOpForFullLoad`/`CdcInsertsAndUpdates` or compare counts only",
                dms::OP_COLUMN
            )
        }))
    }

    fn canonical_sql(&self, column: &Column, canon: Canon) -> String {
        format!(
            "lakecheck_canon('{}', {})",
            canon.name(),
            quote_ident(&column.name)
        )
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

    async fn query(&self, sql: &str) -> Result<Rows, SourceError> {
        let frame = self
            .ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(|e| SourceError::new(self, describe_error(&e)))?;
        let columns = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = frame
            .collect()
            .await
            .map_err(|e| SourceError::new(self, describe_error(&e)))?;
        let rows = batches_to_text(&batches).map_err(|e| SourceError::new(self, e))?;
        Ok(Rows { columns, rows })
    }
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

/// The schema of a lake source: every folder under the root is a table, opened on first use.
struct TableFolders {
    root: Url,
    options: LakeOptions,
    /// Used to infer file schemas; shares the object stores of the querying session.
    state: SessionState,
    opened: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
    /// How each DMS table's changes were captured, once opened.
    captures: Mutex<HashMap<String, ChangeCapture>>,
    /// Commit metadata of each table-format table, once opened.
    metadata: Mutex<HashMap<String, serde_json::Value>>,
    /// Record keys of Hudi tables, once opened.
    keys: Mutex<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for TableFolders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableFolders")
            .field("root", &self.root.as_str())
            .finish()
    }
}

impl TableFolders {
    async fn open(&self, reference: &str) -> Result<Arc<dyn TableProvider>, DataFusionError> {
        let mut opened = self.opened.lock().await;
        if let Some(table) = opened.get(reference) {
            return Ok(table.clone());
        }
        let external = |message: String| DataFusionError::External(message.into());
        let (base, as_text) = match reference.strip_suffix(TEXT_TWIN) {
            Some(base) => (base, true),
            None => (reference, false),
        };
        let (name, pin) = Pin::split(base).map_err(external)?;
        let folder = self
            .root
            .join(&format!("{name}/"))
            .map_err(|e| external(format!("table `{name}`: {e}")))?;
        let table_url = ListingTableUrl::parse(folder.as_str())?;
        let store = self
            .state
            .runtime_env()
            .object_store(table_url.object_store())?;
        let listing = store.list_with_delimiter(Some(table_url.prefix())).await;
        let files = listing
            .as_ref()
            .map(|l| {
                l.objects
                    .iter()
                    .filter(|o| o.location.as_ref().ends_with(&self.options.extension))
                    .count()
            })
            .unwrap_or(0);
        let missing = || async {
            external(
                self.missing_table_message(name, &folder, store.as_ref())
                    .await,
            )
        };
        let table: Arc<dyn TableProvider> = if self.options.format == LakeFormat::Delta {
            if !self
                .has_files_below(
                    store.as_ref(),
                    &table_url.prefix().clone().join("_delta_log"),
                )
                .await
            {
                return Err(missing().await);
            }
            let (provider, metadata) = super::delta::open(store.clone(), &folder, pin.as_ref())
                .await
                .map_err(|e| external(format!("Delta table `{name}`: {e}")))?;
            self.metadata
                .lock()
                .await
                .insert(reference.to_string(), metadata);
            provider
        } else if self.options.format == LakeFormat::Hudi {
            let properties = table_url
                .prefix()
                .clone()
                .join(".hoodie")
                .join("hoodie.properties");
            if store.head(&properties).await.is_err() {
                return Err(missing().await);
            }
            let (provider, metadata, key) = super::hudi::open(
                store.as_ref(),
                table_url.prefix(),
                &folder,
                &self.options.storage,
                pin.as_ref(),
            )
            .await
            .map_err(|e| external(format!("Hudi table `{name}`: {e}")))?;
            self.metadata
                .lock()
                .await
                .insert(reference.to_string(), metadata);
            if let Some(key) = key {
                self.keys.lock().await.insert(reference.to_string(), key);
            }
            provider
        } else if let Some(dms) = &self.options.dms {
            let mut dms = dms.clone();
            match &pin {
                Some(Pin::Time(at)) => dms.as_of = Some(*at),
                Some(Pin::Version(_)) => {
                    return Err(external(format!("`{reference}`: DMS tables are pinned by time (`@2026-11-22T00:00:00Z`), not version")))
                }
                None => {}
            }
            let rebuilt = match dms::rebuild(store.as_ref(), table_url.prefix(), name, &dms).await {
                Ok(rebuilt) => rebuilt,
                Err(_)
                    if files == 0
                        && !self
                            .has_files_below(store.as_ref(), table_url.prefix())
                            .await =>
                {
                    return Err(missing().await)
                }
                Err(e) => return Err(external(format!("DMS table `{name}`: {e}"))),
            };
            self.captures
                .lock()
                .await
                .insert(reference.to_string(), rebuilt.capture);
            Arc::new(MemTable::try_new(
                rebuilt.batch.schema(),
                vec![vec![rebuilt.batch]],
            )?)
        } else {
            if pin.is_some() {
                return Err(external(format!(
                    "`{reference}`: plain Parquet/CSV folders have no versions; pins apply to delta tables and `layout: dms`"
                )));
            }
            if files == 0 {
                return Err(missing().await);
            }
            let format: Arc<dyn FileFormat> = match self.options.format {
                LakeFormat::Csv => Arc::new(
                    CsvFormat::default()
                        .with_has_header(self.options.csv_header)
                        .with_delimiter(self.options.csv_delimiter),
                ),
                _ => Arc::new(ParquetFormat::default()),
            };
            let listing_options =
                ListingOptions::new(format).with_file_extension(self.options.extension.clone());
            let config = ListingTableConfig::new(table_url)
                .with_listing_options(listing_options)
                .infer_schema(&self.state)
                .await?;
            let config = match (&config.file_schema, as_text) {
                (Some(inferred), true) => {
                    // Every column as the text in the file: nothing is lost to inference.
                    let text: Vec<datafusion::arrow::datatypes::Field> = inferred
                        .fields()
                        .iter()
                        .map(|f| {
                            datafusion::arrow::datatypes::Field::new(f.name(), DataType::Utf8, true)
                        })
                        .collect();
                    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(text));
                    let options = config.options.clone().ok_or_else(|| {
                        external(format!(
                            "CSV table `{name}`: no listing options after inference"
                        ))
                    })?;
                    ListingTableConfig::new(config.table_paths[0].clone())
                        .with_listing_options(options)
                        .with_schema(schema)
                }
                _ => config,
            };
            Arc::new(ListingTable::try_new(config)?)
        };
        opened.insert(reference.to_string(), table.clone());
        Ok(table)
    }

    async fn has_files_below(
        &self,
        store: &dyn ObjectStore,
        prefix: &object_store::path::Path,
    ) -> bool {
        use futures::StreamExt;
        store
            .list(Some(prefix))
            .next()
            .await
            .is_some_and(|r| r.is_ok())
    }

    async fn missing_table_message(
        &self,
        name: &str,
        folder: &Url,
        store: &dyn ObjectStore,
    ) -> String {
        let root = ListingTableUrl::parse(self.root.as_str()).ok();
        let mut siblings: Vec<String> = match root {
            Some(root) => store
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
        let what = match self.options.format {
            LakeFormat::Delta => "Delta log (_delta_log/)".to_string(),
            LakeFormat::Hudi => "Hudi table (.hoodie/hoodie.properties)".to_string(),
            _ => format!("{} files", self.options.extension),
        };
        let mut message = format!("table `{name}` not found: no {what} in {folder}");
        if !siblings.is_empty() {
            message.push_str(&format!(" (tables here: {})", siblings.join(", ")));
        }
        message
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
        self.open(name).await.map(Some)
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
