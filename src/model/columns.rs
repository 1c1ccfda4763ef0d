//! Column types across engines: Postgres types and Arrow types mapped onto one set of logical
//! types, so a schema can be compared between a source and a lake (the documented type map).
//!
//! | logical | Postgres | Arrow |
//! |---|---|---|
//! | `int(16/32/64)` | smallint, integer, bigint | Int8..Int64 (width in bits) |
//! | `uint(8/16/32/64)` | (none) | UInt8..UInt64 |
//! | `decimal(p,s)` | numeric(p,s) (numeric without precision: decimal(∞)); money: decimal(19,2) | Decimal32/64/128/256(p,s) |
//! | `float(32/64)` | real, double precision | Float16/32/64 |
//! | `text` | text, varchar(n), name, citext | Utf8, LargeUtf8, Utf8View |
//! | `paddedtext` | char(n) (trailing spaces not significant) | (text) |
//! | `bool` | boolean | Boolean |
//! | `date` | date | Date32, Date64 |
//! | `timestamp` | timestamp without time zone | Timestamp(unit, None) |
//! | `timestamptz` | timestamp with time zone | Timestamp(unit, Some(tz)) |
//! | `time` | time | Time32, Time64 |
//! | `interval` | interval | Interval, Duration |
//! | `binary` | bytea | Binary, LargeBinary, BinaryView, FixedSizeBinary |
//! | `uuid` | uuid | FixedSizeBinary(16) (also accepted: text) |
//! | `json` | json, jsonb | (text) |
//! | `list` | arrays | List, LargeList, FixedSizeList |
//! | `struct` | composite | Struct |
//!
//! A lake column may hold a source column when the logical types match, when an integer or float
//! is at least as wide (a signed integer never fits an unsigned one, whose negative values are
//! lost; an unsigned integer fits a signed one only if that is wider), when a decimal keeps the scale and the integer digits, or when the lake
//! holds as text what it cannot type (uuid, json, interval and time as strings are common in DMS).

use datafusion::arrow::datatypes::DataType;

/// One column as a source describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Column {
    pub name: String,
    /// The engine's own spelling, e.g. `numeric(10,2)` or `Decimal128(10, 2)`.
    pub engine_type: String,
    pub logical: LogicalType,
    /// Timestamps or times kept only to the millisecond (or second).
    pub millisecond_precision: bool,
}

/// Engine-independent column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogicalType {
    /// An integer of `bits` width; `signed: false` for Arrow's UInt8..UInt64 (Postgres integers
    /// are all signed).
    Int {
        bits: u16,
        signed: bool,
    },
    /// `precision` 0 means unconstrained (Postgres `numeric` without a typmod).
    Decimal {
        precision: u16,
        scale: i16,
    },
    Float {
        bits: u16,
    },
    Text,
    /// Blank-padded `char(n)`: trailing spaces are not significant.
    PaddedText,
    Bool,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Interval,
    Binary,
    Uuid,
    Json,
    List,
    Struct,
    Other,
}

impl std::fmt::Display for LogicalType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogicalType::Int { bits, signed: true } => write!(f, "int{bits}"),
            LogicalType::Int {
                bits,
                signed: false,
            } => write!(f, "uint{bits}"),
            LogicalType::Decimal { precision: 0, .. } => write!(f, "decimal"),
            LogicalType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            LogicalType::Float { bits } => write!(f, "float{bits}"),
            other => write!(f, "{}", format!("{other:?}").to_lowercase()),
        }
    }
}

/// `money` as a decimal: PostgreSQL stores it as a 64-bit count of the currency's minor unit,
/// two decimal places under the usual `lc_monetary` (so at most 19 digits, 17 before the point).
/// AWS DMS writes it as `decimal(38,4)`. Its text form carries a currency symbol and grouping
/// (`$1,234.56`), so SQL that compares values must cast it (`v::numeric`).
pub const MONEY: LogicalType = LogicalType::Decimal {
    precision: 19,
    scale: 2,
};

/// Maps a Postgres `information_schema` type (`data_type`, precision, scale) to a logical type.
pub fn from_postgres(data_type: &str, precision: Option<i64>, scale: Option<i64>) -> LogicalType {
    let signed = |bits| LogicalType::Int { bits, signed: true };
    match data_type {
        "smallint" => signed(16),
        "integer" => signed(32),
        "bigint" => signed(64),
        "numeric" => LogicalType::Decimal {
            precision: precision.unwrap_or(0) as u16,
            scale: scale.unwrap_or(0) as i16,
        },
        "money" => MONEY,
        "real" => LogicalType::Float { bits: 32 },
        "double precision" => LogicalType::Float { bits: 64 },
        "text" | "character varying" | "name" | "citext" => LogicalType::Text,
        "character" => LogicalType::PaddedText,
        "boolean" => LogicalType::Bool,
        "date" => LogicalType::Date,
        "timestamp without time zone" => LogicalType::Timestamp,
        "timestamp with time zone" => LogicalType::TimestampTz,
        "time without time zone" | "time with time zone" => LogicalType::Time,
        "interval" => LogicalType::Interval,
        "bytea" => LogicalType::Binary,
        "uuid" => LogicalType::Uuid,
        "json" | "jsonb" => LogicalType::Json,
        "ARRAY" => LogicalType::List,
        _ => LogicalType::Other,
    }
}

/// Maps an Arrow type to a logical type.
pub fn from_arrow(data_type: &DataType) -> LogicalType {
    use DataType::*;
    let int = |bits, signed| LogicalType::Int { bits, signed };
    match data_type {
        Int8 => int(8, true),
        Int16 => int(16, true),
        Int32 => int(32, true),
        Int64 => int(64, true),
        UInt8 => int(8, false),
        UInt16 => int(16, false),
        UInt32 => int(32, false),
        UInt64 => int(64, false),
        Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s) => {
            LogicalType::Decimal {
                precision: *p as u16,
                scale: *s as i16,
            }
        }
        Float16 => LogicalType::Float { bits: 16 },
        Float32 => LogicalType::Float { bits: 32 },
        Float64 => LogicalType::Float { bits: 64 },
        Utf8 | LargeUtf8 | Utf8View => LogicalType::Text,
        Boolean => LogicalType::Bool,
        Date32 | Date64 => LogicalType::Date,
        Timestamp(_, None) => LogicalType::Timestamp,
        Timestamp(_, Some(_)) => LogicalType::TimestampTz,
        Time32(_) | Time64(_) => LogicalType::Time,
        Interval(_) | Duration(_) => LogicalType::Interval,
        FixedSizeBinary(16) => LogicalType::Uuid,
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => LogicalType::Binary,
        List(_) | LargeList(_) | FixedSizeList(_, _) | ListView(_) | LargeListView(_) => {
            LogicalType::List
        }
        Struct(_) => LogicalType::Struct,
        Dictionary(_, value) => from_arrow(value),
        _ => LogicalType::Other,
    }
}

impl LogicalType {
    /// Whether a column of type `target` holds every value of a `self` column without loss.
    pub fn fits_into(self, target: LogicalType) -> bool {
        use LogicalType::*;
        match (self, target) {
            (a, b) if a == b => true,
            (
                Int {
                    bits: a,
                    signed: signed_a,
                },
                Int {
                    bits: b,
                    signed: signed_b,
                },
            ) => match (signed_a, signed_b) {
                (true, true) | (false, false) => b >= a,
                // Negative values have nowhere to go.
                (true, false) => false,
                // UInt32's top half needs the sign bit of an Int32: only a wider type holds it.
                (false, true) => b > a,
            },
            (Int { bits, signed }, Decimal { precision, scale }) => {
                precision == 0 || (precision as i32 - scale as i32) >= int_digits(bits, signed)
            }
            (Float { bits: a }, Float { bits: b }) => b >= a,
            (
                Decimal {
                    precision: p1,
                    scale: s1,
                },
                Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => {
                p2 == 0
                    || (p1 != 0 && s2 >= s1 && (p2 as i32 - s2 as i32) >= (p1 as i32 - s1 as i32))
            }
            (Uuid | Json | Interval | Time | PaddedText, Text) | (Text, PaddedText) => true,
            _ => false,
        }
    }
}

/// Decimal digits needed for any integer of `bits` width (u64::MAX has 20, i64::MAX 19).
fn int_digits(bits: u16, signed: bool) -> i32 {
    match (bits, signed) {
        (8, _) => 3,
        (16, _) => 5,
        (32, _) => 10,
        (_, true) => 19,
        (_, false) => 20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::TimeUnit;
    use rstest::rstest;

    #[rstest]
    #[case(from_postgres("integer", None, None), from_arrow(&DataType::Int32), true)]
    #[case(from_postgres("integer", None, None), from_arrow(&DataType::Int64), true)]
    #[case(from_postgres("bigint", None, None), from_arrow(&DataType::Int32), false)]
    #[case(from_postgres("numeric", Some(10), Some(2)), from_arrow(&DataType::Decimal128(10, 2)), true)]
    #[case(from_postgres("numeric", Some(10), Some(2)), from_arrow(&DataType::Decimal128(12, 4)), true)]
    #[case(from_postgres("numeric", Some(10), Some(2)), from_arrow(&DataType::Decimal128(10, 1)), false)]
    #[case(from_postgres("numeric", Some(10), Some(2)), from_arrow(&DataType::Decimal128(9, 2)), false)]
    #[case(from_postgres("numeric", None, None), from_arrow(&DataType::Decimal128(38, 10)), false)]
    #[case(from_postgres("numeric", Some(10), Some(2)), from_arrow(&DataType::Float64), false)]
    #[case(from_postgres("timestamp with time zone", None, None), from_arrow(&DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))), true)]
    #[case(from_postgres("timestamp with time zone", None, None), from_arrow(&DataType::Timestamp(TimeUnit::Millisecond, None)), false)]
    #[case(from_postgres("character", None, None), from_arrow(&DataType::Utf8View), true)]
    #[case(from_postgres("uuid", None, None), from_arrow(&DataType::Utf8), true)]
    #[case(from_postgres("uuid", None, None), from_arrow(&DataType::FixedSizeBinary(16)), true)]
    #[case(from_postgres("bytea", None, None), from_arrow(&DataType::Binary), true)]
    #[case(from_postgres("boolean", None, None), from_arrow(&DataType::Utf8), false)]
    #[case(from_postgres("smallint", None, None), from_arrow(&DataType::Decimal128(5, 0)), true)]
    // Signedness: a signed column loses its negative values in an unsigned one; an unsigned
    // N-bit column needs a signed type wider than N bits.
    #[case(from_postgres("integer", None, None), from_arrow(&DataType::UInt32), false)]
    #[case(from_postgres("integer", None, None), from_arrow(&DataType::UInt64), false)]
    #[case(from_postgres("smallint", None, None), from_arrow(&DataType::UInt64), false)]
    #[case(from_arrow(&DataType::UInt32), from_postgres("integer", None, None), false)]
    #[case(from_arrow(&DataType::UInt32), from_postgres("bigint", None, None), true)]
    #[case(from_arrow(&DataType::UInt8), from_postgres("smallint", None, None), true)]
    #[case(from_arrow(&DataType::UInt16), from_postgres("smallint", None, None), false)]
    #[case(from_arrow(&DataType::UInt64), from_postgres("bigint", None, None), false)]
    #[case(from_arrow(&DataType::UInt16), from_arrow(&DataType::UInt32), true)]
    #[case(from_arrow(&DataType::UInt32), from_arrow(&DataType::UInt16), false)]
    #[case(from_arrow(&DataType::Int8), from_arrow(&DataType::Int16), true)]
    #[case(from_arrow(&DataType::Int8), from_arrow(&DataType::UInt8), false)]
    #[case(from_arrow(&DataType::UInt64), from_arrow(&DataType::Decimal128(19, 0)), false)]
    #[case(from_arrow(&DataType::UInt64), from_arrow(&DataType::Decimal128(20, 0)), true)]
    #[case(from_postgres("bigint", None, None), from_arrow(&DataType::Decimal128(19, 0)), true)]
    // money is a 64-bit count of cents: 17 digits before the point, 2 after (DMS: decimal(38,4)).
    #[case(from_postgres("money", None, None), from_arrow(&DataType::Decimal128(38, 4)), true)]
    #[case(from_postgres("money", None, None), from_arrow(&DataType::Decimal128(19, 2)), true)]
    #[case(from_postgres("money", None, None), from_arrow(&DataType::Decimal128(18, 2)), false)]
    #[case(from_postgres("money", None, None), from_arrow(&DataType::Decimal128(38, 1)), false)]
    #[case(from_postgres("money", None, None), from_arrow(&DataType::Float64), false)]
    fn type_map_compatibility(
        #[case] source: LogicalType,
        #[case] lake: LogicalType,
        #[case] fits: bool,
    ) {
        assert_eq!(source.fits_into(lake), fits, "{source} into {lake}");
    }

    #[test]
    fn unsigned_integers_are_named_as_such() {
        assert_eq!(from_arrow(&DataType::UInt32).to_string(), "uint32");
        assert_eq!(from_arrow(&DataType::Int32).to_string(), "int32");
        assert_eq!(from_arrow(&DataType::UInt8).to_string(), "uint8");
        assert_eq!(
            from_postgres("money", None, None).to_string(),
            "decimal(19,2)"
        );
    }
}
