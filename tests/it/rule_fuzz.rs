//! The rule-file loader on bad input, as a property: arbitrary YAML, and the repository's rule
//! files and check fixtures mutated (lines deleted, duplicated and swapped, scalars turned into
//! other types, unknown keys inserted, the text truncated, random characters spliced in), never
//! panics, and every rejection is located: each `RuleError` points at `file:line:col` inside the
//! text and says something. Loading builds sources without connecting: every seed's servers are
//! a listener of this test's, which must see no connection. `PROPTEST_CASES` raises the case
//! count (default 2000).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lakecheck::registry::CHECK_KINDS;
use lakecheck::rules::{parse_rule_text, Vars};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const PATH: &str = "rules/fuzzed.yml";

/// A rule file with every check kind and every source type, besides the repository's files.
fn every_kind_seed() -> String {
    let mut text = String::from(
        "sources:\n  pg: { type: postgres, url: \"${LAKECHECK_PG_URL}\", schema: autocorp, heartbeat: { table: lakecheck_heartbeat, create: true } }\n  raw: { type: lake, url: \"${LAKECHECK_LAKE_URL}/raw\", layout: dms, timestamp_column: commit_ts, keys: { customers: [customer_id] } }\n  csv: { type: lake, url: \"${LAKECHECK_LAKE_URL}/csv\", format: csv }\n  s3:\n    type: lake\n    url: s3://lake/raw\n    storage: { endpoint: \"${S3_ENDPOINT}\", allow_http: \"true\", region: us-east-1, access_key_id: test, secret_access_key: test }\n  curated: { type: delta, url: \"${LAKECHECK_LAKE_URL}/curated\" }\n  hudi: { type: hudi, url: \"${LAKECHECK_LAKE_URL}/hudi\" }\nchecks:\n",
    );
    for kind in CHECK_KINDS {
        let check = match kind.name {
            "row_count" => "{ type: row_count, table: pg.customers, min: 1, max: 10 }",
            "row_count_match" => "{ type: row_count_match, left: pg.customers, right: raw.customers, tolerance: 1% }",
            "not_null" => "{ type: not_null, table: csv.customers, columns: [email], where: \"customer_id > 3\" }",
            "unique" => "{ type: unique, table: s3.customers, columns: [customer_id] }",
            "accepted_values" => "{ type: accepted_values, table: pg.sales_order, column: status, values: [NEW, PAID] }",
            "range" => "{ type: range, table: pg.auto_parts, column: unit_price, min: 0.01, max: 10000 }",
            "condition" => "{ type: condition, table: raw.sales_order, expression: \"total_amount > 0\" }",
            "sql" => "{ type: sql, source: pg, query: \"select 1 where false\" }",
            "schema_match" => "{ type: schema_match, left: pg.customers, right: curated.customers }",
            "aggregate_match" => "{ type: aggregate_match, left: pg.sales_order, right: hudi.sales_order, columns: [total_amount], tolerance: 0.01%, distinct: true }",
            "table_match" => "\n      type: table_match\n      left: pg.customers\n      right: raw.customers\n      key: [customer_id]\n      exclude: [email]\n      max_differences: 1000",
            "freshness" => "{ type: freshness, table: pg.sales_order, column: updated_at, warn_after: 10m, error_after: 15m }",
            "commit_freshness" => "{ type: commit_freshness, table: curated.auto_parts, max_age: 1d, max_skew: 30s }",
            "cdc_latency" => "\n      type: cdc_latency\n      source: pg\n      stages:\n        - { name: raw, table: raw.lakecheck_heartbeat, max_latency: 2m }\n      max_latency: 15m",
            "relationships" => "{ type: relationships, table: raw.sales_order, column: customer_id, to: pg.customers, field: customer_id, timeout: 5m }",
            "pattern" => "{ type: pattern, table: csv.customers, column: email, format: email, allow_null: false }",
            "freshness_anomaly" => "{ type: freshness_anomaly, table: pg.sales_order, column: updated_at, max_skew: 1m, min_runs: 10 }",
            "volume_anomaly" => "{ type: volume_anomaly, table: raw.sales_order, where: \"total_amount > 0\", runs: 20, min_runs: 5, sensitivity: 4, relearn_after: 3, seasonality: day_of_week }",
            other => panic!("no seed check for `{other}`: add one here"),
        };
        text.push_str(&format!("  - {check}\n"));
    }
    text
}

/// The texts mutations start from: the repository's rule files, every check fixture (YAML, not
/// rule files: they exercise the top-level checks) and [`every_kind_seed`].
fn seeds() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = ["rules", "tests/fixtures/checks"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    paths.sort();
    let mut seeds: Vec<(PathBuf, String)> = paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    seeds.push((PathBuf::from("every kind"), every_kind_seed()));
    seeds
}

/// What may replace a scalar: other YAML types, and strings a careless loader could trip on.
const REPLACEMENTS: &[&str] = &[
    "[1, 2]",
    "{ a: 1 }",
    "true",
    "~",
    "-3.5",
    "18446744073709551616",
    "\"\"",
    "''",
    "\"${NOT_SET}\"",
    "\"${UNCLOSED\"",
    "\"${1BAD}\"",
    "pg.",
    ".table",
    "nowhere.table",
    "0s",
    "-1m",
    "99999999999999999999h",
    "1e309",
    "\"ü\u{301}\u{1F600}\"",
    "!tag value",
    "&anchor value",
    "*alias",
    "|\n  block",
    "\"\\u0000\"",
    "[",
    "{",
    "a: b: c",
];

/// Keys an unknown-key insertion uses: misspellings, other kinds' keys, YAML oddities.
const KEYS: &[&str] = &[
    "colums",
    "tabel",
    "type",
    "sources",
    "checks",
    "url",
    "where",
    "\"quoted key\"",
    "? complex",
    "<<",
    "\"\"",
    "123",
    "ünïcode",
];

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// The value after a line's first `: ` (or the whole line without one) replaced.
    ReplaceScalar(Index, Index),
    /// `key: 1` inserted before a line, indented as it is, or inside a `{ ... }` on it.
    InsertKey(Index, Index),
    /// The text cut at a character.
    Truncate(Index),
    /// Arbitrary characters spliced in at a character.
    Splice(Index, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::DeleteLine),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::ReplaceScalar(a, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::InsertKey(a, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (
            any::<Index>(),
            "\\PC{0,8}|[\\x00-\\x1f:{}\\[\\],#&*!|>'\"%@`-]{1,4}"
        )
            .prop_map(|(at, s)| Mutation::Splice(at, s)),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = lines.len();
    match mutation {
        Mutation::DeleteLine(i) => {
            lines.remove(i.index(n));
        }
        Mutation::DuplicateLine(i) => {
            let i = i.index(n);
            lines.insert(i, lines[i].clone());
        }
        Mutation::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
        Mutation::ReplaceScalar(i, with) => {
            let line = &mut lines[i.index(n)];
            let replacement = REPLACEMENTS[with.index(REPLACEMENTS.len())];
            *line = match line.find(": ") {
                Some(at) => format!("{}: {replacement}", &line[..at]),
                None => replacement.to_string(),
            };
        }
        Mutation::InsertKey(i, key) => {
            let i = i.index(n);
            let key = KEYS[key.index(KEYS.len())];
            let line = &lines[i];
            match line.rfind('}') {
                Some(at) => lines[i] = format!("{}, {key}: 1{}", &line[..at], &line[at..]),
                None => {
                    let indent: String = line.chars().take_while(|c| *c == ' ').collect();
                    let dash = if line.trim_start().starts_with("- ") {
                        "  "
                    } else {
                        ""
                    };
                    lines.insert(i, format!("{indent}{dash}{key}: 1"));
                }
            }
        }
        Mutation::Truncate(at) => {
            let joined = lines.join("\n");
            let cut = char_boundary(&joined, at);
            return joined[..cut].to_string();
        }
        Mutation::Splice(at, chars) => {
            let mut joined = lines.join("\n");
            let at = char_boundary(&joined, at);
            joined.insert_str(at, chars);
            return joined;
        }
    }
    lines.join("\n") + "\n"
}

fn char_boundary(text: &str, at: &Index) -> usize {
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    boundaries[at.index(boundaries.len())]
}

/// Arbitrary YAML: nested mappings and lists whose keys are mostly words a rule file uses, as
/// JSON (which YAML reads) or as block YAML.
fn arbitrary_yaml() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("sources".to_string()),
        Just("checks".to_string()),
        Just("type".to_string()),
        Just("table".to_string()),
        Just("url".to_string()),
        Just("columns".to_string()),
        Just("left".to_string()),
        Just("right".to_string()),
        Just("storage".to_string()),
        prop::sample::select(CHECK_KINDS.iter().map(|k| k.name).collect::<Vec<_>>())
            .prop_map(str::to_string),
        prop::sample::select(vec!["postgres", "lake", "delta", "hudi", "pg.t", "raw.t"])
            .prop_map(str::to_string),
        "\\PC{0,6}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        word.clone().prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::from),
            prop::collection::vec((word.clone(), inner), 0..5)
                .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
        ]
    });
    (value, any::<bool>()).prop_map(|(value, block)| {
        let json = serde_json::to_string_pretty(&value).unwrap();
        if block {
            // Pretty JSON, its braces and brackets dropped: block-style YAML, ragged on purpose.
            json.lines()
                .map(|l| l.trim_end_matches([',', '{', '[', '}', ']']))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            json
        }
    })
}

/// A listener that stands in for every server the seeds name; loading must never connect.
fn vars(listener: &TcpListener, lake: &Path) -> Arc<Vars> {
    let port = listener.local_addr().unwrap().port();
    let mut vars = Vars::new();
    vars.insert(
        "LAKECHECK_PG_URL".into(),
        format!("postgres://fuzz:pw@127.0.0.1:{port}/autocorp"),
    );
    vars.insert(
        "LAKECHECK_LAKE_URL".into(),
        url::Url::from_directory_path(lake)
            .unwrap()
            .as_str()
            .trim_end_matches('/')
            .to_string(),
    );
    vars.insert("S3_ENDPOINT".into(), format!("http://127.0.0.1:{port}"));
    Arc::new(vars)
}

/// Parses `text`; a rejection must locate every error inside the text and say what is wrong.
fn check_located(text: &str, vars: &Arc<Vars>) -> Result<(), TestCaseError> {
    let Err(errors) = parse_rule_text(Path::new(PATH), text, vars) else {
        return Ok(());
    };
    prop_assert!(!errors.is_empty(), "rejected without an error");
    // YAML's line breaks: `\n`, `\r\n` and a lone `\r`.
    let lines: Vec<&str> = text
        .split("\r\n")
        .flat_map(|l| l.split(['\n', '\r']))
        .collect();
    for error in &errors {
        let at = &error.location;
        prop_assert_eq!(at.file.as_ref(), Path::new(PATH), "{}", error);
        prop_assert!(
            at.line >= 1 && at.line <= lines.len() + 1,
            "line outside the text ({} lines): {}",
            lines.len(),
            error
        );
        let line_chars = lines.get(at.line - 1).map_or(0, |l| l.chars().count());
        prop_assert!(
            at.column >= 1 && at.column <= line_chars + 1,
            "column outside line {} ({} characters): {}",
            at.line,
            line_chars,
            error
        );
        prop_assert!(!error.message.trim().is_empty(), "empty message at {}", at);
        prop_assert!(
            error.help.as_ref().is_none_or(|h| !h.trim().is_empty()),
            "empty help: {}",
            error
        );
    }
    Ok(())
}

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn every_seed_loads_unmutated() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let lake = tempfile::tempdir().unwrap();
    let vars = vars(&listener, lake.path());
    for (path, text) in seeds() {
        if path.starts_with(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")) {
            continue; // check fixtures are case lists, not rule files
        }
        if let Err(errors) = parse_rule_text(&path, &text, &vars) {
            panic!("{}: {errors:?}", path.display());
        }
    }
}

#[test]
fn mutated_rule_files_are_rejected_with_located_errors_and_never_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let lake = tempfile::tempdir().unwrap();
    let vars = vars(&listener, lake.path());
    let seeds = seeds();
    let rejected = std::cell::Cell::new(0u32);
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..6));
    TestRunner::new(config(2000))
        .run(&strategy, |(seed, mutations)| {
            let text = mutations
                .iter()
                .fold(seeds[seed].1.clone(), |text, m| apply(&text, m));
            if parse_rule_text(Path::new(PATH), &text, &vars).is_err() {
                rejected.set(rejected.get() + 1);
            }
            check_located(&text, &vars)
        })
        .unwrap();
    // The mutations must bite: most mutated files are wrong.
    assert!(
        rejected.get() >= config(2000).cases / 4,
        "only {} mutated files were rejected",
        rejected.get()
    );
    assert!(
        listener.accept().is_err(),
        "loading rule files connected to a server they name"
    );
}

#[test]
fn arbitrary_yaml_is_rejected_with_located_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let lake = tempfile::tempdir().unwrap();
    let vars = vars(&listener, lake.path());
    let strategy = prop_oneof![arbitrary_yaml(), "\\PC{0,200}", any::<String>()];
    TestRunner::new(config(2000))
        .run(&strategy, |text| check_located(&text, &vars))
        .unwrap();
}
