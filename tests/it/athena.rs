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
        .query_with_cost("SELECT state, count(*) AS n FROM t GROUP BY state")
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
        "stopped Athena query q-2: it had scanned 25.0 GB and the source's `max_scanned` allows \
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
