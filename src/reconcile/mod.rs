//! Exact cross-engine reconciliation: canonical values, the shared hash, and the DataFusion
//! functions that compute them on the lake side.

pub mod canonical;
pub mod diff;
pub mod hash;
pub mod row_hash;
pub mod udf;

pub use canonical::Canon;
