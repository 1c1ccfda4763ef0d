//! Exact cross-engine reconciliation: the segmented diff that `table_match` runs, and the
//! DataFusion functions that compute the canon and row hash (`model::canon`,
//! `model::row_hash`) on the lake side. The registry hands those functions to sources when
//! they are built; nothing in `sources` imports this module.

pub mod diff;
pub mod udf;
