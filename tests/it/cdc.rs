//! `cdc_latency` against a real change stream: a heartbeat written to PostgreSQL, decoded from
//! its WAL, written to a DMS raw zone and merged into a curated Delta table by the test
//! pipeline (`cdc/pipeline.rs`) after delays the tests choose; and the change seam each table
//! format answers the probe through (`Source::changes`), on local folders and S3.

pub mod pipeline;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use lakecheck::results::{CheckResult, Status};
use lakecheck::rules::{parse_rule_text, Vars};
use lakecheck::sources::changes::{ChangePosition, Changes};
use lakecheck::sources::Source;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use rstest::rstest;
use serde_json::Value;

use crate::harness::{parse_rules, run_files, S3Server};
use pipeline::{cdc_batch, Change, Delays, Pipeline, HEARTBEAT_TABLE};

/// The stages every probe here polls.
const STAGES: &str = "stages: [ { name: raw, table: raw.lakecheck_heartbeat }, \
                      { name: curated, table: curated.lakecheck_heartbeat } ]";

/// A probe of both stages, polling often, for pipelines of a few hundred milliseconds a stage.
const QUICK_PROBE: &str = "stages: [ { name: raw, table: raw.lakecheck_heartbeat }, \
                           { name: curated, table: curated.lakecheck_heartbeat } ], \
                           max_latency: 10s, poll_interval: 100ms";

fn delays(raw_ms: u64, curated_ms: u64) -> Delays {
    Delays {
        raw: Duration::from_millis(raw_ms),
        curated: Duration::from_millis(curated_ms),
    }
}

/// Runs one `cdc_latency` check with `options` (a flow mapping's inner text) on `pipeline`.
async fn probe(pipeline: &Pipeline, options: &str) -> CheckResult {
    let text = format!(
        "sources:\n{}checks:\n  - {{ name: probe, type: cdc_latency, source: pg, {options} }}\n",
        pipeline.sources_yaml("pg", "raw", "curated")
    );
    let file = parse_rules("tests/cdc.yml", &text, &Arc::new(Vars::new()));
    let report = run_files(&[file]).await;
    let result = report.results().next().expect("one result").clone();
    assert!(
        pipeline.errors().is_empty(),
        "the pipeline failed: {:?}",
        pipeline.errors()
    );
    result
}

/// What a result says, for assertion messages.
fn said(result: &CheckResult) -> String {
    format!(
        "{} {}\n{}",
        result.message,
        result.error.as_deref().unwrap_or_default(),
        serde_json::to_string_pretty(&result.metrics).unwrap()
    )
}

fn stage<'a>(result: &'a CheckResult, name: &str) -> &'a Value {
    &result.metrics["stages"][name]
}

fn latency(result: &CheckResult, name: &str) -> f64 {
    stage(result, name)["latency_seconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("no latency for {name}: {}", said(result)))
}

/// A pipeline writing to a fresh lake, with a first heartbeat through it (the probe's first
/// run, which also creates the heartbeat table).
async fn started(database: &str, delays: Delays, options: &str) -> (tempfile::TempDir, Pipeline) {
    let lake = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::start(database, lake.path(), delays).await;
    let first = probe(&pipeline, options).await;
    assert_eq!(first.status, Status::Pass, "{}", said(&first));
    (lake, pipeline)
}

#[tokio::test]
async fn cdc_latency_measures_the_injected_delays() {
    let lake = tempfile::tempdir().unwrap();
    let (raw_delay, curated_delay, poll) = (1.5, 1.0, 0.25);
    let pipeline = Pipeline::start("delays", lake.path(), delays(1500, 1000)).await;
    for seq in 1..=2 {
        let result = probe(
            &pipeline,
            &format!("{STAGES}, max_latency: 30s, poll_interval: 250ms"),
        )
        .await;
        assert_eq!(result.status, Status::Pass, "{}", said(&result));
        let band = poll + 1.0;
        let (raw, curated) = (latency(&result, "raw"), latency(&result, "curated"));
        assert!(
            (raw - raw_delay).abs() <= band,
            "raw latency {raw}s, injected {raw_delay}s: {}",
            said(&result)
        );
        assert!(
            (curated - curated_delay).abs() <= band,
            "curated latency {curated}s, injected {curated_delay}s: {}",
            said(&result)
        );
        println!("seq {seq}: measured raw {raw:.3}s (injected {raw_delay}s), curated {curated:.3}s (injected {curated_delay}s)");
        assert_eq!(result.metrics["sequence"], seq);
        assert_eq!(
            result.metrics["heartbeat"],
            format!("wrote heartbeat seq {seq} to public.{HEARTBEAT_TABLE}")
        );
        let raw_file = stage(&result, "raw")["found_in"].as_str().unwrap();
        assert!(
            raw_file.contains("/raw/public/lakecheck_heartbeat/") && raw_file.ends_with(".parquet"),
            "{raw_file}"
        );
        assert_eq!(
            stage(&result, "curated")["found_in"],
            format!("version {}", seq - 1),
            "one Delta commit per heartbeat"
        );
        let write = &result.queries[0];
        assert!(
            write
                .sql
                .starts_with("BEGIN READ WRITE;\nCREATE TABLE IF NOT EXISTS"),
            "{}",
            write.sql
        );
        assert_eq!(result.metrics["gaps"], serde_json::json!([]));
    }
    let client = pipeline.client().await;
    let written: i64 = client
        .query_one("SELECT count(*) FROM public.lakecheck_heartbeat", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(written, 2, "one row per run");
}

/// Opting in to heartbeats leaves every other session read-only: a function that writes,
/// called from a `sql` check, is refused.
#[tokio::test]
async fn the_heartbeat_opt_in_leaves_queries_read_only() {
    let (_lake, pipeline) = started("readonly", delays(200, 200), QUICK_PROBE).await;
    let client = pipeline.client().await;
    client
        .batch_execute(
            "CREATE FUNCTION sneak() RETURNS bigint LANGUAGE sql AS \
             $$ INSERT INTO public.lakecheck_heartbeat VALUES ('sneak', 1, now()) RETURNING seq $$",
        )
        .await
        .unwrap();
    let text = format!(
        "sources:\n{}checks:\n  - {{ name: write, type: sql, source: pg, query: \"SELECT sneak() AS seq\" }}\n",
        pipeline.sources_yaml("pg", "raw", "curated")
    );
    let report = run_files(&[parse_rules("tests/cdc.yml", &text, &Arc::new(Vars::new()))]).await;
    let result = report.results().next().unwrap();
    assert_eq!(result.status, Status::Error, "{}", said(result));
    assert!(
        said(result).contains("cannot execute INSERT in a read-only transaction"),
        "{}",
        said(result)
    );
}

#[tokio::test]
async fn a_stalled_curated_writer_fails_the_probe() {
    let options = format!("{STAGES}, max_latency: 3s, poll_interval: 250ms");
    let (_lake, pipeline) = started("stalled", delays(300, 300), &options).await;
    pipeline.stop_curated();
    let stalled = probe(&pipeline, &options).await;
    assert_eq!(stalled.status, Status::Fail, "{}", said(&stalled));
    assert_eq!(
        stage(&stalled, "raw")["status"],
        "arrived",
        "{}",
        said(&stalled)
    );
    assert_eq!(stage(&stalled, "curated")["status"], "not_arrived");
    assert_eq!(stage(&stalled, "curated")["latency_seconds"], Value::Null);
    assert!(
        stalled
            .message
            .contains("curated: seq 2 not arrived within timeout 3s"),
        "{}",
        said(&stalled)
    );
}

/// Another writer's heartbeats every 200 ms, as a second probe would write them.
fn neighbour(client: tokio_postgres::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            client
                .batch_execute(
                    "INSERT INTO public.lakecheck_heartbeat SELECT 'neighbour', \
                     coalesce(max(seq), 0) + 1, clock_timestamp() FROM public.lakecheck_heartbeat \
                     WHERE probe = 'neighbour'",
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[tokio::test]
async fn a_dropped_marker_is_lost() {
    let options = format!("{STAGES}, max_latency: 10s, poll_interval: 250ms");
    let (_lake, pipeline) = started("dropped", delays(300, 300), &options).await;
    let writer = neighbour(pipeline.client().await);
    pipeline.drop_marker("lakecheck", 2);
    let dropped = probe(&pipeline, &options).await;
    writer.abort();
    assert_eq!(dropped.status, Status::Fail, "{}", said(&dropped));
    for name in ["raw", "curated"] {
        assert_eq!(
            stage(&dropped, name)["status"],
            "lost",
            "{}",
            said(&dropped)
        );
    }
    let lost = stage(&dropped, "raw")["lost"].as_str().unwrap();
    assert!(
        lost.starts_with("probe `neighbour` seq ")
            && lost.contains(", written after it committed, arrived in file://"),
        "{lost}"
    );
    assert!(
        dropped.message.contains("raw: seq 2 lost ("),
        "{}",
        said(&dropped)
    );
}

#[tokio::test]
async fn a_skipped_sequence_number_is_a_gap() {
    let options = format!("{STAGES}, max_latency: 10s, poll_interval: 250ms");
    let (_lake, pipeline) = started("skipped", delays(300, 300), &options).await;
    // Seq 2 is written (as an earlier run would) and never replicated.
    pipeline.drop_marker("lakecheck", 2);
    pipeline
        .client()
        .await
        .batch_execute(
            "INSERT INTO public.lakecheck_heartbeat VALUES ('lakecheck', 2, clock_timestamp())",
        )
        .await
        .unwrap();
    let third = probe(&pipeline, &options).await;
    assert_eq!(third.status, Status::Fail, "{}", said(&third));
    assert_eq!(third.metrics["sequence"], 3);
    assert_eq!(third.metrics["previous_sequence"], 2);
    assert_eq!(third.metrics["gaps"], serde_json::json!([2]));
    for name in ["raw", "curated"] {
        assert_eq!(stage(&third, name)["status"], "arrived", "{}", said(&third));
        assert_eq!(stage(&third, name)["gaps"], serde_json::json!([2]));
    }
    assert!(
        third
            .message
            .contains("gap: seq 2 never arrived in raw, curated (seq 3 did): changes were lost"),
        "{}",
        said(&third)
    );
}

#[tokio::test]
async fn a_stage_the_pipeline_does_not_carry_the_table_to_is_an_error() {
    let (_lake, pipeline) = started("missing", delays(200, 200), QUICK_PROBE).await;
    let no_raw = probe(
        &pipeline,
        "stages: [ { name: raw, table: raw.heartbeats } ], max_latency: 10s",
    )
    .await;
    assert_eq!(no_raw.status, Status::Error, "{}", said(&no_raw));
    let error = no_raw.error.as_deref().unwrap();
    assert!(
        error.starts_with("stage `raw` (raw.heartbeats): source `raw` (lake file://")
            && error.contains("table `heartbeats` not found")
            && error.contains(
                "add `public.lakecheck_heartbeat` to the DMS task's table mappings (a selection \
                 rule for its schema and table) so its changes land in this folder"
            ),
        "{error}"
    );
    let no_curated = probe(
        &pipeline,
        "stages: [ { name: raw, table: raw.lakecheck_heartbeat }, \
         { name: gold, table: curated.heartbeats } ], max_latency: 10s",
    )
    .await;
    assert_eq!(no_curated.status, Status::Error, "{}", said(&no_curated));
    assert!(
        no_curated.error.as_deref().unwrap().contains(
            "the ETL that reads stage `raw` (raw.lakecheck_heartbeat) must carry the heartbeat \
             table into curated.heartbeats too"
        ),
        "{}",
        said(&no_curated)
    );
    // A probe's first run waits for a missing stage, which a new table may not have yet, and
    // errs when it is still missing at the timeout.
    let fresh = probe(
        &pipeline,
        "probe: fresh, stages: [ { name: raw, table: raw.heartbeats } ], max_latency: 1s, \
         poll_interval: 200ms",
    )
    .await;
    assert_eq!(fresh.status, Status::Error, "{}", said(&fresh));
    assert!(
        fresh.error.as_deref().unwrap().contains("not found"),
        "{}",
        said(&fresh)
    );
}

/// A lake source from one `sources:` entry.
fn source(entry: &str) -> Arc<dyn Source> {
    let text = format!("sources:\n  s: {entry}\nchecks: []\n");
    parse_rule_text(Path::new("changes.yml"), &text, &Arc::new(Vars::new()))
        .unwrap()
        .sources
        .get("s")
        .unwrap()
        .clone()
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// One heartbeat insert, as the raw zone holds it.
fn change(seq: i64) -> Change {
    Change {
        op: "I",
        probe: "p".into(),
        seq,
        written_at: Some(0),
        commit_time: "2026-11-21 08:00:00.000000".into(),
    }
}

/// Where each arrival was found (its last path segment) and the `seq` values it holds.
fn arrived(changes: &Changes<lakecheck::model::Rows>) -> Vec<(String, Vec<String>)> {
    changes
        .arrivals
        .iter()
        .map(|a| {
            let seq = a.rows.columns.iter().position(|c| c == "seq").unwrap();
            let name = a.found_in.rsplit('/').next().unwrap().to_string();
            let seqs = a
                .rows
                .rows
                .iter()
                .map(|r| r[seq].clone().unwrap())
                .collect();
            (name, seqs)
        })
        .collect()
}

/// DMS CDC files are listed from an offset: from a time, the name DMS gives a file written then
/// (inside the table's date folders); from a cursor, the last file read. Full-load files are not
/// changes; a file whose name is no DMS time is an error, not skipped.
#[rstest]
#[case::flat("", false)]
#[case::date_folders("2026/11/21/", false)]
#[case::flat_on_s3("", true)]
#[case::date_folders_on_s3("2026/11/21/", true)]
#[tokio::test]
async fn dms_changes_are_read_from_an_offset(#[case] folders: &str, #[case] on_s3: bool) {
    let dir = tempfile::tempdir().unwrap();
    let s3 = on_s3.then(S3Server::start);
    let (store, entry): (Arc<dyn ObjectStore>, String) = match &s3 {
        Some(s3) => (
            Arc::new(s3.store()),
            format!(
                "{{ type: lake, url: \"s3://lake/raw\", layout: dms, storage: {{ endpoint: \"{}\", \
                 allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }} }}",
                s3.endpoint
            ),
        ),
        None => (
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap()),
            format!("{{ type: lake, url: \"{}/raw\", layout: dms }}", dir.path().display()),
        ),
    };
    let put = |name: String, seq: i64| {
        let store = store.clone();
        async move {
            let path = StorePath::from(format!("raw/{HEARTBEAT_TABLE}/{name}"));
            let bytes = lakecheck::demo::autocorp::to_parquet(&cdc_batch(&[change(seq)]));
            store.put(&path, PutPayload::from(bytes)).await.unwrap();
        }
    };
    put("LOAD00000001.parquet".into(), 0).await;
    for (seq, at) in [(1, "075959000"), (2, "080000500"), (3, "080001000")] {
        put(format!("{folders}20261121-{at}.parquet"), seq).await;
    }
    let raw = source(&entry);
    let since = ChangePosition::Since(time("2026-11-21T08:00:00.200Z"));
    let changes = raw.changes(HEARTBEAT_TABLE, &since).await.unwrap();
    assert_eq!(
        arrived(&changes),
        [
            (
                "20261121-080000500.parquet".to_string(),
                vec!["2".to_string()]
            ),
            (
                "20261121-080001000.parquet".to_string(),
                vec!["3".to_string()]
            ),
        ]
    );
    assert_eq!(
        changes.arrivals[0].landed_at,
        time("2026-11-21T08:00:00.500Z")
    );
    let quiet = raw.changes(HEARTBEAT_TABLE, &changes.next).await.unwrap();
    assert!(quiet.arrivals.is_empty());
    assert_eq!(quiet.next, changes.next, "nothing new: the same cursor");
    put(format!("{folders}20261121-080002250.parquet"), 4).await;
    let next = raw.changes(HEARTBEAT_TABLE, &quiet.next).await.unwrap();
    assert_eq!(
        arrived(&next),
        [(
            "20261121-080002250.parquet".to_string(),
            vec!["4".to_string()]
        )]
    );
    put(format!("{folders}20261121-zz.parquet"), 5).await;
    let error = raw.changes(HEARTBEAT_TABLE, &next.next).await.unwrap_err();
    assert!(
        error
            .cause
            .contains("20261121-zz.parquet` is neither a full-load file"),
        "{}",
        error.cause
    );
}

/// A temporary folder holding an empty table folder for the heartbeat table, and its URL.
fn heartbeat_folder() -> (tempfile::TempDir, url::Url) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(HEARTBEAT_TABLE);
    std::fs::create_dir_all(&folder).unwrap();
    let url = url::Url::from_directory_path(&folder).unwrap();
    (dir, url)
}

/// One heartbeat row of probe `p`, as a curated table holds it.
fn heartbeat_row(seq: i64) -> RecordBatch {
    RecordBatch::try_from_iter([
        ("probe", Arc::new(StringArray::from(vec!["p"])) as ArrayRef),
        ("seq", Arc::new(Int64Array::from(vec![seq])) as ArrayRef),
    ])
    .unwrap()
}

/// Delta changes are the commits after a version: from a time, the log is read back to the last
/// commit before it; from a cursor, only the commit files after it.
#[tokio::test]
async fn delta_changes_are_the_commits_after_a_version() {
    use deltalake::protocol::SaveMode;
    let (dir, url) = heartbeat_folder();
    let mut table = deltalake::DeltaTable::try_from_url(url).await.unwrap();
    let mut committed = Vec::new();
    for seq in 1..=3 {
        table = table
            .write(vec![heartbeat_row(seq)])
            .with_save_mode(SaveMode::Append)
            .await
            .unwrap();
        committed.push(Utc::now());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let curated = source(&format!(
        "{{ type: delta, url: \"{}\" }}",
        dir.path().display()
    ));
    let all = curated
        .changes(
            HEARTBEAT_TABLE,
            &ChangePosition::Since(time("2000-01-01T00:00:00Z")),
        )
        .await
        .unwrap();
    assert_eq!(
        arrived(&all),
        [
            ("version 0".to_string(), vec!["1".to_string()]),
            ("version 1".to_string(), vec!["2".to_string()]),
            ("version 2".to_string(), vec!["3".to_string()]),
        ]
    );
    assert!(all.arrivals[0].landed_at <= all.arrivals[2].landed_at);
    let since_second = curated
        .changes(
            HEARTBEAT_TABLE,
            &ChangePosition::Since(committed[0] + chrono::Duration::milliseconds(20)),
        )
        .await
        .unwrap();
    assert_eq!(
        arrived(&since_second)
            .iter()
            .map(|(v, _)| v.as_str())
            .collect::<Vec<_>>(),
        ["version 1", "version 2"]
    );
    let quiet = curated.changes(HEARTBEAT_TABLE, &all.next).await.unwrap();
    assert!(quiet.arrivals.is_empty());
    assert_eq!(quiet.next, all.next);
}

/// Hudi changes are the instants completed after a position, read incrementally.
#[tokio::test]
async fn hudi_changes_are_the_instants_after_a_position() {
    let (dir, uri) = heartbeat_folder();
    let mut table = hudi::table::Table::create(uri.as_str().trim_end_matches('/'))
        .with_table_name(HEARTBEAT_TABLE)
        .with_record_key_fields(["seq"])
        .with_ordering_fields(["seq"])
        .with_metadata_table_enabled(false)
        .create()
        .await
        .unwrap();
    let before = Utc::now() - chrono::Duration::seconds(5);
    table.upsert(vec![heartbeat_row(1)]).await.unwrap();
    table.upsert(vec![heartbeat_row(2)]).await.unwrap();
    let curated = source(&format!(
        "{{ type: hudi, url: \"{}\" }}",
        dir.path().display()
    ));
    let first = curated
        .changes(HEARTBEAT_TABLE, &ChangePosition::Since(before))
        .await
        .unwrap();
    let seqs: Vec<Vec<String>> = arrived(&first).into_iter().map(|(_, s)| s).collect();
    assert_eq!(seqs, [vec!["1".to_string()], vec!["2".to_string()]]);
    assert!(first
        .arrivals
        .iter()
        .all(|a| a.found_in.starts_with("instant ")));
    let quiet = curated.changes(HEARTBEAT_TABLE, &first.next).await.unwrap();
    assert!(quiet.arrivals.is_empty(), "{:?}", arrived(&quiet));
    table.upsert(vec![heartbeat_row(3)]).await.unwrap();
    let next = curated.changes(HEARTBEAT_TABLE, &quiet.next).await.unwrap();
    let seqs: Vec<Vec<String>> = arrived(&next).into_iter().map(|(_, s)| s).collect();
    assert_eq!(seqs, [vec!["3".to_string()]]);
}

#[rstest]
#[case::insert(
    &["BEGIN 735", "table public.lakecheck_heartbeat: INSERT: probe[text]:'it''s' seq[bigint]:4 written_at[timestamp with time zone]:'2026-11-21 08:00:00.5+00'", "COMMIT 735 (at 2026-11-21 08:00:00.501234+00)"],
    vec![("I", "it's", 4, Some(1_795_248_000_500_000), "2026-11-21 08:00:00.501234")]
)]
#[case::delete_carries_the_key(
    &["BEGIN 9", "table public.lakecheck_heartbeat: DELETE: probe[text]:'p' seq[bigint]:1", "COMMIT 9 (at 2026-11-21 08:00:01+00)"],
    vec![("D", "p", 1, None, "2026-11-21 08:00:01.000000")]
)]
#[case::other_tables_and_open_transactions(
    &["BEGIN 1", "table public.orders: INSERT: id[integer]:1", "COMMIT 1 (at 2026-11-21 08:00:01+00)", "BEGIN 2", "table public.lakecheck_heartbeat: INSERT: probe[text]:'p' seq[bigint]:2 written_at[timestamp with time zone]:'2026-11-21 08:00:02+00'"],
    vec![]
)]
fn the_replicator_decodes_test_decoding_lines(
    #[case] lines: &[&str],
    #[case] expected: Vec<(&str, &str, i64, Option<i64>, &str)>,
) {
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let decoded: Vec<_> = pipeline::decode(&lines, &mut Vec::new())
        .into_iter()
        .map(|c| (c.op, c.probe, c.seq, c.written_at, c.commit_time))
        .collect();
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(op, probe, seq, at, commit)| (op, probe.to_string(), seq, at, commit.to_string()))
        .collect();
    assert_eq!(decoded, expected);
}
