//! lakecheck proves a data lake matches its source: rule files describe checks, sources answer
//! SQL where the data lives, and reports (console, JUnit, HTML, JSON) tell people and CI.
//!
//! Data flows one way. `app` (called by `main`) loads rule files with `rules`, which looks up
//! each `type:` in the `registry` and builds the declared `sources` (handing them the SQL
//! functions they need) and `checks`; `runner` evaluates every check through a `probe` on its
//! sources (`table_match` through the `reconcile` diff), gathers `results`, and `report`
//! renders them.
//!
//! Modules are layered; each imports only from layers below it, and
//! `tests/it/layers.rs` fails on any import circle:
//!
//! ```text
//! demo      the AutoCorp demo (throwaway PostgreSQL, a lake written from the same data)
//! app       one run: rule files → runner → history, reports, exit code
//! history   the run history: each run appended to a Delta table, read back per check
//! report    console, JUnit, HTML, JSON, Markdown: pure functions of the results
//! runner    selects and evaluates checks, times them, builds the results
//! results   what a run found: one struct per check, suite and run
//! rules     rule files: YAML → resolved sources and checks, every mistake located
//! registry  every check kind, source kind, table format, and the functions sources get
//! checks    one file per check kind: options, evaluation, finding
//! reconcile the segmented row diff, and the DataFusion canon / row-hash functions
//! probe     a check's access to its sources (and the run's clock) while it runs; why a check
//!           could not run
//! sources   where data lives: PostgreSQL; lakes of tables in a table format (Parquet,
//!           CSV, DMS, Delta, Hudi), the lake knowing no format
//! model     shared vocabulary (imports nothing): rule locations and errors, the map reader,
//!           columns and logical types, rows, the canon, table references, SQL quoting
//! ```

pub mod app;
pub mod checks;
pub mod demo;
pub mod history;
pub mod model;
pub mod probe;
pub mod reconcile;
pub mod registry;
pub mod report;
pub mod results;
pub mod rules;
pub mod runner;
pub mod sources;
