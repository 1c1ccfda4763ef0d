//! The embedded default: `lakecheck demo` starts a throwaway Postgres, loads AutoCorp, writes a
//! local lake from the same data, runs `rules/autocorp.yml` and writes every report.

// The AutoCorp building blocks are the demo's own; only the tests and benchmarks reach them
// from outside, so they are public only with the `test-support` feature (on for `cargo test`).
#[cfg(feature = "test-support")]
pub mod autocorp;
#[cfg(not(feature = "test-support"))]
mod autocorp;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;

use crate::app::{self, RunOptions};
use crate::results::EXIT_ERROR;
use crate::rules::{self, Vars};
use crate::sources::memory::MemoryLimit;
use crate::sources::RunResources;
pub use autocorp::MAX_SCALE;
#[cfg(feature = "test-support")]
pub use autocorp::{start_autocorp_postgres, write_local_lake};
pub use postgres::ThrowawayPostgres;

/// The variable the demo sets to the number of sales orders it generated (1000 times `--scale`),
/// which `rules/autocorp.yml` reads for the CSV drop's expected row count.
pub const SALES_ORDER_ROWS_VAR: &str = "AUTOCORP_SALES_ORDER_ROWS";

/// The AutoCorp rule file compiled in, so the demo runs from any folder.
pub const EMBEDDED_RULES: &str = include_str!("../../rules/autocorp.yml");

/// Where the demo writes and what it runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub reports_dir: PathBuf,
    /// Rule file to run; `rules/autocorp.yml` when present, else the embedded copy.
    pub rules: Option<PathBuf>,
    pub jobs: usize,
    /// Keep the generated lake in this folder instead of a temporary one.
    pub lake_dir: Option<PathBuf>,
    /// Memory the lake sources share (`--memory-limit`); a share of RAM by default.
    pub memory_limit: Option<MemoryLimit>,
    /// Generate this many times the AutoCorp reference rows (`--scale`, 1 to [`MAX_SCALE`]).
    pub scale: usize,
}

/// Runs the whole demo and returns the run's exit code.
pub async fn run(options: DemoOptions) -> anyhow::Result<u8> {
    anyhow::ensure!(
        (1..=MAX_SCALE).contains(&options.scale),
        "demo scale {} is outside 1..={MAX_SCALE}; pass `--scale N` with N in that range",
        options.scale
    );
    let times = match options.scale {
        1 => String::new(),
        n => format!(" ({n}x the reference rows)"),
    };
    println!("lakecheck demo: generating AutoCorp{times} and starting a throwaway PostgreSQL ...");
    let tables = autocorp::generate_scaled(options.scale);
    let sales_orders = autocorp::table(&tables, "sales_order").num_rows();
    let cluster = autocorp::start_autocorp_postgres(&tables).await?;
    let temp_lake;
    let lake_dir = match &options.lake_dir {
        Some(dir) => dir.clone(),
        None => {
            temp_lake = tempfile::Builder::new()
                .prefix("lakecheck-lake-")
                .tempdir()?;
            temp_lake.path().to_path_buf()
        }
    };
    let lake_dir = std::path::absolute(&lake_dir)?;
    autocorp::write_local_lake(&lake_dir, &tables).await?;
    // Changes after the full load, captured the way DMS does (CDC files with `Op`).
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("autocorp"), tokio_postgres::NoTls).await?;
    let task = tokio::spawn(connection);
    let store = LocalFileSystem::new_with_prefix(&lake_dir)?;
    let changes = autocorp::cdc_changes(&tables);
    autocorp::apply_cdc(&client, &store, &StorePath::default(), &changes).await?;
    drop(client);
    let _ = task.await;
    autocorp::write_curated_delta(&lake_dir.join("curated"), &tables).await?;
    autocorp::write_curated_hudi(&lake_dir.join("curated-hudi"), &tables, &changes).await?;
    println!(
        "  postgres: 127.0.0.1:{} (database autocorp)\n  lake:     {}",
        cluster.port(),
        lake_dir.display()
    );

    let mut vars = Vars::new();
    vars.insert("LAKECHECK_PG_URL".into(), cluster.url("autocorp"));
    let lake_url = url::Url::from_directory_path(&lake_dir)
        .map_err(|_| anyhow::anyhow!("lake folder is not absolute"))?;
    vars.insert(
        "LAKECHECK_LAKE_URL".into(),
        lake_url.as_str().trim_end_matches('/').to_string(),
    );
    vars.insert(SALES_ORDER_ROWS_VAR.into(), sales_orders.to_string());
    let vars = Arc::new(vars);
    let default_rules = PathBuf::from("rules/autocorp.yml");
    let resources = options
        .memory_limit
        .map(RunResources::with_memory_limit)
        .unwrap_or_default();
    let loaded = match &options.rules {
        Some(path) => rules::load_paths_with(std::slice::from_ref(path), &vars, &resources),
        None if default_rules.is_file() => {
            rules::load_paths_with(&[default_rules], &vars, &resources)
        }
        None => rules::parse_rule_text_with(
            Path::new("rules/autocorp.yml (embedded)"),
            EMBEDDED_RULES,
            &vars,
            &resources,
        )
        .map(|f| vec![f]),
    };
    let files = match loaded {
        Ok(files) => files,
        Err(errors) => {
            for error in errors {
                eprintln!("{error}");
            }
            return Ok(EXIT_ERROR);
        }
    };
    let run_options = RunOptions {
        selection: Default::default(),
        jobs: options.jobs,
        outputs: app::report_outputs(&options.reports_dir, &[]),
        verbose: true,
        clock: Default::default(),
        history: None,
        failures: None,
    };
    let (exit, _) = app::execute(&files, &run_options).await;
    drop(cluster);
    println!("lakecheck demo: throwaway PostgreSQL stopped; exit code {exit}");
    Ok(exit)
}
