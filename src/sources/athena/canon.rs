//! Trino SQL (Athena) for the canon (`model::canon`) and the text row hash
//! (`model::row_hash::Hashing::Text`), beside PostgreSQL's (`sources/postgres_canon.rs`) and
//! DataFusion's (`reconcile/udf.rs`).
//!
//! Trino has neither PostgreSQL's lookup3 hashes nor a way to add them, so a reconcile with an
//! Athena side hashes canonical text with MD5 on both sides. Each canon is built from Trino
//! built-ins to print exactly what `model::canon` writes; `tests/it/athena.rs` runs these
//! expressions through stand-ins of the Trino functions they use and compares them with the
//! Rust encodings.

use crate::model::canon::{Canon, NULL_MARK};
use crate::model::columns::{Column, LogicalType};
use crate::model::sql::quote_ident;

/// Trino SQL for the canonical field of `column`, NULL as `~`.
pub fn canonical_sql(column: &Column, canon: Canon) -> String {
    let ident = quote_ident(&column.name);
    format!(
        "coalesce({}, '{NULL_MARK}')",
        value_sql(&ident, column.logical, canon)
    )
}

/// `value` as varchar.
fn varchar(value: &str) -> String {
    format!("CAST({value} AS varchar)")
}

/// Drops trailing fractional zeros, and the point when nothing is left after it, from a
/// number or time printed with a fraction (`10.10` → `10.1`, `08:00:00.000` → `08:00:00`);
/// text without a point is left alone (`100`).
fn trim_fraction(text: &str) -> String {
    format!("regexp_replace(regexp_replace({text}, '(\\.[0-9]*?)0+$', '$1'), '\\.$', '')")
}

/// Trino SQL for the canonical field of a non-NULL `ident` (NULL stays NULL).
fn value_sql(ident: &str, logical: LogicalType, canon: Canon) -> String {
    let text = match logical {
        LogicalType::Text => ident.to_string(),
        _ => varchar(ident),
    };
    match canon {
        Canon::Int => varchar(ident),
        // Trino prints a decimal(p,s) with exactly s fractional digits.
        Canon::Decimal | Canon::Scaled(_) => trim_fraction(&varchar(ident)),
        Canon::Float => format!(
            "CASE WHEN {ident} = 0 THEN '0' WHEN is_nan({ident}) THEN 'NaN' \
             ELSE lower(to_hex(to_ieee754_64(CAST({ident} AS double)))) END"
        ),
        Canon::Text => format!("{} || ':' || {text}", byte_length(&text)),
        Canon::Padded => {
            let trimmed = format!("regexp_replace({text}, ' +$', '')");
            format!("{} || ':' || {trimmed}", byte_length(&trimmed))
        }
        Canon::Bool => format!("CASE WHEN {ident} THEN 't' ELSE 'f' END"),
        Canon::Date => varchar(&format!("date_diff('day', DATE '1970-01-01', {ident})")),
        // Trino prints a timestamp(p) or time(p) with exactly p fractional digits; casting to a
        // lower precision rounds, so milliseconds are cut with `date_trunc` first.
        Canon::Micros | Canon::Millis => {
            let (exact, digits) = match canon {
                Canon::Millis => (format!("date_trunc('millisecond', {ident})"), 3),
                _ => (ident.to_string(), 6),
            };
            let wall_clock = match logical {
                LogicalType::TimestampTz => {
                    format!("CAST({exact} AT TIME ZONE 'UTC' AS timestamp({digits}))")
                }
                LogicalType::Time => format!("CAST({exact} AS time({digits}))"),
                _ => format!("CAST({exact} AS timestamp({digits}))"),
            };
            trim_fraction(&varchar(&wall_clock))
        }
        Canon::Binary => format!("lower(to_hex({ident}))"),
        Canon::Uuid => format!("lower({text})"),
    }
}

/// The length in bytes of UTF-8 text, as varchar.
fn byte_length(text: &str) -> String {
    varchar(&format!("length(to_utf8({text}))"))
}

/// Trino SQL for `model::row_hash::md5_int64` of the text expression `text`.
pub fn md5_int64_sql(text: &str) -> String {
    format!("from_big_endian_64(substr(md5(to_utf8({text})), 1, 8))")
}
