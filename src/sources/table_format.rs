//! Table formats a lake source reads: how a folder under the source URL becomes a table.
//!
//! The lake source (`lake.rs`) is format-agnostic, as DataFusion's `ListingSchemaProvider` is:
//! every folder is a table, opened on first use by the source's [`TableFormat`]. A format is one
//! file (`files.rs` for Parquet and CSV, `dms.rs`, `delta.rs`, `hudi.rs`) declaring a
//! [`TableFormatKind`], plus one line in `registry::TABLE_FORMATS`. A rule picks it with
//! `format: <name>` on a `type: lake` source, or `type: <name>` when the format declares a
//! source type of its own (Delta, Hudi).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use object_store::path::Path as StorePath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use url::Url;

use super::changes::{no_change_history, ChangePosition, Changes};
use super::memory::RunMemory;
use super::pin::Pin;
use crate::model::{MapReader, RuleError};

/// Reads a format's own options from a lake source's mapping (`delimiter` of CSV, `keys` of DMS).
pub type ParseFormat =
    fn(source: &str, options: &mut MapReader) -> Result<Arc<dyn TableFormat>, RuleError>;

/// What a format read of a table's changes (`TableFormat::changes`): each file or commit that
/// landed, with its rows.
pub type TableChanges = Result<Changes<Vec<RecordBatch>>, TableError>;

/// A table format a rule file can name.
#[derive(Debug)]
pub struct TableFormatKind {
    /// `format: <name>` on a lake source.
    pub name: &'static str,
    /// Whether `type: <name>` declares a lake source of this format (`type: delta`), besides
    /// `type: lake` with `format: <name>`.
    pub own_source_type: bool,
    /// The option keys [`TableFormatKind::parse`] reads, so a key written for another format is
    /// named with the format it belongs to.
    pub options: &'static [&'static str],
    /// Reads the format's options. Must not touch storage: `validate` calls it too.
    pub parse: ParseFormat,
    /// The format of a Glue Data Catalog entry that declares this format, with the options the
    /// entry gives (a CSV delimiter); `None` when the entry is not of this format.
    pub in_catalog: InCatalog,
}

/// One table's entry in a data catalog (the Glue Data Catalog, `glue.rs`), as far as the
/// formats read it to recognise their own tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogTable {
    pub database: String,
    pub name: String,
    /// Where its files are (`s3://bucket/prefix/`), from the storage descriptor.
    pub location: Option<String>,
    /// Hive's input format class, e.g. `org.apache.hudi.hadoop.HoodieParquetInputFormat`.
    pub input_format: Option<String>,
    /// The SerDe class, e.g. `org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe`.
    pub serde: Option<String>,
    /// The SerDe's parameters (`field.delim`, `separatorChar`).
    pub serde_parameters: HashMap<String, String>,
    /// The table's parameters (`table_type`, `classification`, `skip.header.line.count`).
    pub parameters: HashMap<String, String>,
    /// Columns then partition keys, each with its declared (Hive) type.
    pub columns: Vec<(String, String)>,
}

impl CatalogTable {
    /// A table parameter, case-insensitively by key (crawlers and engines write both cases).
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any of the descriptor's class names or `classification`/`table_type`/
    /// `spark.sql.sources.provider` parameters mention `word` (case-insensitive).
    pub fn mentions(&self, word: &str) -> bool {
        let word = word.to_ascii_lowercase();
        [
            self.input_format.as_deref(),
            self.serde.as_deref(),
            self.parameter("classification"),
            self.parameter("table_type"),
            self.parameter("spark.sql.sources.provider"),
        ]
        .into_iter()
        .flatten()
        .any(|text| text.to_ascii_lowercase().contains(&word))
    }

    /// What the entry declares, for a message when no format recognises it.
    pub fn declared_format(&self) -> String {
        let mut parts = Vec::new();
        for (what, value) in [
            ("table_type", self.parameter("table_type")),
            ("classification", self.parameter("classification")),
            ("InputFormat", self.input_format.as_deref()),
            ("SerDe", self.serde.as_deref()),
        ] {
            if let Some(value) = value {
                parts.push(format!("{what} `{value}`"));
            }
        }
        match parts.is_empty() {
            true => "no format".into(),
            false => parts.join(", "),
        }
    }
}

/// See [`TableFormatKind::in_catalog`].
pub type InCatalog = fn(&CatalogTable) -> Option<Result<Arc<dyn TableFormat>, String>>;

/// For formats a catalog never declares (DMS folders are Parquet to Glue).
pub fn never_in_catalog(_: &CatalogTable) -> Option<Result<Arc<dyn TableFormat>, String>> {
    None
}

/// The format of catalog entry `entry`, among `formats`. Formats with a source type of their own
/// (Delta, Hudi) are asked first: they are layered over Parquet files, and their entries often
/// name Parquet classes too. An entry whose `table_type` no such format claims (Iceberg) is
/// refused rather than read as the plain files it is layered over.
pub fn in_catalog(
    formats: &'static [TableFormatKind],
    entry: &CatalogTable,
) -> Result<Arc<dyn TableFormat>, String> {
    let refused = || {
        Err(format!(
            "its entry declares {}, which is none of the formats lakecheck reads ({})",
            entry.declared_format(),
            formats
                .iter()
                .filter(|f| !std::ptr::fn_addr_eq(f.in_catalog, never_in_catalog as InCatalog))
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    let layered = formats.iter().filter(|f| f.own_source_type);
    if let Some(found) = layered.clone().find_map(|kind| (kind.in_catalog)(entry)) {
        return found;
    }
    if entry.parameter("table_type").is_some() || entry.mentions("iceberg") {
        return refused();
    }
    formats
        .iter()
        .filter(|f| !f.own_source_type)
        .find_map(|kind| (kind.in_catalog)(entry))
        .unwrap_or_else(refused)
}

/// One table folder of a lake source, as a format sees it when opening it.
pub struct TableFolder<'a> {
    /// The table's name (the folder name), without pin.
    pub name: &'a str,
    /// The version or time the reference pins, if any.
    pub pin: Option<&'a Pin>,
    /// The folder as a URL ending in `/`.
    pub url: &'a Url,
    /// The folder's path inside `store`.
    pub prefix: &'a StorePath,
    /// The object store serving the folder.
    pub store: Arc<dyn ObjectStore>,
    /// The lake's DataFusion state, for schema inference of file listings.
    pub state: &'a SessionState,
    /// The source's `storage` options, for formats that open their own storage (Hudi).
    pub storage: &'a [(String, String)],
    /// The run's memory, for formats that hold a table in memory (DMS) to count it.
    pub memory: &'a RunMemory,
    /// Open the all-text twin of the table (see [`TableFormat::keeps_text_only`]).
    pub as_text: bool,
}

/// A table once opened: the provider DataFusion scans, plus what lakecheck learns of it.
pub struct OpenedTable {
    pub provider: Arc<dyn TableProvider>,
    /// Commit metadata (version, last commit time, commits) of formats that keep a history.
    pub metadata: Option<serde_json::Value>,
    /// The table's own key (Hudi's record key), used when a check names none.
    pub key: Option<Vec<String>>,
    /// A limit on what the table can prove (see `Source::caveat`).
    pub caveat: Option<String>,
    /// Memory the table holds outside DataFusion's own accounting (the changed keys of a DMS
    /// table), counted in the run's pool until the table is dropped.
    pub held: Option<MemoryReservation>,
}

impl OpenedTable {
    pub fn new(provider: Arc<dyn TableProvider>) -> Self {
        Self {
            provider,
            metadata: None,
            key: None,
            caveat: None,
            held: None,
        }
    }
}

impl TableFolder<'_> {
    /// Counts `bytes` of the table that a `format` holds in memory (the changed keys of a DMS
    /// table) against the run's memory limit, for as long as the returned reservation lives; an
    /// error when they do not fit.
    pub fn hold_memory(
        &self,
        format: &'static str,
        bytes: usize,
    ) -> Result<MemoryReservation, TableError> {
        let what = format!("{format} table `{}` held in memory", self.name);
        let reservation = MemoryConsumer::new(what).register(&self.memory.pool);
        self.resize_held(format, &reservation, bytes)?;
        Ok(reservation)
    }

    /// Changes what a reservation of [`TableFolder::hold_memory`] counts to `bytes`, as the
    /// memory held grows; an error when it does not fit.
    pub fn resize_held(
        &self,
        format: &'static str,
        reservation: &MemoryReservation,
        bytes: usize,
    ) -> Result<(), TableError> {
        reservation.try_resize(bytes).map_err(|e| {
            let detail = match e.find_root() {
                DataFusionError::ResourcesExhausted(detail) => detail.clone(),
                other => other.to_string(),
            };
            TableError::Unreadable {
                format,
                table: self.name.to_string(),
                file: None,
                cause: self.memory.limit.exceeded(&detail),
            }
        })
    }
}

/// The newest moment a table can be dated by, with where that moment was read, for freshness:
/// the newest change a format records, or the newest object stored in a table's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestTime {
    pub at: DateTime<Utc>,
    /// Where the time was read, in words a user can check: "`commit_ts` of
    /// file:///lake/orders/20261121-080000000.parquet".
    pub origin: String,
}

/// Why a table could not be opened or read. The lake source adds the source's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The folder holds no table of the source's format.
    #[error("table `{table}` not found: no {marker} in {folder}{}", tables_here(.siblings))]
    NotFound {
        table: String,
        marker: String,
        folder: String,
        siblings: Vec<String>,
    },
    /// The storage could not be listed or read: nothing is known about the table.
    #[error("cannot list {folder}: {cause}")]
    Unreachable { folder: String, cause: String },
    /// A pin names no version or time of the table.
    #[error("{format} table `{table}`: {reason}")]
    NoSuchVersion {
        format: &'static str,
        table: String,
        reason: String,
    },
    /// The reference itself is malformed (`orders@yesterday`).
    #[error("{0}")]
    BadReference(String),
    /// The format does not support what the reference asks (a pin on plain files).
    #[error("`{reference}`: {reason}")]
    Unsupported { reference: String, reason: String },
    /// The catalog has no usable entry for the table (none, no location, a format not read).
    #[error("table `{table}` in {catalog}: {cause}")]
    Catalog {
        catalog: String,
        table: String,
        cause: String,
    },
    /// The table's files or log could not be read as the format says.
    #[error("{format} table `{table}`{}: {cause}", file_part(.file))]
    Unreadable {
        format: &'static str,
        table: String,
        file: Option<String>,
        cause: String,
    },
}

impl TableFolder<'_> {
    /// An error saying the folder's storage could not be reached.
    pub fn unreachable(&self, cause: impl fmt::Display) -> TableError {
        TableError::Unreachable {
            folder: self.url.to_string(),
            cause: cause.to_string(),
        }
    }

    /// Objects directly in the folder whose names end in `extension`, by name.
    pub async fn files(&self, extension: &str) -> Result<Vec<ObjectMeta>, TableError> {
        let listing = self
            .store
            .list_with_delimiter(Some(self.prefix))
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut files: Vec<ObjectMeta> = listing
            .objects
            .into_iter()
            .filter(|o| o.location.as_ref().ends_with(extension))
            .collect();
        files.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(files)
    }

    /// Whether anything lies at or below `relative` (a folder inside the table folder, or ``).
    pub async fn has_below(&self, relative: &str) -> Result<bool, TableError> {
        use futures::StreamExt;
        let prefix = relative
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |path, part| path.join(part));
        match self.store.list(Some(&prefix)).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(self.unreachable(e)),
        }
    }

    /// Every object at any depth below the folder, in no particular order.
    pub async fn objects(&self) -> Result<Vec<ObjectMeta>, TableError> {
        use futures::TryStreamExt;
        self.store
            .list(Some(self.prefix))
            .try_collect()
            .await
            .map_err(|e| self.unreachable(e))
    }

    /// Whether the object `relative` (a path inside the table folder) exists.
    pub async fn has_object(&self, relative: &str) -> Result<bool, TableError> {
        let path = relative
            .split('/')
            .fold(self.prefix.clone(), |path, part| path.join(part));
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            // S3 answers a missing bucket with 404 too: listing tells the two apart.
            Err(object_store::Error::NotFound { .. }) => self.has_below("").await.map(|_| false),
            Err(e) => Err(self.unreachable(e)),
        }
    }

    /// A file of the table's store as a URL (`file:///…`, `s3://bucket/…`), as a user would
    /// open it.
    pub fn file_url(&self, path: &StorePath) -> String {
        format!(
            "{}://{}/{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or_default(),
            path
        )
    }

    /// An error reading the table as `format` says, naming no file.
    pub fn unreadable(&self, format: &'static str, cause: impl fmt::Display) -> TableError {
        TableError::Unreadable {
            format,
            table: self.name.to_string(),
            file: None,
            cause: cause.to_string(),
        }
    }
}

/// Every batch of one Parquet file, an error naming the file when it cannot be read.
pub async fn read_parquet(
    store: &dyn ObjectStore,
    path: &StorePath,
) -> Result<Vec<RecordBatch>, String> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bytes = store
        .get(path)
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| format!("{path}: {e}"))?
        .map(|batch| batch.map_err(|e| format!("{path}: {e}")))
        .collect()
}

fn tables_here(siblings: &[String]) -> String {
    if siblings.is_empty() {
        String::new()
    } else {
        format!(" (tables here: {})", siblings.join(", "))
    }
}

fn file_part(file: &Option<String>) -> String {
    file.as_ref()
        .map(|f| format!(", file `{f}`"))
        .unwrap_or_default()
}

/// How a lake source opens its table folders.
#[async_trait]
pub trait TableFormat: Send + Sync + fmt::Debug {
    /// The format's name, as a rule writes it.
    fn name(&self) -> &'static str;
    /// What marks a table of this format, for "not found" messages: `.parquet files`,
    /// `Delta log (_delta_log/)`.
    fn marker(&self) -> String;
    /// Whether `folder` holds a table of this format. A storage error is an error, never "no".
    async fn exists(&self, folder: &TableFolder<'_>) -> Result<bool, TableError>;
    /// Opens the table; called once per reference (pins are separate references).
    async fn open(&self, folder: &TableFolder<'_>) -> Result<OpenedTable, TableError>;
    /// Formats that keep only text (CSV): reconciling checks read an all-text twin of the
    /// table and compare each column by the other side's canon instead of an inferred type.
    fn keeps_text_only(&self) -> bool {
        false
    }
    /// After a query over the table failed, finds the file that cannot be read, if any: engines
    /// report a corrupt footer or a ragged CSV line without saying which file holds it.
    async fn find_unreadable_file(&self, _folder: &TableFolder<'_>) -> Option<(String, String)> {
        None
    }
    /// The newest change the table's files record without a commit history, read without
    /// opening the table (AWS DMS: the newest change file). `None` where the format records no
    /// such time; Delta and Hudi report their last commit in `OpenedTable::metadata`. A table
    /// with nothing to date it by is an error, never `None`.
    async fn newest_change(
        &self,
        _folder: &TableFolder<'_>,
    ) -> Result<Option<NewestTime>, TableError> {
        Ok(None)
    }

    /// What arrived in the table after `from`, each file or commit with its rows, reading only
    /// what is new (see `changes.rs`). Formats without a change history say so.
    async fn changes(&self, folder: &TableFolder<'_>, _from: &ChangePosition) -> TableChanges {
        Err(TableError::Unsupported {
            reference: folder.name.to_string(),
            reason: no_change_history(self.name()),
        })
    }
}
