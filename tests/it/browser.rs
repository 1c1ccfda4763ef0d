//! The HTML report in a real headless browser (Debian's `chromium`, which `scripts/test`
//! installs when it is missing): sixteen simulated daily audits build a history, and the last
//! run's page must load without a console message, show the summary counts, draw the trends,
//! and filter by status and tag. A screenshot of it is left in the target folder
//! (`lakecheck-report.png`) for people to look at.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, Utc};

use crate::cli::text;
use crate::history::{audit_at, audit_of, write_loads, write_updates};

/// The browser: `LAKECHECK_CHROMIUM`, else the first of Debian's and Google's names on `PATH`.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("LAKECHECK_CHROMIUM") {
        return path.into();
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|path| path.is_file())
            })
        })
        .expect(
            "no chromium on PATH: run ./scripts/test (it installs Debian's chromium) or set \
             LAKECHECK_CHROMIUM",
        )
}

/// Runs headless chromium on `page` with `args`; its stdout and its stderr (console messages
/// are logged there as `INFO:CONSOLE`).
fn browse(page: &Path, args: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start chromium");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// The console messages chromium logged for the page.
fn console_messages(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// Runs in the page after its own script: reads what a person sees, uses the filters as a
/// person would, and leaves its findings as JSON in `#lakecheck-test` for `--dump-dom`.
const EXERCISE: &str = r#"
<script>
(function(){
  function visible(){ return Array.prototype.filter.call(document.querySelectorAll('.check'),
    function(c){ return !c.hidden; }); }
  function statuses(){ return visible().map(function(c){ return c.dataset.status; }).sort(); }
  var found={errors: window.__errors};
  found.cards={};
  document.querySelectorAll('.card').forEach(function(card){
    found.cards[card.querySelector('.l').textContent]=Number(card.querySelector('.n').textContent); });
  found.charts=document.querySelectorAll('svg.chart').length;
  found.bands=document.querySelectorAll('svg.chart polygon.band').length;
  found.limits=document.querySelectorAll('svg.chart line.limit').length;
  found.strips=document.querySelectorAll('.strip').length;
  found.marks=document.querySelectorAll('.strip .run').length;
  found.all=statuses();
  var fail=document.querySelector('.card[data-filter="fail"]');
  fail.click(); found.without_failures=statuses();
  fail.click(); found.failures_back=statuses();
  var tag=document.getElementById('tag');
  tag.value='freshness'; tag.dispatchEvent(new Event('change'));
  found.freshness=visible().map(function(c){ return c.querySelector('.name').textContent; }).sort();
  tag.value=''; tag.dispatchEvent(new Event('change'));
  var search=document.getElementById('search');
  search.value='no such check'; search.dispatchEvent(new Event('input'));
  found.nothing_shown=visible().length===0 && !document.getElementById('none').hidden;
  var pre=document.createElement('pre'); pre.id='lakecheck-test';
  pre.textContent=JSON.stringify(found); document.body.appendChild(pre);
})();
</script>
"#;

/// Catches errors of the page's own script before it runs.
const CATCH_ERRORS: &str = "<script>window.__errors=[];window.addEventListener('error',\
function(e){window.__errors.push(String(e.message));});</script>";

#[tokio::test]
async fn the_report_shows_trends_and_filters_in_a_real_browser() {
    let dir = audit_of(&[
        "{ name: daily load, type: volume_anomaly, table: lake.loads, tags: [daily, volume] }",
        "{ name: loads complete, type: row_count, table: lake.loads, min: 900, tags: [daily] }",
        "{ name: loads bounded, type: row_count, table: lake.loads, max: 100000, tags: [volume] }",
        "{ name: updates fresh, type: freshness, table: lake.updates, column: updated_at, \
         warn_after: 30m, error_after: 1h, tags: [freshness] }",
        "{ name: updates lag, type: freshness_anomaly, table: lake.updates, column: updated_at, \
         tags: [freshness] }",
        "{ name: returns loaded, type: row_count, table: lake.returns, min: 1, tags: [daily] }",
    ]);
    let lake = dir.path().join("lake");
    let start: DateTime<Utc> = "2026-11-01T06:00:00Z".parse().unwrap();
    let loads = [
        1000, 1030, 980, 1010, 995, 1020, 990, 1005, 1015, 985, 1000, 1025, 975, 1010, 1002, 500,
    ];
    let lags = [12, 9, 15, 11, 10, 14, 8, 13, 12, 10, 11, 9, 14, 12, 10, 45];
    let mut out = None;
    for (day, (rows, lag)) in loads.iter().zip(lags).enumerate() {
        let now = start + Duration::days(day as i64);
        write_loads(&lake, *rows);
        write_updates(&lake, now - Duration::minutes(lag));
        out = Some(audit_at(dir.path(), &now.to_rfc3339()).0);
    }
    let out = out.unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing table: {}",
        text(&out)
    );
    let page = dir.path().join("r/lakecheck.html");

    // The page as written: no console message at all, and a screenshot to look at.
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lakecheck-report.png");
    let (_, stderr) = browse(
        &page,
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,2400",
        ],
    );
    assert_eq!(console_messages(&stderr), Vec::<&str>::new(), "{stderr}");
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a screenshot of a drawn page, {} bytes",
        png.len()
    );

    // The same page with a script that uses it as a person would.
    let html = std::fs::read_to_string(&page).unwrap();
    let exercised = html
        .replacen("<head>", &format!("<head>{CATCH_ERRORS}"), 1)
        .replacen("</body>", &format!("{EXERCISE}</body>"), 1);
    let exercised_page = dir.path().join("r/exercised.html");
    std::fs::write(&exercised_page, exercised).unwrap();
    let (dom, stderr) = browse(&exercised_page, &["--dump-dom"]);
    assert_eq!(console_messages(&stderr), Vec::<&str>::new(), "{stderr}");
    let found = dom
        .split("<pre id=\"lakecheck-test\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the exercise ran: {dom}"));
    let found: serde_json::Value =
        serde_json::from_str(&found.replace("&quot;", "\"").replace("&amp;", "&")).unwrap();
    assert_eq!(found["errors"], serde_json::json!([]), "{found}");
    assert_eq!(
        found["cards"],
        serde_json::json!({"Checks": 6, "Passed": 1, "Warnings": 1, "Failed": 3, "Errors": 1}),
        "{found}"
    );
    assert_eq!(found["strips"], 6, "every check has its strip: {found}");
    assert_eq!(found["marks"], 6 * 16, "sixteen runs each: {found}");
    // Row counts of three checks and the lag of two have figures; the returns check never ran.
    assert_eq!(found["charts"], 5, "{found}");
    assert_eq!(
        found["bands"], 2,
        "both anomaly checks learned a band: {found}"
    );
    assert_eq!(
        found["limits"], 4,
        "min, max, warn_after and error_after: {found}"
    );
    assert_eq!(
        found["all"],
        serde_json::json!(["error", "fail", "fail", "fail", "pass", "warn"]),
        "{found}"
    );
    assert_eq!(
        found["without_failures"],
        serde_json::json!(["error", "pass", "warn"]),
        "{found}"
    );
    assert_eq!(found["failures_back"], found["all"], "{found}");
    assert_eq!(
        found["freshness"],
        serde_json::json!(["updates fresh", "updates lag"]),
        "{found}"
    );
    assert_eq!(found["nothing_shown"], true, "{found}");
}
