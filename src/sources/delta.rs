//! Delta Lake tables (`type: delta`), read natively through the `deltalake` crate.
//!
//! A table is the folder of that name under the source URL. A reference may pin a version or a
//! time: `curated.auto_parts@3`, `curated.auto_parts@2026-11-22T00:00:00Z`. The commit log gives
//! each table's audit metadata (version, last commit time, commits, files and bytes).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::catalog::TableProvider;
use deltalake::DeltaTableBuilder;
use object_store::ObjectStore;
use url::Url;

use super::pin::Pin;
use super::table_format::{OpenedTable, TableError, TableFolder, TableFormat, TableFormatKind};

/// `type: delta` (or `format: delta` on a lake): every folder is a Delta table.
pub const FORMAT: TableFormatKind = TableFormatKind {
    name: "delta",
    own_source_type: true,
    options: &[],
    parse: |_, _| Ok(Arc::new(DeltaFormat)),
};

#[derive(Debug)]
struct DeltaFormat;

#[async_trait::async_trait]
impl TableFormat for DeltaFormat {
    fn name(&self) -> &'static str {
        FORMAT.name
    }

    fn marker(&self) -> String {
        "Delta log (_delta_log/)".into()
    }

    async fn exists(&self, folder: &TableFolder<'_>) -> Result<bool, TableError> {
        folder.has_below("_delta_log").await
    }

    async fn open(&self, folder: &TableFolder<'_>) -> Result<OpenedTable, TableError> {
        let (provider, metadata) = open(folder.store.clone(), folder.url, folder.pin)
            .await
            .map_err(|e| folder.unreadable("Delta", e))?;
        let mut table = OpenedTable::new(provider);
        table.metadata = Some(metadata);
        Ok(table)
    }
}

/// Delta's default log store for `s3://`, served by the object store lakecheck builds from the
/// source's options. (The `deltalake-aws` crate would bring the AWS SDK and DynamoDB locking,
/// which reading does not need.)
#[derive(Debug, Default)]
struct ObjectStoreLog;

impl deltalake::logstore::LogStoreFactory for ObjectStoreLog {
    fn with_options(
        &self,
        prefixed_store: deltalake::logstore::ObjectStoreRef,
        root_store: deltalake::logstore::ObjectStoreRef,
        location: &Url,
        options: &deltalake::logstore::StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn deltalake::logstore::LogStore>> {
        Ok(deltalake::logstore::default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Makes `deltalake` serve `s3://` tables through the default log store, whose commits are
/// conditional puts (`If-None-Match: *`): a writer that loses the race for a version retries at
/// the next one instead of overwriting it. Called before opening any Delta table; in-process
/// writers (the demo, tests) call it too.
pub fn register_s3_log_store() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        let scheme = Url::parse("s3://").expect("scheme url");
        let factories = deltalake::logstore::logstore_factories();
        if factories.get(&scheme).is_none() {
            factories.insert(scheme, Arc::new(ObjectStoreLog));
        }
    });
}

/// Opens a Delta table at `folder`, pinned or at its latest version.
async fn open(
    store: Arc<dyn ObjectStore>,
    folder: &Url,
    pin: Option<&Pin>,
) -> Result<(Arc<dyn TableProvider>, serde_json::Value), String> {
    register_s3_log_store();
    let mut builder = DeltaTableBuilder::from_url(folder.clone())
        .map_err(|e| e.to_string())?
        .with_storage_backend(store, folder.clone());
    builder = match pin {
        Some(Pin::Version(version)) => builder.with_version(*version as _),
        Some(Pin::Time(at)) => builder.with_timestamp(*at),
        None => builder,
    };
    let table = builder.load().await.map_err(|e| match pin {
        Some(pin) => format!("cannot open the Delta table at {pin}: {e}"),
        None => format!("not a readable Delta table: {e}"),
    })?;
    if let Some(Pin::Time(at)) = pin {
        // Delta falls back to the first version; a time before it is a table that did not exist.
        let version = table.version().unwrap_or_default();
        let committed = table
            .snapshot()
            .ok()
            .and_then(|s| s.version_timestamp(version));
        if let Some(committed) = committed.and_then(DateTime::<Utc>::from_timestamp_millis) {
            if committed > *at {
                return Err(format!(
                    "no version existed at {} (the first commit is at {})",
                    at.to_rfc3339(),
                    committed.to_rfc3339()
                ));
            }
        }
    }
    let metadata = metadata(&table)?;
    let provider = table.table_provider().await.map_err(|e| e.to_string())?;
    Ok((provider, metadata))
}

/// Audit facts about the loaded version. Versions are numbered from 0, one per commit, so the
/// version gives the number of commits without reading every commit file of the history (which
/// log cleanup may have removed anyway); the commit time is the one time travel resolves by
/// (commit file time or in-commit timestamp), so `@<last_commit>` reads this very version.
fn metadata(table: &deltalake::DeltaTable) -> Result<serde_json::Value, String> {
    let version = table.version().unwrap_or_default();
    let snapshot = table.snapshot().map_err(|e| e.to_string())?;
    let last_commit = snapshot.version_timestamp(version);
    let files = snapshot.log_data();
    let bytes: i64 = files.iter().map(|f| f.size()).sum();
    Ok(serde_json::json!({
        "format": "delta",
        "version": version,
        "last_commit": last_commit.and_then(DateTime::<Utc>::from_timestamp_millis).map(|t| t.to_rfc3339()),
        "commits": version + 1,
        "files": files.num_files(),
        "bytes": bytes,
    }))
}
