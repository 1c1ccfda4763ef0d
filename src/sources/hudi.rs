//! Apache Hudi tables (`type: hudi`), read natively through the `hudi` crate (no JVM).
//!
//! Table versions 6 (Hudi 0.14/0.15, AWS Glue 5.0), 8 and 9 are read; any other version is an
//! error naming it rather than a guess. A reference may be pinned to an instant
//! (`curated.sales_order@20261121080000000`) or a time (`@2026-11-22T00:00:00Z`). The record key
//! from `hoodie.properties` is the table's key when reconciling.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::catalog::TableProvider;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::changes::{Arrival, ChangeCursor, ChangePosition, Changes};
use super::pin::Pin;
use super::table_format::{
    OpenedTable, TableChanges, TableError, TableFolder, TableFormat, TableFormatKind,
};

/// Hudi table versions this reader understands.
pub const SUPPORTED_VERSIONS: [u32; 3] = [6, 8, 9];

/// `hoodie.properties` as key/value pairs.
pub async fn properties(
    store: &dyn ObjectStore,
    table_prefix: &StorePath,
) -> Result<HashMap<String, String>, String> {
    let path = table_prefix
        .clone()
        .join(".hoodie")
        .join("hoodie.properties");
    let bytes = store
        .get(&path)
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().replace("\\:", ":")))
        .collect())
}

/// The record key columns named in `hoodie.properties`.
pub fn record_key(properties: &HashMap<String, String>) -> Option<Vec<String>> {
    properties
        .get("hoodie.table.recordkey.fields")
        .map(|fields| {
            fields
                .split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        })
}

/// `type: hudi` (or `format: hudi` on a lake): every folder is a Hudi table.
pub const FORMAT: TableFormatKind = TableFormatKind {
    name: "hudi",
    own_source_type: true,
    options: &[],
    parse: |_, _| Ok(Arc::new(HudiFormat)),
    // `org.apache.hudi.hadoop.HoodieParquetInputFormat`, or `spark.sql.sources.provider=hudi`.
    in_catalog: |entry| {
        entry
            .mentions("hudi")
            .then(|| Ok(Arc::new(HudiFormat) as Arc<dyn TableFormat>))
    },
};

#[derive(Debug)]
struct HudiFormat;

#[async_trait::async_trait]
impl TableFormat for HudiFormat {
    fn name(&self) -> &'static str {
        FORMAT.name
    }

    fn marker(&self) -> String {
        "Hudi table (.hoodie/hoodie.properties)".into()
    }

    async fn exists(&self, folder: &TableFolder<'_>) -> Result<bool, TableError> {
        folder.has_object(".hoodie/hoodie.properties").await
    }

    async fn open(&self, folder: &TableFolder<'_>) -> Result<OpenedTable, TableError> {
        open(folder).await
    }

    async fn changes(&self, folder: &TableFolder<'_>, from: &ChangePosition) -> TableChanges {
        changes_after(folder, from).await
    }
}

/// The meta column holding the instant that wrote a record.
const COMMIT_TIME_COLUMN: &str = "_hoodie_commit_time";

/// The commits completed after `from`, each with the records it wrote: Hudi's incremental query
/// over (`from`, latest completion], which reads only the file slices those commits touched,
/// its records grouped by `_hoodie_commit_time`. From a cursor, `from` is the completion time
/// read up to last time; from a time, that time as an instant in the timeline's zone.
async fn changes_after(folder: &TableFolder<'_>, from: &ChangePosition) -> TableChanges {
    use hudi::config::{QueryType, ReadOptions};
    use hudi::timeline::instant::Instant;
    let unreadable = |e: String| folder.unreadable("Hudi", e);
    let properties = properties(folder.store.as_ref(), folder.prefix)
        .await
        .map_err(unreadable)?;
    let zone = timeline_zone(&properties);
    let uri = folder.url.as_str().trim_end_matches('/').to_string();
    let table = hudi::table::Table::new_with_options(&uri, folder.storage.to_vec())
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    let instants = completed_instants(&table).await.map_err(unreadable)?;
    // Tables before version 8 keep no completion time: their instants are their own.
    let completion = |i: &Instant| {
        i.completion_timestamp
            .clone()
            .unwrap_or_else(|| i.timestamp.clone())
    };
    let start = match from {
        ChangePosition::After(cursor) => cursor.0.clone(),
        ChangePosition::Since(at) => instant(&Pin::Time(*at), zone),
    };
    let end = instants.iter().map(completion).max();
    let Some(end) = end.filter(|end| *end > start) else {
        return Ok(Changes {
            arrivals: Vec::new(),
            next: ChangePosition::After(ChangeCursor(start)),
        });
    };
    let read = ReadOptions::new()
        .with_query_type(QueryType::Incremental)
        .with_start_timestamp(&start)
        .with_end_timestamp(&end);
    let batches = table
        .read(&read)
        .await
        .map_err(|e| unreadable(format!("cannot read the commits after {start}: {e}")))?;
    let mut arrivals: Vec<Arrival<Vec<RecordBatch>>> = Vec::new();
    for (commit, rows) in by_commit(&batches).map_err(unreadable)? {
        let completed = instants
            .iter()
            .find(|i| i.timestamp == commit)
            .map(completion)
            .unwrap_or_else(|| commit.clone());
        let landed_at = Instant::parse_datetime(&completed, zone)
            .map_err(|e| unreadable(format!("instant `{completed}`: {e}")))?;
        arrivals.push(Arrival {
            found_in: format!("instant {commit}"),
            landed_at,
            rows,
        });
    }
    arrivals.sort_by_key(|a| a.landed_at);
    Ok(Changes {
        arrivals,
        next: ChangePosition::After(ChangeCursor(end)),
    })
}

/// Records grouped by the instant that wrote them, in instant order.
fn by_commit(batches: &[RecordBatch]) -> Result<Vec<(String, Vec<RecordBatch>)>, String> {
    let mut groups: Vec<(String, Vec<RecordBatch>)> = Vec::new();
    for batch in batches {
        let column = batch.column_by_name(COMMIT_TIME_COLUMN).ok_or_else(|| {
            format!(
                "records carry no `{COMMIT_TIME_COLUMN}` (written with \
                 `hoodie.populate.meta.fields=false`?), so they cannot be told apart by commit"
            )
        })?;
        let column =
            datafusion::arrow::compute::cast(column, &datafusion::arrow::datatypes::DataType::Utf8)
                .map_err(|e| e.to_string())?;
        let commits = column.as_string::<i32>();
        let mut distinct: Vec<&str> = commits.iter().flatten().collect();
        distinct.sort_unstable();
        distinct.dedup();
        for commit in distinct {
            let mask = BooleanArray::from_iter(
                (0..commits.len()).map(|i| Some(!commits.is_null(i) && commits.value(i) == commit)),
            );
            let rows = datafusion::arrow::compute::filter_record_batch(batch, &mask)
                .map_err(|e| e.to_string())?;
            match groups.iter_mut().find(|(c, _)| c == commit) {
                Some((_, batches)) => batches.push(rows),
                None => groups.push((commit.to_string(), vec![rows])),
            }
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(groups)
}

/// Opens a Hudi table, checking its version first.
async fn open(folder: &TableFolder<'_>) -> Result<OpenedTable, TableError> {
    let unreadable = |e: String| folder.unreadable("Hudi", e);
    let properties = properties(folder.store.as_ref(), folder.prefix)
        .await
        .map_err(unreadable)?;
    let version: u32 = properties
        .get("hoodie.table.version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| unreadable("hoodie.properties has no `hoodie.table.version`".into()))?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(unreadable(format!(
            "Hudi table version {version} is not supported (versions 6, 8 and 9 are; version 5 comes from Hudi 0.12-0.13 \
             such as AWS Glue 4.0): upgrade the table with Hudi 0.14+ (AWS Glue 5.0)"
        )));
    }
    let zone = timeline_zone(&properties);
    let options: Vec<(String, String)> = folder.storage.to_vec();
    let uri = folder.url.as_str().trim_end_matches('/').to_string();
    let table = hudi::table::Table::new_with_options(&uri, options.clone())
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    // The timeline first: a pin before the first commit, or naming no instant, fails before
    // any data is read.
    let timeline = completed_instants(&table).await.map_err(unreadable)?;
    let no_such_version = |reason: String| TableError::NoSuchVersion {
        format: "Hudi",
        table: folder.name.to_string(),
        reason,
    };
    if let Some(Pin::Version(version)) = folder.pin {
        let wanted = version.to_string();
        if !timeline.iter().any(|i| i.timestamp == wanted) {
            return Err(no_such_version(format!(
                "no completed instant `{wanted}` on the timeline ({}); pin an instant as written there \
                 (yyyyMMddHHmmssSSS) or a time (`@2026-11-22T00:00:00Z`)",
                match timeline.last() {
                    Some(latest) => format!("{} instants, the latest `{}`", timeline.len(), latest.timestamp),
                    None => "it has no completed instant".into(),
                }
            )));
        }
    }
    let metadata = metadata(&table, timeline, version, zone, folder.pin);
    if let Some(pin) = folder.pin.filter(|_| metadata["commits"] == 0) {
        return Err(no_such_version(format!(
            "no commit existed at {pin} (the table starts later)"
        )));
    }
    let provider: Arc<dyn TableProvider> = match folder.pin {
        None => Arc::new(
            hudi::HudiDataSource::new_with_options(&uri, options)
                .await
                .map_err(|e| unreadable(e.to_string()))?,
        ),
        // The DataFusion provider always reads the latest snapshot, so a pinned read goes
        // through the table reader and is served from memory.
        Some(pin) => {
            let read = hudi::table::ReadOptions::new().with_as_of_timestamp(instant(pin, zone));
            let batches = table
                .read(&read)
                .await
                .map_err(|e| unreadable(format!("cannot read as of {pin}: {e}")))?;
            let schema = match batches.first() {
                Some(batch) => batch.schema(),
                None => Arc::new(
                    table
                        .get_schema_with_meta_fields()
                        .await
                        .map_err(|e| unreadable(e.to_string()))?,
                ),
            };
            Arc::new(
                datafusion::datasource::MemTable::try_new(schema, vec![batches])
                    .map_err(|e| unreadable(e.to_string()))?,
            )
        }
    };
    // Tables written with `hoodie.populate.meta.fields=false` keep the `_hoodie_*` columns in
    // their files but leave them NULL, while the reader declares them non-nullable: reading
    // one fails. They carry nothing, so such a table is shown without them.
    let provider = if properties
        .get("hoodie.populate.meta.fields")
        .map(String::as_str)
        == Some("false")
    {
        without_meta_fields(provider).map_err(|e| unreadable(e.to_string()))?
    } else {
        provider
    };
    let mut opened = OpenedTable::new(provider);
    opened.metadata = Some(metadata);
    opened.key = record_key(&properties);
    Ok(opened)
}

/// `provider` seen through a projection that leaves out the `_hoodie_*` columns.
fn without_meta_fields(
    provider: Arc<dyn TableProvider>,
) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    use datafusion::datasource::{provider_as_source, ViewTable};
    use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
    let keep: Vec<Expr> = provider
        .schema()
        .fields()
        .iter()
        .filter(|f| !f.name().starts_with("_hoodie_"))
        .map(|f| Expr::Column(datafusion::common::Column::new_unqualified(f.name())))
        .collect();
    let plan = LogicalPlanBuilder::scan("hudi", provider_as_source(provider), None)?
        .project(keep)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// The zone of the table's instants, `hoodie.table.timeline.timezone`: `UTC`, or `LOCAL`, the
/// writer's local zone, which a reader can only take to be its own (as Hudi does). Unset means
/// `LOCAL`, Hudi's default (Spark does not record the property; hudi-rs writes `LOCAL`), though
/// hudi-rs' reader would assume UTC. Run with `TZ=<writer's zone>` when they differ.
fn timeline_zone(properties: &HashMap<String, String>) -> &str {
    properties
        .get("hoodie.table.timeline.timezone")
        .map(String::as_str)
        .unwrap_or("LOCAL")
}

/// The timeline zone as a reader should see it: `UTC`, or for `LOCAL` the zone lakecheck runs
/// in, which is the one it reads the instants in, e.g. `LOCAL (Europe/Berlin, UTC+01:00)`.
pub fn describe_timeline_zone(zone: &str) -> String {
    if zone.eq_ignore_ascii_case("local") {
        format!("LOCAL ({})", local_zone())
    } else {
        zone.to_string()
    }
}

/// The zone this process reads local times in: its name (from `TZ`, else the system's
/// `/etc/timezone` or `/etc/localtime` link) where known, and its current UTC offset.
fn local_zone() -> String {
    let offset = chrono::Local::now().offset().to_string();
    let named = std::env::var("TZ")
        .ok()
        .map(|tz| tz.trim_start_matches(':').trim().to_string())
        .filter(|tz| !tz.is_empty())
        .map(|tz| format!("TZ={tz}"))
        .or_else(|| {
            std::fs::read_to_string("/etc/timezone")
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        })
        .or_else(|| {
            std::fs::read_link("/etc/localtime").ok().and_then(|link| {
                let link = link.to_string_lossy().to_string();
                link.split_once("zoneinfo/")
                    .map(|(_, name)| name.to_string())
            })
        });
    match named {
        Some(name) => format!("{name}, UTC{offset}"),
        None => format!("UTC{offset}"),
    }
}

/// A pin as a Hudi instant (`yyyyMMddHHmmssSSS`), wall-clock time in `timeline_zone`.
fn instant(pin: &Pin, zone: &str) -> String {
    match pin {
        Pin::Version(instant) => instant.to_string(),
        Pin::Time(at) if zone.eq_ignore_ascii_case("local") => instant_in(at, &chrono::Local),
        Pin::Time(at) => instant_in(at, &Utc),
    }
}

fn instant_in<Tz: chrono::TimeZone>(at: &DateTime<Utc>, zone: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    at.with_timezone(zone).format("%Y%m%d%H%M%S%3f").to_string()
}

/// Completed commits and replace commits, in instant order.
async fn completed_instants(
    table: &hudi::table::Table,
) -> Result<Vec<hudi::timeline::instant::Instant>, String> {
    let timeline = table.get_timeline();
    let mut instants = timeline
        .get_completed_commits(false)
        .await
        .map_err(|e| e.to_string())?;
    instants.extend(
        timeline
            .get_completed_replacecommits(false)
            .await
            .map_err(|e| e.to_string())?,
    );
    instants.sort();
    Ok(instants)
}

/// Commits up to the pin, the latest completion time.
fn metadata(
    table: &hudi::table::Table,
    mut instants: Vec<hudi::timeline::instant::Instant>,
    table_version: u32,
    timezone: &str,
    pin: Option<&Pin>,
) -> serde_json::Value {
    let limit = pin.map(|pin| instant(pin, timezone));
    instants.retain(|i| {
        limit
            .as_ref()
            .is_none_or(|l| i.timestamp.as_str() <= l.as_str())
    });
    let parse = |text: &str| hudi::timeline::instant::Instant::parse_datetime(text, timezone).ok();
    let last = instants.last();
    let last_commit: Option<DateTime<Utc>> = last.and_then(|i| {
        i.completion_timestamp
            .as_deref()
            .and_then(parse)
            .or_else(|| parse(&i.timestamp))
    });
    serde_json::json!({
        "format": "hudi",
        "table_version": table_version,
        "version": last.map(|i| i.timestamp.clone()),
        "last_commit": last_commit.map(|t| t.to_rfc3339()),
        "commits": instants.len(),
        "table_type": table.table_type(),
        // `hoodie.table.timeline.timezone` as read: a wrong zone shifts every commit time.
        "timeline_timezone": describe_timeline_zone(timezone),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    #[test]
    fn times_become_instants_in_the_timeline_zone() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T00:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(instant(&Pin::Time(at), "UTC"), "20261122000000250");
        let chicago = FixedOffset::west_opt(6 * 3600).unwrap();
        assert_eq!(instant_in(&at, &chicago), "20261121180000250");
        assert_eq!(
            instant(&Pin::Time(at), "LOCAL"),
            instant_in(&at, &chrono::Local),
            "LOCAL is this process's zone"
        );
        assert_eq!(timeline_zone(&HashMap::new()), "LOCAL", "Hudi's default");
        let utc = HashMap::from([(
            "hoodie.table.timeline.timezone".to_string(),
            "UTC".to_string(),
        )]);
        assert_eq!(timeline_zone(&utc), "UTC");
        assert_eq!(
            instant(&Pin::Version(20261121080000123), "LOCAL"),
            "20261121080000123"
        );
    }

    #[test]
    fn the_timeline_zone_is_reported_with_the_zone_local_times_are_read_in() {
        assert_eq!(describe_timeline_zone("UTC"), "UTC");
        let local = describe_timeline_zone("LOCAL");
        let offset = chrono::Local::now().offset().to_string();
        assert!(local.starts_with("LOCAL ("), "{local}");
        assert!(local.ends_with(&format!("UTC{offset})")), "{local}");
        if let Ok(tz) = std::env::var("TZ") {
            let tz = tz.trim_start_matches(':').trim();
            if !tz.is_empty() {
                assert!(local.contains(&format!("TZ={tz}")), "{local}");
            }
        }
    }
}
