//! How the columns of two tables pair up, shared by the checks that compare tables.

use super::CheckReader;
use crate::model::Column;
use crate::model::RuleError;

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
