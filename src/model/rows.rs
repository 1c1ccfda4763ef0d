//! Query results as text, the one shape every engine's answers take.

/// Query output with every value rendered as text (`None` is SQL NULL). Text keeps sample rows
/// exact (numeric stays numeric, no float rounding) and identical in shape across engines.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The value of `column` in the first row.
    pub fn first(&self, column: &str) -> Option<&str> {
        let index = self.columns.iter().position(|c| c == column)?;
        self.rows.first()?.get(index)?.as_deref()
    }

    /// The first row's `column` as an integer; NULL (e.g. `sum` over no rows) reads as 0.
    pub fn first_i64(&self, column: &str) -> Result<i64, String> {
        if !self.columns.iter().any(|c| c == column) || self.rows.is_empty() {
            return Err(format!("query returned no `{column}` value"));
        }
        match self.first(column) {
            None => Ok(0),
            Some(text) => text
                .parse::<i64>()
                .or_else(|_| text.parse::<f64>().map(|f| f as i64))
                .map_err(|_| format!("`{column}` is not a number: `{text}`")),
        }
    }
}
