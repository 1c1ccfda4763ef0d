//! Athena answers every value as text (`VarCharValue`; a datum without one is NULL). The result
//! metadata's types say how to read it: numbers are checked and floats rendered as PostgreSQL
//! and DataFusion answers render them, so a figure compares the same whichever engine gave it.

use aws_sdk_athena::types::{ColumnInfo, Row};

/// One column of an answer, as the result metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaColumn {
    pub name: String,
    /// Trino's type name, lower case: `varchar`, `bigint`, `decimal`, `double`, `timestamp`, ...
    pub kind: String,
}

impl From<&ColumnInfo> for AthenaColumn {
    fn from(info: &ColumnInfo) -> Self {
        Self {
            name: info.name().to_string(),
            kind: info.r#type().to_ascii_lowercase(),
        }
    }
}

impl AthenaColumn {
    /// The value as lakecheck's answers hold it; `Err` when it is not of the column's type.
    pub fn read(&self, value: Option<&str>) -> Result<Option<String>, String> {
        let Some(value) = value else {
            return Ok(None);
        };
        let wrong = || {
            format!(
                "column `{}` is {} but holds `{value}`",
                self.name, self.kind
            )
        };
        Ok(Some(match self.kind.as_str() {
            "tinyint" | "smallint" | "integer" | "int" | "bigint" => {
                value.parse::<i64>().map_err(|_| wrong())?.to_string()
            }
            "double" | "real" | "float" => render_float(value.parse::<f64>().map_err(|_| wrong())?),
            "boolean" => match value {
                "true" | "false" => value.to_string(),
                _ => return Err(wrong()),
            },
            _ => value.to_string(),
        }))
    }
}

/// A float as PostgreSQL prints one (`1.5`, `NaN`, `Infinity`): shortest text that reads back
/// to the same value.
fn render_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        value.to_string()
    }
}

/// Whether `row` is the header Athena puts first in a SELECT's results: the column names.
pub fn header_row(row: Option<&Row>, columns: &[AthenaColumn]) -> bool {
    row.is_some_and(|row| {
        row.data().len() == columns.len()
            && row
                .data()
                .iter()
                .zip(columns)
                .all(|(datum, column)| datum.var_char_value() == Some(column.name.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn column(kind: &str) -> AthenaColumn {
        AthenaColumn {
            name: "v".into(),
            kind: kind.into(),
        }
    }

    #[rstest]
    #[case("bigint", Some("42"), Some("42"))]
    #[case("double", Some("1.5E7"), Some("15000000"))]
    #[case("double", Some("NaN"), Some("NaN"))]
    #[case("double", Some("-Infinity"), Some("-Infinity"))]
    #[case("decimal", Some("12.50"), Some("12.50"))]
    #[case("varchar", Some(""), Some(""))]
    #[case("varchar", None, None)]
    #[case(
        "timestamp",
        Some("2026-11-21 08:00:00.000"),
        Some("2026-11-21 08:00:00.000")
    )]
    fn values_read_by_their_type(
        #[case] kind: &str,
        #[case] value: Option<&str>,
        #[case] read: Option<&str>,
    ) {
        assert_eq!(column(kind).read(value).unwrap().as_deref(), read);
    }

    #[rstest]
    #[case("bigint", "4x")]
    #[case("boolean", "yes")]
    #[case("double", "one")]
    fn a_value_not_of_its_type_is_an_error(#[case] kind: &str, #[case] value: &str) {
        let error = column(kind).read(Some(value)).unwrap_err();
        assert_eq!(error, format!("column `v` is {kind} but holds `{value}`"));
    }
}
