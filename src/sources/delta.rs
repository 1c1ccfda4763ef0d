//! Delta Lake tables (`type: delta`), read natively through the `deltalake` crate.
//!
//! A table is the folder of that name under the source URL. A reference may pin a version or a
//! time: `curated.auto_parts@3`, `curated.auto_parts@2026-11-22T00:00:00Z`. The commit log gives
//! each table's audit metadata (version, last commit time, commits, files and bytes).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use deltalake::DeltaTableBuilder;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use super::changes::{Arrival, ChangeCursor, ChangePosition, Changes};
use super::pin::Pin;
use super::table_format::{
    read_parquet, OpenedTable, TableChanges, TableError, TableFolder, TableFormat, TableFormatKind,
};

/// `type: delta` (or `format: delta` on a lake): every folder is a Delta table.
pub const FORMAT: TableFormatKind = TableFormatKind {
    name: "delta",
    own_source_type: true,
    options: &[],
    parse: |_, _| Ok(Arc::new(DeltaFormat)),
    // `table_type=DELTA` (Athena, Glue crawlers) or `spark.sql.sources.provider=delta` (Spark).
    in_catalog: |entry| {
        entry
            .mentions("delta")
            .then(|| Ok(Arc::new(DeltaFormat) as Arc<dyn TableFormat>))
    },
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
        let (provider, metadata, files) = open(folder.store.clone(), folder.url, folder.pin)
            .await
            .map_err(|e| folder.unreadable("Delta", e))?;
        check_data_files(folder, &files).await?;
        let mut table = OpenedTable::new(provider);
        table.metadata = Some(metadata);
        Ok(table)
    }

    async fn changes(&self, folder: &TableFolder<'_>, from: &ChangePosition) -> TableChanges {
        changes_after(folder, from).await
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

/// Opens a Delta table at `folder`, pinned or at its latest version: its provider, its
/// metadata, and the data files the version reads (paths inside the table folder).
async fn open(
    store: Arc<dyn ObjectStore>,
    folder: &Url,
    pin: Option<&Pin>,
) -> Result<(Arc<dyn TableProvider>, serde_json::Value, Vec<String>), String> {
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
    let files = table
        .snapshot()
        .map_err(|e| e.to_string())?
        .log_data()
        .iter()
        .map(|f| f.path().into_owned())
        .collect();
    let provider = table.table_provider().await.map_err(|e| e.to_string())?;
    Ok((provider, metadata, files))
}

/// Every data file the log names is in storage, or an error naming the first that is not. A
/// count answered from the log's statistics would otherwise pass on a table whose files are
/// gone. One listing of the folder (a request per 1000 objects), no read of the files.
async fn check_data_files(folder: &TableFolder<'_>, files: &[String]) -> Result<(), TableError> {
    let stored: std::collections::HashSet<String> = folder
        .objects()
        .await?
        .into_iter()
        .filter_map(|o| {
            o.location.prefix_match(folder.prefix).map(|parts| {
                parts
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            })
        })
        .collect();
    // A path with a scheme lies outside the folder (a shallow clone's): not listed here.
    let missing = files.iter().find(|f| {
        let path = StorePath::from(f.trim_start_matches('/'));
        !f.contains("://") && !stored.contains(path.as_ref())
    });
    match missing {
        None => Ok(()),
        Some(file) => Err(TableError::Unreadable {
            format: "Delta",
            table: folder.name.to_string(),
            file: Some(format!("{}{file}", folder.url)),
            cause: "the Delta log names this data file, and it is not in storage (deleted outside \
                    Delta, or vacuumed while this version was still read?): restore the file, or \
                    repair the table's log (Delta `FSCK REPAIR TABLE`)"
                .into(),
        }),
    }
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

/// The commits after `from`, each with the rows of the data files it added, read from the log
/// (`_delta_log/<version>.json`) without loading the table: from a cursor (the last version read)
/// only the commit files after it are listed (`list_with_offset`); from a time, the log is read
/// backwards from its latest version to the last commit made before that time. Files a commit
/// adds without new data (`dataChange: false`, e.g. compaction) or re-adds with a deletion
/// vector (rows deleted from a file already there) hold no arrivals and are not read.
async fn changes_after(folder: &TableFolder<'_>, from: &ChangePosition) -> TableChanges {
    use futures::TryStreamExt;
    let log = folder.prefix.clone().join("_delta_log");
    let after =
        match from {
            ChangePosition::After(cursor) => Some(cursor.0.parse::<u64>().map_err(|_| {
                folder.unreadable("Delta", format!("`{}` is not a version", cursor.0))
            })?),
            ChangePosition::Since(at) => version_before(folder, &log, *at).await?,
        };
    let listing = match after {
        Some(version) => folder
            .store
            .list_with_offset(Some(&log), &log.clone().join(commit_name(version).as_str())),
        None => folder.store.list(Some(&log)),
    };
    let listed: Vec<_> = listing
        .try_collect()
        .await
        .map_err(|e| folder.unreachable(e))?;
    let mut versions: Vec<u64> = listed
        .iter()
        .filter_map(|meta| commit_version(&meta.location))
        .filter(|v| after.is_none_or(|after| *v > after))
        .collect();
    versions.sort_unstable();
    let mut arrivals = Vec::new();
    let mut last = after;
    for version in versions {
        // A commit is visible only once the one before it is: stop at a hole.
        if last.is_some_and(|last| version != last + 1) {
            break;
        }
        let Some(commit) = read_commit(folder, &log, version).await? else {
            break;
        };
        let mut batches = Vec::new();
        for add in &commit.adds {
            batches.extend(read_added_file(folder, add).await?);
        }
        arrivals.push(Arrival {
            found_in: format!("version {version}"),
            landed_at: commit.landed_at,
            rows: batches,
        });
        last = Some(version);
    }
    let next = match last {
        Some(version) => ChangePosition::After(ChangeCursor(version.to_string())),
        None => from.clone(),
    };
    Ok(Changes { arrivals, next })
}

/// The last version committed before `at`, reading commits backwards from the latest; `None`
/// when every commit the log keeps was made at or after `at`.
async fn version_before(
    folder: &TableFolder<'_>,
    log: &StorePath,
    at: DateTime<Utc>,
) -> Result<Option<u64>, TableError> {
    let Some(mut version) = latest_version(folder, log).await? else {
        return Ok(None);
    };
    loop {
        match read_commit(folder, log, version).await? {
            // Cleaned up by log retention: older than anything kept.
            None => return Ok(Some(version)),
            Some(commit) if commit.landed_at < at => return Ok(Some(version)),
            Some(_) if version == 0 => return Ok(None),
            Some(_) => version -= 1,
        }
    }
}

/// The latest version in the log: commit files listed from the last checkpoint on
/// (`_last_checkpoint`), or the whole log when it has none.
async fn latest_version(
    folder: &TableFolder<'_>,
    log: &StorePath,
) -> Result<Option<u64>, TableError> {
    use futures::TryStreamExt;
    let checkpoint = match folder
        .store
        .get(&log.clone().join("_last_checkpoint"))
        .await
    {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(|e| folder.unreachable(e))?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["version"].as_u64())
        }
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(folder.unreachable(e)),
    };
    let listing = match checkpoint {
        Some(version) => folder.store.list_with_offset(
            Some(log),
            &log.clone().join(format!("{version:020}").as_str()),
        ),
        None => folder.store.list(Some(log)),
    };
    let listed: Vec<_> = listing
        .try_collect()
        .await
        .map_err(|e| folder.unreachable(e))?;
    Ok(listed
        .iter()
        .filter_map(|meta| commit_version(&meta.location))
        .chain(checkpoint)
        .max())
}

/// A commit's file name in `_delta_log/`.
fn commit_name(version: u64) -> String {
    format!("{version:020}.json")
}

/// The version a `_delta_log/` path is the commit file of, if it is one.
fn commit_version(path: &StorePath) -> Option<u64> {
    let stem = path.filename()?.strip_suffix(".json")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// One commit as the changes read it.
struct Commit {
    /// Its in-commit timestamp, else its commit file's modification time (as time travel
    /// resolves versions).
    landed_at: DateTime<Utc>,
    adds: Vec<AddedFile>,
}

/// A data file a commit added with new rows.
struct AddedFile {
    /// Relative to the table folder, percent-encoded as the log writes it.
    path: String,
    partition_values: Vec<(String, Option<String>)>,
}

/// Reads commit `version`; `None` when its file is gone.
async fn read_commit(
    folder: &TableFolder<'_>,
    log: &StorePath,
    version: u64,
) -> Result<Option<Commit>, TableError> {
    let path = log.clone().join(commit_name(version).as_str());
    let got = match folder.store.get(&path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(folder.unreachable(e)),
    };
    let modified = got.meta.last_modified;
    let bytes = got.bytes().await.map_err(|e| folder.unreachable(e))?;
    let unreadable = |cause: String| TableError::Unreadable {
        format: "Delta",
        table: folder.name.to_string(),
        file: Some(folder.file_url(&path)),
        cause,
    };
    let mut in_commit_timestamp = None;
    let mut adds = Vec::new();
    for line in String::from_utf8_lossy(&bytes).lines() {
        if line.trim().is_empty() {
            continue;
        }
        let action: serde_json::Value =
            serde_json::from_str(line).map_err(|e| unreadable(e.to_string()))?;
        if let Some(info) = action.get("commitInfo") {
            in_commit_timestamp = info["inCommitTimestamp"].as_i64();
        }
        let Some(add) = action.get("add") else {
            continue;
        };
        if add["dataChange"].as_bool() == Some(false) || !add["deletionVector"].is_null() {
            continue;
        }
        let file = add["path"]
            .as_str()
            .ok_or_else(|| unreadable("an `add` action has no `path`".into()))?;
        let partition_values = add["partitionValues"]
            .as_object()
            .map(|values| {
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string)))
                    .collect()
            })
            .unwrap_or_default();
        adds.push(AddedFile {
            path: file.to_string(),
            partition_values,
        });
    }
    let landed_at = in_commit_timestamp
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or(modified);
    Ok(Some(Commit { landed_at, adds }))
}

/// The rows of a file a commit added, with its partition values as text columns.
async fn read_added_file(
    folder: &TableFolder<'_>,
    add: &AddedFile,
) -> Result<Vec<RecordBatch>, TableError> {
    let unreadable = |cause: String| TableError::Unreadable {
        format: "Delta",
        table: folder.name.to_string(),
        file: Some(add.path.clone()),
        cause,
    };
    if add.path.contains("://") {
        return Err(unreadable(
            "files outside the table folder (absolute paths, as shallow clones write) cannot be \
             read for changes"
                .into(),
        ));
    }
    let relative = StorePath::from_url_path(&add.path).map_err(|e| unreadable(e.to_string()))?;
    let path = relative
        .parts()
        .fold(folder.prefix.clone(), |path, part| path.join(part));
    let batches = read_parquet(folder.store.as_ref(), &path)
        .await
        .map_err(unreadable)?;
    batches
        .into_iter()
        .map(|batch| with_partition_values(batch, &add.partition_values))
        .collect::<Result<_, _>>()
        .map_err(|e| unreadable(e.to_string()))
}

/// `batch` with a text column per partition value its file does not hold itself.
fn with_partition_values(
    batch: RecordBatch,
    values: &[(String, Option<String>)],
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let missing: Vec<_> = values
        .iter()
        .filter(|(name, _)| batch.schema().column_with_name(name).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(batch);
    }
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, value) in missing {
        fields.push(Field::new(name, DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from(vec![
            value.clone();
            batch.num_rows()
        ])));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("t/_delta_log/00000000000000000007.json", Some(7))]
    #[case("t/_delta_log/00000000000000000000.json", Some(0))]
    #[case("t/_delta_log/00000000000000000007.crc", None)]
    #[case("t/_delta_log/00000000000000000010.checkpoint.parquet", None)]
    #[case("t/_delta_log/_last_checkpoint", None)]
    #[case("t/_delta_log/7.json", None)]
    fn commit_files_are_named_by_their_version(#[case] path: &str, #[case] version: Option<u64>) {
        assert_eq!(commit_version(&StorePath::from(path)), version);
        if let Some(version) = version {
            assert!(path.ends_with(&commit_name(version)));
        }
    }
}
