//! One self-contained HTML page (inline CSS and JS, no network): verdict, counts, a filterable
//! list of checks with details and sample rows. Problems are listed first.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{RenderError, ReportFormat};

mod trend;
use crate::model::Rows;
use crate::results::{CheckResult, RunReport, Status};
use crate::rules::Severity;
use crate::sources::memory::format_bytes;

pub const FORMAT: ReportFormat = ReportFormat {
    name: "html",
    default_file: "lakecheck.html",
    render,
};

const STYLE: &str = r#"
:root{--pass:#1a7f37;--warn:#9a6700;--fail:#cf222e;--error:#8250df;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--muted:#57606a;--ink:#1f2328}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;background:var(--bg);color:var(--ink)}
header{background:#24292f;color:#fff;padding:18px 32px;display:flex;align-items:baseline;gap:16px;flex-wrap:wrap}
header h1{margin:0;font-size:20px}header .meta{color:#c9d1d9;font-size:13px}
main{max-width:1280px;margin:0 auto;padding:24px 32px}
.verdict{border-radius:8px;padding:14px 18px;font-size:16px;font-weight:600;margin-bottom:18px;color:#fff}
.verdict.pass{background:var(--pass)}.verdict.warn{background:var(--warn)}.verdict.fail{background:var(--fail)}.verdict.error{background:var(--error)}
.cards{display:grid;grid-template-columns:repeat(5,1fr);gap:12px;margin-bottom:18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;cursor:pointer;user-select:none}
.card .n{font-size:26px;font-weight:700}.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.pass .n{color:var(--pass)}.card.warn .n{color:var(--warn)}.card.fail .n{color:var(--fail)}.card.error .n{color:var(--error)}
.card.off{opacity:.4}
.controls{display:flex;gap:10px;margin-bottom:12px;flex-wrap:wrap}
.controls input,.controls select{padding:7px 10px;border:1px solid var(--line);border-radius:6px;font:inherit;background:#fff}
.controls input{flex:1;min-width:220px}
.list{background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden}
.head,.check>summary{display:grid;grid-template-columns:74px minmax(220px,2.2fr) 1.2fr 2fr 70px;gap:12px;padding:9px 14px;align-items:start}
.head{background:#eaeef2;font-weight:600;font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.check{border-top:1px solid var(--line)}.check>summary{cursor:pointer;list-style:none}.check>summary::-webkit-details-marker{display:none}
.check>summary:hover{background:#f6f8fa}.check[open]>summary{background:#eef3f8}
.pill{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600;color:#fff;text-transform:uppercase}
.pill.pass{background:var(--pass)}.pill.warn{background:var(--warn)}.pill.fail{background:var(--fail)}.pill.error{background:var(--error)}
.name{font-weight:600;word-break:break-word}.kind{color:var(--muted);font-size:12px}
.tag{display:inline-block;background:#ddf4ff;color:#0969da;border-radius:4px;padding:0 6px;font-size:11px;margin:2px 4px 0 0}
.tables{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;word-break:break-all}
.msg{word-break:break-word}.dur{text-align:right;color:var(--muted);font-variant-numeric:tabular-nums}
.detail{padding:4px 18px 18px 100px;background:#fbfcfd}
.detail dl{display:grid;grid-template-columns:130px 1fr;gap:4px 12px;margin:8px 0}.detail dt{color:var(--muted)}.detail dd{margin:0;word-break:break-word}
.detail h4{margin:14px 0 6px;font-size:13px}
.error-box{background:#fbefff;border:1px solid #d8b9ff;border-radius:6px;padding:8px 12px;white-space:pre-wrap;font-family:ui-monospace,Menlo,monospace;font-size:12px}
table.samples{border-collapse:collapse;font-family:ui-monospace,Menlo,monospace;font-size:12px;display:block;overflow-x:auto;max-width:100%}
table.samples th,table.samples td{border:1px solid var(--line);padding:3px 8px;text-align:left;white-space:pre}
table.samples th{background:#eaeef2}.null{color:var(--muted);font-style:italic}
pre.sql{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:8px 12px;font-size:12px;white-space:pre-wrap;margin:4px 0}
.qmeta{color:var(--muted);font-size:12px}
.empty{padding:24px;text-align:center;color:var(--muted)}
.strip{display:flex;gap:2px;margin-top:5px;flex-wrap:wrap}.strip .run{width:7px;height:14px;border-radius:2px;background:var(--line)}
.strip .run.pass{background:var(--pass)}.strip .run.warn{background:var(--warn)}.strip .run.fail{background:var(--fail)}.strip .run.error{background:var(--error)}
.trend{background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px;display:inline-block;max-width:100%;overflow-x:auto}
svg.chart{display:block;font-size:11px}svg.chart .grid{stroke:#eaeef2}svg.chart .axis{fill:var(--muted)}
svg.chart .band{fill:#0969da;fill-opacity:.12;stroke:#0969da;stroke-opacity:.35;stroke-width:1}
svg.chart .limit{stroke:var(--fail);stroke-dasharray:5 4;stroke-width:1.2}svg.chart .limit-label{fill:var(--fail)}
svg.chart .line{fill:none;stroke:#57606a;stroke-width:1.6}svg.chart .point{stroke:#fff;stroke-width:1}
svg.chart .point.pass{fill:var(--pass)}svg.chart .point.warn{fill:var(--warn)}svg.chart .point.fail{fill:var(--fail)}svg.chart .point.error{fill:var(--error)}
footer{color:var(--muted);font-size:12px;text-align:center;padding:24px}
@media (max-width:900px){.cards{grid-template-columns:repeat(2,1fr)}.head{display:none}.check>summary{grid-template-columns:74px 1fr}.detail{padding-left:18px}}
"#;

const SCRIPT: &str = r#"
(function(){
  var off={}, cards=document.querySelectorAll('.card[data-filter]');
  var search=document.getElementById('search'), tag=document.getElementById('tag');
  function apply(){
    var q=search.value.toLowerCase(), t=tag.value, shown=0;
    document.querySelectorAll('.check').forEach(function(c){
      var ok=!off[c.dataset.status] && (!t || (' '+c.dataset.tags+' ').indexOf(' '+t+' ')>=0)
        && (!q || c.dataset.search.toLowerCase().indexOf(q)>=0);
      c.hidden=!ok; if(ok) shown++;
    });
    document.getElementById('none').hidden=shown>0;
  }
  cards.forEach(function(card){card.addEventListener('click',function(){
    var s=card.dataset.filter; off[s]=!off[s]; card.classList.toggle('off',off[s]); apply();});});
  search.addEventListener('input',apply); tag.addEventListener('change',apply);
})();
"#;

fn rank(status: Status) -> u8 {
    match status {
        Status::Error => 0,
        Status::Fail => 1,
        Status::Warn => 2,
        Status::Pass => 3,
    }
}

fn verdict(report: &RunReport) -> (&'static str, String) {
    let (class, text) = checks_verdict(report);
    match report.report_errors.len() {
        0 => (class, text),
        n => (
            "error",
            format!(
                "{text}; {n} report{} could not be written",
                if n == 1 { "" } else { "s" }
            ),
        ),
    }
}

fn checks_verdict(report: &RunReport) -> (&'static str, String) {
    let s = &report.summary;
    if s.errored > 0 {
        (
            "error",
            format!("{} of {} checks could not run", s.errored, s.total),
        )
    } else if s.failed > 0 {
        ("fail", format!("{} of {} checks failed", s.failed, s.total))
    } else if s.warned > 0 {
        (
            "warn",
            format!("All {} checks passed, {} with warnings", s.total, s.warned),
        )
    } else {
        ("pass", format!("All {} checks passed", s.total))
    }
}

/// Builds the page; maud renders into a string and cannot fail.
fn render(report: &RunReport) -> Result<String, RenderError> {
    let mut results: Vec<&CheckResult> = report.results().collect();
    results.sort_by_key(|r| rank(r.status));
    let mut tags: Vec<&str> = results
        .iter()
        .flat_map(|r| r.tags.iter().map(String::as_str))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    let (verdict_class, verdict_text) = verdict(report);
    let s = &report.summary;
    let cards = [
        ("total", "Checks", s.total),
        ("pass", "Passed", s.passed),
        ("warn", "Warnings", s.warned),
        ("fail", "Failed", s.failed),
        ("error", "Errors", s.errored),
    ];
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "lakecheck: " (verdict_text) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "lakecheck report" }
                    span.meta {
                        "started " (report.started_at.format("%Y-%m-%d %H:%M:%S UTC")) " · " (format_ms(report.duration_ms)) " · " (report.suites.len()) " rule file(s) · lakecheck " (report.lakecheck_version)
                        @if let Some(billed) = &report.billed { " · " (super::console::billed_line(billed)) }
                    }
                }
                main {
                    div class={ "verdict " (verdict_class) } { (verdict_text) " · exit code " (report.exit_code) }
                    @if !report.report_errors.is_empty() {
                        div class="error-box" { (report.report_errors.join("\n")) }
                    }
                    div.cards {
                        @for (class, label, count) in cards {
                            @if class == "total" {
                                div class="card total" { div.n { (count) } div.l { (label) } }
                            } @else {
                                div class={ "card " (class) } data-filter=(class) title="click to hide or show" { div.n { (count) } div.l { (label) } }
                            }
                        }
                    }
                    div.controls {
                        input #search type="search" placeholder="Filter by check, table or message";
                        select #tag {
                            option value="" { "All tags" }
                            @for tag in &tags { option value=(tag) { (tag) } }
                        }
                    }
                    div.list {
                        div.head { div { "Status" } div { "Check" } div { "Tables" } div { "Result" } div.dur { "Time" } }
                        @for result in &results { (check_row(result)) }
                        div #none .empty hidden { "No checks match the filters." }
                    }
                }
                footer { "Generated by lakecheck " (report.lakecheck_version) ". Report schema v" (report.schema_version) "." }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    Ok(page.into_string())
}

fn check_row(result: &CheckResult) -> Markup {
    let status = result.status.as_str();
    let search = format!(
        "{} {} {} {}",
        result.name,
        result.kind,
        result.tables.join(" "),
        result.message
    );
    html! {
        details.check data-status=(status) data-tags=(result.tags.join(" ")) data-search=(search) open[result.status != Status::Pass] {
            summary {
                div { span class={ "pill " (status) } { (status) } }
                div {
                    div.name { (result.name) }
                    div.kind { (result.kind) @if result.severity == Severity::Warn { " · warn only" } }
                    @for tag in &result.tags { span.tag { (tag) } }
                    @if !result.trend.is_empty() { (trend::strip(&result.trend, result.figure.as_ref())) }
                }
                div.tables { @for table in &result.tables { div { (table) } } }
                div.msg { (result.message) }
                div.dur { (format_ms(result.duration_ms)) }
            }
            div.detail {
                dl {
                    @if let Some(description) = &result.description { dt { "Description" } dd { (description) } }
                    @if let Some(expected) = &result.expected { dt { "Expected" } dd { (expected) } }
                    @if let Some(observed) = &result.observed { dt { "Observed" } dd { (observed) } }
                    @if let Some(failing) = result.failing_rows { dt { "Failing rows" } dd { (failing) } }
                    dt { "Declared at" } dd { code { (result.rule_file) ":" (result.line) } }
                    @for (table, facts) in &result.table_metadata {
                        dt { (table) } dd { (table_facts(facts)) }
                    }
                }
                @if let Some(error) = &result.error { h4 { "Why it could not run" } div.error-box { (error) } }
                @if let Some(chart) = result.figure.as_ref().and_then(|f| trend::chart(&result.trend, f)) {
                    h4 { (capitalized(result.figure.as_ref().map_or("", |f| f.label))) " over the last " (result.trend.len()) " runs" }
                    div.trend { (chart) }
                }
                @if let Some(samples) = &result.samples { h4 { "Sample rows (" (samples.rows.len()) " shown)" } (sample_table(samples)) }
                @if !result.queries.is_empty() {
                    h4 { "Queries" }
                    @for query in &result.queries {
                        div.qmeta {
                            "on " (query.source) " · " (format_ms(query.duration_ms))
                            @if !query.shared_by.is_empty() { " · one scan shared by " (query.shared_by.join(", ")) }
                            @if let Some(cost) = &query.cost {
                                " · execution " code { (cost.execution_id) } " · " (format_bytes(cost.bytes_scanned)) " scanned · " (format_ms(cost.engine_ms)) " engine time"
                            }
                            @if query.error.is_some() { " · failed" }
                        }
                        pre.sql { (query.sql) }
                    }
                }
            }
        }
    }
}

fn sample_table(rows: &Rows) -> Markup {
    html! {
        table.samples {
            thead { tr { @for column in &rows.columns { th { (column) } } } }
            tbody {
                @for row in &rows.rows {
                    tr { @for value in row {
                        @match value { Some(v) => td { (v) }, None => td.null { "NULL" } }
                    } }
                }
            }
        }
    }
}

/// `version 3 · last commit 2026-11-22T08:00:00+00:00 · 4 commits · 2 files · 1.2 MB`.
fn table_facts(facts: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some(v) = facts.get("version").and_then(|v| v.as_i64()) {
        parts.push(format!("version {v}"));
    }
    if let Some(t) = facts.get("last_commit").and_then(|v| v.as_str()) {
        parts.push(format!("last commit {t}"));
    }
    if let Some(n) = facts.get("commits").and_then(|v| v.as_u64()) {
        parts.push(format!("{n} commits"));
    }
    if let Some(n) = facts.get("files").and_then(|v| v.as_u64()) {
        parts.push(format!("{n} files"));
    }
    if let Some(n) = facts.get("bytes").and_then(|v| v.as_u64()) {
        parts.push(format!("{:.1} MB", n as f64 / 1_000_000.0));
    }
    if let Some(n) = facts.get("object_store_retries").and_then(|v| v.as_u64()) {
        parts.push(format!("{n} storage requests retried"));
    }
    parts.join(" · ")
}

/// `Row count` from `row count`.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.2} s", ms as f64 / 1000.0)
    }
}
