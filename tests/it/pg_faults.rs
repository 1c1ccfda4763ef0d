//! PostgreSQL failing under a run: down before it starts, killed mid-check, too slow, refusing a
//! table, missing a table or column, a check past its own `timeout`. Each time the affected check
//! is an `error` naming the source and the cause, the unaffected checks of the same run still
//! run, every report is written, the run exits 2, and nothing hangs.
//!
//! Each test starts a server of its own (`victim`): some of them stop it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lakecheck::app::{self, RunOptions};
use lakecheck::demo::ThrowawayPostgres;
use lakecheck::probe::Clock;
use lakecheck::results::{RunReport, Status, EXIT_ERROR};
use lakecheck::runner::Selection;
use tokio_postgres::NoTls;

use crate::harness::{
    assert_names, assert_status, error_of, local_world, parse_rules, result, World,
};

/// A throwaway server with database `shop`: `orders` (50,000 rows), `secret` (readable only by
/// its owner), `slow` (a view that takes 30 s to answer), and a role `reader` that may read
/// `orders` and `slow` but not `secret`.
async fn victim() -> ThrowawayPostgres {
    let cluster = tokio::task::spawn_blocking(ThrowawayPostgres::start)
        .await
        .unwrap()
        .expect("throwaway postgres");
    let admin = connect(&cluster.url("postgres")).await;
    admin.batch_execute("CREATE DATABASE shop").await.unwrap();
    let shop = connect(&cluster.url("shop")).await;
    shop.batch_execute(
        "CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2) NOT NULL);
         INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 50000) g;
         CREATE TABLE secret (id int PRIMARY KEY);
         INSERT INTO secret VALUES (1);
         CREATE VIEW slow AS SELECT o.* FROM orders o, (SELECT pg_sleep(30)) AS s;
         CREATE ROLE reader LOGIN;
         GRANT SELECT ON orders, slow TO reader;
         REVOKE ALL ON secret FROM PUBLIC;",
    )
    .await
    .unwrap();
    cluster
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Rule-file text for `checks` with the world's lake sources and the victim server declared as
/// source `victim` at `url`.
fn rules_text(world: &World, url: &str, checks: &str) -> String {
    format!(
        "{}  victim: {{ type: postgres, url: \"{url}\", statement_timeout: 60s }}\nchecks:\n\
         \x20 - {{ name: lake_unaffected, type: row_count, table: lake.customers, min: 1 }}\n{checks}",
        world.sources_yaml()
    )
}

/// Runs `checks` as `lakecheck run` does, with every report written to a fresh folder: the exit
/// code, the report, and the folder.
async fn run_reported(
    world: &World,
    url: &str,
    checks: &str,
) -> (u8, RunReport, tempfile::TempDir) {
    let file = parse_rules("faults.yml", &rules_text(world, url, checks), &world.vars());
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        selection: Selection::default(),
        jobs: 4,
        outputs: app::report_outputs(dir.path(), &[]),
        verbose: false,
        clock: Clock::System,
        history: None,
        failures: None,
    };
    let (code, report) = app::execute(&[file], &options).await;
    (code, report.expect("checks were planned"), dir)
}

/// What every fault run shows besides its own cause: the lake check passed, every report was
/// written and states the error, and the run exits 2.
fn assert_survived(code: u8, report: &RunReport, reports: &tempfile::TempDir) {
    assert_status(result(report, "lake_unaffected"), Status::Pass);
    assert_eq!(code, EXIT_ERROR);
    assert_eq!(report.exit_code, EXIT_ERROR);
    for file in [
        "junit.xml",
        "lakecheck.html",
        "lakecheck.json",
        "summary.md",
    ] {
        let path: PathBuf = reports.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("could not run"), "{file} states no error");
    }
}

#[tokio::test]
async fn postgres_down_before_the_run() {
    let world = local_world().await;
    let mut cluster = victim().await;
    let url = cluster.url("shop");
    cluster.stop();
    let (code, report, dir) = run_reported(
        &world,
        &url,
        "  - { name: orders, type: row_count, table: victim.orders, min: 1 }\n",
    )
    .await;
    assert_names(
        error_of(&report, "orders"),
        &["source `victim`", "cannot connect", "refused"],
    );
    assert_survived(code, &report, &dir);
}

#[tokio::test]
async fn postgres_killed_during_a_reconcile() {
    let world = local_world().await;
    let cluster = Arc::new(Mutex::new(victim().await));
    let url = cluster.lock().unwrap().url("shop");
    let killer = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            // The reconcile's checksum queries on `slow` take 30 s: stop the server under them.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            tokio::task::spawn_blocking(move || cluster.lock().unwrap().stop())
                .await
                .unwrap();
        })
    };
    let (code, report, dir) = run_reported(
        &world,
        &url,
        "  - { name: reconcile, type: table_match, left: victim.orders, right: victim.slow, key: [id] }\n",
    )
    .await;
    killer.await.unwrap();
    let error = error_of(&report, "reconcile");
    assert_names(error, &["source `victim`"]);
    assert!(
        [
            "terminating connection",
            "connection closed",
            "unexpected EOF",
            "cannot connect"
        ]
        .iter()
        .any(|cause| error.contains(cause)),
        "the cause is the lost server: {error}"
    );
    assert!(
        result(&report, "reconcile").duration_ms < 25_000,
        "the check ended when the server went away, not when the query would have"
    );
    assert_survived(code, &report, &dir);
}

#[tokio::test]
async fn permission_denied_and_missing_tables_and_columns_are_errors_naming_them() {
    let world = local_world().await;
    let cluster = victim().await;
    let url = cluster.url("shop").replace("lakecheck@", "reader@");
    let (code, report, dir) = run_reported(
        &world,
        &url,
        "  - { name: readable, type: row_count, table: victim.orders, min: 50000 }\n\
         \x20 - { name: forbidden, type: row_count, table: victim.secret, min: 1 }\n\
         \x20 - { name: no_table, type: row_count, table: victim.refunds, min: 1 }\n\
         \x20 - { name: no_column, type: not_null, table: victim.orders, columns: [refunded_at] }\n",
    )
    .await;
    assert_status(result(&report, "readable"), Status::Pass);
    assert_names(
        error_of(&report, "forbidden"),
        &["source `victim`", "permission denied for table secret"],
    );
    assert_names(
        error_of(&report, "no_table"),
        &["source `victim`", "refunds", "does not exist"],
    );
    assert_names(
        error_of(&report, "no_column"),
        &["source `victim`", "refunded_at", "does not exist"],
    );
    assert_survived(code, &report, &dir);
}

#[tokio::test]
async fn a_statement_past_the_statement_timeout_is_an_error() {
    let world = local_world().await;
    let cluster = victim().await;
    let checks = "  - { name: slow, type: row_count, table: impatient.slow, min: 1 }\n";
    let text = rules_text(&world, &cluster.url("shop"), checks).replace(
        "checks:\n",
        &format!(
            "  impatient: {{ type: postgres, url: \"{}\", statement_timeout: 300ms }}\nchecks:\n",
            cluster.url("shop")
        ),
    );
    let file = parse_rules("faults.yml", &text, &world.vars());
    let report = crate::harness::run_files(&[file]).await;
    assert_names(
        error_of(&report, "slow"),
        &["source `impatient`", "statement timeout"],
    );
    assert_status(result(&report, "lake_unaffected"), Status::Pass);
}

/// The lakecheck sessions running on `cluster` and what each runs.
async fn lakecheck_backends(monitor: &tokio_postgres::Client) -> Vec<String> {
    monitor
        .query(
            "SELECT state || ': ' || query FROM pg_stat_activity \
             WHERE application_name = 'lakecheck' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn a_check_past_its_timeout_is_stopped_and_its_query_cancelled_on_the_server() {
    let world = local_world().await;
    let cluster = victim().await;
    let monitor = connect(&cluster.url("shop")).await;
    let (code, report, dir) = run_reported(
        &world,
        &cluster.url("shop"),
        "  - { name: sleepy, type: sql, source: victim, query: \"SELECT 1 AS failing FROM pg_sleep(30)\", timeout: 1s }\n\
         \x20 - { name: lake_slow, type: sql, source: lake, timeout: 1s, query: \"SELECT a.customer_id FROM customers a, customers b, customers c WHERE a.customer_id + b.customer_id + c.customer_id = -1\" }\n",
    )
    .await;
    for name in ["sleepy", "lake_slow"] {
        assert_names(
            error_of(&report, name),
            &[
                "did not finish within its timeout of 1s",
                "raise `timeout:`",
            ],
        );
        let check = result(&report, name);
        assert!(
            check.duration_ms < 20_000,
            "{name} was stopped at its timeout"
        );
        assert!(
            check.queries.iter().any(|q| q
                .error
                .as_deref()
                .is_some_and(|e| e.contains("stopped before it finished"))),
            "{name}: the query it left running is reported as stopped: {:?}",
            check.queries
        );
    }
    assert_survived(code, &report, &dir);
    // The server stops the cancelled statement; no lakecheck backend is left running it.
    let mut left = lakecheck_backends(&monitor).await;
    for _ in 0..50 {
        if !left.iter().any(|b| b.contains("pg_sleep")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = lakecheck_backends(&monitor).await;
    }
    assert!(
        !left.iter().any(|b| b.contains("pg_sleep")),
        "a lakecheck backend still runs the stopped query: {left:?}"
    );
}
