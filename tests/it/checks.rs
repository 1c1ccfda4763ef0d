//! Every check kind passes and fails where it should, on Postgres, a local lake and S3.
//! Expected figures come from the generated data itself, not from either engine.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use lakecheck::results::{RunReport, Status};
use rstest::rstest;
use serde_json::json;

use crate::harness::{assert_status, error_of, local_world, pg_world, result, world_with, World};

/// A column of generated data as text (decimals as `12.50`), NULL as `None`.
fn column(world: &World, table: &str, name: &str) -> Vec<Option<String>> {
    let batch = &world.table(table).batch;
    let array = batch.column(batch.schema().index_of(name).unwrap());
    let text = cast(array, &DataType::Utf8).unwrap();
    let text = text.as_string::<i32>();
    (0..text.len())
        .map(|i| (!text.is_null(i)).then(|| text.value(i).to_string()))
        .collect()
}

fn count(values: &[Option<String>], pred: impl Fn(&Option<String>) -> bool) -> u64 {
    values.iter().filter(|v| pred(v)).count() as u64
}

/// The table name a `sql` check uses on each source.
fn qualified(src: &str, table: &str) -> String {
    if src == "pg" {
        format!("autocorp.{table}")
    } else {
        table.to_string()
    }
}

#[rstest]
#[tokio::test]
async fn row_count(#[values("pg", "lake", "s3")] src: &str) {
    let world = world_with(&[src]).await;
    let report = world
        .run(&format!(
            "  - {{ name: pass, type: row_count, table: {src}.customers, equals: 1149 }}\n\
             \x20 - {{ name: fail, type: row_count, table: {src}.customers, min: 1, max: 1000 }}\n\
             \x20 - {{ name: filtered, type: row_count, table: {src}.customers, where: \"customer_id <= 100\", equals: 100 }}\n"
        ))
        .await;
    assert_status(result(&report, "pass"), Status::Pass);
    assert_eq!(result(&report, "pass").metrics["row_count"], json!(1149));
    let fail = result(&report, "fail");
    assert_status(fail, Status::Fail);
    assert_eq!(fail.observed.as_deref(), Some("1149 rows"));
    assert_eq!(fail.expected.as_deref(), Some("between 1 and 1000 rows"));
    assert_status(result(&report, "filtered"), Status::Pass);
}

#[rstest]
#[tokio::test]
async fn row_count_match(#[values("pg", "lake", "s3")] src: &str) {
    let world = world_with(&["pg", src]).await;
    let report = world
        .run(&format!(
            "  - {{ name: pass, type: row_count_match, left: pg.customers, right: {src}.customers }}\n\
             \x20 - {{ name: fail, type: row_count_match, left: pg.customers, right: {src}.service }}\n\
             \x20 - {{ name: tolerated, type: row_count_match, left: pg.sales_order, right: {src}.sales_order, right_where: \"order_id > 5\", tolerance: 1% }}\n\
             \x20 - {{ name: not tolerated, type: row_count_match, left: pg.sales_order, right: {src}.sales_order, right_where: \"order_id > 5\", tolerance: 4 }}\n"
        ))
        .await;
    assert_status(result(&report, "pass"), Status::Pass);
    let fail = result(&report, "fail");
    assert_status(fail, Status::Fail);
    assert_eq!(fail.metrics["left_count"], json!(1149));
    assert_eq!(fail.metrics["right_count"], json!(110));
    assert_eq!(fail.metrics["difference"], json!(110 - 1149));
    assert_status(result(&report, "tolerated"), Status::Pass);
    assert_status(result(&report, "not tolerated"), Status::Fail);
    assert_eq!(result(&report, "not tolerated").failing_rows, Some(5));
}

#[rstest]
#[tokio::test]
async fn not_null(#[values("pg", "lake", "s3", "csv")] src: &str) {
    let world = world_with(&[src]).await;
    let emails = column(&world, "customers", "email");
    let missing = count(&emails, Option::is_none);
    assert_eq!(missing, 24, "the generator leaves every 47th email empty");
    let report = world
        .run(&format!(
            "  - {{ name: pass, type: not_null, table: {src}.customers, columns: [customer_id, last_name] }}\n\
             \x20 - {{ name: fail, type: not_null, table: {src}.customers, columns: [customer_id, email, phone] }}\n"
        ))
        .await;
    assert_status(result(&report, "pass"), Status::Pass);
    let fail = result(&report, "fail");
    assert_status(fail, Status::Fail);
    let phones_missing = count(&column(&world, "customers", "phone"), Option::is_none);
    let either = column(&world, "customers", "phone")
        .iter()
        .zip(&emails)
        .filter(|(p, e)| p.is_none() || e.is_none())
        .count() as u64;
    assert_eq!(fail.metrics["nulls.email"], json!(missing));
    assert_eq!(fail.metrics["nulls.phone"], json!(phones_missing));
    assert_eq!(fail.metrics["nulls.customer_id"], json!(0));
    assert_eq!(fail.failing_rows, Some(either));
    let samples = fail.samples.as_ref().expect("samples");
    assert_eq!(samples.rows.len(), 10);
    let email = samples.columns.iter().position(|c| c == "email").unwrap();
    let phone = samples.columns.iter().position(|c| c == "phone").unwrap();
    assert!(samples
        .rows
        .iter()
        .all(|r| r[email].is_none() || r[phone].is_none()));
    // Samples are the first failing rows by key, whatever order the engine scans in.
    let ids = column(&world, "customers", "customer_id");
    let mut first: Vec<i64> = column(&world, "customers", "phone")
        .iter()
        .zip(&emails)
        .zip(&ids)
        .filter(|((p, e), _)| p.is_none() || e.is_none())
        .map(|(_, id)| id.as_deref().unwrap().parse().unwrap())
        .collect();
    first.sort();
    first.truncate(10);
    assert_eq!(sample_keys(samples, "customer_id"), first);
}

/// The `column` of every sample row, as integers, in the order the samples came.
fn sample_keys(samples: &lakecheck::model::Rows, column: &str) -> Vec<i64> {
    let index = samples.columns.iter().position(|c| c == column).unwrap();
    samples
        .rows
        .iter()
        .map(|r| r[index].as_deref().unwrap().parse().unwrap())
        .collect()
}

#[rstest]
#[tokio::test]
async fn unique(#[values("pg", "lake", "s3", "csv")] src: &str) {
    let world = world_with(&[src]).await;
    let report = world
        .run(&format!(
            "  - {{ name: pass, type: unique, table: {src}.customers, columns: [customer_id] }}\n\
             \x20 - {{ name: pass compound, type: unique, table: {src}.customers, columns: [last_name, customer_id] }}\n\
             \x20 - {{ name: fail, type: unique, table: {src}.customers, columns: [last_name] }}\n"
        ))
        .await;
    assert_status(result(&report, "pass"), Status::Pass);
    assert_status(result(&report, "pass compound"), Status::Pass);
    let fail = result(&report, "fail");
    assert_status(fail, Status::Fail);
    let mut names = std::collections::HashMap::new();
    for name in column(&world, "customers", "last_name")
        .into_iter()
        .flatten()
    {
        *names.entry(name).or_insert(0u64) += 1;
    }
    let duplicated: Vec<_> = names.values().filter(|n| **n > 1).collect();
    assert_eq!(fail.metrics["duplicate_keys"], json!(duplicated.len()));
    assert_eq!(
        fail.metrics["duplicate_rows"],
        json!(duplicated.iter().copied().sum::<u64>())
    );
    let samples = fail.samples.as_ref().unwrap();
    assert_eq!(samples.columns, vec!["last_name", "occurrences"]);
    let top = samples.rows[0][1]
        .as_deref()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert_eq!(
        top,
        *names.values().max().unwrap(),
        "most duplicated key first"
    );
}

#[rstest]
#[tokio::test]
async fn accepted_values(#[values("pg", "lake", "s3")] src: &str) {
    let world = world_with(&[src]).await;
    let report = world
        .run(&format!(
            "  - {{ name: pass, type: accepted_values, table: {src}.sales_order, column: status, values: [NEW, PAID, SHIPPED, DELIVERED, CANCELLED] }}\n\
             \x20 - {{ name: fail, type: accepted_values, table: {src}.sales_order, column: status, values: [NEW, PAID] }}\n\
             \x20 - {{ name: numbers, type: accepted_values, table: {src}.sales_order_parts, column: quantity, values: [1, 2, 3, 4, 5, 6] }}\n\
             \x20 - {{ name: few numbers, type: accepted_values, table: {src}.sales_order_parts, column: quantity, values: [1, 2] }}\n"
        ))
        .await;
    assert_status(result(&report, "pass"), Status::Pass);
    assert_status(result(&report, "numbers"), Status::Pass);
    let few = result(&report, "few numbers");
    assert_status(few, Status::Fail);
    let quantities = column(&world, "sales_order_parts", "quantity");
    let mut above: std::collections::BTreeMap<i64, u64> = Default::default();
    for q in quantities.iter().flatten() {
        let q: i64 = q.parse().unwrap();
        if q > 2 {
            *above.entry(q).or_default() += 1;
        }
    }
    assert!(
        !above.is_empty(),
        "the generator orders more than 2 of a part"
    );
    assert_eq!(few.failing_rows, Some(above.values().sum::<u64>()));
    let mut listed: Vec<(i64, u64)> = few
        .samples
        .as_ref()
        .unwrap()
        .rows
        .iter()
        .map(|r| {
            (
                r[0].as_deref().unwrap().parse().unwrap(),
                r[1].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(listed, above.into_iter().collect::<Vec<_>>());
    let fail = result(&report, "fail");
    assert_status(fail, Status::Fail);
    let statuses = column(&world, "sales_order", "status");
    let other = count(&statuses, |s| !matches!(s.as_deref(), Some("NEW" | "PAID")));
    assert_eq!(fail.failing_rows, Some(other));
    let samples = fail.samples.as_ref().unwrap();
    let values: Vec<&str> = samples
        .rows
        .iter()
        .map(|r| r[0].as_deref().unwrap())
        .collect();
    assert_eq!(values.len(), 3);
    for value in ["SHIPPED", "DELIVERED", "CANCELLED"] {
        assert!(values.contains(&value), "{value} listed among {values:?}");
    }
}

#[rstest]
#[tokio::test]
async fn range(#[values("pg", "lake", "s3")] src: &str) {
    let world = world_with(&[src]).await;
    let report = world
        .run(&format!(
            "  - {{ name: pass, type: range, table: {src}.auto_parts, column: unit_price, min: 0, max: 10000 }}\n\
             \x20 - {{ name: fail, type: range, table: {src}.auto_parts, column: unit_price, min: 10, max: 100.5 }}\n\
             \x20 - {{ name: dates, type: range, table: {src}.sales_order, column: order_date, min: \"2026-01-01\", max: \"2026-12-31\" }}\n\
             \x20 - {{ name: spring, type: range, table: {src}.sales_order, column: order_date, min: \"2026-03-01\", max: \"2026-05-31\" }}\n"
        ))
        .await;
    assert_status(result(&report, "pass"), Status::Pass);
    assert_status(result(&report, "dates"), Status::Pass);
    let spring = result(&report, "spring");
    assert_status(spring, Status::Fail);
    let dates = column(&world, "sales_order", "order_date");
    let outside = count(&dates, |d| {
        let d = d.as_deref().unwrap();
        !("2026-03-01"..="2026-05-31").contains(&d)
    });
    assert!(outside > 0 && outside < dates.len() as u64);
    assert_eq!(spring.failing_rows, Some(outside));
    let earliest = dates.iter().flatten().min().unwrap();
    assert_eq!(spring.metrics["observed_min"], json!(earliest));
    let fail = result(&report, "fail");
    assert_status(fail, Status::Fail);
    let prices: Vec<f64> = column(&world, "auto_parts", "unit_price")
        .into_iter()
        .map(|p| p.unwrap().parse().unwrap())
        .collect();
    let outside = prices.iter().filter(|p| **p < 10.0 || **p > 100.5).count() as u64;
    assert_eq!(fail.failing_rows, Some(outside));
    let min = prices.iter().cloned().fold(f64::MAX, f64::min);
    let observed_min: f64 = fail.metrics["observed_min"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(observed_min, min);
}

#[rstest]
#[tokio::test]
async fn condition(#[values("pg", "lake", "s3", "csv")] src: &str) {
    let world = world_with(&[src]).await;
    let report = world
        .run(&format!(
            "  - {{ name: pass, type: condition, table: {src}.sales_order, expression: \"total_amount >= 0\" }}\n\
             \x20 - {{ name: fail, type: condition, table: {src}.sales_order, expression: \"total_amount > 0\" }}\n\
             \x20 - {{ name: null is not true, type: condition, table: {src}.customers, expression: \"email LIKE '%@%'\" }}\n\
             \x20 - {{ name: warn only, type: condition, table: {src}.sales_order, expression: \"total_amount > 0\", severity: warn }}\n"
        ))
        .await;
    assert_status(result(&report, "pass"), Status::Pass);
    let fail = result(&report, "fail");
    assert_status(fail, Status::Fail);
    let amounts = column(&world, "sales_order", "total_amount");
    let zero = count(&amounts, |v| v.as_deref() == Some("0.00"));
    assert!(zero > 0);
    assert_eq!(fail.failing_rows, Some(zero));
    let samples = fail.samples.as_ref().unwrap();
    let status = samples.columns.iter().position(|c| c == "status").unwrap();
    assert!(samples
        .rows
        .iter()
        .all(|r| r[status].as_deref() == Some("CANCELLED")));
    let ids = column(&world, "sales_order", "order_id");
    let mut first: Vec<i64> = ids
        .iter()
        .zip(&amounts)
        .filter(|(_, a)| a.as_deref() == Some("0.00"))
        .map(|(id, _)| id.as_deref().unwrap().parse().unwrap())
        .collect();
    first.sort();
    first.truncate(10);
    assert_eq!(sample_keys(samples, "order_id"), first, "first by key");
    let nulls = result(&report, "null is not true");
    assert_status(nulls, Status::Fail);
    assert_eq!(nulls.failing_rows, Some(24));
    assert_status(result(&report, "warn only"), Status::Warn);
}

#[rstest]
#[tokio::test]
async fn sql(#[values("pg", "lake", "s3", "csv")] src: &str) {
    let world = world_with(&[src]).await;
    let customers = qualified(src, "customers");
    let orders = qualified(src, "sales_order");
    let report = world
        .run(&format!(
            "  - {{ name: pass, type: sql, source: {src}, query: \"SELECT o.order_id FROM {orders} o LEFT JOIN {customers} c ON c.customer_id = o.customer_id WHERE c.customer_id IS NULL\" }}\n\
             \x20 - name: fail\n    type: sql\n    source: {src}\n    query: |\n      SELECT customer_id, first_name FROM {customers}\n      WHERE email IS NULL -- customers we cannot reach;\n"
        ))
        .await;
    assert_status(result(&report, "pass"), Status::Pass);
    let fail = result(&report, "fail");
    assert_status(fail, Status::Fail);
    assert_eq!(fail.failing_rows, Some(24));
    let samples = fail.samples.as_ref().unwrap();
    assert_eq!(samples.columns, vec!["customer_id", "first_name"]);
    // The generator leaves every 47th email empty: the first ten by key.
    assert_eq!(
        sample_keys(samples, "customer_id"),
        (1..=10).map(|i| i * 47).collect::<Vec<i64>>()
    );
}

#[rstest]
#[case::postgres("pg", "relation \"autocorp.no_such_table\" does not exist")]
#[case::lake(
    "lake",
    "table `no_such_table` not found: no .parquet files in file://"
)]
#[case::s3("s3", "table `no_such_table` not found: no .parquet files in s3://lake/raw/database/autocorp/no_such_table/")]
#[tokio::test]
async fn a_missing_table_is_an_error_never_a_pass(#[case] src: &str, #[case] cause: &str) {
    let world = world_with(&[src]).await;
    let report = world
        .run(&format!(
            "  - {{ name: missing, type: row_count, table: {src}.no_such_table, max: 10 }}\n\
             \x20 - {{ name: bad column, type: not_null, table: {src}.customers, columns: [no_such_column] }}\n"
        ))
        .await;
    let missing = result(&report, "missing");
    assert_status(missing, Status::Error);
    let error = missing.error.as_deref().unwrap();
    assert!(error.contains(cause), "{error}");
    assert!(error.starts_with(&format!("source `{src}`")), "{error}");
    let bad_column = result(&report, "bad column");
    assert_status(bad_column, Status::Error);
    let error_column = bad_column.error.as_deref().unwrap();
    assert!(
        error_column.starts_with(&format!("source `{src}`"))
            && error_column.contains("no_such_column"),
        "the error names the source and the column: {error_column}"
    );
    assert_eq!(report.exit_code, 2);
    if src == "lake" {
        assert!(
            error.contains("(tables here: auto_parts, customers, sales_order"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn csv_folders_of_several_files_are_one_table() {
    let world = pg_world().await;
    let report = world
        .run(
            "  - { name: orders, type: row_count, table: csv.sales_order, equals: 1000 }\n\
             \x20 - { name: customers, type: row_count_match, left: pg.customers, right: csv.customers }\n\
             \x20 - { name: statuses, type: accepted_values, table: csv.sales_order, column: status, values: [NEW, PAID, SHIPPED, DELIVERED, CANCELLED] }\n",
        )
        .await;
    for name in ["orders", "customers", "statuses"] {
        assert_status(result(&report, name), Status::Pass);
    }
}

#[tokio::test]
async fn postgres_sessions_cannot_write() {
    let world = pg_world().await;
    // One connection and one job: every check runs in order on the same pooled session, so a
    // change one query makes to its session would still be there for the next.
    let text = format!(
        "{}checks:\n\
         \x20 - {{ name: session before, type: sql, source: single, query: \"SELECT pg_backend_pid() AS pid\" }}\n\
         \x20 - {{ name: two statements, type: sql, source: single, query: \"SELECT 1 AS x; DELETE FROM autocorp.customers\" }}\n\
         \x20 - {{ name: writing cte, type: sql, source: single, query: \"WITH gone AS (DELETE FROM autocorp.customers RETURNING customer_id) SELECT * FROM gone\" }}\n\
         \x20 - {{ name: writing function, type: sql, source: single, query: \"SELECT nextval('autocorp.sales_order_order_id_seq') AS next_id\" }}\n\
         \x20 - {{ name: flip session, type: sql, source: single, query: \"SELECT set_config('default_transaction_read_only', 'off', false) AS flipped\" }}\n\
         \x20 - {{ name: still read-only, type: sql, source: single, query: \"SELECT nextval('autocorp.sales_order_order_id_seq') AS next_id\" }}\n\
         \x20 - {{ name: setting after, type: sql, source: single, query: \"SELECT current_setting('default_transaction_read_only') AS read_only, pg_backend_pid() AS pid\" }}\n\
         \x20 - {{ name: count, type: row_count, table: single.customers, equals: 1149 }}\n\
         \x20 - {{ name: lake ddl, type: sql, source: lake, query: \"CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/tmp/x'\" }}\n",
        world.sources_yaml().replace(
            "sources:\n",
            "sources:\n  single: { type: postgres, url: \"${PG_URL}\", schema: autocorp, max_connections: 1 }\n"
        )
    );
    let file = crate::harness::parse_rules("t.yml", &text, &world.vars());
    let planned = lakecheck::runner::plan(
        std::slice::from_ref(&file),
        &lakecheck::runner::Selection::default(),
    )
    .unwrap();
    let report = lakecheck::runner::run(
        std::slice::from_ref(&file),
        planned,
        1,
        Default::default(),
        &|_| {},
    )
    .await;

    let two = error_of(&report, "two statements");
    // The query is wrapped as a subquery, so a second statement cannot even parse.
    assert!(
        two.starts_with("source `single`") && two.contains("syntax error at or near \";\""),
        "{two}"
    );
    let cte = error_of(&report, "writing cte");
    assert!(
        cte.contains("WITH clause containing a data-modifying statement must be at the top level"),
        "{cte}"
    );
    let function = error_of(&report, "writing function");
    assert!(
        function.contains("cannot execute nextval() in a read-only transaction"),
        "{function}"
    );
    // A query may change the session default, but it is rolled back and every query opens its
    // own READ ONLY transaction anyway.
    let flip = result(&report, "flip session");
    assert_status(flip, Status::Fail);
    let still = error_of(&report, "still read-only");
    assert!(still.contains("read-only transaction"), "{still}");
    let pid = |name: &str| {
        let samples = result(&report, name).samples.as_ref().unwrap();
        let index = samples.columns.iter().position(|c| c == "pid").unwrap();
        samples.rows[0][index].clone().unwrap()
    };
    assert_eq!(
        pid("session before"),
        pid("setting after"),
        "every check ran on the one pooled connection"
    );
    let after = result(&report, "setting after").samples.as_ref().unwrap();
    assert_eq!(
        after.rows[0][0].as_deref(),
        Some("on"),
        "the session default survived the flip"
    );
    assert_status(result(&report, "count"), Status::Pass);
    // The check wraps its query as a subquery, where DDL cannot parse; the lake session
    // itself refuses DDL, DML and SET when handed them directly.
    let ddl = error_of(&report, "lake ddl");
    assert!(
        ddl.starts_with("source `lake`") && ddl.contains("ParserError"),
        "{ddl}"
    );
}

/// Asserts the lake source refuses `statement` with an error naming the source and `refusal`.
async fn assert_lake_refuses(statement: &str, refusal: &str) {
    let world = local_world().await;
    let file = world.rules("  []\n");
    let lake = file.sources.get("lake").unwrap();
    let error = lake.query(statement).await.unwrap_err().to_string();
    assert!(
        error.starts_with("source `lake`") && error.contains(refusal),
        "{statement}: {error}"
    );
}

/// The lake session itself refuses DML and SET when handed them directly (a check's query
/// never reaches it unwrapped), and says so.
#[rstest]
#[case::dml("INSERT INTO customers SELECT * FROM customers", "DML not supported")]
#[case::set("SET datafusion.execution.batch_size = 1", "Statement not supported")]
#[tokio::test]
async fn the_lake_session_refuses_dml_and_set(#[case] statement: &str, #[case] refusal: &str) {
    assert_lake_refuses(statement, refusal).await;
}

/// DDL is refused before DataFusion plans it (planning would first look up the table it
/// creates, and report that table as missing).
#[tokio::test]
async fn the_lake_session_refuses_ddl_naming_it() {
    assert_lake_refuses(
        "CREATE EXTERNAL TABLE customers_copy STORED AS PARQUET LOCATION '/tmp/x'",
        "DDL not supported",
    )
    .await;
}

#[tokio::test]
async fn a_slow_postgres_query_hits_the_statement_timeout() {
    let world = pg_world().await;
    let text = format!(
        "{}checks:\n  - {{ name: slow, type: sql, source: impatient, query: \"SELECT 1 AS x FROM pg_sleep(5)\" }}\n",
        world.sources_yaml().replace(
            "sources:\n",
            "sources:\n  impatient: { type: postgres, url: \"${PG_URL}\", statement_timeout: 200ms }\n"
        )
    );
    let file =
        lakecheck::rules::parse_rule_text(std::path::Path::new("t.yml"), &text, &world.vars())
            .unwrap();
    let report = crate::harness::run_files(&[file]).await;
    let slow = result(&report, "slow");
    assert_status(slow, Status::Error);
    assert!(
        slow.error.as_deref().unwrap().contains("statement timeout"),
        "{:?}",
        slow.error
    );
}

#[rstest]
#[tokio::test]
async fn schema_match(#[values("lake", "s3")] src: &str) {
    let world = world_with(&["pg", src]).await;
    let report = world
        .run(&format!(
            "  - {{ name: pass, type: schema_match, left: pg.customers, right: {src}.customers }}\n\
             \x20 - {{ name: renamed, type: schema_match, left: pg.customers, right: {src}.customers, mapping: {{ email: email_address }} }}\n\
             \x20 - {{ name: csv drift, type: schema_match, left: pg.sales_order, right: csv.sales_order }}\n\
             \x20 - {{ name: excluded, type: schema_match, left: pg.sales_order, right: csv.sales_order, exclude: [total_amount, created_at, updated_at] }}\n\
             \x20 - {{ name: strict, type: schema_match, left: pg.service, right: {src}.service_parts, exclude: [service_part_id, part_id, service_name, description, labor_hours, price], allow_added: false }}\n\
             \x20 - {{ name: missing, type: schema_match, left: pg.nope, right: {src}.customers }}\n"
        ))
        .await;
    let pass = result(&report, "pass");
    assert_status(pass, Status::Pass);
    assert_eq!(
        pass.observed.as_deref(),
        Some("added: commit_ts"),
        "DMS adds its commit-time column"
    );
    let renamed = result(&report, "renamed");
    assert_status(renamed, Status::Fail);
    assert_eq!(renamed.metrics["removed"], json!(["email"]));
    assert_eq!(renamed.metrics["added"], json!(["email", "commit_ts"]));
    let drift = result(&report, "csv drift");
    assert_status(drift, Status::Fail);
    // CSV cannot carry numeric(10,2) or a time zone: DataFusion infers Float64 and naive timestamps.
    assert_eq!(
        drift.metrics["retyped"],
        json!(["total_amount", "created_at", "updated_at"])
    );
    let samples = drift.samples.as_ref().unwrap();
    assert_eq!(samples.rows[0][0].as_deref(), Some("total_amount"));
    assert_eq!(
        samples.rows[0][2].as_deref(),
        Some("numeric(10,2) (decimal(10,2))")
    );
    let excluded = result(&report, "excluded");
    assert_status(excluded, Status::Pass);
    assert_eq!(excluded.observed.as_deref(), Some("4 columns match"));
    let strict = result(&report, "strict");
    assert_status(strict, Status::Fail);
    assert_eq!(strict.metrics["added"], json!(["quantity", "commit_ts"]));
    let missing = result(&report, "missing");
    assert_status(missing, Status::Error);
    assert!(
        missing
            .error
            .as_deref()
            .unwrap()
            .contains("table `autocorp.nope` not found"),
        "{:?}",
        missing.error
    );
    assert_eq!(strict.metrics["removed"], json!([] as [&str; 0]));
}

/// Runs `checks` with an extra source declared before the standard ones.
async fn run_with_source(world: &World, source: &str, checks: &str) -> RunReport {
    run_with_source_at(world, source, checks, Default::default()).await
}

async fn run_with_source_at(
    world: &World,
    source: &str,
    checks: &str,
    clock: lakecheck::probe::Clock,
) -> RunReport {
    let text = format!(
        "{}checks:\n{checks}",
        world
            .sources_yaml()
            .replace("sources:\n", &format!("sources:\n{source}"))
    );
    let file =
        lakecheck::rules::parse_rule_text(std::path::Path::new("t.yml"), &text, &world.vars())
            .unwrap_or_else(|e| panic!("{}", e[0]));
    crate::harness::run_files_at(&[file], clock).await
}

/// A left column the right table lacks fails the check, named; `exclude` opts out, and a
/// mapping to a column that does exist passes.
#[rstest]
#[tokio::test]
async fn aggregate_match_fails_on_a_column_the_right_side_lacks(#[values("lake", "s3")] src: &str) {
    let world = world_with(&["pg", src]).await;
    let report = world
        .run(&format!(
            "  - {{ name: same, type: aggregate_match, left: pg.customers, right: {src}.customers }}\n\
             \x20 - {{ name: renamed away, type: aggregate_match, left: pg.customers, right: {src}.customers, mapping: {{ email: email_address }} }}\n\
             \x20 - {{ name: excluded, type: aggregate_match, left: pg.customers, right: {src}.customers, mapping: {{ email: email_address }}, exclude: [email] }}\n\
             \x20 - {{ name: listed, type: aggregate_match, left: pg.customers, right: {src}.customers, columns: [customer_id, email], mapping: {{ email: mail }} }}\n"
        ))
        .await;
    let same = result(&report, "same");
    assert_status(same, Status::Pass);
    assert_eq!(same.metrics["missing_columns"], json!([] as [&str; 0]));
    let renamed = result(&report, "renamed away");
    assert_status(renamed, Status::Fail);
    assert_eq!(renamed.metrics["missing_columns"], json!(["email"]));
    assert_eq!(renamed.metrics["measures_differing"], json!(0));
    assert_eq!(
        renamed.observed.as_deref(),
        Some(format!("1 column missing in {src}.customers: email (as email_address)").as_str())
    );
    let samples = renamed.samples.as_ref().expect("samples");
    assert_eq!(
        samples.rows,
        vec![vec![
            Some("email".to_string()),
            Some("missing column".to_string()),
            Some("text".to_string()),
            Some("no column `email_address`".to_string()),
        ]]
    );
    let excluded = result(&report, "excluded");
    assert_status(excluded, Status::Pass);
    assert!(!excluded.metrics["columns"]
        .as_array()
        .unwrap()
        .contains(&json!("email")));
    let listed = result(&report, "listed");
    assert_status(listed, Status::Fail);
    assert_eq!(listed.metrics["missing_columns"], json!(["email"]));
    assert_eq!(listed.metrics["columns"], json!(["customer_id"]));
}

/// Two empty sides agree on every measure but prove nothing: both checks that compare counts
/// fail unless `allow_empty: true`.
#[rstest]
#[tokio::test]
async fn two_empty_sides_fail_unless_allowed(#[values("lake", "s3")] src: &str) {
    let world = world_with(&["pg", src]).await;
    let none = "left_where: \"customer_id < 0\", right_where: \"customer_id < 0\"";
    let report = world
        .run(&format!(
            "  - {{ name: counts, type: row_count_match, left: pg.customers, right: {src}.customers, {none} }}\n\
             \x20 - {{ name: counts allowed, type: row_count_match, left: pg.customers, right: {src}.customers, {none}, allow_empty: true }}\n\
             \x20 - {{ name: profiles, type: aggregate_match, left: pg.customers, right: {src}.customers, {none} }}\n\
             \x20 - {{ name: profiles allowed, type: aggregate_match, left: pg.customers, right: {src}.customers, {none}, allow_empty: true }}\n\
             \x20 - {{ name: one side empty, type: row_count_match, left: pg.customers, right: {src}.customers, right_where: \"customer_id < 0\", allow_empty: true }}\n"
        ))
        .await;
    let expected_message = format!(
        "both sides are empty (pg.customers and {src}.customers hold 0 rows after their filters), \
         which proves nothing; set `allow_empty: true` if empty tables are expected"
    );
    let counts = result(&report, "counts");
    assert_status(counts, Status::Fail);
    assert_eq!(counts.observed.as_deref(), Some(expected_message.as_str()));
    assert_eq!(
        counts.expected.as_deref(),
        Some("equal row counts, with rows on at least one side")
    );
    assert_eq!(counts.metrics["left_count"], json!(0));
    assert_eq!(counts.metrics["right_count"], json!(0));
    let profiles = result(&report, "profiles");
    assert_status(profiles, Status::Fail);
    assert_eq!(
        profiles.observed.as_deref(),
        Some(expected_message.as_str())
    );
    assert_eq!(profiles.metrics["left_rows"], json!("0"));
    assert_eq!(profiles.metrics["measures_differing"], json!(0));
    assert_status(result(&report, "counts allowed"), Status::Pass);
    let allowed = result(&report, "profiles allowed");
    assert_status(allowed, Status::Pass);
    assert!(
        allowed
            .observed
            .as_deref()
            .unwrap()
            .ends_with("(both sides empty, allowed)"),
        "{:?}",
        allowed.observed
    );
    let one = result(&report, "one side empty");
    assert_status(one, Status::Fail);
    assert_eq!(one.metrics["difference"], json!(-1149));
}

/// A float sum that overflows to infinity on one side is no match for a finite one: a relative
/// tolerance of an infinite value would admit anything. The two tables share rows, non-NULL
/// and distinct counts, min and max; only the sum tells them apart.
#[tokio::test]
async fn an_infinite_float_sum_differs_from_a_finite_one() {
    use datafusion::arrow::array::{Float64Array, RecordBatch};
    use std::sync::Arc;
    let world = local_world().await;
    let dir = tempfile::tempdir().unwrap();
    for (table, values) in [
        ("finite", [1.0, 1.0, 1e308]),
        ("overflowing", [1.0, 1e308, 1e308]),
        ("overflowing_too", [1e308, 1.0, 1e308]),
    ] {
        let batch =
            RecordBatch::try_from_iter([("x", Arc::new(Float64Array::from(values.to_vec())) as _)])
                .unwrap();
        std::fs::create_dir_all(dir.path().join(table)).unwrap();
        std::fs::write(
            dir.path().join(table).join("part-0.parquet"),
            lakecheck::demo::autocorp::to_parquet(&batch),
        )
        .unwrap();
    }
    let source = format!(
        "  floats: {{ type: lake, url: \"{}\", format: parquet }}\n",
        dir.path().display()
    );
    let report = run_with_source(
        &world,
        &source,
        "  - { name: overflow, type: aggregate_match, left: floats.finite, right: floats.overflowing }\n\
         \x20 - { name: both infinite, type: aggregate_match, left: floats.overflowing, right: floats.overflowing_too }\n",
    )
    .await;
    let overflow = result(&report, "overflow");
    assert_status(overflow, Status::Fail);
    assert_eq!(overflow.metrics["measures_differing"], json!(1));
    let row = &overflow.samples.as_ref().expect("samples").rows[0];
    assert_eq!(row[0].as_deref(), Some("x"));
    assert_eq!(row[1].as_deref(), Some("sum"));
    let left: f64 = row[2].as_deref().unwrap().parse().unwrap();
    let right: f64 = row[3].as_deref().unwrap().parse().unwrap();
    assert_eq!(left, 1e308 + 2.0);
    assert_eq!(right, f64::INFINITY);
    assert_status(result(&report, "both infinite"), Status::Pass);
}

/// A Hudi timeline read in the wrong zone shows commits hours ahead: commit_freshness fails
/// naming the timeline zone and `TZ=`, and the table metadata carries the zone it was read in.
#[tokio::test]
async fn a_hudi_commit_in_the_future_names_the_timeline_zone() {
    let world = local_world().await;
    let (_root, source) = crate::harness::curated_hudi(&world).await;
    let probe = run_with_source(
        &world,
        &source,
        "  - { name: count, type: row_count, table: hudi.customers, min: 1 }\n",
    )
    .await;
    let facts = &result(&probe, "count").table_metadata["hudi.customers"];
    let zone = facts["timeline_timezone"]
        .as_str()
        .expect("timeline zone")
        .to_string();
    assert!(zone.starts_with("LOCAL ("), "hudi-rs writes LOCAL: {zone}");
    let offset = chrono::Local::now().offset().to_string();
    assert!(zone.ends_with(&format!("UTC{offset})")), "{zone}");
    let last =
        chrono::DateTime::parse_from_rfc3339(facts["last_commit"].as_str().unwrap()).unwrap();
    let hours_before = (last - chrono::Duration::hours(3)).to_utc();
    let report = run_with_source_at(
        &world,
        &source,
        "  - { name: ahead, type: commit_freshness, table: hudi.customers, max_age: 1d }\n",
        lakecheck::probe::Clock::Fixed(hours_before),
    )
    .await;
    let ahead = result(&report, "ahead");
    assert_status(ahead, Status::Fail);
    let observed = ahead.observed.as_deref().unwrap();
    assert!(
        observed.starts_with("last commit 3h in the future"),
        "{observed}"
    );
    assert!(observed.contains("beyond max_skew 1m"), "{observed}");
    assert!(
        observed.contains(&format!("(`hoodie.table.timeline.timezone`, here {zone})")),
        "{observed}"
    );
    assert!(observed.contains("`TZ=<the writer's zone>`"), "{observed}");
    assert_eq!(ahead.metrics["timeline_timezone"], json!(zone));
    assert_eq!(ahead.metrics["in_future"], json!(true));
}

/// The DMS layout, on a local folder and on S3, answers every row-level check kind and the
/// reconcile against Postgres, passing and failing like a plain folder. (The world's raw folder
/// holds full-load files only, so the rebuilt tables equal the source.)
#[rstest]
#[tokio::test]
async fn every_check_kind_on_a_dms_layout(#[values("lake", "s3")] base: &str) {
    let world = world_with(&["pg", base]).await;
    let (url, storage) = match base {
        "s3" => (
            "s3://lake/raw/database/autocorp",
            ", storage: { endpoint: \"${S3_ENDPOINT}\", allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }",
        ),
        _ => ("${LAKE_URL}/raw/database/autocorp", ""),
    };
    let text = format!(
        "{}  dms: {{ type: lake, url: \"{url}\", layout: dms, keys: {{ customers: [customer_id], sales_order: [order_id] }}{storage} }}\nchecks:\n{}",
        world.sources_yaml(),
        "  - { name: count pass, type: row_count, table: dms.customers, equals: 1149 }\n\
         \x20 - { name: count fail, type: row_count, table: dms.customers, max: 1000 }\n\
         \x20 - { name: not_null pass, type: not_null, table: dms.customers, columns: [customer_id, last_name] }\n\
         \x20 - { name: not_null fail, type: not_null, table: dms.customers, columns: [email] }\n\
         \x20 - { name: unique pass, type: unique, table: dms.customers, columns: [customer_id] }\n\
         \x20 - { name: unique fail, type: unique, table: dms.sales_order, columns: [customer_id] }\n\
         \x20 - { name: accepted pass, type: accepted_values, table: dms.sales_order, column: status, values: [NEW, PAID, SHIPPED, DELIVERED, CANCELLED] }\n\
         \x20 - { name: accepted fail, type: accepted_values, table: dms.sales_order, column: status, values: [NEW, PAID] }\n\
         \x20 - { name: range pass, type: range, table: dms.sales_order, column: order_date, min: \"2026-01-01\", max: \"2026-12-31\" }\n\
         \x20 - { name: range fail, type: range, table: dms.sales_order, column: order_date, min: \"2026-03-01\", max: \"2026-05-31\" }\n\
         \x20 - { name: condition pass, type: condition, table: dms.sales_order, expression: \"total_amount >= 0\" }\n\
         \x20 - { name: condition fail, type: condition, table: dms.sales_order, expression: \"total_amount > 0\" }\n\
         \x20 - { name: sql pass, type: sql, source: dms, query: \"SELECT customer_id FROM customers WHERE customer_id < 0\" }\n\
         \x20 - { name: sql fail, type: sql, source: dms, query: \"SELECT customer_id FROM customers WHERE email IS NULL\" }\n\
         \x20 - { name: match pass, type: table_match, left: pg.customers, right: dms.customers, key: [customer_id], exclude: [commit_ts] }\n\
         \x20 - { name: match fail, type: table_match, left: pg.customers, right: dms.customers, key: [customer_id], exclude: [commit_ts], right_where: \"customer_id <> 7\" }\n\
         \x20 - { name: counts pass, type: row_count_match, left: pg.sales_order, right: dms.sales_order }\n\
         \x20 - { name: counts fail, type: row_count_match, left: pg.sales_order, right: dms.sales_order, right_where: \"order_id > 10\" }\n"
    );
    let file = crate::harness::parse_rules("dms.yml", &text, &world.vars());
    let report = crate::harness::run_files(&[file]).await;
    for check in report.results() {
        let expected = if check.name.ends_with("pass") {
            Status::Pass
        } else {
            Status::Fail
        };
        assert_status(check, expected);
    }
    assert_eq!(report.results().count(), 18);
    let missing = result(&report, "match fail");
    assert_eq!(
        missing.metrics["missing_in_target"],
        json!(1),
        "{:?}",
        missing.metrics
    );
}
