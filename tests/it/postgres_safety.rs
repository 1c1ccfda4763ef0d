//! Safe on production sources, the PostgreSQL connection side: TLS per `sslmode` against a
//! TLS-only server, one pool per server capped across rule files, idle connections closed,
//! session settings (`lock_timeout` and friends), queries cancelled on the server when dropped,
//! `parallel_queries` from the server's own settings, and no password in any message.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakecheck::demo::autocorp::load_postgres;
use lakecheck::demo::ThrowawayPostgres;
use lakecheck::probe::Clock;
use lakecheck::results::Status;
use lakecheck::rules::{load_paths, Vars};
use lakecheck::runner::{self, Selection};
use lakecheck::sources::postgres_tls::{TlsMode, TlsSettings};
use lakecheck::sources::Source;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rstest::rstest;
use tokio_postgres::{Client, NoTls};

use crate::harness::{
    assert_status, error_of, local_world, parse_rules, pg_world, result, run_files, World,
};

/// The application name every lakecheck session carries.
const LAKECHECK: &str = "lakecheck";

/// A plain connection to the shared test server, for watching what lakecheck does there.
async fn monitor(world: &World) -> Client {
    let (client, connection) = tokio_postgres::connect(&world.pg.url("autocorp"), NoTls)
        .await
        .expect("monitoring connection");
    tokio::spawn(connection);
    client
}

/// A login role of the test's own, so that its lakecheck sessions are told apart from those
/// of the tests running beside it on the shared server.
async fn role_url(world: &World, monitor: &Client, role: &str) -> String {
    monitor
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
             GRANT pg_read_all_data TO {role}"
        ))
        .await
        .expect("test role");
    format!("postgres://{role}@127.0.0.1:{}/autocorp", world.pg.port())
}

/// Backends of `role` whose application is lakecheck (and whose query matches `query_like`).
async fn lakecheck_backends(monitor: &Client, role: &str, query_like: &str) -> i64 {
    monitor
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND usename = $2 \
             AND query LIKE $3",
            &[&LAKECHECK, &role, &query_like],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// Polls until `role` has `wanted` lakecheck backends (matching `query_like`), for at most
/// 20 s; returns the last count seen.
async fn wait_for_backends(monitor: &Client, role: &str, query_like: &str, wanted: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count = lakecheck_backends(monitor, role, query_like).await;
        if count == wanted || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The shared server's `max_parallel_workers` (8 by default: not this machine's core count).
async fn server_parallel_workers(world: &World) -> usize {
    monitor(world)
        .await
        .query_one("SELECT current_setting('max_parallel_workers')::int", &[])
        .await
        .unwrap()
        .get::<_, i32>(0) as usize
}

/// Asserts `error` starts by naming the source (`start`) and says `cause`.
fn assert_error_names(error: &str, start: &str, cause: &str) {
    assert!(error.starts_with(start) && error.contains(cause), "{error}");
}

/// The single source `pg` of a rule file pointing at `url` with `options`.
fn postgres_source(url: &str, options: &str) -> Arc<dyn Source> {
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"{url}\"{options} }}\nchecks:\n  \
         - {{ type: sql, source: pg, query: \"SELECT 1 AS x WHERE false\" }}\n"
    );
    let file = parse_rules("tests/safety.yml", &text, &Arc::new(Vars::new()));
    file.sources.get("pg").expect("source pg").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_pool_per_server_caps_connections_across_rule_files() {
    const FILES: usize = 40;
    const CAP: i64 = 4;
    let world = pg_world().await;
    let monitor = Arc::new(monitor(&world).await);
    let url = role_url(&world, &monitor, "safety_pool").await;
    let folder = tempfile::tempdir().unwrap();
    for file in 0..FILES {
        // Every file names the same server; the smallest `max_connections` (4) is the cap.
        let max_connections = CAP as usize + file % 5;
        let text = format!(
            "sources:\n  pg: {{ type: postgres, url: \"{url}\", max_connections: {max_connections} }}\n\
             checks:\n\
             \x20 - {{ name: slow a {file}, type: sql, source: pg, query: \"SELECT 1 AS x FROM pg_sleep(0.2) WHERE random() < 0\" }}\n\
             \x20 - {{ name: slow b {file}, type: sql, source: pg, query: \"SELECT 1 AS x FROM pg_sleep(0.2) WHERE random() < 0\" }}\n"
        );
        std::fs::write(folder.path().join(format!("file{file:02}.yml")), text).unwrap();
    }
    let files = load_paths(&[folder.path().to_path_buf()], &Arc::new(Vars::new()))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(files.len(), FILES);

    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (monitor, done) = (monitor.clone(), done.clone());
        async move {
            let (mut most, mut samples) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                most = most.max(lakecheck_backends(&monitor, "safety_pool", "%").await);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (most, samples)
        }
    });
    let started = Instant::now();
    let planned = runner::plan(&files, &Selection::default()).expect("checks selected");
    let report = runner::run(&files, planned, 50, Clock::System, &|_| {}).await;
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (most, samples) = sampler.await.unwrap();
    println!(
        "{} checks, 50 jobs, cap {CAP}: at most {most} lakecheck connections in {samples} \
         samples; run took {took:.1?}",
        report.results().count()
    );
    assert_eq!(report.results().count(), FILES * 2);
    for check in report.results() {
        assert_status(check, Status::Pass);
    }
    assert_eq!(most, CAP, "the cap is shared by all {FILES} rule files");

    // The pool lives as long as a source holds it: dropping the files closes its connections.
    drop(report);
    drop(files);
    assert_eq!(wait_for_backends(&monitor, "safety_pool", "%", 0).await, 0);
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout() {
    let world = pg_world().await;
    let monitor = monitor(&world).await;
    let url = role_url(&world, &monitor, "safety_idle").await;
    let source = postgres_source(&url, ", idle_timeout: 2s");
    source.query("SELECT 1 AS x").await.expect("query");
    assert_eq!(lakecheck_backends(&monitor, "safety_idle", "%").await, 1);
    // The source still holds its pool: only the idle timeout closes the connection.
    assert_eq!(wait_for_backends(&monitor, "safety_idle", "%", 0).await, 0);
    let rows = source.query("SELECT 2 AS x").await.expect("reconnects");
    assert_eq!(rows.rows, vec![vec![Some("2".to_string())]]);
}

#[rstest]
#[case::defaults("", "1min", "5s", "1min")]
#[case::configured(
    ", statement_timeout: 45s, lock_timeout: 2s, idle_in_transaction_session_timeout: 90s",
    "45s",
    "2s",
    "90s"
)]
#[tokio::test]
async fn sessions_carry_the_configured_settings(
    #[case] options: &str,
    #[case] statement_timeout: &str,
    #[case] lock_timeout: &str,
    #[case] idle_in_transaction: &str,
) {
    let world = pg_world().await;
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"{}\"{options} }}\nchecks:\n  - name: settings\n    \
         type: sql\n    source: pg\n    query: |\n      \
         SELECT name, setting, expected FROM (VALUES\n        \
         ('application_name', current_setting('application_name'), 'lakecheck'),\n        \
         ('statement_timeout', current_setting('statement_timeout'), '{statement_timeout}'),\n        \
         ('lock_timeout', current_setting('lock_timeout'), '{lock_timeout}'),\n        \
         ('idle_in_transaction_session_timeout', current_setting('idle_in_transaction_session_timeout'), '{idle_in_transaction}'),\n        \
         ('default_transaction_read_only', current_setting('default_transaction_read_only'), 'on')\n      \
         ) AS s(name, setting, expected) WHERE setting <> expected\n",
        world.pg.url("autocorp")
    );
    let report = run_files(&[parse_rules("tests/settings.yml", &text, &world.vars())]).await;
    let check = result(&report, "settings");
    assert_status(check, Status::Pass);
}

#[tokio::test]
async fn a_locked_table_fails_with_lock_timeout_instead_of_waiting() {
    let world = pg_world().await;
    let monitor = monitor(&world).await;
    monitor
        .batch_execute("CREATE TABLE IF NOT EXISTS public.safety_locked (id int PRIMARY KEY)")
        .await
        .expect("table");
    monitor
        .batch_execute("BEGIN; LOCK TABLE public.safety_locked IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock held");
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"{}\", lock_timeout: 1s }}\nchecks:\n  \
         - {{ name: locked, type: sql, source: pg, query: \"SELECT id FROM public.safety_locked\" }}\n",
        world.pg.url("autocorp")
    );
    let report = run_files(&[parse_rules("tests/locked.yml", &text, &world.vars())]).await;
    monitor.batch_execute("ROLLBACK").await.unwrap();
    assert_error_names(
        error_of(&report, "locked"),
        "source `pg` (postgres 127.0.0.1:",
        "canceling statement due to lock timeout",
    );
}

#[tokio::test]
async fn a_dropped_query_is_cancelled_on_the_server() {
    let world = pg_world().await;
    let monitor = monitor(&world).await;
    let url = role_url(&world, &monitor, "safety_cancel").await;
    let source = postgres_source(&url, "");
    let sleeping = "%pg_sleep(60)%";
    // What the runner does when a check's timeout passes: the query's future is dropped.
    let dropped = tokio::time::timeout(
        Duration::from_millis(500),
        source.query("SELECT pg_sleep(60) AS slept"),
    )
    .await;
    assert!(dropped.is_err(), "the query was still running: {dropped:?}");
    // Nothing of it is left on the server, though the source (and its pool) lives on: the query
    // was cancelled, and its connection was not kept.
    assert_eq!(
        wait_for_backends(&monitor, "safety_cancel", sleeping, 0).await,
        0
    );
    assert_eq!(
        wait_for_backends(&monitor, "safety_cancel", "%", 0).await,
        0
    );
    let rows = source.query("SELECT 3 AS x").await.expect("a new session");
    assert_eq!(rows.rows, vec![vec![Some("3".to_string())]]);
}

#[tokio::test]
async fn a_dropped_query_was_running_before_it_was_cancelled() {
    // The test above would pass if the query never reached the server: see it there first.
    let world = pg_world().await;
    let monitor = monitor(&world).await;
    let url = role_url(&world, &monitor, "safety_abort").await;
    let source = postgres_source(&url, "");
    let sleeping = "%pg_sleep(61)%";
    let task = tokio::spawn({
        let source = source.clone();
        async move { source.query("SELECT pg_sleep(61) AS slept").await }
    });
    assert_eq!(
        wait_for_backends(&monitor, "safety_abort", sleeping, 1).await,
        1
    );
    task.abort();
    assert_eq!(
        wait_for_backends(&monitor, "safety_abort", sleeping, 0).await,
        0
    );
}

#[rstest]
#[case::from_the_server("", None)]
#[case::as_configured(", parallel_queries: 3", Some(3))]
#[case::never_above_the_cap(", max_connections: 2", Some(2))]
#[case::configured_above_the_cap(", parallel_queries: 6, max_connections: 4", Some(4))]
#[tokio::test]
async fn parallel_queries_follow_the_server_not_this_machine(
    #[case] options: &str,
    #[case] expected: Option<usize>,
) {
    let world = pg_world().await;
    let server_workers = server_parallel_workers(&world).await;
    let options = match options.contains("max_connections") {
        true => options.to_string(),
        false => format!("{options}, max_connections: 20"),
    };
    let source = postgres_source(&world.pg.url("autocorp"), &options);
    assert_eq!(
        source.parallel_queries().await,
        expected.unwrap_or(server_workers)
    );
}

/// A throwaway PostgreSQL that accepts TLS connections only (`hostssl`, no `host` lines), with
/// a server certificate for `localhost` signed by a CA of the test, and another CA that signed
/// nothing of it.
struct TlsServer {
    server: ThrowawayPostgres,
    folder: tempfile::TempDir,
}

const PASSWORD: &str = "hunter2-never-shown";

impl TlsServer {
    async fn start() -> Self {
        let folder = tempfile::tempdir().unwrap();
        let ca = certificate_authority("lakecheck test CA");
        let other_ca = certificate_authority("some other CA");
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let files = [
            ("ca.pem", ca.pem(), 0o644),
            ("other-ca.pem", other_ca.pem(), 0o644),
            ("server.crt", server_cert.pem(), 0o644),
            ("server.key", server_key.serialize_pem(), 0o600),
            (
                "hba.conf",
                "hostssl all all 127.0.0.1/32 trust\n".to_string(),
                0o644,
            ),
        ];
        let owner = server_owner();
        for (name, text, mode) in files {
            let path = folder.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(folder.path(), Some(uid), Some(gid)).unwrap();
        }
        let file = |name: &str| folder.path().join(name).display().to_string();
        let settings = [
            ("ssl", "on".to_string()),
            ("ssl_cert_file", file("server.crt")),
            ("ssl_key_file", file("server.key")),
            ("hba_file", file("hba.conf")),
        ];
        let server = tokio::task::spawn_blocking(move || {
            let settings: Vec<(&str, &str)> =
                settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ThrowawayPostgres::start_with(&settings)
        })
        .await
        .unwrap()
        .expect("TLS-only server");
        Self { server, folder }
    }

    fn path(&self, name: &str) -> String {
        self.folder.path().join(name).display().to_string()
    }

    /// A URL with a password (which trust authentication ignores) to `database` by `host`,
    /// connecting to 127.0.0.1 whatever the name.
    fn url(&self, host: &str, database: &str, params: &str) -> String {
        format!(
            "postgres://lakecheck:{PASSWORD}@{host}:{}/{database}?hostaddr=127.0.0.1{params}",
            self.server.port()
        )
    }

    /// AutoCorp loaded into database `autocorp`, through lakecheck's own TLS connector.
    async fn load(&self, world: &World) {
        let tls = TlsSettings {
            mode: TlsMode::VerifyFull,
            root_cert: Some(self.path("ca.pem").into()),
        };
        let connect = |database: &str| {
            let url = self.url("localhost", database, "");
            let tls = tls.connector().unwrap();
            async move {
                let (client, connection) = tokio_postgres::connect(&url, tls).await.unwrap();
                tokio::spawn(connection);
                client
            }
        };
        connect("postgres")
            .await
            .batch_execute("CREATE DATABASE autocorp")
            .await
            .unwrap();
        load_postgres(&connect("autocorp").await, &world.tables)
            .await
            .unwrap();
    }
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// The uid and gid the server runs as when the tests run as root (PostgreSQL wants its key
/// owned by that user); `None` otherwise, when our own files are the server's.
fn server_owner() -> Option<(u32, u32)> {
    if std::fs::metadata("/proc/self").ok()?.uid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres"))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
            .flatten()
    })
}

#[tokio::test]
async fn tls_modes_against_a_tls_only_server() {
    let world = local_world().await;
    let tls = TlsServer::start().await;
    tls.load(&world).await;
    let ca = tls.path("ca.pem");
    let other_ca = tls.path("other-ca.pem");
    let source = |name: &str, url: String, options: &str| {
        format!("  {name}: {{ type: postgres, url: \"{url}\", schema: autocorp{options} }}\n")
    };
    let sources = [
        source("prefer", tls.url("localhost", "autocorp", ""), ""),
        source(
            "require",
            tls.url("127.0.0.1", "autocorp", "&sslmode=require"),
            "",
        ),
        source(
            "full",
            tls.url(
                "localhost",
                "autocorp",
                &format!("&sslmode=verify-full&sslrootcert={ca}"),
            ),
            "",
        ),
        source(
            "full_options",
            tls.url("localhost", "autocorp", ""),
            &format!(", sslmode: verify-full, sslrootcert: \"{ca}\""),
        ),
        source(
            "ca_by_address",
            tls.url("127.0.0.1", "autocorp", "&sslmode=verify-ca"),
            &format!(", sslrootcert: \"{ca}\""),
        ),
        source(
            "full_by_address",
            tls.url(
                "127.0.0.1",
                "autocorp",
                &format!("&sslmode=verify-full&sslrootcert={ca}"),
            ),
            "",
        ),
        source(
            "wrong_ca",
            tls.url(
                "localhost",
                "autocorp",
                &format!("&sslmode=verify-full&sslrootcert={other_ca}"),
            ),
            "",
        ),
        // libpq: `require` with a root certificate checks the chain, as verify-ca.
        source(
            "require_wrong_ca",
            tls.url(
                "localhost",
                "autocorp",
                &format!("&sslmode=require&sslrootcert={other_ca}"),
            ),
            "",
        ),
        source(
            "disable",
            tls.url("localhost", "autocorp", "&sslmode=disable"),
            "",
        ),
    ];
    let encrypted = |name: &str| {
        format!(
            "  - {{ name: {name}, type: sql, source: {name}, query: \"SELECT 1 AS unencrypted \
             FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND NOT ssl\" }}\n"
        )
    };
    let names = [
        "prefer",
        "require",
        "full",
        "full_options",
        "ca_by_address",
        "full_by_address",
        "wrong_ca",
        "require_wrong_ca",
        "disable",
    ];
    let text = format!(
        "sources:\n{}  lake: {{ type: lake, url: \"{}/raw/database/autocorp\", format: parquet }}\n\
         checks:\n{}  - {{ name: reconcile, type: table_match, left: full.customers, right: lake.customers }}\n",
        sources.concat(),
        world.lake_url(),
        names.map(encrypted).concat()
    );
    let report = run_files(&[parse_rules("tests/tls.yml", &text, &world.vars())]).await;

    for name in ["prefer", "require", "full", "full_options", "ca_by_address"] {
        assert_status(result(&report, name), Status::Pass);
    }
    assert_status(result(&report, "reconcile"), Status::Pass);
    assert_error_names(
        error_of(&report, "full_by_address"),
        "source `full_by_address` (postgres 127.0.0.1:",
        "does not match the host name `127.0.0.1`",
    );
    for name in ["wrong_ca", "require_wrong_ca"] {
        let error = error_of(&report, name);
        assert!(
            error.contains("the server's certificate is not trusted")
                && error.contains("(unknown issuer)")
                && error.contains(&other_ca),
            "{name}: {error}"
        );
    }
    let disable = error_of(&report, "disable");
    assert!(
        disable.contains("no pg_hba.conf entry for host \"127.0.0.1\"")
            && disable.ends_with(
                "no encryption; the server accepts encrypted connections only: set sslmode to \
                 require, verify-ca or verify-full"
            ),
        "{disable}"
    );
    // Not in any message, error or anything else the report holds.
    let everything = serde_json::to_string(&report).unwrap();
    assert!(everything.contains("cannot connect"), "{everything}");
    assert!(!everything.contains(PASSWORD), "{everything}");
}

#[tokio::test]
async fn the_heartbeat_write_counts_against_the_cap() {
    let world = pg_world().await;
    let monitor = Arc::new(monitor(&world).await);
    let url = role_url(&world, &monitor, "safety_heartbeat").await;
    monitor
        .batch_execute("GRANT CREATE ON SCHEMA public TO safety_heartbeat")
        .await
        .unwrap();
    let source = postgres_source(
        &url,
        ", max_connections: 1, heartbeat: { table: safety_heartbeat, create: true }",
    );
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (monitor, done) = (monitor.clone(), done.clone());
        async move {
            let mut most = 0;
            while !done.load(Ordering::Relaxed) {
                most = most.max(lakecheck_backends(&monitor, "safety_heartbeat", "%").await);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            most
        }
    });
    // A read leaves its connection idle in the pool; the write needs one of its own, so the idle
    // one is closed first (with a cap of 1, waiting for a slot instead would never end).
    source
        .query("SELECT 1 AS x FROM pg_sleep(0.1)")
        .await
        .unwrap();
    let first = source.write_heartbeat("cap").await.expect("first marker");
    source
        .query("SELECT 1 AS x FROM pg_sleep(0.1)")
        .await
        .unwrap();
    let second = source.write_heartbeat("cap").await.expect("second marker");
    done.store(true, Ordering::Relaxed);
    assert_eq!(second.seq, first.seq + 1);
    assert_eq!(sampler.await.unwrap(), 1);
}

#[tokio::test]
async fn sources_sharing_a_pool_share_what_was_read_of_the_server() {
    let world = pg_world().await;
    let server_workers = server_parallel_workers(&world).await;
    let url = world.pg.url("autocorp");
    let text = format!(
        "sources:\n  first: {{ type: postgres, url: \"{url}\", max_connections: 20 }}\n  \
         second: {{ type: postgres, url: \"{url}\", max_connections: 20 }}\nchecks: []\n"
    );
    let file = parse_rules("tests/shared.yml", &text, &Arc::new(Vars::new()));
    let (first, second) = (
        file.sources.get("first").unwrap(),
        file.sources.get("second").unwrap(),
    );
    first.query("SELECT 1 AS x").await.unwrap();
    // `second` draws the connection `first` left idle: it never connected itself.
    assert_eq!(second.parallel_queries().await, server_workers.min(20));
}

#[tokio::test]
async fn sources_of_other_settings_share_the_cap_not_their_sessions() {
    let world = pg_world().await;
    let url = world.pg.url("autocorp");
    let text = format!(
        "sources:\n  quick: {{ type: postgres, url: \"{url}\", max_connections: 1, lock_timeout: 1s }}\n  \
         patient: {{ type: postgres, url: \"{url}\", max_connections: 1, lock_timeout: 3s }}\nchecks: []\n"
    );
    let file = parse_rules("tests/profiles.yml", &text, &Arc::new(Vars::new()));
    let lock_timeout = |name: &'static str| {
        let source = file.sources.get(name).unwrap().clone();
        async move {
            let rows = source
                .query("SELECT current_setting('lock_timeout') AS t")
                .await
                .unwrap();
            rows.rows[0][0].clone().unwrap()
        }
    };
    // One connection at a time to the server: each source's session replaces the other's.
    for _ in 0..2 {
        assert_eq!(lock_timeout("quick").await, "1s");
        assert_eq!(lock_timeout("patient").await, "3s");
    }
}
