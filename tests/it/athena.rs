//! `type: athena`: the query lifecycle against recorded exchanges (what moto cannot play: FAILED
//! and CANCELLED states, result paging, throttling, bytes scanned against `max_scanned`), and
//! end to end through the CLI against moto_server on loopback (slow state transitions, a check
//! past its timeout stopping its query, columns from the Glue catalog).

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_athena::config::Credentials;
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use lakecheck::sources::athena::{AthenaSettings, AthenaSource, Polling, QueryPlace};
use lakecheck::sources::Source;
use serde_json::{json, Value};

use crate::cli::rule_dir;
use crate::harness::S3Server;

// ---------------------------------------------------------------------------------------------
// Recorded exchanges

/// One recorded answer: status and JSON body (Athena speaks AWS JSON 1.1).
fn answer(status: u16, body: Value) -> ReplayEvent {
    let request = http::Request::builder()
        .uri("https://athena.us-east-1.amazonaws.com/")
        .body(SdkBody::empty())
        .unwrap();
    let response = http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(SdkBody::from(body.to_string()))
        .unwrap();
    ReplayEvent::new(request, response)
}

fn started(id: &str) -> ReplayEvent {
    answer(200, json!({ "QueryExecutionId": id }))
}

fn state(id: &str, state: &str, scanned: u64) -> ReplayEvent {
    answer(
        200,
        json!({ "QueryExecution": {
            "QueryExecutionId": id,
            "Status": { "State": state },
            "Statistics": { "DataScannedInBytes": scanned, "EngineExecutionTimeInMillis": 1234 }
        }}),
    )
}

fn page(columns: &[(&str, &str)], rows: &[Vec<Option<&str>>], next: Option<&str>) -> ReplayEvent {
    let datum = |v: &Option<&str>| match v {
        Some(v) => json!({ "VarCharValue": v }),
        None => json!({}),
    };
    let mut body = json!({ "ResultSet": {
        "Rows": rows.iter().map(|r| json!({ "Data": r.iter().map(datum).collect::<Vec<_>>() })).collect::<Vec<_>>(),
        "ResultSetMetadata": { "ColumnInfo": columns.iter().map(|(name, kind)| json!({
            "Name": name, "Type": kind, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": false
        })).collect::<Vec<_>>() }
    }});
    if let Some(next) = next {
        body["NextToken"] = json!(next);
    }
    answer(200, body)
}

fn settings(max_scanned: Option<u64>) -> AthenaSettings {
    AthenaSettings {
        region: "us-east-1".into(),
        endpoint: None,
        place: QueryPlace {
            workgroup: "primary".into(),
            catalog: "AwsDataCatalog".into(),
            database: "autocorp_curated".into(),
            output_location: Some("s3://results/athena/".into()),
        },
        polling: Polling {
            first: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        max_scanned,
    }
}

async fn replayed(
    events: Vec<ReplayEvent>,
    max_scanned: Option<u64>,
) -> (AthenaSource, StaticReplayClient) {
    let client = StaticReplayClient::new(events);
    let config: SdkConfig = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(client.clone())
        .load()
        .await;
    let source = AthenaSource::new("athena", settings(max_scanned)).with_sdk_config(&config);
    (source, client)
}

/// The Athena operations the source called, in order (`X-Amz-Target` without the service).
fn calls(client: &StaticReplayClient) -> Vec<String> {
    client
        .actual_requests()
        .map(|r| {
            r.headers()
                .get("x-amz-target")
                .unwrap_or_default()
                .trim_start_matches("AmazonAthena.")
                .to_string()
        })
        .collect()
}

fn body(client: &StaticReplayClient, index: usize) -> Value {
    let request = client.actual_requests().nth(index).unwrap();
    serde_json::from_slice(request.body().bytes().unwrap()).unwrap()
}

#[tokio::test]
async fn a_query_is_polled_until_it_succeeds_and_every_page_is_read() {
    let columns = [
        ("state", "varchar"),
        ("n", "bigint"),
        ("avg_value", "double"),
    ];
    let (source, client) = replayed(
        vec![
            started("q-1"),
            state("q-1", "QUEUED", 0),
            state("q-1", "RUNNING", 1_000),
            state("q-1", "SUCCEEDED", 10_485_760),
            page(
                &columns,
                &[
                    vec![Some("state"), Some("n"), Some("avg_value")],
                    vec![Some("TX"), Some("3"), Some("1.5E2")],
                ],
                Some("page-2"),
            ),
            page(&columns, &[vec![None, Some("1"), Some("NaN")]], None),
        ],
        None,
    )
    .await;
    let (rows, cost) = source
        .query_with_cost("SELECT state, count(*) AS n FROM t GROUP BY state", None)
        .await
        .unwrap();
    assert_eq!(rows.columns, ["state", "n", "avg_value"]);
    assert_eq!(
        rows.rows,
        [
            vec![Some("TX".to_string()), Some("3".into()), Some("150".into())],
            vec![None, Some("1".into()), Some("NaN".into())],
        ]
    );
    assert_eq!(
        (
            cost.execution_id.as_str(),
            cost.bytes_scanned,
            cost.engine_ms
        ),
        ("q-1", 10_485_760, 1234)
    );
    assert_eq!(
        calls(&client),
        [
            "StartQueryExecution",
            "GetQueryExecution",
            "GetQueryExecution",
            "GetQueryExecution",
            "GetQueryResults",
            "GetQueryResults",
        ]
    );
    let start = body(&client, 0);
    assert_eq!(start["WorkGroup"], "primary");
    assert_eq!(
        start["QueryExecutionContext"]["Database"],
        "autocorp_curated"
    );
    assert_eq!(start["QueryExecutionContext"]["Catalog"], "AwsDataCatalog");
    assert_eq!(
        start["ResultConfiguration"]["OutputLocation"],
        "s3://results/athena/"
    );
    assert_eq!(body(&client, 5)["NextToken"], "page-2");
    assert_eq!(source.scanned(), 10_485_760);
}

#[rstest::rstest]
#[case::failed(
    "FAILED",
    json!({ "State": "FAILED",
            "StateChangeReason": "COLUMN_NOT_FOUND: line 1:8: Column 'x' cannot be resolved",
            "AthenaError": { "ErrorCategory": 2, "ErrorType": 1006, "Retryable": false } }),
    "Athena query q-9 failed: COLUMN_NOT_FOUND: line 1:8: Column 'x' cannot be resolved (error type 1006, user error)"
)]
#[case::cancelled(
    "CANCELLED",
    json!({ "State": "CANCELLED", "StateChangeReason": "Query was cancelled by user" }),
    "Athena query q-9 cancelled: Query was cancelled by user"
)]
#[tokio::test]
async fn a_query_athena_ends_without_success_is_an_error_with_its_reason(
    #[case] _state: &str,
    #[case] status: Value,
    #[case] expected: &str,
) {
    let (source, client) = replayed(
        vec![
            started("q-9"),
            answer(
                200,
                json!({ "QueryExecution": { "QueryExecutionId": "q-9", "Status": status,
                    "Statistics": { "DataScannedInBytes": 0 } } }),
            ),
        ],
        None,
    )
    .await;
    let error = source.query("SELECT x FROM t").await.unwrap_err();
    assert_eq!(error.source_name, "athena");
    assert_eq!(error.cause, expected);
    // Nothing to stop: the execution had ended.
    assert_eq!(calls(&client), ["StartQueryExecution", "GetQueryExecution"]);
}

#[tokio::test]
async fn throttled_calls_are_retried_with_backoff() {
    let throttled = || {
        answer(
            400,
            json!({ "__type": "TooManyRequestsException", "Message": "Rate exceeded",
                    "Reason": "CONCURRENT_QUERY_LIMIT_EXCEEDED" }),
        )
    };
    let (source, client) = replayed(
        vec![
            throttled(),
            throttled(),
            started("q-2"),
            throttled(),
            state("q-2", "SUCCEEDED", 42),
            page(
                &[("n", "bigint")],
                &[vec![Some("n")], vec![Some("7")]],
                None,
            ),
        ],
        None,
    )
    .await;
    let rows = source.query("SELECT count(*) AS n FROM t").await.unwrap();
    assert_eq!(rows.first("n"), Some("7"));
    assert_eq!(
        calls(&client),
        [
            "StartQueryExecution",
            "StartQueryExecution",
            "StartQueryExecution",
            "GetQueryExecution",
            "GetQueryExecution",
            "GetQueryResults",
        ]
    );
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_is_an_error_naming_the_call() {
    let throttled = || {
        answer(
            400,
            json!({ "__type": "TooManyRequestsException", "Message": "Rate exceeded" }),
        )
    };
    let (source, client) = replayed((0..6).map(|_| throttled()).collect(), None).await;
    let error = source.query("SELECT 1").await.unwrap_err();
    assert_eq!(
        error.cause,
        "Athena StartQueryExecution failed: TooManyRequestsException: Rate exceeded"
    );
    assert_eq!(calls(&client).len(), 6, "six attempts in all");
}

#[tokio::test]
async fn max_scanned_stops_the_query_that_passes_it_and_refuses_the_next() {
    const GB: u64 = 1_000_000_000;
    let (source, client) = replayed(
        vec![
            started("q-1"),
            state("q-1", "SUCCEEDED", 30 * GB),
            page(
                &[("n", "bigint")],
                &[vec![Some("n")], vec![Some("1")]],
                None,
            ),
            started("q-2"),
            state("q-2", "RUNNING", 5 * GB),
            state("q-2", "RUNNING", 25 * GB),
            answer(200, json!({})), // StopQueryExecution
        ],
        Some(50 * GB),
    )
    .await;
    source.query("SELECT count(*) AS n FROM a").await.unwrap();
    let error = source
        .query("SELECT count(*) AS n FROM b")
        .await
        .unwrap_err();
    assert_eq!(
        error.cause,
        "stopped Athena query q-2: it had scanned 25.0 GB and source `athena`'s `max_scanned` allows \
         20.0 GB more; raise `max_scanned` or narrow the check (`where:`, a partition filter)"
    );
    assert_eq!(
        calls(&client)[3..],
        [
            "StartQueryExecution",
            "GetQueryExecution",
            "GetQueryExecution",
            "StopQueryExecution"
        ]
    );
    assert_eq!(body(&client, 6)["QueryExecutionId"], "q-2");
    assert_eq!(source.scanned(), 55 * GB);
    // The budget is spent: the next query never starts.
    let refused = source.query("SELECT 1").await.unwrap_err();
    assert!(
        refused.cause.starts_with(
            "its `max_scanned` of 50.0 GB is spent (55.0 GB scanned by 2 queries this run)"
        ),
        "{}",
        refused.cause
    );
    assert_eq!(calls(&client).len(), 7);
}

// ---------------------------------------------------------------------------------------------
// moto_server, through the CLI

/// Sends `body` as JSON to moto's own API at `path`.
fn moto_api(s3: &S3Server, path: &str, body: Value) {
    use std::io::{Read, Write};
    let address = s3.endpoint.trim_start_matches("http://");
    let text = body.to_string();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 20"),
        "moto {path}: {response}"
    );
}

/// Athena executions stay in each state for `polls` GetQueryExecution calls (QUEUED, RUNNING,
/// then SUCCEEDED), as a real query does for a while.
fn slow_transitions(s3: &S3Server, polls: u32) {
    moto_api(
        s3,
        "/moto-api/state-manager/set-transition",
        json!({ "model_name": "athena::execution",
                "transition": { "progression": "manual", "times": polls } }),
    );
}

/// Queues one answer per query, in the order queries will start.
/// One queued answer: its columns (name, type) and rows.
type Answer<'a> = (&'a [(&'a str, &'a str)], &'a [&'a [&'a str]]);

fn queue_results(s3: &S3Server, answers: &[Answer]) {
    let results: Vec<Value> = answers
        .iter()
        .map(|(columns, rows)| {
            let header = json!({ "Data": columns.iter().map(|(n, _)| json!({ "VarCharValue": n })).collect::<Vec<_>>() });
            let data = rows.iter().map(|r| json!({ "Data": r.iter().map(|v| json!({ "VarCharValue": v })).collect::<Vec<_>>() }));
            json!({
                "rows": std::iter::once(header).chain(data).collect::<Vec<_>>(),
                "column_info": columns.iter().map(|(name, kind)| json!({
                    "CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
                    "Type": kind, "Precision": 19, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": false
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    moto_api(
        s3,
        "/moto-api/static/athena/query-results",
        json!({ "region": "us-east-1", "results": results }),
    );
}

/// An SDK configuration for the test's own calls to moto (Glue tables, execution states).
async fn moto_config(s3: &S3Server) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(&s3.endpoint)
        .load()
        .await
}

fn athena_source(s3: &S3Server, extra: &str) -> String {
    format!(
        "sources:\n  athena:\n    type: athena\n    region: us-east-1\n    endpoint: {}\n    database: autocorp_curated\n    \
         output_location: s3://lake/athena-results/\n    poll_interval: 10ms\n{extra}",
        s3.endpoint
    )
}

/// Runs the CLI with moto's dummy credentials in the environment (the standard AWS chain).
fn run_cli(dir: &std::path::Path) -> (std::process::Output, Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lakecheck"))
        .args(["run", "rules.yml", "--jobs", "1", "--json", "report.json"])
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let report = std::fs::read_to_string(dir.join("report.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    (output, report)
}

fn results(report: &Value) -> Vec<(String, String, String)> {
    report["suites"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["results"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn checks_run_in_athena_through_slow_state_transitions() {
    let s3 = S3Server::start();
    slow_transitions(&s3, 2);
    // The two checks share one scan of the table: one query, one answer.
    queue_results(
        &s3,
        &[(
            &[
                ("agg_0", "bigint"),
                ("agg_1", "bigint"),
                ("agg_2", "bigint"),
            ],
            &[&["1149", "0", "0"]],
        )],
    );
    let dir = rule_dir(
        &athena_source(&s3, ""),
        "  - { name: customers loaded, type: row_count, table: athena.customers, min: 1000 }\n  \
         - { name: emails present, type: not_null, table: athena.customers, columns: [email] }\n",
    );
    let (output, report) = run_cli(dir.path());
    assert!(
        output.status.success(),
        "{}\n{report:#}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = results(&report);
    assert_eq!(
        results
            .iter()
            .map(|(n, s, _)| (n.as_str(), s.as_str()))
            .collect::<Vec<_>>(),
        [("customers loaded", "pass"), ("emails present", "pass")]
    );
    assert!(results[0].2.contains("1149"), "{:?}", results[0]);
    // Both queries ran in Athena, and each reached SUCCEEDED through QUEUED and RUNNING.
    let athena = aws_sdk_athena::Client::new(&moto_config(&s3).await);
    let listed = athena.list_query_executions().send().await.unwrap();
    assert_eq!(listed.query_execution_ids().len(), 1);
    // Each result names its execution, and the run totals what was billed (moto bills 0 bytes).
    let first_query = &report["suites"][0]["results"][0]["queries"][0];
    assert_eq!(
        first_query["cost"]["execution_id"].as_str(),
        Some(listed.query_execution_ids()[0].as_str()),
        "{first_query:#}"
    );
    assert_eq!(report["billed"]["queries"], 1, "{report:#}");
}

#[tokio::test]
async fn a_check_past_its_timeout_stops_its_athena_query() {
    let s3 = S3Server::start();
    // Never finishes within the check's second.
    slow_transitions(&s3, 100_000);
    let dir = rule_dir(
        &athena_source(&s3, ""),
        "  - { name: slow count, type: row_count, table: athena.customers, min: 1, timeout: 1s }\n",
    );
    let (output, report) = run_cli(dir.path());
    assert_eq!(output.status.code(), Some(2));
    let results = results(&report);
    assert_eq!(results[0].1, "error");
    assert!(
        results[0]
            .2
            .contains("did not finish within its timeout of 1s"),
        "{:?}",
        results[0]
    );
    let athena = aws_sdk_athena::Client::new(&moto_config(&s3).await);
    let listed = athena.list_query_executions().send().await.unwrap();
    let [id] = listed.query_execution_ids() else {
        panic!("one execution expected: {listed:?}");
    };
    let execution = athena
        .get_query_execution()
        .query_execution_id(id)
        .send()
        .await
        .unwrap();
    let state = execution
        .query_execution()
        .and_then(|e| e.status())
        .and_then(|s| s.state())
        .map(|s| s.as_str().to_string());
    assert_eq!(
        state.as_deref(),
        Some("CANCELLED"),
        "StopQueryExecution was sent"
    );
}

#[tokio::test]
async fn columns_come_from_the_glue_catalog() {
    use aws_sdk_glue::types::{Column, DatabaseInput, StorageDescriptor, TableInput};
    let s3 = S3Server::start();
    let glue = aws_sdk_glue::Client::new(&moto_config(&s3).await);
    glue.create_database()
        .database_input(
            DatabaseInput::builder()
                .name("autocorp_curated")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let column =
        |name: &str, kind: &str| Column::builder().name(name).r#type(kind).build().unwrap();
    glue.create_table()
        .database_name("autocorp_curated")
        .table_input(
            TableInput::builder()
                .name("customers")
                .storage_descriptor(
                    StorageDescriptor::builder()
                        .columns(column("customer_id", "int"))
                        .columns(column("email", "string"))
                        .columns(column("lifetime_value", "decimal(12,2)"))
                        .columns(column("updated_at", "timestamp"))
                        .location("s3://lake/curated/customers/")
                        .build(),
                )
                .partition_keys(column("state", "string"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let config = moto_config(&s3).await;
    let mut settings = settings(None);
    settings.endpoint = Some(s3.endpoint.clone());
    let source = AthenaSource::new("athena", settings).with_sdk_config(&config);
    let columns = source.columns("customers").await.unwrap();
    let described: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{} {} {}{}",
                c.name,
                c.engine_type,
                c.logical,
                if c.millisecond_precision { " ms" } else { "" }
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            "customer_id int int32",
            "email string text",
            "lifetime_value decimal(12,2) decimal(12,2)",
            "updated_at timestamp timestamp ms",
            "state string text",
        ]
    );
    let missing = source.columns("orders").await.unwrap_err();
    assert!(
        missing
            .cause
            .starts_with("Glue GetTable `autocorp_curated.orders` failed: EntityNotFoundException"),
        "{}",
        missing.cause
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL against Athena: a table_match whose Athena side answers from rows held here

/// The Athena side's rows: code (key), email, lifetime_value as unscaled cents, updated_at in
/// microseconds since 1970 (Athena keeps milliseconds).
type LakeRow = (&'static str, Option<&'static str>, i128, i64);

const CUSTOMERS_SQL: &str = "CREATE TABLE customers (code text PRIMARY KEY, email text, \
    lifetime_value numeric(12,2), updated_at timestamp);";

fn customer_rows() -> Vec<LakeRow> {
    (0..40)
        .map(|i| {
            let code: &'static str = Box::leak(format!("C-{i:03}").into_boxed_str());
            let email: Option<&'static str> = (i % 7 != 0)
                .then(|| &*Box::leak(format!("c{i}@autocorp.example").into_boxed_str()));
            // 2026-11-21 08:00:00 UTC plus i seconds and i*37 ms.
            let micros = 1_795_766_400_000_000 + i * 1_000_000 + i * 37_000;
            (code, email, (i as i128) * 1_250, micros)
        })
        .collect()
}

/// INSERTs of `rows` into PostgreSQL, with a sub-millisecond part Athena would not keep.
fn insert_sql(rows: &[LakeRow]) -> String {
    let values: Vec<String> = rows
        .iter()
        .map(|(code, email, cents, micros)| {
            let email = email.map_or("NULL".to_string(), |e| format!("'{e}'"));
            format!(
                "('{code}', {email}, {cents} / 100.0, to_timestamp({micros} / 1e6 + 0.0004) AT TIME ZONE 'UTC')"
            )
        })
        .collect();
    format!("INSERT INTO customers VALUES {};", values.join(", "))
}

/// A row's canonical fields as `model::canon` defines them (millisecond timestamps).
fn canonical_fields(row: &LakeRow) -> Vec<String> {
    use lakecheck::model::canon::{write_decimal, write_text, write_timestamp};
    let (code, email, cents, micros) = row;
    let mut key = String::new();
    write_text(&mut key, code);
    let email = email.map_or("~".to_string(), |e| {
        let mut out = String::new();
        write_text(&mut out, e);
        out
    });
    let mut value = String::new();
    write_decimal(&mut value, *cents, 2);
    let mut time = String::new();
    write_timestamp(&mut time, micros - micros.rem_euclid(1_000));
    vec![key, email, value, time]
}

/// Columns (name, Athena type) and rows of one answer.
type Table = (Vec<(&'static str, &'static str)>, Vec<Vec<Option<String>>>);

/// Athena as these tests play it, over HTTP: Glue answers `customers`' columns, every query
/// succeeds having scanned 10 MiB, and its rows are `answer(sql)`. `log` gets the SQL sent.
async fn fake_athena(
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    answer: impl Fn(&str) -> Table + Send + Sync + 'static,
) -> SdkConfig {
    let client = aws_smithy_http_client::test_util::infallible_client_fn(
        move |request: http::Request<SdkBody>| {
            let target = request
                .headers()
                .get("x-amz-target")
                .and_then(|t| t.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body: Value = serde_json::from_slice(request.body().bytes().unwrap_or(b"{}"))
                .unwrap_or(Value::Null);
            let mut log = log.lock().unwrap();
            let reply = match target.as_str() {
                "AWSGlue.GetTable" => json!({ "Table": {
                    "Name": "customers", "DatabaseName": "autocorp_curated",
                    "StorageDescriptor": { "Columns": [
                        { "Name": "code", "Type": "string" }, { "Name": "email", "Type": "string" },
                        { "Name": "lifetime_value", "Type": "decimal(12,2)" }, { "Name": "updated_at", "Type": "timestamp" }
                    ] },
                    "PartitionKeys": []
                }}),
                "AmazonAthena.StartQueryExecution" => {
                    log.push(body["QueryString"].as_str().unwrap().to_string());
                    json!({ "QueryExecutionId": format!("q-{}", log.len() - 1) })
                }
                "AmazonAthena.GetQueryExecution" => json!({ "QueryExecution": {
                    "QueryExecutionId": body["QueryExecutionId"],
                    "Status": { "State": "SUCCEEDED" },
                    "Statistics": { "DataScannedInBytes": 10_485_760, "EngineExecutionTimeInMillis": 400 }
                }}),
                "AmazonAthena.GetQueryResults" => {
                    let id: usize = body["QueryExecutionId"].as_str().unwrap()[2..]
                        .parse()
                        .unwrap();
                    let (columns, rows) = answer(&log[id]);
                    let header: Vec<Option<String>> =
                        columns.iter().map(|(n, _)| Some(n.to_string())).collect();
                    let datum = |v: &Option<String>| {
                        v.as_ref()
                            .map_or(json!({}), |v| json!({ "VarCharValue": v }))
                    };
                    json!({ "ResultSet": {
                        "Rows": std::iter::once(&header).chain(&rows).map(|r| json!({ "Data": r.iter().map(datum).collect::<Vec<_>>() })).collect::<Vec<_>>(),
                        "ResultSetMetadata": { "ColumnInfo": columns.iter().map(|(name, kind)| json!({
                            "Name": name, "Type": kind, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": false
                        })).collect::<Vec<_>>() }
                    }})
                }
                other => panic!("a call this fake Athena does not answer: {other}"),
            };
            http::Response::builder()
                .status(200)
                .header("content-type", "application/x-amz-json-1.1")
                .body(SdkBody::from(reply.to_string()))
                .unwrap()
        },
    );
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(client)
        .load()
        .await
}

/// Answers the reconcile's queries from `rows`, as Athena would over a table of them: each
/// query is recognised by the aliases lakecheck's reconcile SQL uses, and the text hash is
/// computed here from `model::row_hash::md5_int64` of the canonical fields.
fn reconcile_answers(rows: Vec<LakeRow>) -> impl Fn(&str) -> Table + Send + Sync + 'static {
    use lakecheck::model::row_hash::md5_int64;
    let hashed: Vec<(Vec<String>, i64, i64)> = rows
        .iter()
        .map(|row| {
            let fields = canonical_fields(row);
            let key_hash = md5_int64(fields[0].as_bytes());
            let row_hash = md5_int64(fields.join("|").as_bytes());
            (fields, key_hash, row_hash)
        })
        .collect();
    let list_after = |sql: &str, marker: &str| -> Vec<i64> {
        let start = sql.find(marker).expect(marker) + marker.len();
        let end = start + sql[start..].find(')').unwrap();
        sql[start..end]
            .split(',')
            .map(|n| n.trim().parse().unwrap())
            .collect()
    };
    move |sql: &str| {
        if sql.contains("AS sum_high") {
            let mut segments = std::collections::BTreeMap::<i64, (i64, i64, i64)>::new();
            for (_, key_hash, row_hash) in &hashed {
                let entry = segments.entry(key_hash & 8191).or_default();
                entry.0 += 1;
                entry.1 += row_hash >> 32;
                entry.2 += (row_hash & 0xffff_ffff) - 2_147_483_648;
            }
            let rows = segments
                .iter()
                .map(|(s, (n, high, low))| {
                    [s, n, high, low]
                        .iter()
                        .map(|v| Some(v.to_string()))
                        .collect()
                })
                .collect();
            (
                vec![
                    ("segment", "bigint"),
                    ("row_count", "bigint"),
                    ("sum_high", "bigint"),
                    ("sum_low", "bigint"),
                ],
                rows,
            )
        } else if sql.contains("row_hash, lakecheck_kh FROM") {
            let segments = list_after(sql, "8191)) IN (");
            let rows = hashed
                .iter()
                .filter(|(_, kh, _)| segments.contains(&(kh & 8191)))
                .map(|(f, kh, rh)| {
                    vec![
                        Some(f[0].clone()),
                        Some(rh.to_string()),
                        Some(kh.to_string()),
                    ]
                })
                .collect();
            (
                vec![
                    ("lakecheck_k0", "varchar"),
                    ("row_hash", "bigint"),
                    ("lakecheck_kh", "bigint"),
                ],
                rows,
            )
        } else if sql.contains("WHERE lakecheck_kh IN (") {
            let keys = list_after(sql, "WHERE lakecheck_kh IN (");
            let rows = hashed
                .iter()
                .filter(|(_, kh, _)| keys.contains(kh))
                .map(|(f, _, _)| f.iter().cloned().map(Some).collect())
                .collect();
            (
                vec![
                    ("_col0", "varchar"),
                    ("_col1", "varchar"),
                    ("_col2", "varchar"),
                    ("_col3", "varchar"),
                ],
                rows,
            )
        } else if sql.contains("lakecheck_total") {
            // NULL or repeated keys: these rows have neither.
            (
                vec![("lakecheck_f0", "varchar"), ("lakecheck_total", "bigint")],
                Vec::new(),
            )
        } else {
            panic!("a query this fake Athena does not know: {sql}");
        }
    }
}

/// Runs the one check `check` (a YAML flow mapping) of a rule file whose `pg` source is
/// `pg_url` and whose `athena` source is the fake Athena answering `answer`; returns its result
/// and the Athena SQL sent.
async fn run_on_fake_athena(
    pg_url: &str,
    check: &str,
    answer: impl Fn(&str) -> Table + Send + Sync + 'static,
) -> (lakecheck::results::CheckResult, Vec<String>) {
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"{pg_url}\" }}\n  athena: {{ type: athena, region: us-east-1, database: autocorp_curated }}\n\
         checks:\n  - {check}\n"
    );
    let mut file = lakecheck::rules::parse_rule_text(
        std::path::Path::new("athena.yml"),
        &text,
        &std::sync::Arc::new(lakecheck::rules::Vars::new()),
    )
    .unwrap_or_else(|e| panic!("{check}: {e:?}"));
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let config = fake_athena(log.clone(), answer).await;
    let mut sources = lakecheck::sources::SourceSet::default();
    sources.insert(file.sources.get("pg").unwrap().clone());
    sources.insert(std::sync::Arc::new(
        AthenaSource::new("athena", settings(None)).with_sdk_config(&config),
    ));
    file.sources = std::sync::Arc::new(sources);
    let files = [file];
    let planned =
        lakecheck::runner::plan(&files, &lakecheck::runner::Selection::default()).unwrap();
    let report = lakecheck::runner::run(&files, planned, 1, Default::default(), &|_| {}).await;
    let result = report.results().next().unwrap().clone();
    let sent = log.lock().unwrap().clone();
    (result, sent)
}

/// PostgreSQL's `customers`, holding [`customer_rows`], in a scratch database; its URL.
async fn pg_customers(world: &crate::harness::World, name: &str, rows: &[LakeRow]) -> String {
    let setup = format!("{CUSTOMERS_SQL}\n{}", insert_sql(rows));
    crate::reconcile::scratch_database(|db| world.pg.url(db), name, &setup).await
}

/// Runs `pg.customers` against `athena.customers` with the Athena side answering from
/// `lake_rows`; returns the result and the Athena SQL sent.
async fn reconcile_with_athena(
    lake_rows: Vec<LakeRow>,
    options: &str,
) -> (lakecheck::results::CheckResult, Vec<String>) {
    let world = crate::harness::pg_world().await;
    let pg_url = pg_customers(&world, "athena_match", &customer_rows()).await;
    let check = format!(
        "{{ name: customers match, type: table_match, left: pg.customers, right: athena.customers, \
         timestamp_precision: ms{options} }}"
    );
    run_on_fake_athena(&pg_url, &check, reconcile_answers(lake_rows)).await
}

#[tokio::test]
async fn postgres_reconciles_with_athena_row_for_row() {
    let (result, sent) = reconcile_with_athena(customer_rows(), "").await;
    assert_eq!(
        result.status,
        lakecheck::results::Status::Pass,
        "{result:#?}"
    );
    assert!(result.message.contains("40"), "{}", result.message);
    // The Athena side sent one checksum query, in Trino's dialect, and reported what it cost.
    let checksums: Vec<&String> = sent.iter().filter(|s| s.contains("AS sum_high")).collect();
    assert_eq!(checksums.len(), 1, "{sent:#?}");
    assert!(
        checksums[0].contains("from_big_endian_64(substr(md5(to_utf8("),
        "{}",
        checksums[0]
    );
    let billed: Vec<_> = result
        .queries
        .iter()
        .filter_map(|q| q.cost.as_ref())
        .collect();
    assert_eq!(billed.len(), sent.len());
    assert!(billed.iter().all(|c| c.bytes_scanned == 10_485_760));
}

#[tokio::test]
async fn a_changed_and_a_missing_row_in_athena_are_named() {
    let mut rows = customer_rows();
    rows.retain(|row| row.0 != "C-017");
    rows.iter_mut().find(|row| row.0 == "C-023").unwrap().1 = Some("changed@autocorp.example");
    let (result, _) = reconcile_with_athena(rows, "").await;
    assert_eq!(
        result.status,
        lakecheck::results::Status::Fail,
        "{result:#?}"
    );
    let samples = format!("{:?} {}", result.samples, result.message);
    assert!(samples.contains("C-017"), "{samples}");
    assert!(samples.contains("C-023"), "{samples}");
    assert!(samples.contains("changed@autocorp.example"), "{samples}");
}

/// The SQL every check kind sends to Athena (`table_match`: `reconcile_sql_text_hash_athena`), for review (Trino dialect: identifier quoting,
/// types, functions). Each check runs alone (no scan shared with another) against a fake
/// Athena whose answers are empty: what is snapshotted is what was sent, not the verdicts.
#[tokio::test]
async fn the_athena_sql_of_every_check_kind() {
    let world = crate::harness::pg_world().await;
    let pg_url = pg_customers(&world, "athena_sql", &customer_rows()[..3]).await;
    let checks = [
        "{ type: row_count, table: athena.customers, min: 1 }",
        "{ type: not_null, table: athena.customers, columns: [code, email] }",
        "{ type: unique, table: athena.customers, columns: [code] }",
        "{ type: accepted_values, table: athena.customers, column: email, values: [a@x.example, \"O'Hara@x.example\"] }",
        "{ type: range, table: athena.customers, column: lifetime_value, min: 0, max: 10000 }",
        "{ type: condition, table: athena.customers, expression: \"lifetime_value >= 0\" }",
        "{ type: pattern, table: athena.customers, column: email, format: email }",
        "{ type: sql, source: athena, query: \"SELECT code FROM customers WHERE email IS NULL\" }",
        "{ type: freshness, table: athena.customers, column: updated_at, warn_after: 15m }",
        "{ type: row_count_match, left: pg.customers, right: athena.customers }",
        "{ type: aggregate_match, left: pg.customers, right: athena.customers, distinct: true }",
        "{ type: relationships, table: athena.customers, column: email, to: athena.customers, field: email }",
    ];
    let mut out = String::new();
    for check in checks {
        let (_, sent) = run_on_fake_athena(&pg_url, check, |_| (Vec::new(), Vec::new())).await;
        out.push_str(&format!("-- {check}\n"));
        for sql in &sent {
            out.push_str(&format!("{}\n", sql.trim()));
        }
        out.push('\n');
    }
    let pg_host = regex::Regex::new(r"athena_sql_\d+_\d+").unwrap();
    insta::assert_snapshot!(
        "athena_sql_of_every_check_kind",
        pg_host.replace_all(&out, "athena_sql_N")
    );
}

#[tokio::test]
async fn a_check_s_max_scanned_stops_its_reconcile_once_spent() {
    // Each fake Athena query scans 10.5 MB: the first fits in 15 MB, the next may scan only
    // what is left, so Athena's answer (10.5 MB) is over it and the check is an error.
    let (result, sent) = reconcile_with_athena(customer_rows(), ", max_scanned: 15MB").await;
    assert_eq!(
        result.status,
        lakecheck::results::Status::Error,
        "{result:#?}"
    );
    assert!(
        result
            .message
            .contains("it had scanned 10.5 MB and the check's `max_scanned` allows 4.5 MB more"),
        "{}",
        result.message
    );
    assert_eq!(sent.len(), 2, "{sent:#?}");
}

#[tokio::test]
async fn a_check_s_max_scanned_once_spent_refuses_its_next_query() {
    // The first query scans exactly the budget (10 MiB): nothing is left for the second.
    let (result, sent) = reconcile_with_athena(customer_rows(), ", max_scanned: 10485760").await;
    assert_eq!(result.status, lakecheck::results::Status::Error);
    assert!(
        result.message.contains(
            "its `max_scanned` of 10.5 MB is spent (10.5 MB scanned), so its next query on \
             source `athena` did not start"
        ),
        "{}",
        result.message
    );
    assert_eq!(sent.len(), 1, "{sent:#?}");
}

#[tokio::test]
async fn a_check_s_max_scanned_stops_a_query_that_passes_it_and_keeps_it_out_of_shared_scans() {
    let world = crate::harness::pg_world().await;
    let pg_url = pg_customers(&world, "athena_budget", &customer_rows()[..3]).await;
    let figures = |sql: &str| {
        let columns: Vec<(&'static str, &'static str)> = ["row_count", "null_0", "failing_rows"]
            .into_iter()
            .filter(|alias| sql.contains(&format!("AS {alias}")))
            .map(|alias| (alias, "bigint"))
            .collect();
        let row = columns
            .iter()
            .map(|(alias, _)| Some(if *alias == "row_count" { "3" } else { "0" }.to_string()))
            .collect();
        (columns, vec![row])
    };
    let two_checks = "{ type: row_count, table: athena.customers, min: 1, max_scanned: 20MB }\n  \
                      - { type: not_null, table: athena.customers, columns: [code] }";
    let (result, sent) = run_on_fake_athena(&pg_url, two_checks, figures).await;
    assert_eq!(
        result.status,
        lakecheck::results::Status::Pass,
        "{result:#?}"
    );
    assert_eq!(sent.len(), 2, "each check its own query: {sent:#?}");
    let (result, _) = run_on_fake_athena(
        &pg_url,
        "{ type: row_count, table: athena.customers, min: 1, max_scanned: 5MB }",
        figures,
    )
    .await;
    assert_eq!(result.status, lakecheck::results::Status::Error);
    assert!(
        result
            .message
            .contains("the check's `max_scanned` allows 5.0 MB more"),
        "{}",
        result.message
    );
}

#[test]
fn a_check_s_max_scanned_that_is_no_size_is_located_with_a_fix() {
    let text =
        "sources:\n  athena: { type: athena, region: us-east-1, database: autocorp_curated }\n\
                checks:\n  - { type: row_count, table: athena.customers, max_scanned: lots }\n";
    assert_eq!(
        crate::rule_errors::errors_of(text),
        "rules/bad.yml:4:62: error: `max_scanned` in check #1 is `lots`, not a size\n  help: write a size such as `50GB`, `500MB` or `1TB`"
    );
}

// ---------------------------------------------------------------------------------------------
// Lake sources naming tables through the Glue Data Catalog

/// Registers `database.name` in moto's Glue: `location`, and the descriptor classes and
/// parameters as Athena, Spark or a crawler write them.
async fn glue_table(
    glue: &aws_sdk_glue::Client,
    database: &str,
    name: &str,
    location: &str,
    (input_format, serde, serde_parameters): (&str, &str, &[(&str, &str)]),
    parameters: &[(&str, &str)],
) {
    use aws_sdk_glue::types::{SerDeInfo, StorageDescriptor, TableInput};
    let mut serde_info = SerDeInfo::builder().serialization_library(serde);
    for (k, v) in serde_parameters {
        serde_info = serde_info.parameters(*k, *v);
    }
    let mut table = TableInput::builder().name(name).storage_descriptor(
        StorageDescriptor::builder()
            .location(location)
            .input_format(input_format)
            .serde_info(serde_info.build())
            .build(),
    );
    for (k, v) in parameters {
        table = table.parameters(*k, *v);
    }
    glue.create_table()
        .database_name(database)
        .table_input(table.build().unwrap())
        .send()
        .await
        .unwrap();
}

const PARQUET_CLASSES: (&str, &str, &[(&str, &str)]) = (
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    &[],
);

#[tokio::test]
async fn lake_tables_are_found_through_the_glue_catalog_in_each_format() {
    use aws_sdk_glue::types::DatabaseInput;
    let world = crate::harness::s3_world().await;
    let s3 = &world.s3;
    // Delta on S3 (written locally, uploaded), Hudi in a local folder, Parquet and CSV of the
    // raw zone the S3 world holds.
    let delta = tempfile::tempdir().unwrap();
    let parts = &world.table("auto_parts").batch;
    let delta_url = url::Url::from_directory_path(delta.path()).unwrap();
    deltalake::DeltaTable::try_from_url(delta_url)
        .await
        .unwrap()
        .write(vec![parts.clone()])
        .await
        .unwrap();
    crate::harness::upload_folder(s3, delta.path(), "glue/curated/auto_parts").await;
    let (hudi, _) = crate::harness::curated_hudi(&world).await;
    let hudi_location = url::Url::from_directory_path(hudi.path().join("sales_order"))
        .unwrap()
        .to_string();
    let glue = aws_sdk_glue::Client::new(&moto_config(s3).await);
    let database = "glue_lakes";
    glue.create_database()
        .database_input(DatabaseInput::builder().name(database).build().unwrap())
        .send()
        .await
        .unwrap();
    glue_table(
        &glue,
        database,
        "auto_parts",
        "s3://lake/glue/curated/auto_parts/",
        PARQUET_CLASSES,
        &[("table_type", "DELTA")],
    )
    .await;
    glue_table(
        &glue,
        database,
        "sales_order",
        &hudi_location,
        (
            "org.apache.hudi.hadoop.HoodieParquetInputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            &[],
        ),
        &[],
    )
    .await;
    glue_table(
        &glue,
        database,
        "service",
        "s3://lake/raw/database/autocorp/service",
        PARQUET_CLASSES,
        &[("classification", "parquet")],
    )
    .await;
    glue_table(
        &glue,
        database,
        "customers_csv",
        "s3://lake/raw/csv/customers/",
        (
            "org.apache.hadoop.mapred.TextInputFormat",
            "org.apache.hadoop.hive.serde2.OpenCSVSerde",
            &[("separatorChar", ",")],
        ),
        &[("skip.header.line.count", "1")],
    )
    .await;
    glue_table(
        &glue,
        database,
        "orders_iceberg",
        "s3://lake/glue/iceberg/orders/",
        PARQUET_CLASSES,
        &[("table_type", "ICEBERG")],
    )
    .await;
    let endpoint = &s3.endpoint;
    let sources = format!(
        "sources:\n  lake: {{ type: lake, url: \"{lake}/raw/database/autocorp\" }}\n  \
         csv: {{ type: lake, url: \"{lake}/raw/csv\", format: csv }}\n  \
         glue:\n    type: lake\n    catalog: {{ type: glue, database: {database}, region: us-east-1, endpoint: \"{endpoint}\" }}\n    \
         storage: {{ endpoint: \"{endpoint}\", allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }}\n  \
         curated:\n    type: delta\n    catalog: {{ type: glue, database: {database}, region: us-east-1, endpoint: \"{endpoint}\" }}\n    \
         storage: {{ endpoint: \"{endpoint}\", allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }}\n",
        lake = world.lake_url(),
    );
    let dir = rule_dir(
        &sources,
        "  - { name: delta by catalog, type: row_count, table: glue.auto_parts, min: 400, max: 400 }\n  \
         - { name: delta source by catalog, type: row_count, table: curated.auto_parts, min: 400, max: 400 }\n  \
         - { name: hudi by catalog, type: row_count, table: glue.sales_order, min: 1 }\n  \
         - { name: parquet by catalog, type: table_match, left: lake.service, right: glue.service, key: [service_id] }\n  \
         - { name: csv by catalog, type: row_count_match, left: csv.customers, right: glue.customers_csv }\n  \
         - { name: iceberg, type: row_count, table: glue.orders_iceberg, min: 1 }\n  \
         - { name: not in glue, type: row_count, table: glue.nowhere, min: 1 }\n  \
         - { name: hudi read as delta, type: row_count, table: curated.sales_order, min: 1 }\n",
    );
    let (output, report) = run_cli(dir.path());
    let results = results(&report);
    let status = |name: &str| {
        results
            .iter()
            .find(|r| r.0 == name)
            .unwrap_or_else(|| panic!("{name}: {results:#?}\n{output:?}"))
            .clone()
    };
    for name in [
        "delta by catalog",
        "delta source by catalog",
        "hudi by catalog",
        "parquet by catalog",
        "csv by catalog",
    ] {
        assert_eq!(status(name).1, "pass", "{:#?}", status(name));
    }
    let iceberg = status("iceberg");
    assert_eq!(iceberg.1, "error");
    assert!(
        iceberg.2.contains(
            "table `orders_iceberg` in Glue database `glue_lakes`: its entry declares table_type \
             `ICEBERG`, InputFormat `org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat`, \
             SerDe `org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe`, which is none of \
             the formats lakecheck reads (parquet, csv, delta, hudi)"
        ),
        "{}",
        iceberg.2
    );
    let missing = status("not in glue");
    assert_eq!(missing.1, "error");
    assert!(
        missing
            .2
            .contains("Glue GetTable `glue_lakes.nowhere` failed: EntityNotFoundException"),
        "{}",
        missing.2
    );
    // A source that declares its format reads every table in it: Hudi's folder has no Delta log.
    let mismatch = status("hudi read as delta");
    assert_eq!(mismatch.1, "error");
    assert!(mismatch.2.contains("_delta_log"), "{}", mismatch.2);
}

#[test]
fn a_lake_source_with_both_url_and_catalog_is_refused() {
    let text = "sources:\n  glue: { type: lake, catalog: { type: glue, database: autocorp_curated }, url: /data/lake }\n\
                checks:\n  - { type: row_count, table: glue.customers }\n";
    assert_eq!(
        crate::rule_errors::errors_of(text),
        "rules/bad.yml:2:81: error: source `glue` has both `url` and `catalog`\n  help: keep `catalog:` (each table is where Glue says) or `url:` (each table is a folder under it)\n\
         rules/bad.yml:4:31: error: unknown source `glue` in check #1\n  help: declare it under `sources:`"
    );
}
