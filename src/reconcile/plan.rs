//! What a reconcile compares, resolved from the rule and both schemas (`checks::table_match`
//! builds it): the two [`Side`]s, the canon of each column, the key, how rows are grouped
//! into segments, and how long differing keys may settle.

use std::sync::Arc;
use std::time::Duration;

use crate::model::canon::Canon;
use crate::model::row_hash::Hashing;
use crate::model::{Column, TableRef};
use crate::sources::Source;

/// Segments a table is cut into. Enough that a difference pins a small segment in large
/// tables, few enough that the checksum lists stay tiny.
pub const SEGMENTS: i64 = 8192;

/// One side of a comparison, resolved.
pub struct Side {
    pub table: TableRef,
    /// The table the SQL reads: `table`'s own, or its all-text twin (`Source::text_twin`).
    pub read_as: String,
    pub source: Arc<dyn Source>,
    pub filter: Option<String>,
    /// Compared columns of this side, in comparison order (key columns first).
    pub columns: Vec<Column>,
    /// The engine enforces this key unique and not NULL (a primary key): no NULL keys or
    /// duplicates to look for on this side.
    pub key_enforced: bool,
}

/// What to compare, resolved from the rule and both schemas.
pub struct Plan {
    pub left: Side,
    pub right: Side,
    /// Encoding of each compared column (same order as `Side::columns`).
    pub canons: Vec<Canon>,
    /// The row hash both sides compute: typed unless a side's engine cannot.
    pub hashing: Hashing,
    /// How many leading columns form the key.
    pub key_len: usize,
    pub samples: usize,
    pub segmenter: Segmenter,
    /// Compare rows as multisets (`allow_duplicates: true`) instead of failing on repeated keys.
    pub allow_duplicates: bool,
    /// Re-read differing keys until both sides agree (`settle`), for tables written live;
    /// `None` compares once.
    pub settle: Option<Settle>,
    /// Stop reading rows once more differences than this are certain (`max_differences`): a
    /// badly mismatched table is reported as such without reading it again chunk after chunk.
    pub max_differences: u64,
}

/// Differences a reconcile looks for before it stops reading rows, unless the rule says.
pub const MAX_DIFFERENCES: u64 = 100_000;

/// How long a comparison lets differing keys settle, and how often it looks again (`settle`,
/// `settle_interval`): rows of a live change stream can be on one side and not yet on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// The longest wait after the diff, measured from when its rows were read.
    pub within: Duration,
    /// The pause before each re-read (the last one is cut short to end at `within`).
    pub interval: Duration,
}

/// How rows are grouped into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segmenter {
    /// Ranges of a single integer key: no hashing to place a row, and an index can serve a
    /// range. Segment `s` holds the keys `min + s * width ..= min + (s + 1) * width - 1`.
    KeyRange { min: i64, width: i64 },
    /// Buckets of the key's hash: works for any key.
    KeyHash,
}
