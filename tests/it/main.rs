//! Integration tests: one binary (linking is the slow part), one module per area. Every test
//! runs against a local lake written from the AutoCorp data, and against the real servers it
//! names, which the harness starts once for the whole binary: a throwaway PostgreSQL and an S3
//! server (moto) on 127.0.0.1, loaded from the same data. Tests of the local lake start none.

// The AWS SDK's futures nest deeply: a test awaiting several Glue calls and a CLI run passes the
// default query depth of 128 when its future's layout is computed (in some builds only).
#![recursion_limit = "256"]

mod athena;
mod browser;
mod cdc;
mod checks;
mod cli;
mod delta;
mod dms;
mod errors;
mod exactness;
mod exactness_property;
mod failures;
mod fixtures;
mod freshness;
mod harness;
mod history;
mod hostile_names;
mod hudi;
mod lake_faults;
mod layers;
mod pattern;
mod pg_faults;
mod postgres_safety;
mod reconcile;
mod relationships;
mod reports;
mod rule_errors;
mod rule_fuzz;
mod secrets;
mod settle;
mod shared_scan;
mod volume_buckets;
