//! `pattern`: every value of a text column matches a regular expression, the same on
//! PostgreSQL and DataFusion: the rule's `regex` (in the dialect of [`dialect`], checked at
//! load time) or a named `format` (`email`, `uuid`, `iso_date`, `us_state`). NULLs are
//! ignored unless `allow_null: false`.

mod dialect;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::pairing::find_column;
use super::row_predicate::{failing_rows, rows};
use super::{name_with_filter, Check, CheckKind, CheckReader, Evaluation};
use crate::model::sql::{quote_ident, quote_literal};
use crate::model::{LogicalType, RuleError, TableRef};
use crate::probe::{CheckError, Probe};
use crate::sources::Source;

pub const KIND: CheckKind = CheckKind {
    name: "pattern",
    summary: "every value of a text column matches a regex or a named format (NULLs ignored)",
    parse,
};

/// A named format: its name, the regex (in the portable dialect) and what it means.
struct Format {
    name: &'static str,
    regex: &'static str,
}

/// The named formats `format:` accepts. Shapes, not meanings: `iso_date` does not know that
/// February has no 30th, `email` does not resolve domains.
const FORMATS: &[Format] = &[
    Format {
        name: "email",
        regex: r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$",
    },
    Format {
        name: "uuid",
        regex: r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    },
    Format {
        name: "iso_date",
        regex: r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
    },
    Format {
        name: "us_state",
        regex: "^(AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|\
                MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC)$",
    },
];

#[derive(Debug)]
struct Pattern {
    table: TableRef,
    column: String,
    /// What the rule wrote: `format email` or the regex itself, for names and reports.
    shown: String,
    /// The regex as both engines are sent it.
    sent: String,
    allow_null: bool,
    filter: Option<String>,
}

fn parse(reader: &mut CheckReader) -> Result<Arc<dyn Check>, RuleError> {
    let table = reader.table("table")?;
    let column = reader.map.required_string("column", "email")?.value;
    let regex = reader.map.string("regex")?;
    let format = reader.map.string("format")?;
    let names = || {
        FORMATS
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (shown, written, location) = match (regex, format) {
        (Some(regex), None) => (regex.value.clone(), regex.value, regex.location),
        (None, Some(format)) => {
            let Some(known) = FORMATS.iter().find(|f| f.name == format.value) else {
                let err = RuleError::new(
                    format.location,
                    format!("unknown format `{}` in {}", format.value, reader.what()),
                );
                return Err(
                    match crate::model::suggest(&format.value, FORMATS.iter().map(|f| f.name)) {
                        Some(help) => err.with_help(help),
                        None => err.with_help(format!("formats: {}; or write a `regex`", names())),
                    },
                );
            };
            (
                format!("format {}", known.name),
                known.regex.to_string(),
                format.location,
            )
        }
        (Some(regex), Some(_)) => {
            return Err(RuleError::new(
                regex.location,
                format!("{} gives both `regex` and `format`", reader.what()),
            )
            .with_help("keep one: a named format, or your own regex"))
        }
        (None, None) => {
            return Err(RuleError::new(
                reader.map.location(),
                format!("{} needs a `regex` or a `format`", reader.what()),
            )
            .with_help(format!(
                "e.g. `regex: '^[A-Z]{{2}}$'`, or `format:` one of {}",
                names()
            )))
        }
    };
    let sent = dialect::portable(&written).map_err(|refused| {
        RuleError::new(
            location,
            format!(
                "the regex `{written}` in {} would not mean the same on PostgreSQL and \
                 DataFusion: {}",
                reader.what(),
                refused.message
            ),
        )
        .with_help(refused.help)
    })?;
    let allow_null = reader.map.bool("allow_null")?.is_none_or(|b| b.value);
    let filter = reader.filter("where")?;
    Ok(Arc::new(Pattern {
        table,
        column,
        shown,
        sent,
        allow_null,
        filter,
    }))
}

impl Pattern {
    /// The SQL condition a failing row meets, in `source`'s dialect.
    fn failing_sql(&self, source: &dyn Source) -> String {
        let column = quote_ident(&self.column);
        let mismatch = format!(
            "NOT ({})",
            source.regex_match_sql(&column, &quote_literal(&self.sent))
        );
        match self.allow_null {
            true => format!("{column} IS NOT NULL AND {mismatch}"),
            false => format!("{column} IS NULL OR {mismatch}"),
        }
    }

    /// Refuses a column that is missing or holds no text: the engines would turn other types
    /// into text each its own way.
    async fn check_column(&self, probe: &Probe) -> Result<(), CheckError> {
        let columns = probe.columns(&self.table).await?;
        let Some(column) = find_column(&columns, &self.column) else {
            return Err(CheckError::CannotMeasure {
                table: self.table.clone(),
                reason: format!(
                    "it has no column `{}` (columns: {})",
                    self.column,
                    columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        };
        match column.logical {
            LogicalType::Text | LogicalType::PaddedText => Ok(()),
            _ => Err(CheckError::CannotMeasure {
                table: self.table.clone(),
                reason: format!(
                    "`{}` is {}, not text: a pattern applies to text columns (PostgreSQL and \
                     DataFusion write other types as text differently); check it with `range` \
                     or `condition` instead",
                    column.name, column.engine_type
                ),
            }),
        }
    }
}

#[async_trait]
impl Check for Pattern {
    fn default_name(&self) -> String {
        name_with_filter(
            format!("pattern {}.{} ({})", self.table, self.column, self.shown),
            self.filter.as_deref(),
        )
    }

    fn tables(&self) -> Vec<TableRef> {
        vec![self.table.clone()]
    }

    async fn evaluate(&self, probe: &Probe) -> Result<Evaluation, CheckError> {
        self.check_column(probe).await?;
        let found = failing_rows(
            probe,
            &self.table,
            self.filter.as_deref(),
            &self.failing_sql(probe.source(&self.table.source)?.as_ref()),
        )
        .await?;
        let failing = found.count;
        let mut metrics = serde_json::Map::new();
        metrics.insert("failing_rows".into(), json!(failing));
        metrics.insert("regex_sent".into(), json!(self.sent));
        let nulls = if self.allow_null {
            "NULLs allowed"
        } else {
            "no NULLs"
        };
        Ok(Evaluation {
            passed: failing == 0,
            observed: match failing {
                0 => "every value matches".to_string(),
                n if self.allow_null => format!("{} not matching", rows(n)),
                n => format!("{} not matching or NULL", rows(n)),
            },
            expected: format!("{} matches {} ({nulls})", self.column, self.shown),
            failing_rows: Some(failing),
            metrics,
            ..Evaluation::default()
        }
        .with_failing_rows(probe, found.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_format_is_in_the_dialect() {
        for format in FORMATS {
            let sent = dialect::portable(format.regex)
                .unwrap_or_else(|e| panic!("format {}: {e:?}", format.name));
            regex::Regex::new(&sent).expect("compiles in Rust");
        }
    }

    #[rstest::rstest]
    #[case::email("email", "ana.lopez.12@example.com", true)]
    #[case::email_without_domain_dot("email", "ana@example", false)]
    #[case::email_with_space("email", "ana lopez@example.com", false)]
    #[case::email_two_ats("email", "a@b@example.com", false)]
    #[case::uuid("uuid", "123e4567-e89b-12d3-a456-426614174000", true)]
    #[case::uuid_short("uuid", "123e4567-e89b-12d3-a456-42661417400", false)]
    #[case::date("iso_date", "2026-11-21", true)]
    #[case::date_month_13("iso_date", "2026-13-01", false)]
    #[case::date_with_time("iso_date", "2026-11-21T08:00", false)]
    #[case::state("us_state", "TX", true)]
    #[case::state_lowercase("us_state", "tx", false)]
    #[case::state_unknown("us_state", "XX", false)]
    #[case::state_longer("us_state", "TXA", false)]
    fn named_formats_mean_what_they_say(
        #[case] format: &str,
        #[case] value: &str,
        #[case] matches: bool,
    ) {
        let format = FORMATS.iter().find(|f| f.name == format).unwrap();
        let sent = dialect::portable(format.regex).unwrap();
        assert_eq!(
            regex::Regex::new(&sent).unwrap().is_match(value),
            matches,
            "{value}"
        );
    }
}
