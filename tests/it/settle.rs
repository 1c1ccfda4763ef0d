//! `settle` on tables written live: the keys a `table_match` finds differing are read again, by
//! key, until both sides agree or the time is up. Keys that came to agree are reported in
//! flight, not failing; keys that still differ fail, as does everything settling leaves alone
//! (NULL and repeated keys). Each scenario runs on fresh tables: `items` in a scratch
//! PostgreSQL database and a Parquet copy in a local lake, with a change applied while the
//! check runs, as a change stream would.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use lakecheck::results::{CheckResult, Status};
use lakecheck::rules::{parse_rule_text, Vars};
use serde_json::json;
use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::harness::world;
use crate::reconcile::{scratch_database, write_parquet_table};

/// `(id, code, qty)`: ids 1 to 20, code `c<id>`, qty `10 * id`.
type Item = (i32, String, i32);

fn items() -> Vec<Item> {
    (1..=20).map(|n| (n, format!("c{n}"), 10 * n)).collect()
}

fn batch(items: &[Item]) -> RecordBatch {
    let column = |a: ArrayRef| a;
    RecordBatch::try_from_iter(vec![
        (
            "id",
            column(Arc::new(Int32Array::from_iter_values(
                items.iter().map(|i| i.0),
            ))),
        ),
        (
            "code",
            column(Arc::new(StringArray::from_iter_values(
                items.iter().map(|i| i.1.as_str()),
            ))),
        ),
        (
            "qty",
            column(Arc::new(Int32Array::from_iter_values(
                items.iter().map(|i| i.2),
            ))),
        ),
    ])
    .unwrap()
}

/// `items` in a fresh database (the rows of [`items`]) and in a fresh lake (those rows with
/// `edit` applied).
struct Live {
    pg_url: String,
    lake: TempDir,
    /// Keeps the shared PostgreSQL running.
    _world: Arc<crate::harness::World>,
}

impl Live {
    async fn new(edit: impl FnOnce(&mut Vec<Item>)) -> Self {
        let world = world().await;
        let pg_url = scratch_database(
            |db| world.pg.url(db),
            "settle",
            "CREATE TABLE items (id int PRIMARY KEY, code text NOT NULL, qty int NOT NULL);
             INSERT INTO items SELECT n, 'c' || n, 10 * n FROM generate_series(1, 20) AS n;",
        )
        .await;
        let lake = tempfile::tempdir().unwrap();
        let mut rows = items();
        edit(&mut rows);
        write_parquet_table(lake.path(), "items", &batch(&rows));
        Self {
            pg_url,
            lake,
            _world: world,
        }
    }

    /// Runs `table_match` of `pg.items` against `lake.items` with `options` (YAML mapping
    /// entries) and returns its result.
    async fn check(&self, options: &str) -> CheckResult {
        let text = format!(
            "sources:\n  pg: {{ type: postgres, url: \"{}\", schema: public }}\n  lake: {{ type: lake, url: \"{}\" }}\n\
             checks:\n  - {{ name: items, type: table_match, left: pg.items, right: lake.items, {options} }}\n",
            self.pg_url,
            self.lake.path().display()
        );
        let file = parse_rule_text(Path::new("settle.yml"), &text, &Arc::new(Vars::new()))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let report = crate::harness::run_files(&[file]).await;
        let result = report.results().next().unwrap().clone();
        result
    }

    /// Runs `sql` on the database `delay` from now, as a change stream applies a change.
    fn write_later(&self, delay: Duration, sql: &'static str) -> JoinHandle<()> {
        let url = self.pg_url.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let task = tokio::spawn(connection);
            client.batch_execute(sql).await.unwrap();
            drop(client);
            let _ = task.await;
        })
    }

    /// Adds a Parquet file of `rows` to the lake table `delay` from now (written beside the
    /// table, then renamed into it, so no read sees half a file).
    fn land_later(&self, delay: Duration, rows: Vec<Item>) -> JoinHandle<()> {
        let root = self.lake.path().to_path_buf();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let staged = root.join("part-1.parquet.tmp");
            std::fs::write(
                &staged,
                lakecheck::demo::autocorp::to_parquet(&batch(&rows)),
            )
            .unwrap();
            std::fs::rename(&staged, root.join("items/part-1.parquet")).unwrap();
        })
    }
}

/// `table_match` by `key` with [`SETTLE`], on tables that differ by `edit` until `change` is
/// applied some time after the check starts (`change(live, delay)` applies it `delay` from
/// now). On a busy machine the change can land before the diff reads the tables, and such a run
/// proves nothing: it runs again on fresh tables, the change later each time, until the diff
/// saw at least `differing` keys differ.
async fn settle_while_changing(
    key: &str,
    edit: fn(&mut Vec<Item>),
    change: impl Fn(&Live, Duration) -> JoinHandle<()>,
    differing: u64,
) -> (Live, CheckResult) {
    let mut seen = Vec::new();
    for delay in [1, 3, 8].map(Duration::from_secs) {
        let live = Live::new(edit).await;
        let writer = change(&live, delay);
        let result = live.check(&format!("{key}, {SETTLE}")).await;
        writer.await.unwrap();
        let keys = |name: &str| result.metrics.get(name).and_then(|v| v.as_u64());
        match (keys("in_flight"), keys("still_differing")) {
            (Some(in_flight), Some(still)) if in_flight + still >= differing => {
                return (live, result)
            }
            _ => seen.push(format!("{delay:?}: {} {:?}", result.message, result.error)),
        }
    }
    panic!("the change always landed before the diff read the tables: {seen:#?}");
}

/// Settle options of these tests: short looks, and time enough for the longest delay.
const SETTLE: &str = "settle: 12s, settle_interval: 200ms";

fn sample_keys(result: &CheckResult, kind: &str) -> Vec<String> {
    result
        .samples
        .iter()
        .flat_map(|s| &s.rows)
        .filter(|r| r[0].as_deref() == Some(kind))
        .map(|r| r[1].clone().unwrap())
        .collect()
}

/// Asserts the metrics of settling: keys in flight, keys still differing.
fn assert_settled(result: &CheckResult, in_flight: u64, still_differing: u64) {
    let m = &result.metrics;
    assert_eq!(
        (m["in_flight"].as_u64(), m["still_differing"].as_u64()),
        (Some(in_flight), Some(still_differing)),
        "{} {:?}",
        result.message,
        result.error
    );
    assert_eq!(m["not_rechecked"], json!(0));
    assert_eq!(
        m["settle_key_limit"],
        json!(lakecheck::reconcile::SETTLE_KEYS)
    );
    let after = m["settled_after_seconds"].as_f64();
    if in_flight > 0 {
        let after = after.expect("settled_after_seconds");
        assert!(after > 0.0 && after <= 12.0, "{after}");
        let keys = m["in_flight_keys"].as_array().unwrap();
        assert_eq!(keys.len() as u64, in_flight);
        let latest = keys
            .iter()
            .map(|k| k["arrived_after_seconds"].as_f64().unwrap())
            .fold(0.0, f64::max);
        assert_eq!(latest, after);
    } else {
        assert_eq!(after, None);
    }
}

/// The keys of each segmenting mode: one integer key in key ranges, a text key in key-hash
/// buckets.
#[rstest::rstest]
#[case::key_ranges("key: [id]", "id=7")]
#[case::key_hash("key: [code]", "code=c7")]
#[tokio::test]
async fn an_update_that_arrives_while_settling_is_in_flight_and_passes(
    #[case] key: &str,
    #[case] shown: &str,
) {
    // The lake already holds the new quantity of item 7; the source catches up.
    let (_, result) = settle_while_changing(
        key,
        |rows| rows[6].2 = 71,
        |live, delay| live.write_later(delay, "UPDATE items SET qty = 71 WHERE id = 7"),
        1,
    )
    .await;
    assert_eq!(
        result.status,
        Status::Pass,
        "{} {:?}",
        result.message,
        result.error
    );
    assert_settled(&result, 1, 0);
    let m = &result.metrics;
    assert_eq!(m["in_flight_keys"][0]["key"], json!(shown));
    assert_eq!((&m["changed"], &m["matched"]), (&json!(0), &json!(20)));
    assert_eq!(
        (&m["left_rows"], &m["right_rows"]),
        (&json!(20), &json!(20))
    );
    assert_eq!(result.failing_rows, Some(0));
    assert!(result.samples.is_none(), "{:?}", result.samples);
    let observed = result.observed.as_deref().unwrap();
    assert!(
        observed.contains("; 1 key in flight (arrived after "),
        "{observed}"
    );
    // Looked at again by key only: after the diff, every query is a look at item 7 on one
    // side, by its value (and, in key-hash segments, its key hash); no segment is read again.
    let looks = m["settle_rereads"].as_u64().unwrap() as usize;
    assert!(looks >= 1);
    let after_diff = &result.queries[result.queries.len() - 2 * looks..];
    let (by_value, by_hash) = match key.contains("code") {
        true => ("\"code\" IN ('c7')", "lakecheck_kh IN ("),
        false => ("\"id\" IN (7)", ""),
    };
    for query in after_diff {
        assert!(
            query.sql.contains(by_value) && query.sql.contains(by_hash),
            "a look reads the key: {}",
            query.sql
        );
    }
    let before = &result.queries[..result.queries.len() - 2 * looks];
    assert!(
        !before.iter().any(|q| q.sql.contains(by_value)),
        "the diff itself reads segments"
    );
}

#[rstest::rstest]
#[case::key_ranges("key: [id]")]
#[case::key_hash("key: [code]")]
#[tokio::test]
async fn a_wrong_row_still_fails_with_the_rows_in_flight_reported_apart(#[case] key: &str) {
    let (_, result) = settle_while_changing(
        key,
        |rows| {
            rows[6].2 = 71; // in flight: the source catches up
            rows[2].2 = 31; // wrong, and stays so
        },
        |live, delay| live.write_later(delay, "UPDATE items SET qty = 71 WHERE id = 7"),
        2,
    )
    .await;
    assert_eq!(result.status, Status::Fail, "{}", result.message);
    assert_settled(&result, 1, 1);
    let m = &result.metrics;
    assert_eq!((&m["changed"], &m["matched"]), (&json!(1), &json!(19)));
    assert_eq!(result.failing_rows, Some(1));
    let wrong = if key.contains("code") {
        "code=c3"
    } else {
        "id=3"
    };
    assert_eq!(
        sample_keys(&result, "changed"),
        [wrong],
        "only the wrong row"
    );
    let observed = result.observed.as_deref().unwrap();
    assert!(
        observed.contains("; 1 key in flight (arrived after ")
            && observed.contains(", 1 key still differs after "),
        "{observed}"
    );
    assert!(
        m["settle_waited_seconds"].as_f64().unwrap() >= 12.0,
        "a key that never agrees is looked at until the time is up"
    );
    assert_finding_snapshot(
        &format!(
            "settle_wrong_row_{}",
            key.trim_start_matches("key: [").trim_end_matches(']')
        ),
        &result,
    );
}

/// Snapshots what a report shows of a settled check, with the times of this run redacted.
fn assert_finding_snapshot(name: &str, result: &CheckResult) {
    insta::with_settings!({
        filters => vec![
            (r"after [0-9.]+ s", "after [t] s"),
            (
                r#""(arrived_after_seconds|settled_after_seconds|settle_waited_seconds|settle_rereads)": [0-9.]+"#,
                r#""$1": "[varies]""#,
            ),
        ],
    }, {
        insta::assert_json_snapshot!(name, json!({
            "status": result.status,
            "observed": result.observed,
            "expected": result.expected,
            "failing_rows": result.failing_rows,
            "metrics": result.metrics,
            "samples": result.samples,
        }));
    });
}

#[rstest::rstest]
#[case::key_ranges("key: [id]")]
#[case::key_hash("key: [code]")]
#[tokio::test]
async fn rows_that_arrive_converge_and_a_row_that_never_arrives_fails(#[case] key: &str) {
    let (_, result) = settle_while_changing(
        key,
        |rows| {
            rows.push((21, "c21".into(), 210)); // inserted in the source, in flight
            rows.retain(|r| r.0 != 5 && r.0 != 9); // 5: deleted, in flight; 9: lost
        },
        |live, delay| {
            live.write_later(
                delay,
                "INSERT INTO items VALUES (21, 'c21', 210); DELETE FROM items WHERE id = 5",
            )
        },
        3,
    )
    .await;
    assert_eq!(result.status, Status::Fail, "{}", result.message);
    assert_settled(&result, 2, 1);
    let m = &result.metrics;
    let lost = if key.contains("code") {
        "code=c9"
    } else {
        "id=9"
    };
    assert_eq!(m["missing_keys"], json!([lost]));
    assert_eq!(
        (
            &m["missing_in_target"],
            &m["extra_in_target"],
            &m["changed"]
        ),
        (&json!(1), &json!(0), &json!(0))
    );
    assert_eq!(
        (&m["left_rows"], &m["right_rows"]),
        (&json!(20), &json!(19))
    );
    assert_eq!(sample_keys(&result, "missing in target"), [lost]);
}

#[tokio::test]
async fn without_settle_the_same_tables_fail_as_before() {
    let live = Live::new(|rows| {
        rows[6].2 = 71;
        rows.push((21, "c21".into(), 210));
    })
    .await;
    let result = live.check("key: [id]").await;
    assert_eq!(result.status, Status::Fail, "{}", result.message);
    let m = &result.metrics;
    assert_eq!(
        (&m["changed"], &m["extra_in_target"], &m["matched"]),
        (&json!(1), &json!(1), &json!(19))
    );
    for name in ["in_flight", "still_differing", "settle_seconds"] {
        assert!(!m.contains_key(name), "{name} without settle");
    }
    assert!(
        !result.observed.as_deref().unwrap().contains("flight"),
        "{:?}",
        result.observed
    );
}

/// A file that lands in the lake during the run is seen by the settle re-reads (the lake
/// source forgets its cached table and lists the folder again), so its row is in flight.
#[tokio::test]
async fn a_row_landing_in_the_lake_during_the_run_is_in_flight() {
    let (_live, result) = settle_while_changing(
        "key: [id]",
        |rows| rows.retain(|r| r.0 != 20),
        |live, delay| live.land_later(delay, vec![(20, "c20".into(), 200)]),
        1,
    )
    .await;
    assert_eq!(result.status, Status::Pass, "{}", result.message);
    assert_settled(&result, 1, 0);
}

#[rstest::rstest]
#[case::interval_without_settle(
    "settle_interval: 10s",
    "rules/bad.yml:5:89: error: `settle_interval` in check #1 has no `settle` to pace\n  help: add `settle: 2m` (how long differing keys may take to agree), or remove `settle_interval`"
)]
#[case::zero_settle(
    "settle: 0s",
    "rules/bad.yml:5:80: error: `settle` in check #1 must be longer than 0\n  help: remove `settle` to compare once, or give the time rows take to arrive: `settle: 2m`"
)]
#[case::zero_interval(
    "settle: 2m, settle_interval: 0ms",
    "rules/bad.yml:5:101: error: `settle_interval` in check #1 must be longer than 0\n  help: e.g. `settle_interval: 10s`"
)]
#[case::too_many_looks(
    "settle: 1h, settle_interval: 1s",
    "rules/bad.yml:5:101: error: `settle` in check #1 would look 3600 times, one every 1 s; at most 1000\n  help: lengthen `settle_interval`"
)]
#[case::not_a_duration(
    "settle: soon",
    "rules/bad.yml:5:80: error: `settle` in check #1 is not a duration: `soon`\n  help: write numbers with units, largest first: `500ms`, `30s`, `5m`, `2h`, `1d`, `1h30m`"
)]
fn settle_mistakes_are_located_with_a_fix(#[case] options: &str, #[case] expected: &str) {
    let text = format!(
        "sources:\n  pg: {{ type: postgres, url: \"postgres://reader@db.example:5432/shop\" }}\n  lake: {{ type: lake, url: /data/lake }}\n\
         checks:\n  - {{ type: table_match, left: pg.items, right: lake.items, key: [id], {options} }}\n"
    );
    assert_eq!(crate::rule_errors::errors_of(&text), expected);
}
