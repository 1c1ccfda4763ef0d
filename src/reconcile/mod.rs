//! Exact cross-engine reconciliation: the segmented diff that `table_match` runs, and the
//! DataFusion functions that compute the canon and row hash (`model::canon`,
//! `model::row_hash`) on the lake side. The registry hands those functions to sources when
//! they are built; nothing in `sources` imports this module.
//!
//! - `plan`: what to compare ([`Plan`], resolved by the check from the rule and both schemas)
//! - `diff`: the comparison, step by step ([`compare`])
//! - `segment_sql`: the SQL of each step, as text
//! - `segments`: each step's queries run through the probe, their answers read
//! - `matching`: the decisions, pure: differing segments, chunks, pairing rows by key
//! - `settle`: on live tables, which differing keys are read again and what the looks showed
//! - `udf`: the lake side's canon and row-hash SQL functions

mod diff;
mod matching;
mod plan;
mod segment_sql;
mod segments;
mod settle;
pub mod udf;

pub use diff::compare;
pub use matching::{Capped, Difference, DifferingKey, Outcome, Unpairable};
pub use plan::{Plan, Segmenter, Settle, Side, MAX_DIFFERENCES, SEGMENTS};
pub use settle::{Settled, SETTLE_KEYS};
