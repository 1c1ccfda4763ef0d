//! DataFusion functions that give lake data the same canonical text and hash as PostgreSQL:
//! `lakecheck_canon('<canon>', column)` and `lakecheck_hash(text)`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Decimal32Type, Decimal64Type, Float16Type,
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::fmt::Write as _;

use super::canonical::{
    normalize_decimal_text, write_decimal, write_float, write_text, write_time, write_timestamp,
    write_uuid_bytes, Canon, NULL_MARK,
};
use super::hash::pg_hash;

/// Registers both functions on a session.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    ctx.register_udf(ScalarUDF::from(CanonicalText::new()));
    ctx.register_udf(ScalarUDF::from(PgHash::new()));
    ctx.register_udf(ScalarUDF::from(RowHash::new()));
}

/// `lakecheck_row_hash('int,text,...', c1, c2, ...) -> Int64`: the hash of the row's canonical
/// text, the same value as `lakecheck_hash(concat_ws('|', lakecheck_canon(..), ..))` without
/// building a string column per field.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RowHash {
    signature: Signature,
}

impl RowHash {
    fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RowHash {
    fn name(&self) -> &str {
        "lakecheck_row_hash"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let canons = match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(names))) => names
                .split(',')
                .map(|n| Canon::from_name(n).ok_or_else(|| n.to_string()))
                .collect::<std::result::Result<Vec<_>, _>>(),
            _ => {
                return exec_err!(
                    "lakecheck_row_hash: the first argument must be a literal list of canons"
                )
            }
        };
        let canons = match canons {
            Ok(canons) if canons.len() == args.args.len() - 1 => canons,
            Ok(_) => return exec_err!("lakecheck_row_hash: one canon per column is needed"),
            Err(name) => return exec_err!("lakecheck_row_hash: unknown canon `{name}`"),
        };
        let arrays = args.args[1..]
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        let encoders = arrays
            .iter()
            .zip(&canons)
            .map(|(array, canon)| Encoder::new(array, *canon))
            .collect::<Result<Vec<_>>>()?;
        let mut text = String::with_capacity(256);
        let mut hashes = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            text.clear();
            for (i, encoder) in encoders.iter().enumerate() {
                if i > 0 {
                    text.push_str(super::canonical::SEPARATOR);
                }
                encoder.write(row, &mut text)?;
            }
            hashes.push(pg_hash(text.as_bytes()));
        }
        Ok(ColumnarValue::Array(Arc::new(Int64Array::from(hashes))))
    }
}

/// `lakecheck_canon(canon, value) -> Utf8`: the canonical field text (see `canonical.rs`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CanonicalText {
    signature: Signature,
}

impl CanonicalText {
    fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for CanonicalText {
    fn name(&self) -> &str {
        "lakecheck_canon"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let canon = match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))) => match Canon::from_name(name) {
                Some(canon) => canon,
                None => return exec_err!("lakecheck_canon: unknown canon `{name}`"),
            },
            _ => {
                return exec_err!(
                    "lakecheck_canon: the first argument must be a literal canon name"
                )
            }
        };
        let values = args.args[1].to_array(args.number_rows)?;
        let mut builder = StringBuilder::with_capacity(values.len(), values.len() * 12);
        let mut field = String::new();
        let encoder = Encoder::new(&values, canon)?;
        for row in 0..values.len() {
            field.clear();
            encoder.write(row, &mut field)?;
            builder.append_value(&field);
        }
        Ok(ColumnarValue::Array(Arc::new(builder.finish())))
    }
}

/// `lakecheck_hash(text) -> Int64`: PostgreSQL's `hashtextextended(text, 0)`; NULL stays NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PgHash {
    signature: Signature,
}

impl PgHash {
    fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for PgHash {
    fn name(&self) -> &str {
        "lakecheck_hash"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = args.args[0].to_array(args.number_rows)?;
        let values = cast(&values, &DataType::Utf8)?;
        let text = values.as_string::<i32>();
        let hashes: Int64Array = text
            .iter()
            .map(|v| v.map(|s| pg_hash(s.as_bytes())))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(hashes)))
    }
}

/// Writes one column's canonical fields; built once per batch so rows do not re-dispatch on type.
struct Encoder {
    array: ArrayRef,
    canon: Canon,
}

impl Encoder {
    fn new(array: &ArrayRef, canon: Canon) -> Result<Self> {
        // Dictionaries and views are decoded once up front; encoders then see plain arrays.
        let array = match array.data_type() {
            DataType::Dictionary(_, value) => cast(array, value)?,
            DataType::Utf8View | DataType::LargeUtf8 => cast(array, &DataType::Utf8)?,
            DataType::BinaryView | DataType::LargeBinary => cast(array, &DataType::Binary)?,
            _ => array.clone(),
        };
        Ok(Self { array, canon })
    }

    fn write(&self, row: usize, out: &mut String) -> Result<()> {
        let a = &self.array;
        if a.is_null(row) {
            out.push_str(NULL_MARK);
            return Ok(());
        }
        match (self.canon, a.data_type()) {
            (Canon::Int | Canon::Decimal, t) if integer_text(a, t, row, out) => {}
            (Canon::Decimal, DataType::Decimal128(_, s)) => {
                write_decimal(out, a.as_primitive::<Decimal128Type>().value(row), *s)
            }
            (Canon::Decimal, DataType::Decimal64(_, s)) => write_decimal(
                out,
                a.as_primitive::<Decimal64Type>().value(row) as i128,
                *s,
            ),
            (Canon::Decimal, DataType::Decimal32(_, s)) => write_decimal(
                out,
                a.as_primitive::<Decimal32Type>().value(row) as i128,
                *s,
            ),
            (Canon::Decimal, DataType::Utf8) => {
                let text = a.as_string::<i32>().value(row);
                match normalize_decimal_text(text) {
                    Some(normal) => out.push_str(&normal),
                    // Not a number: keep it distinct from every number.
                    None => write_text(out, text),
                }
            }
            (Canon::Float, DataType::Float64) => {
                write_float(out, a.as_primitive::<Float64Type>().value(row))
            }
            (Canon::Float, DataType::Float32) => {
                write_float(out, a.as_primitive::<Float32Type>().value(row) as f64)
            }
            (Canon::Float, DataType::Float16) => {
                write_float(out, a.as_primitive::<Float16Type>().value(row).to_f64())
            }
            (Canon::Text, DataType::Utf8) => write_text(out, a.as_string::<i32>().value(row)),
            (Canon::Padded, DataType::Utf8) => {
                write_text(out, a.as_string::<i32>().value(row).trim_end_matches(' '))
            }
            (Canon::Bool, DataType::Boolean) => {
                let v = a
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .expect("boolean")
                    .value(row);
                out.push(if v { 't' } else { 'f' });
            }
            (Canon::Date, DataType::Date32) => {
                let _ = write!(out, "{}", a.as_primitive::<Date32Type>().value(row));
            }
            (Canon::Date, DataType::Date64) => {
                let _ = write!(
                    out,
                    "{}",
                    a.as_primitive::<Date64Type>()
                        .value(row)
                        .div_euclid(86_400_000)
                );
            }
            (Canon::Micros | Canon::Millis, t) => {
                let Some(micros) = micros(a, t, row) else {
                    return exec_err!("lakecheck_canon: cannot read {t} as a point in time");
                };
                let micros = if self.canon == Canon::Millis {
                    micros.div_euclid(1000) * 1000
                } else {
                    micros
                };
                if matches!(t, DataType::Time32(_) | DataType::Time64(_)) {
                    write_time(out, micros);
                } else {
                    write_timestamp(out, micros);
                }
            }
            (Canon::Binary, DataType::Binary) => hex(out, a.as_binary::<i32>().value(row)),
            (Canon::Binary, DataType::FixedSizeBinary(_)) => {
                hex(out, a.as_fixed_size_binary().value(row))
            }
            (Canon::Uuid, DataType::Utf8) => {
                out.push_str(&a.as_string::<i32>().value(row).to_lowercase())
            }
            (Canon::Uuid, DataType::FixedSizeBinary(16)) => {
                write_uuid_bytes(out, a.as_fixed_size_binary().value(row))
            }
            (canon, t) => {
                return exec_err!("lakecheck_canon: no `{}` encoding for {t}", canon.name())
            }
        }
        Ok(())
    }
}

fn hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// Writes an integer column's value as digits; false when the column is not an integer.
fn integer_text(a: &ArrayRef, t: &DataType, row: usize, out: &mut String) -> bool {
    let _ = match t {
        DataType::Int8 => write!(out, "{}", a.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => write!(out, "{}", a.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => write!(out, "{}", a.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => write!(out, "{}", a.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => write!(out, "{}", a.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => write!(out, "{}", a.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => write!(out, "{}", a.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => write!(out, "{}", a.as_primitive::<UInt64Type>().value(row)),
        _ => return false,
    };
    true
}

/// Microseconds since the epoch (timestamps) or since midnight (times).
fn micros(a: &ArrayRef, t: &DataType, row: usize) -> Option<i64> {
    Some(match t {
        DataType::Timestamp(TimeUnit::Second, _) => {
            a.as_primitive::<TimestampSecondType>().value(row) * 1_000_000
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            a.as_primitive::<TimestampMillisecondType>().value(row) * 1000
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            a.as_primitive::<TimestampMicrosecondType>().value(row)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => a
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .div_euclid(1000),
        DataType::Time32(TimeUnit::Second) => {
            a.as_primitive::<Time32SecondType>().value(row) as i64 * 1_000_000
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            a.as_primitive::<Time32MillisecondType>().value(row) as i64 * 1000
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            a.as_primitive::<Time64MicrosecondType>().value(row)
        }
        DataType::Time64(TimeUnit::Nanosecond) => a
            .as_primitive::<Time64NanosecondType>()
            .value(row)
            .div_euclid(1000),
        _ => return None,
    })
}
