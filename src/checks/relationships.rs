//! `relationships`: every non-NULL reference of a table exists in the table it refers to (a
//! foreign key), in the lake as in the source.
//!
//! - Both tables on one source: one anti-join pushed down to it (`NOT EXISTS`), counting the
//!   orphan rows and keys and sampling the orphans that most rows reference.
//! - On two sources (orders in the lake, customers in PostgreSQL during a partial cutover):
//!   key sets compared by segments, reading only the keys of segments that differ
//!   ([`key_sets`]); no table is pulled.
//! - `from_schema: true` reads the foreign keys a PostgreSQL table (or every table of a
//!   PostgreSQL source) declares in `pg_constraint` when the check runs, and checks each in
//!   the source named by `in` (default: the PostgreSQL source itself). One result reports
//!   every foreign key with its own verdict (samples and metrics); it fails when any fails.
//!   Reading the catalog at run time keeps `lakecheck validate` offline, and a key added to
//!   the source is checked without editing the rule file.
//!
//! A composite reference with a NULL in any column is not checked (SQL's `MATCH SIMPLE`, what
//! PostgreSQL enforces by default). A table with no reference to check fails unless
//! `allow_empty: true`: an empty lake table proves nothing.

mod key_sets;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::pairing::{find_column, typed_pair, ReadSide};
use super::row_predicate::rows;
use super::{name_with_filter, rows_to_read, Check, CheckKind, CheckReader, Evaluation};
use crate::model::canon::{self, Canon, Mismatch};
use crate::model::sql::{quote_ident, quote_literal};
use crate::model::{Column, Rows, RuleError, Spanned, TableRef};
use crate::probe::{first_i64, CheckError, ColumnProblem, Probe};
use key_sets::{KeySetOutcome, KeySide};

pub const KIND: CheckKind = CheckKind {
    name: "relationships",
    summary: "every non-NULL reference exists in the referenced table (foreign keys), also \
              across sources or derived from PostgreSQL's declared foreign keys",
    parse,
};

/// One foreign key: `table (columns)` references `to (fields)`.
#[derive(Debug, Clone)]
struct Reference {
    table: TableRef,
    columns: Vec<String>,
    to: TableRef,
    fields: Vec<String>,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) → {} ({})",
            self.table,
            self.columns.join(", "),
            self.to,
            self.fields.join(", ")
        )
    }
}

/// Where `from_schema` finds its foreign keys.
#[derive(Debug)]
enum Declaring {
    /// Those declared on one table.
    Table(TableRef),
    /// Those declared on any table of the source's schema.
    Source(String),
}

#[derive(Debug)]
enum Declared {
    One(Reference),
    FromSchema {
        declaring: Declaring,
        /// The source the keys must hold in.
        within: String,
    },
}

#[derive(Debug)]
struct Relationships {
    declared: Declared,
    filter: Option<String>,
    allow_empty: bool,
}

/// A list of column names under `one` (a single name) or `many` (a list); `None` when neither.
fn names(
    reader: &mut CheckReader,
    one: &'static str,
    many: &'static str,
) -> Result<Option<Spanned<Vec<String>>>, RuleError> {
    let single = reader.map.string(one)?;
    let list = reader.map.string_list(many)?;
    match (single, list) {
        (Some(s), None) => Ok(Some(Spanned::new(vec![s.value], s.location))),
        (None, Some(list)) => {
            let location = reader.map.location_of(many);
            if list.is_empty() {
                return Err(RuleError::new(
                    location,
                    format!("`{many}` in {} is empty", reader.what()),
                )
                .with_help(format!(
                    "name at least one column, or write `{one}: <name>`"
                )));
            }
            Ok(Some(Spanned::new(
                list.into_iter().map(|c| c.value).collect(),
                location,
            )))
        }
        (None, None) => Ok(None),
        (Some(s), Some(_)) => Err(RuleError::new(
            s.location,
            format!("{} gives both `{one}` and `{many}`", reader.what()),
        )
        .with_help(format!(
            "`{one}: a` for one column, `{many}: [a, b]` for several"
        ))),
    }
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let from_schema = reader.map.bool("from_schema")?;
    let allow_empty = reader.map.bool("allow_empty")?.is_some_and(|b| b.value);
    let declared = match from_schema {
        Some(flag) if flag.value => read_from_schema(reader, flag.location)?,
        _ => Declared::One(read_reference(reader)?),
    };
    let filter = match declared {
        Declared::One(_) => reader.filter("where")?,
        Declared::FromSchema { .. } => None,
    };
    Ok(Arc::new(Relationships {
        declared,
        filter,
        allow_empty,
    }))
}

fn read_reference(reader: &mut CheckReader) -> Result<Reference, RuleError> {
    let table = reader.table("table")?;
    let Some(columns) = names(reader, "column", "columns")? else {
        return Err(RuleError::new(
            reader.map.location(),
            format!("{} needs the referencing `column`", reader.what()),
        )
        .with_help("e.g. `column: customer_id` (or `columns: [a, b]` for a composite key)"));
    };
    let to = reader.table("to")?;
    let fields = match names(reader, "field", "fields")? {
        Some(fields) if fields.value.len() != columns.value.len() => {
            return Err(RuleError::new(
                fields.location,
                format!(
                    "{} names {} referencing {} but {} referenced {}",
                    reader.what(),
                    columns.value.len(),
                    if columns.value.len() == 1 {
                        "column"
                    } else {
                        "columns"
                    },
                    fields.value.len(),
                    if fields.value.len() == 1 {
                        "field"
                    } else {
                        "fields"
                    },
                ),
            )
            .with_help("name one referenced field per referencing column, in the same order"))
        }
        Some(fields) => fields.value,
        None => columns.value.clone(),
    };
    Ok(Reference {
        table,
        columns: columns.value,
        to,
        fields,
    })
}

/// An optional source name under `key`, which the file must declare.
fn optional_source(
    reader: &mut CheckReader,
    key: &'static str,
) -> Result<Option<Spanned<String>>, RuleError> {
    if reader.map.node(key).is_none() {
        return Ok(None);
    }
    let location = reader.map.location_of(key);
    Ok(Some(Spanned::new(reader.source(key)?, location)))
}

fn read_from_schema(
    reader: &mut CheckReader,
    at: crate::model::Location,
) -> Result<Declared, RuleError> {
    let table = match reader.map.string("table")? {
        Some(text) => Some(reader.table_ref("table", text)?),
        None => None,
    };
    let source = optional_source(reader, "source")?;
    let (declaring, source_name, location) = match (table, source) {
        (Some(table), None) => {
            let location = reader.map.location_of("table");
            let name = table.source.clone();
            (Declaring::Table(table), name, location)
        }
        (None, Some(source)) => (
            Declaring::Source(source.value.clone()),
            source.value,
            source.location,
        ),
        (Some(_), Some(source)) => {
            return Err(RuleError::new(
                source.location,
                format!("{} gives both `table` and `source`", reader.what()),
            )
            .with_help(
                "`table: pg.sales_order` for the foreign keys of one table, `source: pg` for \
                 every foreign key of the source",
            ))
        }
        (None, None) => {
            return Err(RuleError::new(
                at,
                format!(
                    "{} with `from_schema: true` needs the PostgreSQL `table` or `source` that \
                     declares the foreign keys",
                    reader.what()
                ),
            )
            .with_help("e.g. `source: pg` (every foreign key) or `table: pg.sales_order`"))
        }
    };
    if let Some(declared) = reader.declared_source(&source_name) {
        if declared.kind() != "postgres" {
            return Err(RuleError::new(
                location,
                format!(
                    "`from_schema` in {} reads PostgreSQL's catalog, but `{source_name}` is a {} \
                     source",
                    reader.what(),
                    declared.kind()
                ),
            )
            .with_help(
                "name the PostgreSQL source that declares the keys, and the lake with `in: raw`",
            ));
        }
    }
    let within = optional_source(reader, "in")?
        .map(|s| s.value)
        .unwrap_or(source_name);
    Ok(Declared::FromSchema { declaring, within })
}

/// What one reference's check found.
struct Finding {
    checked_rows: u64,
    orphan_keys: u64,
    orphan_rows: u64,
    /// The first orphans: the key's values, and the rows referencing it.
    samples: Vec<(Vec<String>, u64)>,
    /// `anti-join` or `segmented key sets`, with that method's own figures.
    method: &'static str,
    figures: serde_json::Map<String, Value>,
}

impl Finding {
    fn held(&self, allow_empty: bool) -> bool {
        self.orphan_keys == 0 && (self.checked_rows > 0 || allow_empty)
    }

    /// `3 orphan rows (2 keys) of 2135 checked` or `every reference of 2135 rows found`.
    fn observed(&self, reference: &Reference, allow_empty: bool) -> String {
        if self.checked_rows == 0 {
            let note = match allow_empty {
                true => "",
                false => ", which proves nothing; set `allow_empty: true` if that is expected",
            };
            return format!("{} holds no reference to check{note}", reference.table);
        }
        match self.orphan_keys {
            0 => format!(
                "every reference of {} found in {}",
                rows(self.checked_rows),
                reference.to
            ),
            keys => format!(
                "{} of {} reference a key missing from {} ({} distinct {})",
                self.orphan_rows,
                rows(self.checked_rows),
                reference.to,
                keys,
                if keys == 1 { "key" } else { "keys" },
            ),
        }
    }

    fn metrics(&self) -> serde_json::Map<String, Value> {
        let mut metrics = serde_json::Map::new();
        metrics.insert("checked_rows".into(), json!(self.checked_rows));
        metrics.insert("orphan_rows".into(), json!(self.orphan_rows));
        metrics.insert("orphan_keys".into(), json!(self.orphan_keys));
        metrics.insert("method".into(), json!(self.method));
        metrics.extend(self.figures.clone());
        metrics
    }
}

impl Reference {
    fn columns_sql(&self, alias: &str) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| format!("{alias}.{}", quote_ident(c)))
            .collect()
    }

    async fn check(
        &self,
        probe: &Probe,
        filter: Option<&str>,
        samples: usize,
    ) -> Result<Finding, CheckError> {
        for table in [&self.table, &self.to] {
            if let Some(caveat) = probe.source(&table.source)?.caveat(&table.table).await? {
                return Err(CheckError::CannotReconcile {
                    table: table.clone(),
                    reason: caveat,
                });
            }
        }
        if self.table.source == self.to.source {
            self.anti_join(probe, filter, samples).await
        } else {
            self.segmented(probe, filter, samples).await
        }
    }

    /// Both tables on one source: the anti-join runs there.
    async fn anti_join(
        &self,
        probe: &Probe,
        filter: Option<&str>,
        samples: usize,
    ) -> Result<Finding, CheckError> {
        let source = &self.table.source;
        let (child_columns, parent_columns) =
            tokio::try_join!(probe.columns(&self.table), probe.columns(&self.to))?;
        self.pair_columns(&child_columns, &parent_columns)?;
        let child = probe.from_clause(&self.table, filter)?;
        let parent = probe.from_clause(&self.to, None)?;
        let columns = self.columns_sql("lakecheck_child");
        let present = columns
            .iter()
            .map(|c| format!("{c} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let matches = columns
            .iter()
            .zip(&self.fields)
            .map(|(c, f)| format!("lakecheck_parent.{} = {c}", quote_ident(f)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let selected = columns
            .iter()
            .zip(&self.columns)
            .map(|(c, name)| format!("{c} AS {}", quote_ident(name)))
            .collect::<Vec<_>>()
            .join(", ");
        let group = columns.join(", ");
        let referencing = format!("(SELECT * FROM {child}) AS lakecheck_child WHERE {present}");
        let orphans = format!(
            "SELECT {selected}, count(*) AS row_count FROM {referencing} AND NOT EXISTS \
             (SELECT 1 FROM {parent} AS lakecheck_parent WHERE {matches}) GROUP BY {group}"
        );
        let counts = probe
            .query(
                source,
                format!(
                    "SELECT (SELECT count(*) FROM {referencing}) AS checked_rows, \
                     count(*) AS orphan_keys, sum(row_count) AS orphan_rows \
                     FROM ({orphans}) AS orphans"
                ),
            )
            .await?;
        let count = |name: &str| first_i64(&counts, source, name).map(|n| n as u64);
        let (checked_rows, orphan_keys, orphan_rows) = (
            count("checked_rows")?,
            count("orphan_keys")?,
            count("orphan_rows")?,
        );
        let mut found = Vec::new();
        if orphan_keys > 0 {
            let order: Vec<String> = (0..self.columns.len())
                .map(|i| (i + 1).to_string())
                .collect();
            let sampled = probe
                .query(
                    source,
                    format!(
                        "SELECT * FROM ({orphans}) AS orphans ORDER BY row_count DESC, {} \
                         LIMIT {samples}",
                        order.join(", ")
                    ),
                )
                .await?;
            let n = self.columns.len();
            for row in sampled.rows {
                let key = row[..n]
                    .iter()
                    .map(|f| f.clone().unwrap_or_else(|| "NULL".into()))
                    .collect();
                let count = row.get(n).cloned().flatten().unwrap_or_default();
                let count = count.parse::<u64>().map_err(|e| {
                    CheckError::unexpected_answer(source, format!("bad row count `{count}`: {e}"))
                })?;
                found.push((key, count));
            }
        }
        Ok(Finding {
            checked_rows,
            orphan_keys,
            orphan_rows,
            samples: found,
            method: "anti-join",
            figures: serde_json::Map::new(),
        })
    }

    /// The tables on two sources: key sets compared by segments.
    async fn segmented(
        &self,
        probe: &Probe,
        filter: Option<&str>,
        samples: usize,
    ) -> Result<Finding, CheckError> {
        let (child, parent, canons) = self.key_sides(probe, filter).await?;
        let KeySetOutcome {
            checked_rows,
            orphan_keys,
            orphan_rows,
            samples,
            differing_segments,
            keys_read,
            segmented_by,
        } = key_sets::orphans(probe, &child, &parent, &canons, samples).await?;
        let mut figures = serde_json::Map::new();
        figures.insert("segments".into(), json!(crate::reconcile::SEGMENTS));
        figures.insert("differing_segments".into(), json!(differing_segments));
        figures.insert("keys_read".into(), json!(keys_read));
        figures.insert("segmented_by".into(), json!(segmented_by));
        Ok(Finding {
            checked_rows,
            orphan_keys,
            orphan_rows,
            samples,
            method: "segmented key sets",
            figures,
        })
    }

    /// Why the reference's columns cannot be compared: missing names, types with no exact
    /// comparison.
    fn mapping_error(&self, problems: Vec<ColumnProblem>) -> CheckError {
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        CheckError::CannotMeasure {
            table: self.table.clone(),
            reason: format!(
                "its reference to {} cannot be checked: {} (name the columns as each table \
                 spells them: `column` in {}, `field` in {})",
                self.to,
                problems.join("; "),
                self.table,
                self.to
            ),
        }
    }

    /// Each referencing column with the field it refers to, or the names either table lacks.
    fn pair_columns(
        &self,
        child: &[Column],
        parent: &[Column],
    ) -> Result<Vec<(Column, Column)>, CheckError> {
        let mut pairs = Vec::new();
        let mut problems = Vec::new();
        for (column, field) in self.columns.iter().zip(&self.fields) {
            match (find_column(child, column), find_column(parent, field)) {
                (Some(c), Some(p)) => pairs.push((c, p)),
                (c, p) => {
                    for (missing, name, table) in [
                        (c.is_none(), column, &self.table),
                        (p.is_none(), field, &self.to),
                    ] {
                        if missing {
                            problems.push(ColumnProblem::NotAColumn {
                                column: name.clone(),
                                table: table.clone(),
                            });
                        }
                    }
                }
            }
        }
        match problems.is_empty() {
            true => Ok(pairs),
            false => Err(self.mapping_error(problems)),
        }
    }

    /// Both sides' key columns, and the canon that compares each pair exactly.
    async fn key_sides(
        &self,
        probe: &Probe,
        filter: Option<&str>,
    ) -> Result<(KeySide, KeySide, Vec<Canon>), CheckError> {
        let (child, parent) = (
            ReadSide::resolve(probe, &self.table)?,
            ReadSide::resolve(probe, &self.to)?,
        );
        let (child_columns, parent_columns) = tokio::try_join!(
            probe.columns(&child.read_as),
            probe.columns(&parent.read_as)
        )?;
        child.refuse_caveat(&self.table).await?;
        parent.refuse_caveat(&self.to).await?;
        let mut problems = Vec::new();
        let (mut child_keys, mut parent_keys, mut canons) = (Vec::new(), Vec::new(), Vec::new());
        for (c, p) in self.pair_columns(&child_columns, &parent_columns)? {
            let (ct, pt) = typed_pair((&c, child.text), (&p, parent.text));
            match canon::choose_exact(&ct, &pt, false) {
                Ok(canon) => canons.push(canon),
                Err(Mismatch::PrecisionLost(reason) | Mismatch::Incomparable(reason)) => problems
                    .push(ColumnProblem::Incomparable {
                        column: c.name.clone(),
                        reason,
                    }),
            }
            child_keys.push(ct);
            parent_keys.push(pt);
        }
        if !problems.is_empty() {
            return Err(self.mapping_error(problems));
        }
        Ok((
            KeySide {
                table: self.table.clone(),
                read_as: child.read_as.table,
                source: child.source,
                columns: child_keys,
                filter: filter.map(str::to_string),
            },
            KeySide {
                table: self.to.clone(),
                read_as: parent.read_as.table,
                source: parent.source,
                columns: parent_keys,
                filter: None,
            },
            canons,
        ))
    }
}

/// The foreign keys PostgreSQL declares (`pg_constraint`), as references within `within`.
async fn declared_references(
    probe: &Probe,
    declaring: &Declaring,
    within: &str,
) -> Result<Vec<Reference>, CheckError> {
    let (source_name, scope) = match declaring {
        Declaring::Table(table) => {
            let source = probe.source(&table.source)?;
            (
                table.source.as_str(),
                format!(
                    "c.conrelid = {}::regclass",
                    quote_literal(&source.table_sql(&table.table))
                ),
            )
        }
        Declaring::Source(name) => {
            // The schema the source reads, as PostgreSQL parses its qualified table names.
            let source = probe.source(name)?;
            (
                name.as_str(),
                format!(
                    "cn.nspname = (parse_ident({}))[1]",
                    quote_literal(&source.table_sql("lakecheck_schema"))
                ),
            )
        }
    };
    let attributes = |keys: &str, relation: &str| {
        format!(
            "(SELECT string_agg(a.attname, chr(31) ORDER BY k.n) FROM unnest(c.{keys}) \
             WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.{relation} \
             AND a.attnum = k.attnum)"
        )
    };
    let sql = format!(
        "SELECT c.conname AS name, child.relname AS child_table, \
         CASE WHEN pn.nspname = cn.nspname THEN parent.relname \
         ELSE pn.nspname || '.' || parent.relname END AS parent_table, \
         {} AS columns, {} AS fields \
         FROM pg_constraint c \
         JOIN pg_class child ON child.oid = c.conrelid \
         JOIN pg_namespace cn ON cn.oid = child.relnamespace \
         JOIN pg_class parent ON parent.oid = c.confrelid \
         JOIN pg_namespace pn ON pn.oid = parent.relnamespace \
         WHERE c.contype = 'f' AND {scope} ORDER BY child.relname, c.conname",
        attributes("conkey", "conrelid"),
        attributes("confkey", "confrelid"),
    );
    let found = probe.query(source_name, sql).await?;
    let field = |row: &[Option<String>], name: &str| -> Result<String, CheckError> {
        found
            .columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| row.get(i).cloned().flatten())
            .ok_or_else(|| {
                CheckError::unexpected_answer(source_name, format!("no `{name}` in a foreign key"))
            })
    };
    let in_table = |table: String| TableRef {
        source: within.to_string(),
        table,
    };
    let split = |text: String| text.split('\u{1f}').map(str::to_string).collect();
    found
        .rows
        .iter()
        .map(|row| {
            Ok(Reference {
                table: in_table(field(row, "child_table")?),
                columns: split(field(row, "columns")?),
                to: in_table(field(row, "parent_table")?),
                fields: split(field(row, "fields")?),
            })
        })
        .collect()
}

/// Samples of one reference: the orphan key's columns, and the rows referencing it.
fn orphan_rows(reference: &Reference, finding: &Finding) -> Rows {
    let mut columns = reference.columns.clone();
    columns.push("row_count".into());
    Rows {
        columns,
        rows: finding
            .samples
            .iter()
            .map(|(key, count)| {
                key.iter()
                    .cloned()
                    .map(Some)
                    .chain([Some(count.to_string())])
                    .collect()
            })
            .collect(),
    }
}

/// Orphan keys as one line: `customer_id=7 (3 rows), customer_id=9 (1 row)`.
fn orphan_list(reference: &Reference, finding: &Finding) -> String {
    finding
        .samples
        .iter()
        .map(|(key, count)| {
            let pairs: Vec<String> = reference
                .columns
                .iter()
                .zip(key)
                .map(|(c, v)| format!("{c}={v}"))
                .collect();
            format!("{} ({})", pairs.join(", "), rows(*count))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl Check for Relationships {
    fn default_name(&self) -> String {
        match &self.declared {
            Declared::One(reference) => {
                name_with_filter(format!("relationships {reference}"), self.filter.as_deref())
            }
            Declared::FromSchema { declaring, within } => {
                let declared = match declaring {
                    Declaring::Table(table) => table.to_string(),
                    Declaring::Source(source) => source.clone(),
                };
                format!("relationships from_schema {declared} in {within}")
            }
        }
    }

    fn tables(&self) -> Vec<TableRef> {
        match &self.declared {
            Declared::One(reference) => vec![reference.table.clone(), reference.to.clone()],
            Declared::FromSchema { declaring, .. } => match declaring {
                Declaring::Table(table) => vec![table.clone()],
                Declaring::Source(_) => Vec::new(),
            },
        }
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        match &self.declared {
            Declared::One(reference) => self.evaluate_one(probe, reference).await,
            Declared::FromSchema { declaring, within } => {
                self.evaluate_declared(probe, declaring, within).await
            }
        }
    }
}

impl Relationships {
    async fn evaluate_one(
        &self,
        probe: &Probe,
        reference: &Reference,
    ) -> Result<Evaluation, CheckError> {
        let finding = reference
            .check(probe, self.filter.as_deref(), rows_to_read(probe))
            .await?;
        Ok(Evaluation {
            passed: finding.held(self.allow_empty),
            observed: finding.observed(reference, self.allow_empty),
            expected: format!(
                "every non-NULL {} ({}) in {} ({})",
                reference.table,
                reference.columns.join(", "),
                reference.to,
                reference.fields.join(", ")
            ),
            failing_rows: Some(finding.orphan_rows),
            metrics: finding.metrics(),
            ..Evaluation::default()
        }
        .with_failing_rows(probe, orphan_rows(reference, &finding)))
    }

    async fn evaluate_declared(
        &self,
        probe: &Probe,
        declaring: &Declaring,
        within: &str,
    ) -> Result<Evaluation, CheckError> {
        let references = declared_references(probe, declaring, within).await?;
        if references.is_empty() {
            let what = match declaring {
                Declaring::Table(table) => table.to_string(),
                Declaring::Source(source) => format!("any table of source `{source}`"),
            };
            return Err(CheckError::unexpected_answer(
                match declaring {
                    Declaring::Table(table) => &table.source,
                    Declaring::Source(source) => source,
                },
                format!(
                    "no foreign key is declared on {what}, so `from_schema` has nothing to \
                     check; declare the relationships one by one instead"
                ),
            ));
        }
        let mut table = Rows {
            columns: [
                "foreign key",
                "holds",
                "checked rows",
                "orphan rows",
                "orphan keys",
            ]
            .map(String::from)
            .to_vec(),
            rows: Vec::new(),
        };
        let mut keys = Vec::new();
        let mut broken = Vec::new();
        let mut orphan_rows_total = 0;
        for reference in &references {
            // One foreign key that cannot be checked makes the whole result an error: a
            // partial verdict would read as "the rest hold" only if every key was asked.
            let finding =
                reference
                    .check(probe, None, 3)
                    .await
                    .map_err(|e| CheckError::CannotMeasure {
                        table: reference.table.clone(),
                        reason: format!("foreign key {reference}: {e}"),
                    })?;
            let held = finding.held(self.allow_empty);
            orphan_rows_total += finding.orphan_rows;
            if !held {
                broken.push(match finding.orphan_keys {
                    0 => format!("{reference}: {}", finding.observed(reference, false)),
                    _ => format!(
                        "{reference}: {} (e.g. {})",
                        finding.observed(reference, false),
                        orphan_list(reference, &finding)
                    ),
                });
            }
            table.rows.push(vec![
                Some(reference.to_string()),
                Some(if held { "yes" } else { "NO" }.into()),
                Some(finding.checked_rows.to_string()),
                Some(finding.orphan_rows.to_string()),
                Some(finding.orphan_keys.to_string()),
            ]);
            let mut metric = finding.metrics();
            metric.insert("foreign_key".into(), json!(reference.to_string()));
            metric.insert("holds".into(), json!(held));
            metric.insert(
                "orphan_samples".into(),
                json!(orphan_list(reference, &finding)),
            );
            keys.push(Value::Object(metric));
        }
        let total = references.len();
        let mut metrics = serde_json::Map::new();
        metrics.insert("foreign_keys".into(), json!(total));
        metrics.insert("broken_foreign_keys".into(), json!(broken.len()));
        metrics.insert("by_foreign_key".into(), Value::Array(keys));
        Ok(Evaluation {
            passed: broken.is_empty(),
            observed: match (broken.len(), total) {
                (0, 1) => format!("the 1 foreign key holds in {within}"),
                (0, _) => format!("all {total} foreign keys hold in {within}"),
                (n, _) => format!(
                    "{n} of {total} foreign keys broken in {within}: {}",
                    broken.join("; ")
                ),
            },
            expected: format!("every foreign key the source declares holds in {within}"),
            failing_rows: Some(orphan_rows_total),
            samples: Some(table),
            metrics,
            ..Evaluation::default()
        })
    }
}
