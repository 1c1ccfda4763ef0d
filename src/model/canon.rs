//! Canonical values: one text encoding per logical type that PostgreSQL (in SQL, see
//! `sources/postgres_canon.rs`) and DataFusion (in Rust, see `reconcile/udf.rs`) produce byte for byte, so equal values hash equally across engines
//! and different values never collide through formatting.
//!
//! Each column of a row becomes one field; fields are joined with `|`:
//!
//! | canon | encoding | notes |
//! |---|---|---|
//! | `int` | decimal digits (`-12`) | int2/4/8, Int8..UInt64 |
//! | `decimal` | digits with trailing fractional zeros removed (`10.1`, `10`, `-0.5`) | numeric(p,s) = Decimal(p,s) whatever the scales: 10.1 equals 10.10; text holding a number is parsed |
//! | `scaled<s>` | as `decimal`; hashed as the text with exactly `s` fractional digits (`1.5000`) | row-exact comparisons where both sides declare a scale ([`scaled_decimal`]) |
//! | `float` | IEEE-754 double bits in hex; `0` for ±0, `NaN` for any NaN | float4 widens to float8 exactly |
//! | `text` | `<byte length>:<bytes>` | trailing spaces count; length prefix makes `a|b`,`c` ≠ `a`,`b|c` |
//! | `padded` | like text, trailing spaces removed | char(n) on either side |
//! | `bool` | `t` / `f` | |
//! | `date` | days since 1970-01-01 | |
//! | `micros` / `millis` | the UTC wall-clock time as PostgreSQL prints it with DateStyle ISO (`2026-11-21 08:00:00.12`, fraction without trailing zeros; `HH:MM:SS[.f]` for time), truncated to milliseconds for `millis` | timestamptz ≡ Timestamp(unit, tz); `millis` when either side stores only milliseconds (DMS option) |
//! | `binary` | lowercase hex | bytea, Binary |
//! | `uuid` | lowercase `8-4-4-4-12` | uuid, text or FixedSizeBinary(16) |
//!
//! SQL NULL is `~` in every canon; no field encoding starts with `~` otherwise (text fields start
//! with a digit), so NULL never equals an empty string or the text "~".

use std::fmt::Write as _;

use super::columns::{Column, LogicalType};

/// How one compared column is encoded, chosen from the types on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Canon {
    Int,
    Decimal,
    Float,
    Text,
    Padded,
    Bool,
    Date,
    Micros,
    Millis,
    Binary,
    Uuid,
    /// A decimal hashed as its text with exactly `scale` fractional digits (`scale`
    /// 0..=[`MAX_SCALE`]); its canonical text is the `decimal` one.
    Scaled(u8),
}

/// The largest scale of a `scaled` canon.
pub const MAX_SCALE: u8 = 18;

/// The names of `Scaled(0)` .. `Scaled(18)`, so that every canon's name is a `&'static str`.
const SCALED_NAMES: [&str; MAX_SCALE as usize + 1] = [
    "scaled0", "scaled1", "scaled2", "scaled3", "scaled4", "scaled5", "scaled6", "scaled7",
    "scaled8", "scaled9", "scaled10", "scaled11", "scaled12", "scaled13", "scaled14", "scaled15",
    "scaled16", "scaled17", "scaled18",
];

impl Canon {
    /// Every canon without a parameter (`Scaled` has one per scale).
    pub const ALL: [Canon; 11] = [
        Canon::Int,
        Canon::Decimal,
        Canon::Float,
        Canon::Text,
        Canon::Padded,
        Canon::Bool,
        Canon::Date,
        Canon::Micros,
        Canon::Millis,
        Canon::Binary,
        Canon::Uuid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Canon::Int => "int",
            Canon::Decimal => "decimal",
            Canon::Float => "float",
            Canon::Text => "text",
            Canon::Padded => "padded",
            Canon::Bool => "bool",
            Canon::Date => "date",
            Canon::Micros => "micros",
            Canon::Millis => "millis",
            Canon::Binary => "binary",
            Canon::Uuid => "uuid",
            Canon::Scaled(scale) => SCALED_NAMES
                .get(scale as usize)
                .copied()
                .unwrap_or("scaled?"),
        }
    }

    pub fn from_name(name: &str) -> Option<Canon> {
        Canon::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .or_else(|| {
                let scale = SCALED_NAMES.iter().position(|n| *n == name)?;
                Some(Canon::Scaled(scale as u8))
            })
    }
}

/// Field separator inside a row's canonical text.
pub const SEPARATOR: &str = "|";
/// Canonical text of SQL NULL.
pub const NULL_MARK: &str = "~";

/// Why a pair of columns cannot be compared value for value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// No exact comparison exists between these types (e.g. numeric vs float): the check
    /// cannot run with this column.
    Incomparable(String),
    /// One side keeps timestamps or times to the millisecond, the other finer: values were
    /// truncated on the way, which is a finding unless the rule opts into comparing at ms.
    PrecisionLost(String),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Incomparable(text) | Mismatch::PrecisionLost(text) => f.write_str(text),
        }
    }
}

/// Picks the encoding that compares `left` and `right` exactly, or says why they cannot be.
/// Points in time of different precision compare at the coarser one only when `at_millis`
/// says so (the rule's `timestamp_precision: ms`); otherwise the pair is a [`Mismatch::PrecisionLost`].
pub fn choose_exact(left: &Column, right: &Column, at_millis: bool) -> Result<Canon, Mismatch> {
    use LogicalType::*;
    if let (Timestamp | TimestampTz, Timestamp | TimestampTz) | (Time, Time) =
        (left.logical, right.logical)
    {
        return match (
            left.millisecond_precision,
            right.millisecond_precision,
            at_millis,
        ) {
            (_, _, true) => Ok(Canon::Millis),
            (false, false, false) => Ok(Canon::Micros),
            // Both coarse: their values are whole milliseconds on both sides.
            (true, true, false) => Ok(Canon::Millis),
            (l, _, false) => Err(Mismatch::PrecisionLost(format!(
                "`{}` keeps {} on one side ({}) and {} on the other ({}): precision was lost; \
                 set `timestamp_precision: ms` to compare at milliseconds",
                left.name,
                if l { "milliseconds" } else { "microseconds" },
                left.engine_type,
                if l { "microseconds" } else { "milliseconds" },
                right.engine_type
            ))),
        };
    }
    if let Some(side) = [left, right].into_iter().find(|c| arrow_interval(c)) {
        return Err(Mismatch::Incomparable(format!(
            "`{}` is {} ({}): lake intervals and durations have no canonical form yet",
            left.name, side.engine_type, side.logical
        )));
    }
    choose(left, right).map_err(Mismatch::Incomparable)
}

/// The `scaled` canon for two decimal columns that both declare a scale (`s` the larger, at most
/// [`MAX_SCALE`]): each engine hashes the number written with exactly `s` fractional digits,
/// which PostgreSQL gets from its own output of a numeric(p,s) value (always `s` digits; padded
/// with zeros when its scale is smaller) at less cost than `trim_scale` (BENCHMARKS.md,
/// "Decimals with a declared scale"). `None` otherwise (a `numeric` without typmod, text, a
/// negative scale): such pairs keep the `decimal` canon. Pass the columns as each engine stores
/// them, not as text read as the other side's type.
pub fn scaled_decimal(left: &Column, right: &Column) -> Option<Canon> {
    let declared = |column: &Column| match column.logical {
        LogicalType::Decimal { precision, scale } if precision > 0 && scale >= 0 => Some(scale),
        _ => None,
    };
    let scale = declared(left)?.max(declared(right)?);
    u8::try_from(scale)
        .ok()
        .filter(|s| *s <= MAX_SCALE)
        .map(Canon::Scaled)
}

/// Appends `value * 10^-scale` with exactly `digits` fractional digits (`digits >= scale`):
/// what PostgreSQL prints for a numeric of scale `digits` (`-1.5000`, `0.0000`, `15`).
pub fn write_fixed_decimal(out: &mut String, value: i128, scale: u8, digits: u8) {
    let magnitude = value.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let padded = if magnitude.len() > scale {
        magnitude
    } else {
        format!("{magnitude:0>width$}", width = scale + 1)
    };
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    if value < 0 {
        out.push('-');
    }
    out.push_str(int_part);
    if digits > 0 {
        out.push('.');
        out.push_str(frac_part);
        for _ in scale..usize::from(digits) {
            out.push('0');
        }
    }
}

/// An Arrow `Interval(..)` or `Duration(..)` column: PostgreSQL renders intervals as text,
/// lakecheck has no matching rendering of Arrow's.
fn arrow_interval(column: &Column) -> bool {
    column.logical == LogicalType::Interval
        && (column.engine_type.starts_with("Interval(")
            || column.engine_type.starts_with("Duration("))
}

/// Picks the encoding that compares `left` and `right`, or says why they cannot be compared.
/// Points in time compare at the coarser precision of the two (profiles, `aggregate_match`);
/// row-exact comparisons use [`choose_exact`].
pub fn choose(left: &Column, right: &Column) -> Result<Canon, String> {
    use LogicalType::*;
    let millis = left.millisecond_precision || right.millisecond_precision;
    let canon = match (left.logical, right.logical) {
        (Int { .. }, Int { .. }) => Canon::Int,
        (Int { .. } | Decimal { .. }, Int { .. } | Decimal { .. }) => Canon::Decimal,
        (Decimal { .. }, Text) | (Text, Decimal { .. }) => Canon::Decimal,
        (Float { .. }, Float { .. }) => Canon::Float,
        (PaddedText, Text | PaddedText) | (Text, PaddedText) => Canon::Padded,
        (Text | Json | Interval, Text | Json | Interval) => Canon::Text,
        (Bool, Bool) => Canon::Bool,
        (Date, Date) => Canon::Date,
        (Timestamp | TimestampTz, Timestamp | TimestampTz) | (Time, Time) => {
            if millis {
                Canon::Millis
            } else {
                Canon::Micros
            }
        }
        (Binary, Binary) => Canon::Binary,
        (Uuid, Uuid | Text) | (Text, Uuid) => Canon::Uuid,
        (l, r) => {
            return Err(format!(
                "`{}` is {} ({l}) on one side and {} ({r}) on the other: no exact comparison",
                left.name, left.engine_type, right.engine_type
            ))
        }
    };
    Ok(canon)
}

/// Appends the canonical decimal text of `value * 10^-scale`.
pub fn write_decimal(out: &mut String, value: i128, scale: i8) {
    if scale <= 0 {
        let _ = write!(out, "{value}");
        if value != 0 {
            for _ in 0..(-scale) {
                out.push('0');
            }
        }
        return;
    }
    let negative = value < 0;
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let (int_part, frac_part) = if digits.len() > scale {
        digits.split_at(digits.len() - scale)
    } else {
        ("", digits.as_str())
    };
    let frac = format!("{frac_part:0>scale$}");
    let frac = frac.trim_end_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    if negative && (int_part != "0" || !frac.is_empty()) {
        out.push('-');
    }
    out.push_str(int_part);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
}

/// Canonical decimal text of a number written as text (`"010.50"` → `10.5`), or `None`.
pub fn normalize_decimal_text(text: &str) -> Option<String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("nan") {
        return Some("NaN".into());
    }
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int_part = int_part.trim_start_matches('0');
    let frac_part = frac_part.trim_end_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let mut out = String::new();
    if negative && (int_part != "0" || !frac_part.is_empty()) {
        out.push('-');
    }
    out.push_str(int_part);
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(frac_part);
    }
    Some(out)
}

/// Canonical text of a double.
pub fn write_float(out: &mut String, value: f64) {
    if value == 0.0 {
        out.push('0');
    } else if value.is_nan() {
        out.push_str("NaN");
    } else {
        let _ = write!(out, "{:016x}", value.to_bits());
    }
}

/// A UTC instant given in microseconds since 1970-01-01 as PostgreSQL prints a `timestamp`
/// with DateStyle ISO: `YYYY-MM-DD HH:MM:SS[.ffffff]`, trailing fractional zeros dropped,
/// ` BC` for years before 1.
pub fn write_timestamp(out: &mut String, micros: i64) {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000) as u32;
    match chrono::DateTime::from_timestamp(seconds, 0) {
        Some(t) => {
            use chrono::{Datelike, Timelike};
            let year = t.year();
            let shown = if year <= 0 { 1 - year } else { year };
            let _ = write!(out, "{shown:04}-{:02}-{:02} ", t.month(), t.day());
            write_clock(
                out,
                t.hour() as i64 * 3600 + t.minute() as i64 * 60 + t.second() as i64,
                fraction,
            );
            if year <= 0 {
                out.push_str(" BC");
            }
        }
        None => {
            let _ = write!(out, "out-of-range:{micros}");
        }
    }
}

/// Microseconds since midnight as PostgreSQL prints a `time`: `HH:MM:SS[.ffffff]`.
pub fn write_time(out: &mut String, micros: i64) {
    write_clock(
        out,
        micros.div_euclid(1_000_000),
        micros.rem_euclid(1_000_000) as u32,
    );
}

fn write_clock(out: &mut String, seconds_of_day: i64, fraction: u32) {
    let (h, m, s) = (
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60,
    );
    let _ = write!(out, "{h:02}:{m:02}:{s:02}");
    if fraction > 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// `<byte length>:<text>`.
pub fn write_text(out: &mut String, text: &str) {
    let _ = write!(out, "{}:{text}", text.len());
}

/// Lowercase hyphenated UUID from 16 bytes.
pub fn write_uuid_bytes(out: &mut String, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02x}");
    }
}

/// The value a person reads for a canonical field, the same whichever engine produced it:
/// text without its length prefix, floats as numbers, dates as `YYYY-MM-DD`, bytes as `\x..`.
/// `None` for NULL. A field that is not in the canon's form is shown as it is.
pub fn display(canon: Canon, field: &str) -> Option<String> {
    if field == NULL_MARK {
        return None;
    }
    let shown = match canon {
        Canon::Text | Canon::Padded => field
            .split_once(':')
            .filter(|(length, _)| length.bytes().all(|b| b.is_ascii_digit()))
            .map(|(_, text)| text.to_string()),
        Canon::Float => u64::from_str_radix(field, 16)
            .ok()
            .filter(|_| field.len() == 16)
            .map(|bits| f64::from_bits(bits).to_string()),
        Canon::Bool => match field {
            "t" => Some("true".into()),
            "f" => Some("false".into()),
            _ => None,
        },
        Canon::Date => field
            .parse::<i64>()
            .ok()
            .and_then(|days| {
                chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?
                    .checked_add_signed(chrono::Duration::days(days))
            })
            .map(|date| date.format("%Y-%m-%d").to_string()),
        Canon::Binary => Some(format!("\\x{field}")),
        Canon::Decimal | Canon::Scaled(_) => field
            .split_once(':')
            .filter(|(length, _)| length.bytes().all(|b| b.is_ascii_digit()))
            .map(|(_, text)| text.to_string()),
        Canon::Int | Canon::Micros | Canon::Millis | Canon::Uuid => None,
    };
    Some(shown.unwrap_or_else(|| field.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(1010, 2, "10.1")]
    #[case(1000, 2, "10")]
    #[case(-50, 2, "-0.5")]
    #[case(0, 2, "0")]
    #[case(5, 3, "0.005")]
    #[case(-1, 0, "-1")]
    #[case(12, -2, "1200")]
    #[case(i128::MAX, 38, "1.70141183460469231731687303715884105727")]
    fn decimals_drop_trailing_zeros(
        #[case] value: i128,
        #[case] scale: i8,
        #[case] expected: &str,
    ) {
        let mut out = String::new();
        write_decimal(&mut out, value, scale);
        assert_eq!(out, expected);
    }

    #[rstest]
    #[case("10.10", Some("10.1"))]
    #[case("+007", Some("7"))]
    #[case("-0.000", Some("0"))]
    #[case(".5", Some("0.5"))]
    #[case("1e5", None)]
    #[case("", None)]
    fn decimal_text_normalizes(#[case] text: &str, #[case] expected: Option<&str>) {
        assert_eq!(normalize_decimal_text(text).as_deref(), expected);
    }

    fn decimal(precision: u16, scale: i16) -> Column {
        Column {
            logical: LogicalType::Decimal { precision, scale },
            ..text_column()
        }
    }

    fn text_column() -> Column {
        Column {
            name: "amount".into(),
            logical: LogicalType::Text,
            engine_type: "test".into(),
            millisecond_precision: false,
        }
    }

    #[rstest]
    #[case::same_scale(decimal(10, 2), decimal(10, 2), Some(Canon::Scaled(2)))]
    #[case::larger_scale_wins(decimal(10, 2), decimal(12, 4), Some(Canon::Scaled(4)))]
    #[case::larger_scale_on_the_left(decimal(12, 4), decimal(10, 2), Some(Canon::Scaled(4)))]
    #[case::integers_as_decimals(decimal(18, 0), decimal(5, 0), Some(Canon::Scaled(0)))]
    #[case::wide(decimal(38, 18), decimal(38, 2), Some(Canon::Scaled(18)))]
    #[case::scale_beyond_eighteen(decimal(38, 19), decimal(38, 2), None)]
    #[case::unconstrained_numeric(decimal(0, 0), decimal(10, 2), None)]
    #[case::negative_scale(decimal(10, -2), decimal(10, 2), None)]
    #[case::text(text_column(), decimal(10, 2), None)]
    fn scaled_decimals_need_a_declared_scale_on_both_sides(
        #[case] left: Column,
        #[case] right: Column,
        #[case] expected: Option<Canon>,
    ) {
        assert_eq!(scaled_decimal(&left, &right), expected);
    }

    #[rstest]
    #[case(15, 1, 4, "1.5000")]
    #[case(-15_000, 4, 4, "-1.5000")]
    #[case(-5, 2, 4, "-0.0500")]
    #[case(0, 2, 4, "0.0000")]
    #[case(15, 0, 0, "15")]
    #[case(15, 0, 2, "15.00")]
    #[case(999_999_999_999_999_999, 4, 4, "99999999999999.9999")]
    fn fixed_decimals_have_exactly_the_digits_asked(
        #[case] value: i128,
        #[case] scale: u8,
        #[case] digits: u8,
        #[case] expected: &str,
    ) {
        let mut out = String::new();
        write_fixed_decimal(&mut out, value, scale, digits);
        assert_eq!(out, expected);
    }

    #[test]
    fn every_canon_is_found_by_its_name() {
        let scaled = (0..=MAX_SCALE).map(Canon::Scaled);
        for canon in Canon::ALL.into_iter().chain(scaled) {
            assert_eq!(
                Canon::from_name(canon.name()),
                Some(canon),
                "{}",
                canon.name()
            );
        }
        assert_eq!(Canon::Scaled(4).name(), "scaled4");
        assert_eq!(Canon::from_name("scaled19"), None);
        assert_eq!(Canon::from_name("scaled"), None);
    }

    #[test]
    fn floats_fold_zero_and_nan() {
        let render = |v: f64| {
            let mut s = String::new();
            write_float(&mut s, v);
            s
        };
        assert_eq!(render(-0.0), "0");
        assert_eq!(render(f64::NAN), "NaN");
        assert_eq!(render(-f64::NAN), "NaN");
        assert_eq!(render(1.5), "3ff8000000000000");
        assert_eq!(render(f64::INFINITY), "7ff0000000000000");
    }
}
