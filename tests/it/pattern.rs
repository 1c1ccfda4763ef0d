//! `pattern` means the same on PostgreSQL and DataFusion: the same values, stored on both,
//! fail the same regexes, and as many as Rust's `regex` finds on the text sent. The values are
//! chosen where the engines' own readings part: Unicode digits and spaces (`\d`, `\s`, `\w`
//! are Unicode in Rust, locale-bound in PostgreSQL), a newline (PostgreSQL's `.` matches it,
//! Rust's does not), accents and a trailing newline before `$`.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
use lakecheck::results::Status;
use lakecheck::rules::parse_rule_text;
use rstest::rstest;

use crate::harness::{assert_status, error_of, pg_world, result, run_files};
use crate::reconcile::{scratch_database, write_parquet_table};

const VALUES: &[&str] = &[
    "123",
    "١٢٣",        // Arabic-Indic digits
    "12\u{ff13}", // a fullwidth 3
    "abc",
    "a\nc",
    "ac\n",
    " ",
    "\u{a0}",   // no-break space
    "\u{2003}", // em space
    "\t",
    "ana@example.com",
    "ana\u{a0}lopez@example.com",
    "snake_case",
    "naïve",
    "Zoë",
    "xx",
    "xxxx",
    "TX",
    "tx",
    "2026-11-21",
    "2026-13-01",
    "123e4567-e89b-12d3-a456-426614174000",
    "a-b",
    "a^b",
    "[x]",
    "",
];

/// Regexes (or `format:` names) whose every construct the engines could read differently.
const PATTERNS: &[&str] = &[
    r"^\d+$",
    r"^\D+$",
    r"^\s$",
    r"^\S+$",
    r"^\w+$",
    r"^\W",
    "^a.c$",
    "c$",
    r"^[^@\s]+@[^@\s]+$",
    "^[a-z_-]+$",
    r"[\^\[\]]",
    "^x{2,3}$",
    "(?:ab|xx)+",
    "^(Zo|na)",
    "format:email",
    "format:uuid",
    "format:iso_date",
    "format:us_state",
];

fn option(pattern: &str) -> String {
    match pattern.strip_prefix("format:") {
        Some(name) => format!("format: {name}"),
        None => format!("regex: '{}'", pattern.replace('\'', "''")),
    }
}

#[tokio::test]
async fn every_pattern_fails_the_same_values_on_both_engines() {
    let world = pg_world().await;
    let inserts: Vec<String> = VALUES
        .iter()
        .enumerate()
        .map(|(i, v)| format!("({i}, '{}')", v.replace('\'', "''")))
        .collect();
    let pg_url = scratch_database(
        |db| world.pg.url(db),
        "pattern_values",
        &format!(
            "CREATE TABLE texts (id integer PRIMARY KEY, value text);\
             INSERT INTO texts VALUES {};",
            inserts.join(", ")
        ),
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int32Array::from_iter_values(0..VALUES.len() as i32)) as _,
        ),
        ("value", Arc::new(StringArray::from(VALUES.to_vec())) as _),
    ])
    .unwrap();
    write_parquet_table(lake.path(), "texts", &batch);
    let mut checks = String::new();
    for (i, pattern) in PATTERNS.iter().enumerate() {
        for side in ["pg", "lake"] {
            checks.push_str(&format!(
                "  - {{ name: '{side} {i}', type: pattern, table: {side}.texts, column: value, {} }}\n",
                option(pattern)
            ));
        }
    }
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"{pg_url}\", schema: public }}\n  \
         lake: {{ type: lake, url: \"{}\", format: parquet }}\nchecks:\n{checks}",
        lake.path().display()
    );
    let file = parse_rule_text(Path::new("patterns.yml"), &text, &world.vars())
        .unwrap_or_else(|e| panic!("{}", e[0]));
    let report = run_files(&[file]).await;
    for (i, pattern) in PATTERNS.iter().enumerate() {
        let pg = result(&report, &format!("pg {i}"));
        let lake = result(&report, &format!("lake {i}"));
        assert!(
            pg.status != Status::Error && lake.status != Status::Error,
            "{pattern}: {:?} {:?}",
            pg.error,
            lake.error
        );
        let sent = pg.metrics["regex_sent"].as_str().unwrap();
        let rust = regex::Regex::new(sent).unwrap();
        // The empty string is NULL nowhere here: both sides store it as text.
        let expected = VALUES.iter().filter(|v| !rust.is_match(v)).count() as u64;
        assert_eq!(
            (pg.failing_rows, lake.failing_rows),
            (Some(expected), Some(expected)),
            "{pattern} (sent as {sent})"
        );
    }
}

/// The readings that differ are pinned down, not only equal: `\d` is ASCII, `.` no newline.
#[rstest]
#[case::ascii_digits(r"^\d+$", &["123", "2026"])]
#[case::dot_without_newline("^a.c$", &["abc"])]
#[tokio::test]
async fn the_dialect_reads_classes_as_ascii(#[case] regex: &str, #[case] matching: &[&str]) {
    let world = pg_world().await;
    let sent = lakecheck_sent(&world, regex).await;
    let rust = regex::Regex::new(&sent).unwrap();
    let matched: Vec<&str> = ["123", "١٢٣", "12\u{ff13}", "2026", "abc", "a\nc"]
        .into_iter()
        .filter(|v| rust.is_match(v))
        .collect();
    assert_eq!(matched, matching);
}

/// The text a `pattern` check sends for `regex`, from a run on the lake.
async fn lakecheck_sent(world: &crate::harness::World, regex: &str) -> String {
    let report = world
        .run(&format!(
            "  - {{ name: p, type: pattern, table: lake.customers, column: email, regex: '{regex}' }}\n"
        ))
        .await;
    result(&report, "p").metrics["regex_sent"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A numeric column is refused when the check runs: the engines write numbers as text
/// differently.
#[tokio::test]
async fn a_column_that_is_not_text_is_an_error() {
    let world = pg_world().await;
    let report = world
        .run("  - { name: ids, type: pattern, table: lake.customers, column: customer_id, regex: '^[0-9]+$' }\n")
        .await;
    let error = error_of(&report, "ids");
    assert!(
        error.contains("`customer_id` is Int32, not text"),
        "{error}"
    );
    let report = world
        .run("  - { name: gone, type: pattern, table: pg.customers, column: fax, format: email }\n")
        .await;
    assert!(
        error_of(&report, "gone").contains("it has no column `fax`"),
        "{report:?}"
    );
    let report = world
        .run("  - { name: fine, type: pattern, table: pg.customers, column: state, format: us_state, allow_null: false }\n")
        .await;
    assert_status(result(&report, "fine"), Status::Pass);
}

/// Curated Hudi tables (their rows carry commit sequence numbers and file names, so they are
/// asserted here rather than snapshotted as fixtures).
#[tokio::test]
async fn hudi_emails_pass_as_emails_and_fail_as_uuids() {
    let world = pg_world().await;
    let (_root, source) = crate::harness::curated_hudi(&world).await;
    let text = format!(
        "{}checks:\n\
         \x20 - {{ name: emails, type: pattern, table: hudi.customers, column: email, format: email }}\n\
         \x20 - {{ name: uuids, type: pattern, table: hudi.customers, column: email, format: uuid }}\n",
        world.sources_yaml().replace("sources:\n", &format!("sources:\n{source}"))
    );
    let file = parse_rule_text(Path::new("t.yml"), &text, &world.vars())
        .unwrap_or_else(|e| panic!("{}", e[0]));
    let report = run_files(&[file]).await;
    assert_status(result(&report, "emails"), Status::Pass);
    let uuids = result(&report, "uuids");
    assert_status(uuids, Status::Fail);
    let customers = world.table("customers").batch.num_rows() as u64;
    let with_email = customers - customers / 47;
    assert_eq!(uuids.failing_rows, Some(with_email));
}
