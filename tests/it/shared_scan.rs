//! One scan per table: checks of the same table and filter share one aggregate query, and
//! each still finds exactly what it finds alone (on PostgreSQL and on local Parquet).

use lakecheck::results::{CheckResult, RunReport, Status};
use lakecheck::rules::RuleFile;
use lakecheck::runner::{self, Selection};
use rstest::rstest;

use crate::harness::{assert_status, error_of, result, world_with};

/// Runs every check of `file`, with the scans the plan shares or (`shared: false`) each check
/// sending its own queries.
async fn run(file: &RuleFile, shared: bool) -> RunReport {
    let files = std::slice::from_ref(file);
    let mut planned = runner::plan(files, &Selection::default()).expect("checks selected");
    if !shared {
        for check in &mut planned {
            check.shared_scan = None;
        }
    }
    runner::run(files, planned, 4, Default::default(), &|_| {}).await
}

/// The queries of `report` that several checks shared, once each.
fn shared_queries(report: &RunReport) -> Vec<(String, Vec<String>)> {
    let mut shared: Vec<(String, Vec<String>)> = Vec::new();
    for query in report.results().flat_map(|r| &r.queries) {
        let entry = (query.sql.clone(), query.shared_by.clone());
        if !query.shared_by.is_empty() && !shared.contains(&entry) {
            shared.push(entry);
        }
    }
    shared
}

/// What a check found, without how it asked.
fn finding(result: &CheckResult) -> String {
    format!(
        "{} {:?} {:?} {:?} {:?} {:?} {}",
        result.status.as_str(),
        result.observed,
        result.expected,
        result.failing_rows,
        result.error,
        result.samples,
        serde_json::Value::Object(result.metrics.clone())
    )
}

const SIX_CHECKS: [&str; 6] = [
    "counted",
    "contact",
    "states",
    "ids",
    "ids too narrow",
    "has id",
];

fn six_checks(src: &str) -> String {
    format!(
        "  - {{ name: counted, type: row_count, table: {src}.customers, min: 1 }}\n\
         \x20 - {{ name: contact, type: not_null, table: {src}.customers, columns: [customer_id, email] }}\n\
         \x20 - {{ name: states, type: accepted_values, table: {src}.customers, column: customer_id, values: [1, 2, 3] }}\n\
         \x20 - {{ name: ids, type: range, table: {src}.customers, column: customer_id, min: 1 }}\n\
         \x20 - {{ name: ids too narrow, type: range, table: {src}.customers, column: customer_id, min: 1, max: 1000 }}\n\
         \x20 - {{ name: has id, type: condition, table: {src}.customers, expression: \"customer_id > 0\" }}\n\
         \x20 - {{ name: unique ids, type: unique, table: {src}.customers, columns: [customer_id] }}\n"
    )
}

#[rstest]
#[tokio::test]
async fn checks_of_one_table_share_one_scan_and_find_what_they_find_alone(
    #[values("pg", "lake")] src: &str,
) {
    let world = world_with(&[src]).await;
    let file = world.rules(&six_checks(src));
    let shared = run(&file, true).await;
    let alone = run(&file, false).await;

    let queries = shared_queries(&shared);
    assert_eq!(queries.len(), 1, "one shared scan: {queries:?}");
    let (sql, by) = &queries[0];
    assert_eq!(by, &SIX_CHECKS);
    for name in SIX_CHECKS {
        let first = &result(&shared, name).queries[0];
        assert_eq!(&first.sql, sql, "{name} reads the shared scan first");
        assert_eq!(first.error, None);
    }
    // `unique` groups by its key: it reads no aggregate scan and keeps its own query.
    assert!(result(&shared, "unique ids")
        .queries
        .iter()
        .all(|q| q.shared_by.is_empty()));
    // Alone, the six send six aggregate queries over the table, one each; shared, one. Failing
    // checks then fetch their samples (`LIMIT`) either way.
    let aggregate = |report: &RunReport| {
        report
            .results()
            .filter(|r| r.name != "unique ids")
            .flat_map(|r| &r.queries)
            .filter(|q| !q.sql.contains("LIMIT"))
            .map(|q| q.sql.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert_eq!(aggregate(&shared), 1);
    assert_eq!(aggregate(&alone), 6);

    for name in SIX_CHECKS.iter().chain(&["unique ids"]) {
        assert_eq!(
            finding(result(&shared, name)),
            finding(result(&alone, name)),
            "{name} finds the same with and without sharing"
        );
    }
    // The failing ones still show their failing rows.
    for name in ["states", "ids too narrow"] {
        let failed = result(&shared, name);
        assert_status(failed, Status::Fail);
        assert!(failed.samples.as_ref().is_some_and(|s| !s.rows.is_empty()));
    }
    assert_eq!(result(&shared, "ids too narrow").failing_rows, Some(149));
    assert_status(result(&shared, "has id"), Status::Pass);
}

#[rstest]
#[tokio::test]
async fn a_broken_check_errors_alone_and_its_group_mates_pass(#[values("pg", "lake")] src: &str) {
    let world = world_with(&[src]).await;
    let file = world.rules(&format!(
        "  - {{ name: counted, type: row_count, table: {src}.customers, equals: 1149 }}\n\
         \x20 - {{ name: broken, type: not_null, table: {src}.customers, columns: [no_such_column] }}\n\
         \x20 - {{ name: ids, type: range, table: {src}.customers, column: customer_id, min: 1 }}\n"
    ));
    let report = run(&file, true).await;
    let error = error_of(&report, "broken");
    assert!(error.contains("no_such_column"), "{error}");
    for name in ["counted", "ids"] {
        let mate = result(&report, name);
        assert_status(mate, Status::Pass);
        // The shared query failed for everyone; each then asked on its own.
        let [shared, own] = mate.queries.as_slice() else {
            panic!("{name}: {:?}", mate.queries);
        };
        assert_eq!(shared.shared_by, ["counted", "broken", "ids"]);
        assert!(shared.error.is_some());
        assert!(own.shared_by.is_empty() && own.error.is_none());
    }
}

#[rstest]
#[tokio::test]
async fn a_different_filter_scans_apart(#[values("pg", "lake")] src: &str) {
    let world = world_with(&[src]).await;
    let file = world.rules(&format!(
        "  - {{ name: all, type: row_count, table: {src}.customers, equals: 1149 }}\n\
         \x20 - {{ name: ids, type: range, table: {src}.customers, column: customer_id, min: 1, max: 1149 }}\n\
         \x20 - {{ name: first hundred, type: row_count, table: {src}.customers, where: \"customer_id <= 100\", equals: 100 }}\n"
    ));
    let report = run(&file, true).await;
    for name in ["all", "ids", "first hundred"] {
        assert_status(result(&report, name), Status::Pass);
    }
    let queries = shared_queries(&report);
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(queries[0].1, ["all", "ids"]);
    let filtered = &result(&report, "first hundred").queries;
    assert_eq!(filtered.len(), 1);
    assert!(filtered[0].shared_by.is_empty());
    assert!(
        filtered[0]
            .sql
            .starts_with("SELECT count(*) AS row_count FROM ")
            && filtered[0].sql.ends_with(" WHERE (customer_id <= 100)"),
        "a lone check asks as before: {}",
        filtered[0].sql
    );
}
