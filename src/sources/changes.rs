//! The seam a change-data probe (`cdc_latency`) works through: one marker row written to a
//! PostgreSQL source, and the changes that carry it downstream.
//!
//! [`HeartbeatMarker`] is what `Source::write_heartbeat` left in the source: the only write
//! lakecheck ever makes, opted into per source. [`Changes`] is what arrived in a lake table after
//! a [`ChangePosition`] (`Source::changes`): formats with a change history answer it reading only
//! what is new. DMS lists CDC files from an offset past the last file seen (their names are the
//! times DMS wrote them), Delta reads the commits after the last version seen, Hudi the instants
//! after the last one seen. A first call starts from a time, which each format turns into a
//! position of its own.

use chrono::{DateTime, Utc};

/// The heartbeat table's columns: the probe that wrote a row (text), its sequence number
/// (bigint, one above the probe's previous row) and `clock_timestamp()` at the write
/// (timestamptz). A pipeline must carry the first two to every stage; `written_at` lets a probe
/// tell a lost marker from a late one.
pub const PROBE_COLUMN: &str = "probe";
pub const SEQ_COLUMN: &str = "seq";
pub const WRITTEN_AT_COLUMN: &str = "written_at";

/// The marker row one heartbeat write left in a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatMarker {
    /// The table written, schema-qualified as the source names it (`public.lakecheck_heartbeat`).
    pub table: String,
    /// The probe id the row carries.
    pub probe: String,
    /// The row's sequence number: one above the probe's previous row.
    pub seq: i64,
    /// `clock_timestamp()` inside the writing transaction, on the source's clock.
    pub written_at: DateTime<Utc>,
    /// A time by which the transaction had committed: the source's clock read after `COMMIT`
    /// returned. A row written after it was committed after the marker.
    pub committed_by: DateTime<Utc>,
    /// The probe's previous row (sequence number, `written_at`), if it has one.
    pub previous: Option<(i64, DateTime<Utc>)>,
}

/// Why a table of `kind` (a source kind or table format) cannot be polled for changes.
pub fn no_change_history(kind: &str) -> String {
    format!(
        "{kind} tables keep no change history to poll; a stage must be a DMS raw folder \
         (`layout: dms`), a Delta or a Hudi table"
    )
}

/// Where a call for changes starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangePosition {
    /// What landed at or after this time (a first call).
    Since(DateTime<Utc>),
    /// What landed after a position an earlier call returned.
    After(ChangeCursor),
}

/// A position in one table's change history, in its format's own terms (the last DMS file read,
/// the last Delta version, the last Hudi completion time). Only the format that made it reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeCursor(pub(crate) String);

/// One file or commit that landed in a table, with its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival<T> {
    /// Where: the CDC file (`…/20261121-080002153.parquet`), `version 7`, `instant 20261121…`.
    pub found_in: String,
    /// When it landed, UTC: the time a DMS CDC file's name encodes (when DMS wrote it), a Delta
    /// commit's time (its in-commit timestamp, else its log file's time, as time travel reads
    /// it), a Hudi instant's completion time.
    pub landed_at: DateTime<Utc>,
    pub rows: T,
}

/// What arrived in a table after a position, oldest first, and where to continue.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes<T> {
    pub arrivals: Vec<Arrival<T>>,
    /// The position of the next call: past the last arrival, or the same one when nothing
    /// arrived.
    pub next: ChangePosition,
}

impl<T> Changes<T> {
    /// The same arrivals with their rows converted by `convert`.
    pub fn try_map<U, E>(
        self,
        mut convert: impl FnMut(T) -> Result<U, E>,
    ) -> Result<Changes<U>, E> {
        let arrivals = self
            .arrivals
            .into_iter()
            .map(|a| {
                Ok(Arrival {
                    found_in: a.found_in,
                    landed_at: a.landed_at,
                    rows: convert(a.rows)?,
                })
            })
            .collect::<Result<_, E>>()?;
        Ok(Changes {
            arrivals,
            next: self.next,
        })
    }
}
