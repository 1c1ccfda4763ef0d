//! A change pipeline for `cdc_latency` to measure, built the way AutoCorp's is: a replicator
//! reads PostgreSQL's logical decoding stream (`test_decoding`, through
//! `pg_logical_slot_get_changes`) and writes the raw zone as AWS DMS does (CDC Parquet files
//! named by the time they are written, `Op` first, the commit time last) once its batch has
//! waited `raw_delay` (DMS's `CdcMaxBatchInterval`); a curated writer appends each raw file's
//! rows to a Delta table `curated_delay` after the file appeared. Each pipeline has a database
//! of its own (its own slot and heartbeat table) in one shared cluster run with
//! `wal_level=logical`, and a lake folder of its own. It can be made to drop a marker or stop
//! its curated writer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::concat_batches;
use lakecheck::demo::autocorp::to_parquet;
use lakecheck::demo::ThrowawayPostgres;
use lakecheck::sources::table_format::read_parquet;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

/// The heartbeat table the probes write and the pipeline carries.
pub const HEARTBEAT_TABLE: &str = "lakecheck_heartbeat";
/// The DMS `TimestampColumnName` of the raw zone.
pub const COMMIT_TIME_COLUMN: &str = "commit_ts";
/// How often the replicator reads the slot and the curated writer lists the raw folder.
const TICK: Duration = Duration::from_millis(50);

/// The shared cluster, run with `wal_level=logical`.
pub struct CdcCluster {
    pg: ThrowawayPostgres,
}

static CLUSTER: tokio::sync::Mutex<Weak<CdcCluster>> = tokio::sync::Mutex::const_new(Weak::new());

/// The shared cluster, started if no running test holds it.
pub async fn cluster() -> Arc<CdcCluster> {
    let mut slot = CLUSTER.lock().await;
    if let Some(cluster) = slot.upgrade() {
        return cluster;
    }
    let pg = tokio::task::spawn_blocking(|| {
        ThrowawayPostgres::start_with(&[("wal_level", "logical"), ("max_replication_slots", "20")])
    })
    .await
    .unwrap()
    .expect("throwaway postgres with wal_level=logical");
    let cluster = Arc::new(CdcCluster { pg });
    *slot = Arc::downgrade(&cluster);
    cluster
}

/// The delays a pipeline injects.
#[derive(Debug, Clone, Copy)]
pub struct Delays {
    /// How long the replicator holds a batch from its first change (DMS `CdcMaxBatchInterval`).
    pub raw: Duration,
    /// How long after a raw file appears the curated writer commits its rows.
    pub curated: Duration,
}

/// What a test can tell a running pipeline.
#[derive(Default)]
struct Control {
    /// Heartbeat rows the replicator drops: (probe, seq).
    dropped: Mutex<Vec<(String, i64)>>,
    curated_stopped: AtomicBool,
    /// What went wrong in the pipeline's tasks, for the test's failure message.
    errors: Mutex<Vec<String>>,
}

impl Control {
    fn fail(&self, what: &str, error: impl std::fmt::Display) {
        self.errors.lock().unwrap().push(format!("{what}: {error}"));
    }
}

/// A running pipeline; its tasks stop when it is dropped.
pub struct Pipeline {
    _cluster: Arc<CdcCluster>,
    url: String,
    lake: PathBuf,
    control: Arc<Control>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Pipeline {
    /// Creates database `database` with a logical slot, and starts replicating it into `lake`
    /// (raw zone `raw/public/lakecheck_heartbeat/`, curated Delta `curated/lakecheck_heartbeat/`).
    pub async fn start(database: &str, lake: &Path, delays: Delays) -> Pipeline {
        let cluster = cluster().await;
        let admin = connect(&cluster.pg.url("postgres")).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        let url = cluster.pg.url(database);
        let client = connect(&url).await;
        let slot = format!("{database}_slot");
        client
            .execute(
                "SELECT pg_create_logical_replication_slot($1, 'test_decoding')",
                &[&slot],
            )
            .await
            .unwrap();
        client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
        std::fs::create_dir_all(lake).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(lake).unwrap());
        let raw = StorePath::from(format!("raw/public/{HEARTBEAT_TABLE}"));
        let control = Arc::new(Control::default());
        let replicator = Replicator {
            client,
            slot,
            store: store.clone(),
            raw: raw.clone(),
            delay: delays.raw,
            control: control.clone(),
        };
        let curated = CuratedWriter {
            store,
            raw,
            table: lake.join("curated").join(HEARTBEAT_TABLE),
            delay: delays.curated,
            control: control.clone(),
        };
        Pipeline {
            _cluster: cluster,
            url,
            lake: lake.to_path_buf(),
            control,
            tasks: vec![tokio::spawn(replicator.run()), tokio::spawn(curated.run())],
        }
    }

    /// A connection to the database, for what a test writes itself.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// The `sources:` entries a rule needs, under the names given: the database (opted in to
    /// heartbeats), the DMS raw zone and the curated Delta tables.
    pub fn sources_yaml(&self, pg: &str, raw: &str, curated: &str) -> String {
        let lake = self.lake.display();
        format!(
            "  {pg}: {{ type: postgres, url: \"{}\", statement_timeout: 10s, heartbeat: {{ table: {HEARTBEAT_TABLE}, create: true }} }}\n\
             \x20 {raw}: {{ type: lake, url: \"{lake}/raw/public\", layout: dms, timestamp_column: {COMMIT_TIME_COLUMN} }}\n\
             \x20 {curated}: {{ type: delta, url: \"{lake}/curated\" }}\n",
            self.url
        )
    }

    /// Makes the replicator drop the heartbeat row `seq` of `probe`.
    pub fn drop_marker(&self, probe: &str, seq: i64) {
        self.control
            .dropped
            .lock()
            .unwrap()
            .push((probe.to_string(), seq));
    }

    /// Stops the curated writer: nothing more reaches the Delta table.
    pub fn stop_curated(&self) {
        self.control.curated_stopped.store(true, Ordering::SeqCst);
    }

    /// What went wrong in the pipeline's tasks (empty when nothing did).
    pub fn errors(&self) -> Vec<String> {
        self.control.errors.lock().unwrap().clone()
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// One heartbeat change as the stream shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `I`, `U` or `D`, as DMS writes `Op`.
    pub op: &'static str,
    pub probe: String,
    pub seq: i64,
    /// `written_at` in microseconds since the epoch, if the change carries it (a delete carries
    /// only the key).
    pub written_at: Option<i64>,
    /// The commit time, `yyyy-MM-dd HH:mm:ss.ffffff` (UTC).
    pub commit_time: String,
}

/// Reads `test_decoding` lines (`BEGIN 735`, `table public.t: INSERT: a[text]:'x' b[bigint]:1`,
/// `COMMIT 735 (at 2026-11-21 08:00:00.123456+00)`) into the heartbeat table's changes of the
/// committed transactions; `pending` keeps those of a transaction whose commit is still to come.
pub fn decode(lines: &[String], pending: &mut Vec<Change>) -> Vec<Change> {
    let mut committed = Vec::new();
    for line in lines {
        if line.starts_with("BEGIN") {
            pending.clear();
        } else if let Some(rest) = line.strip_prefix("COMMIT") {
            let at = rest
                .split_once("(at ")
                .map(|(_, t)| t.trim_end_matches(')').to_string())
                .and_then(|t| DateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%.f%#z").ok())
                .map(|t| {
                    t.with_timezone(&Utc)
                        .format("%Y-%m-%d %H:%M:%S%.6f")
                        .to_string()
                })
                .unwrap_or_default();
            for mut change in pending.drain(..) {
                change.commit_time = at.clone();
                committed.push(change);
            }
        } else if let Some(rest) = line.strip_prefix(&format!("table public.{HEARTBEAT_TABLE}: ")) {
            let (action, fields) = rest.split_once(": ").unwrap_or((rest, ""));
            let op = match action {
                "INSERT" => "I",
                "UPDATE" => "U",
                "DELETE" => "D",
                _ => continue,
            };
            let values = fields_of(fields);
            let value = |name: &str| {
                values
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            let (Some(probe), Some(seq)) = (value("probe"), value("seq")) else {
                continue;
            };
            pending.push(Change {
                op,
                probe,
                seq: seq.parse().unwrap(),
                written_at: value("written_at").and_then(|t| {
                    DateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%.f%#z")
                        .ok()
                        .map(|t| t.timestamp_micros())
                }),
                commit_time: String::new(),
            });
        }
    }
    committed
}

/// `name[type]:value` pairs; a value is `'quoted'` (`''` for a quote) or runs to the next space.
fn fields_of(text: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = text.trim_start();
    while let Some(open) = rest.find('[') {
        let name = rest[..open].trim().to_string();
        let Some(close) = rest[open..].find("]:") else {
            break;
        };
        rest = &rest[open + close + 2..];
        let value;
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut text = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        chars.next();
                        text.push('\'');
                        continue;
                    }
                    end = i + 1;
                    break;
                }
                text.push(c);
            }
            value = text;
            rest = &quoted[end..];
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = &rest[end..];
        }
        // Old-key and new-tuple sections of updates: later values win.
        let name = name.rsplit(' ').next().unwrap_or(&name).to_string();
        fields.retain(|(n, _): &(String, String)| *n != name);
        fields.push((name, value));
        rest = rest.trim_start();
    }
    fields
}

/// The DMS side: slot → CDC Parquet files.
struct Replicator {
    client: tokio_postgres::Client,
    slot: String,
    store: Arc<dyn ObjectStore>,
    raw: StorePath,
    delay: Duration,
    control: Arc<Control>,
}

impl Replicator {
    async fn run(self) {
        let mut pending = Vec::new();
        let mut batch: Vec<Change> = Vec::new();
        let mut batch_started = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(TICK).await;
            let rows = match self
                .client
                .query(
                    "SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL, 'include-timestamp', 'on')",
                    &[&self.slot],
                )
                .await
            {
                Ok(rows) => rows,
                Err(e) => return self.control.fail("replicator", e),
            };
            let lines: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            let dropped = self.control.dropped.lock().unwrap().clone();
            for change in decode(&lines, &mut pending) {
                if dropped
                    .iter()
                    .any(|(p, s)| *p == change.probe && *s == change.seq)
                {
                    continue;
                }
                if batch.is_empty() {
                    batch_started = tokio::time::Instant::now();
                }
                batch.push(change);
            }
            if !batch.is_empty() && batch_started.elapsed() >= self.delay {
                if let Err(e) = self.write(&batch).await {
                    return self.control.fail("replicator", e);
                }
                batch.clear();
            }
        }
    }

    /// Writes one CDC file, named by the time it is written.
    async fn write(&self, changes: &[Change]) -> Result<(), String> {
        let batch = cdc_batch(changes);
        let name = format!("{}.parquet", Utc::now().format("%Y%m%d-%H%M%S%3f"));
        self.store
            .put(
                &self.raw.clone().join(name.as_str()),
                PutPayload::from(to_parquet(&batch)),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Changes as a DMS CDC batch: `Op`, the row, the commit time.
pub fn cdc_batch(changes: &[Change]) -> RecordBatch {
    let column = |values: Vec<Option<String>>| Arc::new(StringArray::from(values)) as ArrayRef;
    RecordBatch::try_from_iter([
        (
            "Op",
            column(changes.iter().map(|c| Some(c.op.to_string())).collect()),
        ),
        (
            "probe",
            column(changes.iter().map(|c| Some(c.probe.clone())).collect()),
        ),
        (
            "seq",
            Arc::new(Int64Array::from_iter_values(changes.iter().map(|c| c.seq))) as ArrayRef,
        ),
        (
            "written_at",
            Arc::new(TimestampMicrosecondArray::from(
                changes.iter().map(|c| c.written_at).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            COMMIT_TIME_COLUMN,
            column(
                changes
                    .iter()
                    .map(|c| Some(c.commit_time.clone()))
                    .collect(),
            ),
        ),
    ])
    .unwrap()
}

/// The ETL side: raw files → Delta appends.
struct CuratedWriter {
    store: Arc<dyn ObjectStore>,
    raw: StorePath,
    table: PathBuf,
    delay: Duration,
    control: Arc<Control>,
}

impl CuratedWriter {
    async fn run(self) {
        let mut seen: BTreeSet<StorePath> = BTreeSet::new();
        let mut waiting: Vec<(tokio::time::Instant, StorePath)> = Vec::new();
        let mut table: Option<deltalake::DeltaTable> = None;
        loop {
            tokio::time::sleep(TICK).await;
            if self.control.curated_stopped.load(Ordering::SeqCst) {
                continue;
            }
            use futures::TryStreamExt;
            let listed: Vec<_> = match self.store.list(Some(&self.raw)).try_collect().await {
                Ok(listed) => listed,
                // The replicator has written nothing yet.
                Err(_) => continue,
            };
            for meta in listed {
                if seen.insert(meta.location.clone()) {
                    waiting.push((tokio::time::Instant::now(), meta.location));
                }
            }
            let due: Vec<StorePath> = waiting
                .iter()
                .filter(|(at, _)| at.elapsed() >= self.delay)
                .map(|(_, path)| path.clone())
                .collect();
            if due.is_empty() {
                continue;
            }
            waiting.retain(|(_, path)| !due.contains(path));
            match self.append(table.take(), &due).await {
                Ok(written) => table = Some(written),
                Err(e) => return self.control.fail("curated writer", e),
            }
        }
    }

    /// Appends the inserted and updated rows of `files` to the Delta table in one commit.
    async fn append(
        &self,
        table: Option<deltalake::DeltaTable>,
        files: &[StorePath],
    ) -> Result<deltalake::DeltaTable, String> {
        use deltalake::protocol::SaveMode;
        let mut rows = Vec::new();
        for file in files {
            for batch in read_parquet(self.store.as_ref(), file).await? {
                rows.push(curate(&batch));
            }
        }
        let Some(first) = rows.first() else {
            return table.ok_or_else(|| "no rows".to_string());
        };
        let all = concat_batches(&first.schema(), &rows).map_err(|e| e.to_string())?;
        let table = match table {
            Some(table) => table,
            None => {
                std::fs::create_dir_all(&self.table).map_err(|e| e.to_string())?;
                let url = url::Url::from_directory_path(&self.table).unwrap();
                deltalake::DeltaTable::try_from_url(url)
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        table
            .write(vec![all])
            .with_save_mode(SaveMode::Append)
            .await
            .map_err(|e| e.to_string())
    }
}

/// A raw batch as the curated table keeps it: inserts and updates, `probe`, `seq`,
/// `written_at` (UTC), and when the ETL wrote it.
fn curate(raw: &RecordBatch) -> RecordBatch {
    let ops = raw
        .column_by_name("Op")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let keep = datafusion::arrow::array::BooleanArray::from_iter(
        ops.iter().map(|op| Some(op != Some("D"))),
    );
    let kept = datafusion::arrow::compute::filter_record_batch(raw, &keep).unwrap();
    let written_at = kept
        .column_by_name("written_at")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap()
        .clone()
        .with_timezone("UTC");
    let now = Utc::now().timestamp_micros();
    RecordBatch::try_from_iter([
        ("probe", kept.column_by_name("probe").unwrap().clone()),
        ("seq", kept.column_by_name("seq").unwrap().clone()),
        ("written_at", Arc::new(written_at) as ArrayRef),
        (
            "etl_timestamp",
            Arc::new(
                TimestampMicrosecondArray::from(vec![now; kept.num_rows()]).with_timezone("UTC"),
            ) as ArrayRef,
        ),
    ])
    .unwrap()
}
