//! Integration tests: one binary (linking is the slow part), one module per area. Every test
//! runs against real servers the harness starts: a throwaway PostgreSQL and an S3 server
//! (moto) on 127.0.0.1, plus a local lake written from the same AutoCorp data.

mod cdc;
mod checks;
mod cli;
mod delta;
mod dms;
mod errors;
mod exactness;
mod exactness_property;
mod fixtures;
mod harness;
mod hudi;
mod layers;
mod reconcile;
mod reports;
mod rule_errors;
