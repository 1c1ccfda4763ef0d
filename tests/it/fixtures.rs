//! Every check kind has a fixture file, as every ruff rule does: `tests/fixtures/checks/<kind>.yml`
//! holds named cases, each asked so that it passes and so that it fails (and where the kind can,
//! so that it warns or cannot run), against the test world: PostgreSQL, the local lake (Parquet
//! and CSV) and Delta, Hudi and DMS tables written from the same data. One test runs every
//! fixture through the real runner, asserts each expected status and snapshots each check's
//! finding (`snapshots/checks/<kind>__<case>__<status>.snap`); another fails when a registered
//! kind has no fixture file, so a new kind cannot skip them. Variants that fix the clock
//! (`now:`) run in a run of their own per clock, as `lakecheck run --now` would.

mod fixture_file;
pub mod snapshot;
mod table_formats;

use std::panic::{catch_unwind, AssertUnwindSafe};

use chrono::{DateTime, Utc};
use lakecheck::probe::Clock;
use lakecheck::registry::CHECK_KINDS;
use lakecheck::results::CheckResult;
use lakecheck::runner::{self, Selection};

use crate::harness::{parse_rules, world};
use fixture_file::{load_all, Fixture, FIXTURE_DIR};
use snapshot::{assert_check_snapshot, Redactions};
use table_formats::TableFormats;

/// The name of a check's snapshot: `<kind>__<case>__<status>`, lowercase, `_` for the rest.
fn snapshot_name(kind: &str, case: &str, status: &str) -> String {
    let slug: String = case
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{kind}__{}__{status}", slug.trim_matches('_'))
}

#[test]
fn every_check_kind_has_a_fixture_file_and_every_file_a_kind() {
    let fixtures = load_all();
    let kinds: Vec<&str> = CHECK_KINDS.iter().map(|k| k.name).collect();
    let files: Vec<&str> = fixtures.iter().map(|f| f.kind.as_str()).collect();
    let missing: Vec<&&str> = kinds.iter().filter(|k| !files.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "check kinds without a fixture file in {FIXTURE_DIR}/: {missing:?}; \
         add `<kind>.yml` with cases that pass and fail"
    );
    let unknown: Vec<&&str> = files.iter().filter(|f| !kinds.contains(f)).collect();
    assert!(
        unknown.is_empty(),
        "fixture files for no registered kind: {unknown:?}"
    );
}

/// Snapshot names must not collide: two cases whose names differ only in punctuation would
/// overwrite each other's snapshots.
#[test]
fn fixture_snapshot_names_are_distinct() {
    let mut seen = std::collections::HashSet::new();
    for fixture in load_all() {
        for case in &fixture.cases {
            for variant in &case.variants {
                let name = snapshot_name(&fixture.kind, &case.name, variant.expected.as_str());
                assert!(
                    seen.insert(name.clone()),
                    "{}: two snapshots named {name}",
                    fixture.path
                );
            }
        }
    }
}

#[tokio::test]
async fn every_fixture_ends_as_its_case_states() {
    let started = chrono::Utc::now();
    let world = world().await;
    let formats = TableFormats::write(&world).await;
    let sources = formats.fixture_sources();
    let fixtures = load_all();
    // One run per clock: the machine's, and each `now:` the fixtures fix.
    let mut clocks: Vec<Option<DateTime<Utc>>> = vec![None];
    for variant in fixtures.iter().flat_map(Fixture::variants) {
        if !clocks.contains(&variant.now) {
            clocks.push(variant.now);
        }
    }
    let mut results: Vec<CheckResult> = Vec::new();
    for now in clocks {
        let files: Vec<_> = fixtures
            .iter()
            .filter_map(|f| {
                let text = f.rule_text(&sources, now)?;
                Some(parse_rules(&f.path, &text, &world.vars()))
            })
            .collect();
        // One check at a time: see `TableFormats::fixture_sources`.
        let mut planned = runner::plan(&files, &Selection::default()).expect("fixture checks");
        give_past_runs(&fixtures, &files, &mut planned, now);
        let clock = now.map_or(Clock::System, Clock::Fixed);
        let report = runner::run(&files, planned, 1, clock, &|_| {}).await;
        results.extend(report.suites.into_iter().flat_map(|s| s.results));
    }
    // The shared lake may have been written by an earlier test, long before this one started.
    let redactions = Redactions::new(started.min(world.written_at), chrono::Utc::now())
        .literal(world.lake_dir.path().display().to_string(), "[lake]")
        .literal(formats.root().display().to_string(), "[formats]");
    let mut problems = Vec::new();
    for fixture in &fixtures {
        problems.extend(check_fixture(fixture, &results, &redactions));
    }
    assert!(
        problems.is_empty(),
        "{} problems with the fixture checks (snapshot diffs are shown above; accept intended \
         ones with `cargo insta review` or INSTA_UPDATE=always):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Hands each check whose variant states `past:` its past runs, one a day before the run's
/// clock, recording the figure the check's kind learns from, as `run --history` would.
fn give_past_runs(
    fixtures: &[Fixture],
    files: &[lakecheck::rules::RuleFile],
    planned: &mut [runner::PlannedCheck],
    now: Option<DateTime<Utc>>,
) {
    let now = now.unwrap_or_else(Utc::now);
    for check in planned {
        let path = files[check.suite].path.display().to_string();
        let Some((fixture, variant)) = fixtures
            .iter()
            .filter(|f| f.path == path)
            .flat_map(|f| f.variants().map(move |v| (f, v)))
            .find(|(_, v)| v.check_name == check.decl.name)
        else {
            continue;
        };
        let Some(figures) = &variant.past else {
            continue;
        };
        let figure = match fixture.kind.as_str() {
            "volume_anomaly" => "row_count",
            "freshness_anomaly" => "lag_seconds",
            other => panic!(
                "{}: `past:` on `{other}`, which learns from no past",
                fixture.path
            ),
        };
        let days = figures.len() as i64;
        let runs: Vec<lakecheck::probe::PastRun> = figures
            .iter()
            .enumerate()
            .map(|(i, value)| lakecheck::probe::PastRun {
                at: now - chrono::Duration::days(days - i as i64),
                status: "pass".into(),
                metrics: [(figure.to_string(), serde_json::json!(value))]
                    .into_iter()
                    .collect(),
            })
            .collect();
        check.past = Some(Ok(runs.into()));
    }
}

/// Asserts the status of every variant of `fixture` and snapshots its finding; returns what
/// differed, so one run names every problem (and writes every new snapshot) at once.
fn check_fixture(
    fixture: &Fixture,
    results: &[CheckResult],
    redactions: &Redactions,
) -> Vec<String> {
    let mut problems = Vec::new();
    for case in &fixture.cases {
        for variant in &case.variants {
            let at = format!("{}:{} `{}`", fixture.path, variant.line, variant.check_name);
            let Some(result) = results
                .iter()
                .find(|r| r.rule_file == fixture.path && r.name == variant.check_name)
            else {
                problems.push(format!("{at}: no result"));
                continue;
            };
            if result.status != variant.expected {
                problems.push(format!(
                    "{at}: expected {}, ended {}: {} {}",
                    variant.expected.as_str(),
                    result.status.as_str(),
                    result.message,
                    result.error.as_deref().unwrap_or_default()
                ));
            }
            let name = snapshot_name(&fixture.kind, &case.name, variant.expected.as_str());
            let description = match variant.now {
                Some(now) => format!("{at} at now {}: {}", now.to_rfc3339(), variant.check),
                None => format!("{at}: {}", variant.check),
            };
            let snapshot = catch_unwind(AssertUnwindSafe(|| {
                assert_check_snapshot!(name.as_str(), result, redactions, description);
            }));
            if snapshot.is_err() {
                problems.push(format!("{at}: snapshot {name} differs"));
            }
        }
    }
    problems
}
