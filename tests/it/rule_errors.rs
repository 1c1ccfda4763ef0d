//! Every kind of rule-file mistake is reported at `file:line:col` with a fix; never a panic.

use std::path::Path;
use std::sync::Arc;

use lakecheck::rules::{parse_rule_text, Vars};
use rstest::rstest;

/// Sources for `cdc_latency`: PostgreSQL opted in to heartbeat writes, and a DMS raw zone.
const HEARTBEAT_SOURCES: &str = "sources:\n  pg: { type: postgres, url: \"postgres://writer@db.example:5432/autocorp\", heartbeat: { table: lakecheck_heartbeat, create: true } }\n  raw: { type: lake, url: /data/raw, layout: dms }\n";

const SOURCES: &str = "sources:\n  pg: { type: postgres, url: \"postgres://reader@db.example:5432/autocorp\", schema: autocorp }\n  raw: { type: lake, url: /data/raw, format: parquet }\n";

/// Every error of a rule file's `text`, one a line (panics if it parses).
pub fn errors_of(text: &str) -> String {
    let vars = Arc::new(Vars::new());
    match parse_rule_text(Path::new("rules/bad.yml"), text, &vars) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The rstest case name (`case_03_unknown_check_type`), to name each snapshot after its case.
fn case_name() -> String {
    let thread = std::thread::current();
    thread
        .name()
        .unwrap_or("")
        .rsplit("::")
        .next()
        .unwrap_or("")
        .to_string()
}

#[rstest]
#[case::invalid_yaml("sources:\n  pg: { type: postgres, url: \"unclosed }\nchecks: []\n")]
#[case::unknown_top_level_key(
    "sources: {}\ncheck:\n  - { type: row_count, table: pg.x, min: 1 }\n"
)]
#[case::unknown_check_type("checks:\n  - { type: row_cont, table: pg.sales_order, min: 1 }\n")]
#[case::unknown_source("checks:\n  - { type: row_count, table: pgg.sales_order, min: 1 }\n")]
#[case::missing_field("checks:\n  - { name: emails, type: not_null, table: raw.customers }\n")]
#[case::unknown_check_key(
    "checks:\n  - { type: not_null, table: raw.customers, colums: [email] }\n"
)]
#[case::table_without_source("checks:\n  - { type: row_count, table: sales_order, min: 1 }\n")]
#[case::bad_severity(
    "checks:\n  - { type: row_count, table: pg.sales_order, min: 1, severity: fatal }\n"
)]
#[case::row_count_without_bound("checks:\n  - { type: row_count, table: pg.sales_order }\n")]
#[case::duplicate_names("checks:\n  - { name: orders, type: row_count, table: pg.sales_order, min: 1 }\n  - { name: orders, type: row_count, table: raw.sales_order, min: 1 }\n")]
#[case::bad_tolerance(
    "checks:\n  - { type: row_count_match, left: pg.a, right: raw.a, tolerance: some }\n"
)]
#[case::several_errors_at_once("checks:\n  - { type: row_cont, table: pg.a }\n  - { type: unique, table: nowhere.a, columns: [id] }\n")]
#[case::freshness_without_a_limit(
    "checks:\n  - { type: freshness, table: pg.sales_order, column: updated_at }\n"
)]
#[case::freshness_warn_after_not_shorter(
    "checks:\n  - { type: freshness, table: pg.sales_order, column: updated_at, warn_after: 1h, error_after: 15m }\n"
)]
#[case::freshness_two_measures(
    "checks:\n  - { type: freshness, table: raw.orders, column: updated_at, arrival: true, error_after: 15m }\n"
)]
#[case::freshness_measure_false(
    "checks:\n  - { type: freshness, table: raw.orders, arrival: false, error_after: 15m }\n"
)]
#[case::freshness_where_without_column(
    "checks:\n  - { type: freshness, table: raw.orders, where: \"id > 0\", error_after: 15m }\n"
)]
#[case::freshness_unknown_time_zone(
    "checks:\n  - { type: freshness, table: pg.sales_order, column: updated_at, timezone: America/Chicgo, error_after: 15m }\n"
)]
#[case::freshness_not_a_time_zone(
    "checks:\n  - { type: freshness, table: pg.sales_order, column: updated_at, timezone: Central Time, error_after: 15m }\n"
)]
#[case::freshness_compound_duration_out_of_order(
    "checks:\n  - { type: freshness, table: pg.sales_order, column: updated_at, error_after: 30m1h }\n"
)]
#[case::commit_freshness_with_now(
    "checks:\n  - { type: commit_freshness, table: raw.orders, max_age: 1h, now: \"2026-11-22T00:00:00Z\" }\n"
)]
#[case::cdc_latency_without_a_heartbeat(
    "checks:\n  - { type: cdc_latency, source: pg, stages: [ { name: raw, table: raw.lakecheck_heartbeat } ], max_latency: 5m }\n"
)]
#[case::cdc_latency_on_a_lake(
    "checks:\n  - { type: cdc_latency, source: raw, stages: [ { name: raw, table: raw.lakecheck_heartbeat } ], max_latency: 5m }\n"
)]
#[case::cdc_latency_timeout_below_max_latency(&format!(
    "{HEARTBEAT_SOURCES}checks:\n  - {{ type: cdc_latency, source: pg, stages: [ {{ name: raw, table: raw.lakecheck_heartbeat }} ], max_latency: 5m, timeout: 1m }}\n"
))]
#[case::cdc_latency_two_stages_one_name(&format!(
    "{HEARTBEAT_SOURCES}checks:\n  - {{ type: cdc_latency, source: pg, stages: [ {{ name: raw, table: raw.a }}, {{ name: raw, table: raw.b }} ], max_latency: 5m }}\n"
))]
#[case::cdc_latency_without_stages(&format!(
    "{HEARTBEAT_SOURCES}checks:\n  - {{ type: cdc_latency, source: pg, max_latency: 5m }}\n"
))]
#[case::pattern_regex_read_differently(
    "checks:\n  - { type: pattern, table: raw.customers, column: email, regex: '^[[:alpha:]]+$' }\n"
)]
#[case::pattern_word_boundary(
    "checks:\n  - { type: pattern, table: raw.customers, column: email, regex: '\\bana' }\n"
)]
#[case::pattern_unknown_format(
    "checks:\n  - { type: pattern, table: raw.customers, column: email, format: emial }\n"
)]
#[case::pattern_without_regex(
    "checks:\n  - { type: pattern, table: raw.customers, column: email }\n"
)]
#[case::pattern_regex_and_format(
    "checks:\n  - { type: pattern, table: raw.customers, column: email, format: email, regex: '@' }\n"
)]
#[case::relationships_without_column(
    "checks:\n  - { type: relationships, table: raw.sales_order, to: raw.customers }\n"
)]
#[case::relationships_fields_do_not_pair(
    "checks:\n  - { type: relationships, table: raw.lines, columns: [order_id, part_id], to: raw.parts, field: part_id }\n"
)]
#[case::relationships_from_schema_of_a_lake(
    "checks:\n  - { type: relationships, from_schema: true, source: raw }\n"
)]
#[case::relationships_from_schema_of_nothing(
    "checks:\n  - { type: relationships, from_schema: true, in: raw }\n"
)]
#[case::relationships_from_schema_in_an_unknown_source(
    "checks:\n  - { type: relationships, from_schema: true, source: pg, in: rw }\n"
)]
#[case::zero_timeout(
    "checks:\n  - { type: row_count, table: pg.sales_order, min: 1, timeout: 0s }\n"
)]
#[case::bad_timeout(
    "checks:\n  - { type: row_count, table: pg.sales_order, min: 1, timeout: soon }\n"
)]
#[case::zero_max_differences(
    "checks:\n  - { type: table_match, left: pg.a, right: raw.a, max_differences: 0 }\n"
)]
#[case::volume_anomaly_bucket_unknown_every(
    "checks:\n  - { type: volume_anomaly, table: pg.sales_order, bucket: { column: created_at, every: days } }\n"
)]
#[case::volume_anomaly_bucket_without_column(
    "checks:\n  - { type: volume_anomaly, table: pg.sales_order, bucket: { every: day } }\n"
)]
#[case::volume_anomaly_bucket_not_a_mapping(
    "checks:\n  - { type: volume_anomaly, table: pg.sales_order, bucket: created_at }\n"
)]
#[case::volume_anomaly_bucket_unknown_key(
    "checks:\n  - { type: volume_anomaly, table: pg.sales_order, bucket: { column: created_at, every: day, zone: UTC } }\n"
)]
#[case::volume_anomaly_weekly_bucket_by_weekday(
    "checks:\n  - { type: volume_anomaly, table: pg.sales_order, bucket: { column: created_at, every: week }, seasonality: day_of_week }\n"
)]
#[case::volume_anomaly_bucket_unknown_time_zone(
    "checks:\n  - { type: volume_anomaly, table: pg.sales_order, bucket: { column: order_date, every: day, timezone: Europe/Berln } }\n"
)]
fn check_errors(#[case] checks: &str) {
    let text = if checks.starts_with("sources") {
        checks.to_string()
    } else {
        format!("{SOURCES}{checks}")
    };
    let case = case_name();
    insta::assert_snapshot!(format!("rule_error_{case}"), errors_of(&text), &text);
}

#[rstest]
#[case::unknown_source_type("sources:\n  pg: { type: postgress, url: \"x\" }\nchecks: []\n")]
#[case::missing_variable(
    "sources:\n  pg: { type: postgres, url: \"${LAKECHECK_TEST_SURELY_UNSET}\" }\nchecks: []\n"
)]
#[case::bad_lake_format("sources:\n  raw: { type: lake, url: /data, format: avro }\nchecks: []\n")]
#[case::unsupported_scheme(
    "sources:\n  raw: { type: lake, url: \"gs://bucket/raw\" }\nchecks: []\n"
)]
#[case::source_name_with_dot(
    "sources:\n  my.pg: { type: postgres, url: \"postgres://x@y/z\" }\nchecks: []\n"
)]
#[case::option_of_another_format(
    "sources:\n  raw: { type: lake, url: /data, keys: { orders: [id] } }\nchecks: []\n"
)]
#[case::format_on_a_format_source_type(
    "sources:\n  cur: { type: delta, url: /data, format: csv }\nchecks: []\n"
)]
#[case::dms_layout_of_csv(
    "sources:\n  raw: { type: lake, url: /data, format: csv, layout: dms }\nchecks: []\n"
)]
#[case::not_a_mapping("- just\n- a list\n")]
#[case::empty_file("\n")]
#[case::heartbeat_with_a_misspelt_key(
    "sources:\n  pg: { type: postgres, url: \"postgres://w@db/x\", heartbeat: { tabel: lakecheck_heartbeat } }\nchecks: []\n"
)]
fn source_errors(#[case] text: &str) {
    let case = case_name();
    insta::assert_snapshot!(format!("source_error_{case}"), errors_of(text), text);
}

#[test]
fn passwords_in_urls_never_reach_messages() {
    let text = "sources:\n  pg: { type: postgres, url: \"postgres://u:s3cr3t@db:5432/x?sslmode=bogus\" }\nchecks: []\n";
    let errors = errors_of(text);
    assert!(!errors.contains("s3cr3t"), "{errors}");
}
