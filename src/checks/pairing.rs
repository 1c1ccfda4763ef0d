//! How the columns of two tables pair up, shared by the checks that compare tables.

use std::sync::Arc;

use super::CheckReader;
use crate::model::{Column, RuleError, TableRef};
use crate::probe::{CheckError, Probe};
use crate::sources::Source;

/// `columns` to compare (default: all left columns), `exclude` (both sides) and `mapping`
/// (left name → right name) as written in a rule.
#[derive(Debug, Default)]
pub(super) struct ColumnPairing {
    pub columns: Option<Vec<String>>,
    pub exclude: Vec<String>,
    pub mapping: Vec<(String, String)>,
}

impl ColumnPairing {
    /// Reads `exclude`, `mapping` and, when `with_columns`, `columns`.
    pub fn read(reader: &mut CheckReader, with_columns: bool) -> Result<Self, RuleError> {
        let columns = if with_columns {
            reader
                .map
                .string_list("columns")?
                .map(|l| l.into_iter().map(|c| c.value).collect())
        } else {
            None
        };
        let exclude = reader
            .map
            .string_list("exclude")?
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.value)
            .collect();
        let mapping = reader.map.string_map("mapping")?;
        Ok(Self {
            columns,
            exclude,
            mapping,
        })
    }

    pub fn excluded(&self, name: &str) -> bool {
        self.exclude.iter().any(|e| e.eq_ignore_ascii_case(name))
    }

    /// The right-side name of a left column.
    pub fn right_name<'a>(&'a self, left: &'a str) -> &'a str {
        self.mapping
            .iter()
            .find(|(l, _)| l == left)
            .map(|(_, r)| r.as_str())
            .unwrap_or(left)
    }

    /// Left column names to compare: `columns` when given, else every left column not excluded.
    pub fn wanted(&self, left: &[Column]) -> Vec<String> {
        match &self.columns {
            Some(columns) => columns.clone(),
            None => left
                .iter()
                .map(|c| c.name.clone())
                .filter(|n| !self.excluded(n))
                .collect(),
        }
    }
}

/// A column by name: exact first, then ignoring case (Postgres folds unquoted names to lower
/// case, Parquet writers often keep the source's spelling).
pub(super) fn find_column(columns: &[Column], name: &str) -> Option<Column> {
    columns
        .iter()
        .find(|c| c.name == name)
        .or_else(|| columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
        .cloned()
}

/// A table as a comparing check reads it: its own, or, for formats that keep only text (CSV),
/// its all-text twin (`Source::text_twin`), whose columns are compared by the other side's canon.
pub(super) struct ReadSide {
    pub source: Arc<dyn Source>,
    /// The table the SQL reads.
    pub read_as: TableRef,
    /// Whether `read_as` is the all-text twin.
    pub text: bool,
}

impl ReadSide {
    pub fn resolve(probe: &Probe, table: &TableRef) -> Result<Self, CheckError> {
        let source = probe.source(&table.source)?.clone();
        let twin = source.text_twin(&table.table);
        Ok(Self {
            read_as: TableRef {
                source: table.source.clone(),
                table: twin.clone().unwrap_or_else(|| table.table.clone()),
            },
            text: twin.is_some(),
            source,
        })
    }

    /// Refuses a table whose format cannot prove what a comparison needs (insert-only change
    /// data hides deletes): comparing it would report false differences, or miss real ones.
    pub async fn refuse_caveat(&self, table: &TableRef) -> Result<(), CheckError> {
        match self.source.caveat(&table.table).await? {
            Some(reason) => Err(CheckError::CannotReconcile {
                table: table.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// A pair of columns as their canon is chosen: a column read from a text twin takes the type
/// of its partner, so the text is compared by what the other side holds.
pub(super) fn typed_pair(
    (left, left_text): (&Column, bool),
    (right, right_text): (&Column, bool),
) -> (Column, Column) {
    let typed_as = |text: &Column, typed: &Column| Column {
        logical: typed.logical,
        millisecond_precision: typed.millisecond_precision,
        ..text.clone()
    };
    match (left_text, right_text) {
        (true, false) => (typed_as(left, right), right.clone()),
        (false, true) => (left.clone(), typed_as(right, left)),
        _ => (left.clone(), right.clone()),
    }
}
