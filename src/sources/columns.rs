//! Column types across engines: Postgres types and Arrow types mapped onto one set of logical
//! types, so a schema can be compared between a source and a lake (the documented type map).
//!
//! | logical | Postgres | Arrow |
//! |---|---|---|
//! | `int(16/32/64)` | smallint, integer, bigint | Int8..Int64, UInt8..UInt32 (width in bits) |
//! | `decimal(p,s)` | numeric(p,s) (numeric without precision: decimal(∞)) | Decimal32/64/128/256(p,s) |
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
//! is at least as wide, when a decimal keeps the scale and the integer digits, or when the lake
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
    Int {
        bits: u16,
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
            LogicalType::Int { bits } => write!(f, "int{bits}"),
            LogicalType::Decimal { precision: 0, .. } => write!(f, "decimal"),
            LogicalType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            LogicalType::Float { bits } => write!(f, "float{bits}"),
            other => write!(f, "{}", format!("{other:?}").to_lowercase()),
        }
    }
}

/// Maps a Postgres `information_schema` type (`data_type`, precision, scale) to a logical type.
pub fn from_postgres(data_type: &str, precision: Option<i64>, scale: Option<i64>) -> LogicalType {
    match data_type {
        "smallint" => LogicalType::Int { bits: 16 },
        "integer" => LogicalType::Int { bits: 32 },
        "bigint" => LogicalType::Int { bits: 64 },
        "numeric" => LogicalType::Decimal {
            precision: precision.unwrap_or(0) as u16,
            scale: scale.unwrap_or(0) as i16,
        },
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
    match data_type {
        Int8 | UInt8 => LogicalType::Int { bits: 16 }.min_bits(8),
        Int16 | UInt16 => LogicalType::Int { bits: 16 },
        Int32 | UInt32 => LogicalType::Int { bits: 32 },
        Int64 | UInt64 => LogicalType::Int { bits: 64 },
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
    fn min_bits(self, bits: u16) -> Self {
        match self {
            LogicalType::Int { .. } => LogicalType::Int { bits },
            other => other,
        }
    }

    /// Whether a column of type `target` holds every value of a `self` column without loss.
    pub fn fits_into(self, target: LogicalType) -> bool {
        use LogicalType::*;
        match (self, target) {
            (a, b) if a == b => true,
            (Int { bits: a }, Int { bits: b }) => b >= a,
            (Int { bits }, Decimal { precision, scale }) => {
                precision == 0 || (precision as i32 - scale as i32) >= int_digits(bits)
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

/// Decimal digits needed for any integer of `bits` width.
fn int_digits(bits: u16) -> i32 {
    match bits {
        8 => 3,
        16 => 5,
        32 => 10,
        _ => 19,
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
    fn type_map_compatibility(
        #[case] source: LogicalType,
        #[case] lake: LogicalType,
        #[case] fits: bool,
    ) {
        assert_eq!(source.fits_into(lake), fits, "{source} into {lake}");
    }
}
