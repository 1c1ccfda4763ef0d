//! One scan per table: checks that read aggregates of the same table under the same filter
//! (`row_count`, `not_null`, `accepted_values`, `range`, `condition`) share one aggregate query,
//! as Deequ computes all its metrics in one pass, instead of each scanning the table alone.
//!
//! A check states what it reads as [`ScanNeeds`]; the runner groups the needs of a rule file's
//! checks by table and filter ([`share_scans`]) and hands each group one [`SharedScan`]. The
//! first check of a group to ask runs the combined query; the others await its answer. A
//! check alone in its group, or one whose shared query failed, sends its own query, so an error
//! (a column that does not exist) is reported by the check that caused it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::model::{Rows, TableRef};
use crate::sources::SourceError;

/// The aggregates a check reads in one pass over a table (within its filter), each under an
/// alias of the check's choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanNeeds {
    pub table: TableRef,
    pub filter: Option<String>,
    aggregates: Vec<Aggregate>,
}

/// One figure a check reads from a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Aggregate {
    alias: String,
    measure: Measure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Measure {
    /// An aggregate expression, e.g. `count(*)` or `min("amount")`.
    Expression(String),
    /// How many rows a boolean condition is true for (NULL counts as not true).
    CountWhere(String),
}

impl Measure {
    /// The measure as one aggregate expression over the (filtered) table.
    fn expression(&self) -> String {
        match self {
            Measure::Expression(sql) => sql.clone(),
            // `count` skips the NULL a CASE without ELSE yields, so only true rows count, and
            // an empty table gives 0, as `count(*) ... WHERE` does.
            Measure::CountWhere(condition) => format!("count(CASE WHEN ({condition}) THEN 1 END)"),
        }
    }
}

impl ScanNeeds {
    /// Nothing yet of `table` within `filter`; add figures with [`Self::expression`] and
    /// [`Self::count_where`].
    pub fn new(table: &TableRef, filter: Option<&str>) -> Self {
        Self {
            table: table.clone(),
            filter: filter.map(str::to_string),
            aggregates: Vec::new(),
        }
    }

    /// Reads the aggregate expression `sql` under `alias`.
    pub fn expression(mut self, alias: &str, sql: String) -> Self {
        self.aggregates.push(Aggregate {
            alias: alias.to_string(),
            measure: Measure::Expression(sql),
        });
        self
    }

    /// Reads, under `alias`, how many rows the boolean SQL `condition` is true for.
    pub fn count_where(mut self, alias: &str, condition: String) -> Self {
        self.aggregates.push(Aggregate {
            alias: alias.to_string(),
            measure: Measure::CountWhere(condition),
        });
        self
    }

    /// The query a check sends on its own, `table_sql` naming the table in its engine. A lone
    /// count of rows meeting a condition puts the condition in `WHERE`, where an index on the
    /// column can serve it.
    pub fn own_sql(&self, table_sql: &str) -> String {
        if let [Aggregate {
            alias,
            measure: Measure::CountWhere(condition),
        }] = self.aggregates.as_slice()
        {
            let condition = within(self.filter.as_deref(), condition);
            return format!("SELECT count(*) AS {alias} FROM {table_sql} WHERE {condition}");
        }
        let list: Vec<String> = self
            .aggregates
            .iter()
            .map(|a| format!("{} AS {}", a.measure.expression(), a.alias))
            .collect();
        select(&list, table_sql, self.filter.as_deref())
    }

    fn key(&self) -> ScanKey {
        (
            self.table.source.clone(),
            self.table.table.clone(),
            self.filter.clone(),
        )
    }
}

/// `condition` within `filter`, for a `WHERE` clause.
pub fn within(filter: Option<&str>, condition: &str) -> String {
    match filter {
        Some(filter) => format!("({filter}) AND ({condition})"),
        None => format!("({condition})"),
    }
}

/// `SELECT <list> FROM <table> [WHERE (<filter>)]`.
fn select(list: &[String], table_sql: &str, filter: Option<&str>) -> String {
    let mut sql = format!("SELECT {} FROM {table_sql}", list.join(", "));
    if let Some(filter) = filter {
        sql.push_str(&format!(" WHERE ({filter})"));
    }
    sql
}

/// What makes two checks' scans one: source, table and filter text.
type ScanKey = (String, String, Option<String>);

/// One aggregate query shared by the checks of a group: the union of their expressions under
/// positional aliases, and its answer once the first of them has run it.
#[derive(Debug)]
pub struct SharedScan {
    table: TableRef,
    filter: Option<String>,
    /// Distinct expressions of the group, in the order checks declared them; expression `i`
    /// is read as `agg_i`.
    expressions: Vec<String>,
    /// The checks of the group, by name, in plan order.
    checks: Vec<String>,
    answer: OnceCell<SharedAnswer>,
}

/// What the shared query returned (or why it failed), and how long it ran.
#[derive(Debug, Clone)]
pub struct SharedAnswer {
    pub rows: Result<Rows, SourceError>,
    /// What the engine billed for the one query (`Source::costed_query`).
    pub cost: Option<crate::sources::QueryCost>,
    pub duration_ms: u64,
}

impl SharedScan {
    fn new(needs: &ScanNeeds) -> Self {
        Self {
            table: needs.table.clone(),
            filter: needs.filter.clone(),
            expressions: Vec::new(),
            checks: Vec::new(),
            answer: OnceCell::new(),
        }
    }

    fn join(&mut self, check: &str, needs: &ScanNeeds) {
        self.checks.push(check.to_string());
        for aggregate in &needs.aggregates {
            let expression = aggregate.measure.expression();
            if !self.expressions.contains(&expression) {
                self.expressions.push(expression);
            }
        }
    }

    /// The names of the checks that share this scan.
    pub fn checks(&self) -> &[String] {
        &self.checks
    }

    /// Whether `needs` reads from this scan: same table and filter, and every figure in it.
    pub fn serves(&self, needs: &ScanNeeds) -> bool {
        needs.table == self.table
            && needs.filter == self.filter
            && needs
                .aggregates
                .iter()
                .all(|a| self.expressions.contains(&a.measure.expression()))
    }

    /// The combined query, `table_sql` naming the table in its engine.
    pub fn sql(&self, table_sql: &str) -> String {
        let list: Vec<String> = self
            .expressions
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{e} AS agg_{i}"))
            .collect();
        select(&list, table_sql, self.filter.as_deref())
    }

    /// The answer, running `run` to get it if no check of the group has yet. If the check
    /// running it is stopped (its timeout), the next one to ask runs it again.
    pub async fn answer<F>(&self, run: impl FnOnce() -> F) -> &SharedAnswer
    where
        F: std::future::Future<Output = SharedAnswer>,
    {
        self.answer.get_or_init(run).await
    }

    /// The figures `needs` asks for, under its own aliases, taken from the shared answer; an
    /// error when the answer lacks one (never a NULL that would read as a count of 0).
    pub fn figures(&self, needs: &ScanNeeds, shared: &Rows) -> Result<Rows, String> {
        let Some(row) = shared.rows.first() else {
            return Err("the shared scan returned no row".into());
        };
        let values = needs
            .aggregates
            .iter()
            .map(|a| {
                let expression = a.measure.expression();
                self.expressions
                    .iter()
                    .position(|e| *e == expression)
                    .and_then(|i| row.get(i).cloned())
                    .ok_or_else(|| format!("the shared scan's answer has no `{expression}`"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Rows {
            columns: needs.aggregates.iter().map(|a| a.alias.clone()).collect(),
            rows: vec![values],
        })
    }
}

/// Groups scans by (group, source, table, filter): `scans[i]` is check `i`'s group (its rule
/// file, whose sources its table names), name and needs, if it reads a scan. Returns, for each
/// check, the scan it shares with at least one other check; a check alone in its group gets
/// none and sends its own query, as it would without sharing.
pub fn share_scans(scans: &[Option<(usize, &str, ScanNeeds)>]) -> Vec<Option<Arc<SharedScan>>> {
    let mut groups: BTreeMap<(usize, ScanKey), SharedScan> = BTreeMap::new();
    for (group, name, needs) in scans.iter().flatten() {
        groups
            .entry((*group, needs.key()))
            .or_insert_with(|| SharedScan::new(needs))
            .join(name, needs);
    }
    let shared: BTreeMap<(usize, ScanKey), Arc<SharedScan>> = groups
        .into_iter()
        .filter(|(_, scan)| scan.checks.len() > 1)
        .map(|(key, scan)| (key, Arc::new(scan)))
        .collect();
    scans
        .iter()
        .map(|scan| {
            let (group, _, needs) = scan.as_ref()?;
            shared.get(&(*group, needs.key())).cloned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders() -> TableRef {
        TableRef {
            source: "pg".into(),
            table: "orders".into(),
        }
    }

    fn rows() -> ScanNeeds {
        ScanNeeds::new(&orders(), None).expression("row_count", "count(*)".into())
    }

    #[test]
    fn a_lone_count_where_keeps_its_condition_in_where() {
        let needs = ScanNeeds::new(&orders(), Some("region = 'EU'"))
            .count_where("failing_rows", "amount < 0".into());
        assert_eq!(
            needs.own_sql("\"orders\""),
            "SELECT count(*) AS failing_rows FROM \"orders\" WHERE (region = 'EU') AND (amount < 0)"
        );
    }

    #[test]
    fn a_group_reads_each_distinct_expression_once() {
        let range = ScanNeeds::new(&orders(), None)
            .expression("observed_min", "min(amount)".into())
            .expression("observed_max", "max(amount)".into())
            .count_where("failing_rows", "amount > 10".into());
        let scans = vec![
            Some((0, "count", rows())),
            Some((0, "again", rows())),
            Some((0, "range", range.clone())),
            None,
        ];
        let shared = share_scans(&scans);
        let scan = shared[0].clone().unwrap();
        assert!(Arc::ptr_eq(&scan, shared[2].as_ref().unwrap()));
        assert!(shared[3].is_none());
        assert_eq!(scan.checks(), ["count", "again", "range"]);
        insta::assert_snapshot!(scan.sql("\"orders\""), @r#"SELECT count(*) AS agg_0, min(amount) AS agg_1, max(amount) AS agg_2, count(CASE WHEN (amount > 10) THEN 1 END) AS agg_3 FROM "orders""#);
        let answer = Rows {
            columns: vec![
                "agg_0".into(),
                "agg_1".into(),
                "agg_2".into(),
                "agg_3".into(),
            ],
            rows: vec![vec![
                Some("7".into()),
                None,
                Some("12".into()),
                Some("1".into()),
            ]],
        };
        let figures = scan.figures(&range, &answer).unwrap();
        assert_eq!(
            figures.columns,
            ["observed_min", "observed_max", "failing_rows"]
        );
        assert_eq!(
            figures.rows,
            [vec![None, Some("12".into()), Some("1".into())]]
        );
        // An answer without the figures is an error, never NULLs that read as counts of 0.
        let short = Rows {
            columns: answer.columns[..1].to_vec(),
            rows: vec![vec![Some("7".into())]],
        };
        assert!(scan.figures(&range, &short).is_err());
        assert!(scan.figures(&range, &Rows::default()).is_err());
    }

    #[test]
    fn filters_tables_and_rule_files_make_separate_groups() {
        let filtered = ScanNeeds::new(&orders(), Some("amount > 0"))
            .expression("row_count", "count(*)".into());
        let scans = vec![
            Some((0, "all", rows())),
            Some((0, "filtered", filtered.clone())),
            Some((1, "other file", rows())),
            Some((0, "filtered again", filtered)),
        ];
        let shared = share_scans(&scans);
        assert!(shared[0].is_none());
        assert!(shared[2].is_none());
        let scan = shared[1].as_ref().unwrap();
        assert_eq!(scan.checks(), ["filtered", "filtered again"]);
        assert_eq!(
            scan.sql("t"),
            "SELECT count(*) AS agg_0 FROM t WHERE (amount > 0)"
        );
    }
}
