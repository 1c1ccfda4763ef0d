//! PostgreSQL SQL for the canon (`model::canon`) and the row hash (`model::row_hash`).
//!
//! Why here: the canon is one contract with three parts. Its definition and the pure Rust
//! encodings are vocabulary every layer reads, so they live in the leaf `model`; DataFusion
//! computes them in Rust functions (`reconcile::udf`) that the lake source is handed when it is
//! built; and PostgreSQL computes them in SQL that only the PostgreSQL source generates, so that
//! SQL lives beside it, below `reconcile` and `checks`, and `model` stays free of engine SQL.
//! `tests/it/reconcile.rs` checks that both engines produce the same bytes and hashes.

use crate::model::canon::{Canon, NULL_MARK};
use crate::model::columns::{Column, LogicalType};
use crate::model::row_hash::NULL_SALT;
use crate::model::sql::quote_ident;

/// PostgreSQL SQL for the canonical field of column `ident` (already quoted), NULL as `~`.
pub fn canonical_sql(ident: &str, logical: LogicalType, canon: Canon) -> String {
    format!(
        "coalesce({}, '{NULL_MARK}')",
        value_sql(ident, logical, canon)
    )
}

/// `ident` as text: a cast unless it already is text.
fn text_sql(ident: &str, logical: LogicalType) -> String {
    match logical {
        LogicalType::Text => ident.to_string(),
        _ => format!("{ident}::text"),
    }
}

/// PostgreSQL SQL for the canonical field of a non-NULL `ident` (NULL stays NULL).
fn value_sql(ident: &str, logical: LogicalType, canon: Canon) -> String {
    let as_text = text_sql(ident, logical);
    match canon {
        Canon::Int => format!("{ident}::text"),
        Canon::Decimal | Canon::Scaled(_) => format!("trim_scale({ident}::numeric)::text"),
        Canon::Float => format!(
            "CASE WHEN {ident} = 0 THEN '0' WHEN {ident} = 'NaN' THEN 'NaN' \
             ELSE encode(float8send({ident}::float8), 'hex') END"
        ),
        Canon::Text => format!("octet_length({as_text})::text || ':' || {as_text}"),
        Canon::Padded => {
            let trimmed = format!("rtrim({as_text}, ' ')");
            format!("octet_length({trimmed})::text || ':' || {trimmed}")
        }
        Canon::Bool => format!("CASE {ident} WHEN true THEN 't' WHEN false THEN 'f' END"),
        Canon::Date => format!("({ident} - DATE '1970-01-01')::text"),
        // Text output is cheaper in PostgreSQL than epoch arithmetic (numeric); the session pins
        // DateStyle ISO, and `write_timestamp` reproduces the format.
        Canon::Micros | Canon::Millis => {
            let utc = match logical {
                LogicalType::TimestampTz => format!("({ident} AT TIME ZONE 'UTC')"),
                _ => ident.to_string(),
            };
            match (canon, logical) {
                (Canon::Micros, _) => format!("{utc}::text"),
                (_, LogicalType::Time) => {
                    format!("date_trunc('milliseconds', DATE '2000-01-01' + {utc})::time::text")
                }
                _ => format!("date_trunc('milliseconds', {utc})::text"),
            }
        }
        Canon::Binary => format!("encode({ident}, 'hex')"),
        Canon::Uuid => format!("lower({as_text})"),
    }
}

/// PostgreSQL SQL for the hash of `columns` seeded by the SQL expression `seed`.
pub fn row_hash_sql(columns: &[(&Column, Canon)], seed: &str) -> String {
    let fields: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (column, canon))| {
            format!(
                "coalesce({}, hashint8extended({i}, ({seed}) # {NULL_SALT}))",
                field_sql(column, *canon, &format!("(({seed}) # {i})"))
            )
        })
        .collect();
    format!("({})", fields.join(" # "))
}

/// `H(value, seed)` for one column in PostgreSQL; NULL for NULL.
fn field_sql(column: &Column, canon: Canon, seed: &str) -> String {
    let ident = quote_ident(&column.name);
    let logical = column.logical;
    let utc = match logical {
        LogicalType::TimestampTz => format!("({ident} AT TIME ZONE 'UTC')"),
        _ => ident.clone(),
    };
    match (canon, logical) {
        (Canon::Int, _) => format!("hashint8extended({ident}::int8, {seed})"),
        (Canon::Bool, _) => format!("hashint8extended({ident}::int, {seed})"),
        (Canon::Date, _) => format!("hashint8extended({ident} - DATE '1970-01-01', {seed})"),
        (Canon::Micros, LogicalType::Time) => format!("time_hash_extended({ident}, {seed})"),
        (Canon::Millis, LogicalType::Time) => format!(
            "time_hash_extended(date_trunc('milliseconds', DATE '2000-01-01' + {ident})::time, {seed})"
        ),
        (Canon::Micros, _) => format!("timestamp_hash_extended({utc}, {seed})"),
        (Canon::Millis, _) => format!(
            "timestamp_hash_extended(date_trunc('milliseconds', {utc}), {seed})"
        ),
        // PostgreSQL prints a numeric(p,s) value with exactly s fractional digits; padded to
        // the canon's scale (which is at least the column's). NaN hashes as its text. The cast
        // is free for numeric and turns money (`$1.50`) into a number.
        (Canon::Scaled(scale), _) => {
            let own = match logical {
                LogicalType::Decimal { scale, .. } => u8::try_from(scale).unwrap_or(0),
                _ => 0,
            };
            let pad = match (own, scale.saturating_sub(own)) {
                (_, 0) => String::new(),
                (0, zeros) => format!(" || '.{}'", "0".repeat(zeros.into())),
                (_, zeros) => format!(" || '{}'", "0".repeat(zeros.into())),
            };
            format!("hashtextextended({ident}::numeric::text{pad}, {seed})")
        }
        (Canon::Text, _) => format!(
            "hashtextextended({}, {seed})",
            text_sql(&ident, logical)
        ),
        (Canon::Padded, _) => format!(
            "hashtextextended(rtrim({}, ' '), {seed})",
            text_sql(&ident, logical)
        ),
        (Canon::Decimal | Canon::Float | Canon::Binary | Canon::Uuid, _) => format!(
            "hashtextextended({}, {seed})",
            value_sql(&ident, logical, canon)
        ),
    }
}
