//! Where data lives. Each source kind is one file plus one line in `registry::SOURCE_KINDS`.
//!
//! A source answers SQL: Postgres runs it on the server, lake sources run it in DataFusion over
//! object storage. Checks generate SQL that both engines accept and never touch files directly.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::logical_expr::ScalarUDF;

use crate::model::{Canon, Column, MapReader, Rows, RuleError};
use changes::{ChangePosition, Changes, HeartbeatMarker};
use table_format::{NewestTime, TableError, TableFormatKind};

pub mod athena;
pub mod changes;
pub mod delta;
pub mod dms;
pub mod files;
pub mod glue;
pub mod hudi;
pub mod lake;
pub mod memory;
pub mod pin;
pub mod postgres;
mod postgres_canon;
pub mod postgres_pool;
pub mod postgres_tls;
pub mod retries;
pub mod table_format;

/// Reads a source's options into a ready (not yet connected) source, built with `context`.
pub type ParseSource = fn(
    name: &str,
    options: &mut MapReader,
    context: &SourceContext,
) -> Result<Arc<dyn Source>, RuleError>;

/// What a source is built with besides its own options: the SQL functions its engine must
/// know (lakecheck's canon and row hash, from `reconcile::udf`), handed over by whoever builds
/// sources (`registry::source_context`), as DataFusion's `SessionStateBuilder` takes functions.
/// Sources never reach up for them, so `sources` stays below `reconcile`.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// Scalar functions every DataFusion session of a source registers.
    pub functions: Vec<Arc<ScalarUDF>>,
    /// The table formats a lake source may name (`registry::TABLE_FORMATS`).
    pub formats: &'static [TableFormatKind],
    /// The table format the source type itself names (`type: delta`), if any.
    pub format: Option<&'static TableFormatKind>,
    /// What every source of one run shares, whichever rule file declares it.
    pub resources: RunResources,
}

/// What the sources of one run share across rule files: limits that hold for the whole run, not
/// per file (connections to one server, memory). Cheap to clone: every field is shared.
#[derive(Debug, Clone, Default)]
pub struct RunResources {
    /// The one memory pool and spill directory of every lake session (`--memory-limit`; by
    /// default a share of RAM, see `memory.rs`).
    pub memory: memory::RunMemory,
    /// One connection pool per PostgreSQL server (host, port, database, user), capped at the
    /// smallest `max_connections` of the sources naming it.
    pub postgres: Arc<postgres_pool::PostgresServers>,
}

impl RunResources {
    /// Resources whose lake sessions share a pool of `limit` (`--memory-limit`).
    pub fn with_memory_limit(limit: memory::MemoryLimit) -> Self {
        Self {
            memory: memory::RunMemory::new(limit),
            ..Self::default()
        }
    }
}

/// A kind of source that a rule file can declare with `type: <name>`.
pub struct SourceKind {
    pub name: &'static str,
    /// Reads the source's options. Must not connect to anything: `validate` calls it too.
    pub parse: ParseSource,
}

/// What one query cost where the engine bills by the query (Athena), as the engine reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueryCost {
    /// The engine's id of the execution, to find it in its console or audit log.
    pub execution_id: String,
    /// Bytes the query scanned: what Athena bills (at least 10 MB a query).
    pub bytes_scanned: u64,
    /// Time the engine spent on it, in milliseconds.
    pub engine_ms: u64,
}

/// How many bytes one query may still scan where the engine bills by bytes scanned, and
/// whose `max_scanned` that is, for the message when a query is stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanLimit {
    pub bytes: u64,
    /// e.g. "the check's `max_scanned`", "source `athena`'s `max_scanned`".
    pub owner: String,
}

impl ScanLimit {
    /// The tighter of two optional limits.
    pub fn tighter(a: Option<ScanLimit>, b: Option<ScanLimit>) -> Option<ScanLimit> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.bytes < a.bytes { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// A place that holds tables and answers read-only SQL about them.
#[async_trait]
pub trait Source: Send + Sync + fmt::Debug {
    /// The name the rule file gave this source.
    fn name(&self) -> &str;
    /// The source kind (`postgres`, `lake`).
    fn kind(&self) -> &'static str;
    /// Where it points, for messages and reports. Never contains credentials.
    fn describe(&self) -> String;
    /// SQL that names `table` in this engine, quoted.
    fn table_sql(&self, table: &str) -> String;
    /// Runs one read-only query and returns every row rendered as text.
    async fn query(&self, sql: &str) -> Result<Rows, SourceError>;
    /// [`Source::query`] with what the engine billed for it, where it bills by the query;
    /// there the query is refused or stopped past `limit` (sources that do not bill ignore it).
    async fn costed_query(
        &self,
        sql: &str,
        _limit: Option<&ScanLimit>,
    ) -> Result<(Rows, Option<QueryCost>), SourceError> {
        Ok((self.query(sql).await?, None))
    }
    /// The columns of `table`, in table order, with their types.
    async fn columns(&self, table: &str) -> Result<Vec<Column>, SourceError>;
    /// The primary-key columns of `table`, where the source knows them.
    async fn primary_key(&self, _table: &str) -> Result<Option<Vec<String>>, SourceError> {
        Ok(None)
    }
    /// Column sets the engine itself keeps unique in `table` (primary keys, unique indexes):
    /// a reconcile need not look for duplicate keys on such a side.
    async fn unique_keys(&self, _table: &str) -> Result<Vec<Vec<String>>, SourceError> {
        Ok(Vec::new())
    }
    /// The name of a twin of `table` whose columns are all the text stored in the files, for
    /// formats that keep only text (CSV): reconciling checks read that twin and compare each
    /// column by the other side's canon instead of by an inferred type.
    fn text_twin(&self, _table: &str) -> Option<String> {
        None
    }
    /// SQL for the canonical field of `column` (see `model::canon`), NULL as `~`.
    fn canonical_sql(&self, column: &Column, canon: Canon) -> String;
    /// Commit metadata of `table` (version, last commit time, commits, files, bytes) where the
    /// table format keeps a history.
    async fn table_metadata(&self, _table: &str) -> Result<Option<serde_json::Value>, SourceError> {
        Ok(None)
    }
    /// The newest change `table` records of itself where its format keeps no commit history
    /// (AWS DMS: the newest change file). `None` for sources and formats without such a record;
    /// Delta and Hudi report their last commit in [`Source::table_metadata`].
    async fn newest_change(&self, _table: &str) -> Result<Option<NewestTime>, SourceError> {
        Ok(None)
    }
    /// The newest object (by its last-modified time) at any depth below `table`'s folder: when
    /// data last arrived. `None` for sources that keep no files (PostgreSQL); a folder without
    /// objects is an error.
    async fn newest_object(&self, _table: &str) -> Result<Option<NewestTime>, SourceError> {
        Ok(None)
    }
    /// A limit on what `table` can prove, e.g. insert-only change capture that hides updates
    /// and deletes. Reconciling checks refuse such tables instead of reporting false mismatches.
    async fn caveat(&self, _table: &str) -> Result<Option<String>, SourceError> {
        Ok(None)
    }
    /// SQL for the row hash over `columns` seeded by the SQL expression `seed`
    /// (`model::row_hash`, `Hashing::Typed`).
    fn row_hash_sql(&self, columns: &[(&Column, Canon)], seed: &str) -> String;
    /// Whether the engine computes the typed row hash ([`Source::row_hash_sql`]); a reconcile
    /// with a side that cannot hashes both sides' canonical text instead (`Hashing::Text`).
    fn typed_row_hash(&self) -> bool {
        true
    }
    /// SQL for `model::row_hash::md5_int64` of the text expression `text`: the first 8 bytes
    /// of the MD5 of its UTF-8 bytes as a big-endian signed BIGINT.
    fn md5_int64_sql(&self, text: &str) -> String;
    /// SQL for the bitwise AND of two BIGINT expressions.
    fn bitwise_and_sql(&self, left: &str, right: &str) -> String {
        format!("{left} & {right}")
    }
    /// SQL for a BIGINT expression shifted right by `bits`, keeping its sign.
    fn shift_right_sql(&self, value: &str, bits: u32) -> String {
        format!("{value} >> {bits}")
    }
    /// SQL true where the text expression `text` matches the regex literal `regex` (written in
    /// the dialect `checks::pattern::dialect` keeps portable).
    fn regex_match_sql(&self, text: &str, regex: &str) -> String {
        format!("{text} ~ {regex}")
    }
    /// SQL applying aggregate `function` (`min`, `max`) to `column`, ordering text bytewise so
    /// both engines agree on which value is smallest.
    fn ordered_aggregate_sql(&self, function: &str, column: &Column) -> String {
        format!(
            "{function}({})",
            crate::model::sql::quote_ident(&column.name)
        )
    }
    /// Forgets what is cached of `table`, so the next read sees its current state: a live
    /// table re-read while rows arrive (`settle`, probes). Pinned references stay as they are.
    async fn refresh(&self, _table: &str) {}
    /// Finishes what the source still has under way once every check has ended (Athena:
    /// stopping the queries of checks that ran past their timeout).
    async fn end_of_run(&self) {}
    /// How many queries over disjoint parts of a table are worth running at once.
    async fn parallel_queries(&self) -> usize {
        1
    }
    /// What arrived in `table` after `from` (see `changes.rs`), reading only what is new: DMS
    /// CDC files, Delta versions, Hudi instants. Tables without a change history say so.
    async fn changes(
        &self,
        _table: &str,
        _from: &ChangePosition,
    ) -> Result<Changes<Rows>, SourceError> {
        Err(SourceError::named(
            self.name(),
            self.describe(),
            changes::no_change_history(self.kind()),
        ))
    }
    /// The table heartbeat markers may be written to, schema-qualified, when the rule opted in
    /// (`heartbeat:` of a postgres source); `None` for every source that takes no writes.
    fn heartbeat_table(&self) -> Option<String> {
        None
    }
    /// The SQL [`Source::write_heartbeat`] runs for `probe`, as the report shows it.
    fn heartbeat_sql(&self, _probe: &str) -> Option<String> {
        None
    }
    /// Writes one heartbeat marker for `probe` in its own short read-write transaction: the only
    /// write lakecheck ever makes to a source, and only to one that opted in.
    async fn write_heartbeat(&self, _probe: &str) -> Result<HeartbeatMarker, SourceError> {
        Err(SourceError::named(
            self.name(),
            self.describe(),
            format!(
                "{} sources take no heartbeat writes; name a postgres source with `heartbeat:`",
                self.kind()
            ),
        ))
    }
}

/// A source that could not answer, with the source named and the cause in words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("source `{source_name}` ({description}): {cause}")]
pub struct SourceError {
    pub source_name: String,
    pub description: String,
    pub cause: String,
    /// The typed cause when a lake table could not be opened (missing, unreachable, no such
    /// version), for callers that decide by what went wrong rather than by the message.
    pub table: Option<Box<TableError>>,
}

impl SourceError {
    pub fn new(source: &dyn Source, cause: impl Into<String>) -> Self {
        Self::named(source.name(), source.describe(), cause)
    }

    /// An error of the source called `name`, described as `description`: for a source's default
    /// methods, which cannot pass themselves as `&dyn Source`.
    pub fn named(name: &str, description: String, cause: impl Into<String>) -> Self {
        Self {
            source_name: name.to_string(),
            description,
            cause: cause.into(),
            table: None,
        }
    }

    /// A lake table that could not be opened.
    pub fn table(source: &dyn Source, error: TableError) -> Self {
        Self {
            table: Some(Box::new(error.clone())),
            ..Self::new(source, error.to_string())
        }
    }
}

/// The sources declared in one rule file, by name.
#[derive(Debug, Clone, Default)]
pub struct SourceSet {
    by_name: BTreeMap<String, Arc<dyn Source>>,
}

impl SourceSet {
    pub fn insert(&mut self, source: Arc<dyn Source>) {
        self.by_name.insert(source.name().to_string(), source);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Source>> {
        self.by_name.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Source>> {
        self.by_name.values()
    }
}
