//! DataFusion functions that give lake data the same canonical text and row hash as
//! PostgreSQL: `lakecheck_canon('<canon>', column)` and
//! `lakecheck_row_hash('<canon>,...', seed, column, ...)`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayAccessor, ArrayRef, AsArray, Int64Array, StringBuilder,
};
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

use crate::model::canon::{
    normalize_decimal_text, write_decimal, write_fixed_decimal, write_float, write_text,
    write_time, write_timestamp, write_uuid_bytes, Canon, NULL_MARK,
};
use crate::model::hash::{pg_hash_int8, pg_hash_seeded};
use crate::model::row_hash::{md5_int64, null_hash, POSTGRES_EPOCH_MICROS};

/// The functions, for a DataFusion session to register (the registry hands them to sources).
pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(CanonicalText::new())),
        Arc::new(ScalarUDF::from(RowHash::new())),
        Arc::new(ScalarUDF::from(Md5Int64::new())),
    ]
}

/// Registers the functions on a session.
pub fn register(ctx: &datafusion::prelude::SessionContext) {
    for function in functions() {
        ctx.register_udf(function.as_ref().clone());
    }
}

/// `lakecheck_row_hash('int,text,...', seed, c1, c2, ...) -> Int64`: the row hash of
/// `model/row_hash.rs`, one column at a time over the batch.
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
            Ok(canons) if args.args.len() == canons.len() + 2 => canons,
            Ok(_) => {
                return exec_err!("lakecheck_row_hash: a seed and one column per canon are needed")
            }
            Err(name) => return exec_err!("lakecheck_row_hash: unknown canon `{name}`"),
        };
        let rows = args.number_rows;
        let seeds = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Int64(Some(seed))) => Seeds::Same(*seed),
            ColumnarValue::Array(array) if array.data_type() == &DataType::Int64 => {
                Seeds::Each(array.as_primitive::<Int64Type>())
            }
            _ => return exec_err!("lakecheck_row_hash: the seed must be a non-NULL BIGINT"),
        };
        let mut hashes = vec![0i64; rows];
        for (index, (arg, canon)) in args.args[2..].iter().zip(&canons).enumerate() {
            let array = arg.to_array(rows)?;
            Encoder::new(&array, *canon)?.fold_hashes(index, &seeds, &mut hashes)?;
        }
        Ok(ColumnarValue::Array(Arc::new(Int64Array::from(hashes))))
    }
}

/// `lakecheck_md5_int64(text) -> Int64`: `model::row_hash::md5_int64` of each value (the text
/// row hash); NULL stays NULL, as PostgreSQL's and Trino's `md5` keep it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Md5Int64 {
    signature: Signature,
}

impl Md5Int64 {
    fn new() -> Self {
        Self {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Md5Int64 {
    fn name(&self) -> &str {
        "lakecheck_md5_int64"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let text = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let hashes: Int64Array = text
            .as_string::<i32>()
            .iter()
            .map(|value| value.map(|v| md5_int64(v.as_bytes())))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(hashes)))
    }
}

/// Each row's seed: one for the whole batch (the key hash itself) or one per row.
enum Seeds<'a> {
    Same(i64),
    Each(&'a datafusion::arrow::array::PrimitiveArray<Int64Type>),
}

impl Seeds<'_> {
    #[inline]
    fn get(&self, row: usize) -> i64 {
        match self {
            Seeds::Same(seed) => *seed,
            Seeds::Each(seeds) => seeds.value(row),
        }
    }
}

/// `lakecheck_canon(canon, value) -> Utf8`: the canonical field text (see `model/canon.rs`).
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
            (Canon::Int | Canon::Decimal | Canon::Scaled(_), t) if integer_text(a, t, row, out) => {
            }
            (Canon::Decimal | Canon::Scaled(_), DataType::Decimal128(_, s)) => {
                write_decimal(out, a.as_primitive::<Decimal128Type>().value(row), *s)
            }
            (Canon::Decimal | Canon::Scaled(_), DataType::Decimal64(_, s)) => write_decimal(
                out,
                a.as_primitive::<Decimal64Type>().value(row) as i128,
                *s,
            ),
            (Canon::Decimal | Canon::Scaled(_), DataType::Decimal32(_, s)) => write_decimal(
                out,
                a.as_primitive::<Decimal32Type>().value(row) as i128,
                *s,
            ),
            (Canon::Decimal, t) if is_string(t) => {
                let text = text_at(a, row);
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
            (Canon::Text, t) if is_string(t) => write_text(out, text_at(a, row)),
            (Canon::Padded, t) if is_string(t) => {
                write_text(out, text_at(a, row).trim_end_matches(' '))
            }
            (Canon::Bool, DataType::Boolean) => {
                let v = a.as_boolean().value(row);
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
            (Canon::Micros | Canon::Millis, t) if !is_string(t) => {
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
                // Nanoseconds PostgreSQL cannot hold: shown, so the value equals no source value.
                let nanos = sub_micro_nanos(a, t, row);
                if self.canon == Canon::Micros && nanos != 0 {
                    let _ = write!(out, " +{nanos}ns");
                }
            }
            (Canon::Binary, DataType::Binary) => hex(out, a.as_binary::<i32>().value(row)),
            (Canon::Binary, DataType::FixedSizeBinary(_)) => {
                hex(out, a.as_fixed_size_binary().value(row))
            }
            (Canon::Uuid, t) if is_string(t) => out.push_str(&text_at(a, row).to_lowercase()),
            (Canon::Uuid, DataType::FixedSizeBinary(16)) => {
                write_uuid_bytes(out, a.as_fixed_size_binary().value(row))
            }
            (canon, t) if is_string(t) => match parse_text(canon, text_at(a, row)) {
                Parsed::Int(v) | Parsed::Date(v) => {
                    let _ = write!(out, "{v}");
                }
                Parsed::Bool(v) => out.push(if v { 't' } else { 'f' }),
                Parsed::Float(v) => write_float(out, v),
                Parsed::Timestamp(micros) => write_timestamp(out, truncate(canon, micros)),
                Parsed::Time(micros) => write_time(out, truncate(canon, micros)),
                // Not a value of the canon's type: kept as text, equal to no typed value.
                Parsed::Unparsed => write_text(out, text_at(a, row)),
            },
            (canon, t) => {
                return exec_err!("lakecheck_canon: no `{}` encoding for {t}", canon.name())
            }
        }
        Ok(())
    }
}

/// A typed value read from text (a CSV column), for the canon of the other side.
enum Parsed {
    Int(i64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i64),
    Float(f64),
    /// Microseconds since 1970-01-01 UTC.
    Timestamp(i64),
    /// Microseconds since midnight.
    Time(i64),
    Unparsed,
}

/// Reads `text` as a value of `canon`: integers, `true`/`false` (also `t`/`f`, `1`/`0`),
/// ISO dates, floats, and timestamps as ISO 8601 / RFC 3339 (without a zone: UTC) or times.
fn parse_text(canon: Canon, text: &str) -> Parsed {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
    let text = text.trim();
    match canon {
        Canon::Int => text.parse().map(Parsed::Int).unwrap_or(Parsed::Unparsed),
        Canon::Float => text.parse().map(Parsed::Float).unwrap_or(Parsed::Unparsed),
        Canon::Bool => match text.to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "yes" | "y" => Parsed::Bool(true),
            "f" | "false" | "0" | "no" | "n" => Parsed::Bool(false),
            _ => Parsed::Unparsed,
        },
        Canon::Date => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(|d| {
                Parsed::Date(
                    d.signed_duration_since(
                        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default(),
                    )
                    .num_days(),
                )
            })
            .unwrap_or(Parsed::Unparsed),
        Canon::Micros | Canon::Millis => {
            let zoned = DateTime::parse_from_rfc3339(text)
                .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
                .map(|t| t.timestamp_micros());
            let naive = || {
                ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                    .map(|t| t.and_utc().timestamp_micros())
            };
            let time = || {
                NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
                    .ok()
                    .map(|t| {
                        t.num_seconds_from_midnight() as i64 * 1_000_000
                            + t.nanosecond() as i64 / 1000
                    })
            };
            match (zoned.ok().or_else(naive), time()) {
                (Some(micros), _) => Parsed::Timestamp(micros),
                (None, Some(micros)) => Parsed::Time(micros),
                (None, None) => Parsed::Unparsed,
            }
        }
        _ => Parsed::Unparsed,
    }
}

/// Truncates to milliseconds for the `millis` canon.
fn truncate(canon: Canon, micros: i64) -> i64 {
    if canon == Canon::Millis {
        micros.div_euclid(1000) * 1000
    } else {
        micros
    }
}

impl Encoder {
    /// XORs this column's hash (`model/row_hash.rs`) into each row's running hash.
    fn fold_hashes(&self, index: usize, seeds: &Seeds, hashes: &mut [i64]) -> Result<()> {
        let a = &self.array;
        let t = a.data_type();
        match (self.canon, t) {
            (Canon::Int, DataType::UInt64) => {
                let values = a.as_primitive::<UInt64Type>();
                let mut digits = String::new();
                self.fold(index, seeds, hashes, |row, seed| {
                    let v = values.value(row);
                    Ok(match i64::try_from(v) {
                        Ok(v) => pg_hash_int8(v, seed),
                        // Beyond bigint: no PostgreSQL integer holds it; hash its digits.
                        Err(_) => {
                            digits.clear();
                            let _ = write!(digits, "{v}");
                            pg_hash_seeded(digits.as_bytes(), seed)
                        }
                    })
                })
            }
            (Canon::Int, t) if t.is_integer() => {
                let wide = cast(a, &DataType::Int64)?;
                let values = wide.as_primitive::<Int64Type>();
                self.fold(index, seeds, hashes, |row, seed| {
                    Ok(pg_hash_int8(values.value(row), seed))
                })
            }
            (Canon::Bool, DataType::Boolean) => {
                let values = a.as_boolean();
                self.fold(index, seeds, hashes, |row, seed| {
                    Ok(pg_hash_int8(values.value(row) as i64, seed))
                })
            }
            (Canon::Date, DataType::Date32) => {
                let values = a.as_primitive::<Date32Type>();
                self.fold(index, seeds, hashes, |row, seed| {
                    Ok(pg_hash_int8(values.value(row) as i64, seed))
                })
            }
            (Canon::Date, DataType::Date64) => {
                let values = a.as_primitive::<Date64Type>();
                self.fold(index, seeds, hashes, |row, seed| {
                    Ok(pg_hash_int8(values.value(row).div_euclid(86_400_000), seed))
                })
            }
            (Canon::Micros | Canon::Millis, t) if !is_string(t) => {
                let is_time = matches!(t, DataType::Time32(_) | DataType::Time64(_));
                let millis = self.canon == Canon::Millis;
                let mut text = String::new();
                self.fold(index, seeds, hashes, |row, seed| {
                    if !millis && sub_micro_nanos(a, t, row) != 0 {
                        // Finer than any PostgreSQL value: hashed apart from every one of them.
                        text.clear();
                        self.write(row, &mut text)?;
                        return Ok(pg_hash_seeded(text.as_bytes(), seed));
                    }
                    let Some(mut micros) = micros(a, t, row) else {
                        return exec_err!("lakecheck_row_hash: cannot read {t} as a point in time");
                    };
                    if millis {
                        micros = micros.div_euclid(1000) * 1000;
                    }
                    if !is_time {
                        micros -= POSTGRES_EPOCH_MICROS;
                    }
                    Ok(pg_hash_int8(micros, seed))
                })
            }
            (Canon::Text | Canon::Padded, DataType::Utf8) => {
                self.fold_text(index, seeds, hashes, a.as_string::<i32>())
            }
            (Canon::Text | Canon::Padded, DataType::LargeUtf8) => {
                self.fold_text(index, seeds, hashes, a.as_string::<i64>())
            }
            (Canon::Text | Canon::Padded, DataType::Utf8View) => {
                self.fold_text(index, seeds, hashes, a.as_string_view())
            }
            (
                Canon::Scaled(scale),
                DataType::Decimal32(_, own)
                | DataType::Decimal64(_, own)
                | DataType::Decimal128(_, own),
            ) if (0..=i16::from(scale)).contains(&i16::from(*own)) => {
                let wide = match t {
                    DataType::Decimal128(..) => a.clone(),
                    _ => cast(a, &DataType::Decimal128(38, *own))?,
                };
                let values = wide.as_primitive::<Decimal128Type>();
                let mut text = String::with_capacity(24);
                self.fold(index, seeds, hashes, |row, seed| {
                    text.clear();
                    write_fixed_decimal(&mut text, values.value(row), *own as u8, scale);
                    Ok(pg_hash_seeded(text.as_bytes(), seed))
                })
            }
            (Canon::Scaled(_), t) => {
                exec_err!("lakecheck_row_hash: no `{}` hash for {t}: the column's scale must be between 0 and the canon's", self.canon.name())
            }
            (Canon::Decimal | Canon::Float | Canon::Binary | Canon::Uuid, _) => {
                let mut text = String::with_capacity(64);
                self.fold(index, seeds, hashes, |row, seed| {
                    text.clear();
                    self.write(row, &mut text)?;
                    Ok(pg_hash_seeded(text.as_bytes(), seed))
                })
            }
            (canon, t) if is_string(t) => {
                let mut text = String::with_capacity(32);
                self.fold(index, seeds, hashes, |row, seed| {
                    Ok(match parse_text(canon, text_at(a, row)) {
                        Parsed::Int(v) | Parsed::Date(v) => pg_hash_int8(v, seed),
                        Parsed::Bool(v) => pg_hash_int8(v as i64, seed),
                        Parsed::Timestamp(micros) => {
                            pg_hash_int8(truncate(canon, micros) - POSTGRES_EPOCH_MICROS, seed)
                        }
                        Parsed::Time(micros) => pg_hash_int8(truncate(canon, micros), seed),
                        Parsed::Float(_) | Parsed::Unparsed => {
                            text.clear();
                            self.write(row, &mut text)?;
                            pg_hash_seeded(text.as_bytes(), seed)
                        }
                    })
                })
            }
            (canon, t) => {
                exec_err!("lakecheck_row_hash: no `{}` hash for {t}", canon.name())
            }
        }
    }

    /// Text hashes its bytes; `padded` without trailing spaces.
    fn fold_text<'a>(
        &self,
        index: usize,
        seeds: &Seeds,
        hashes: &mut [i64],
        values: impl ArrayAccessor<Item = &'a str>,
    ) -> Result<()> {
        let padded = self.canon == Canon::Padded;
        self.fold(index, seeds, hashes, |row, seed| {
            let text = values.value(row);
            let text = if padded {
                text.trim_end_matches(' ')
            } else {
                text
            };
            Ok(pg_hash_seeded(text.as_bytes(), seed))
        })
    }

    /// Applies `hash(row, seed)` to every non-NULL row and the NULL hash to the others.
    fn fold(
        &self,
        index: usize,
        seeds: &Seeds,
        hashes: &mut [i64],
        mut hash: impl FnMut(usize, i64) -> Result<i64>,
    ) -> Result<()> {
        let nulls = self.array.logical_nulls();
        let column = index as i64;
        for (row, acc) in hashes.iter_mut().enumerate() {
            let seed = seeds.get(row);
            *acc ^= match &nulls {
                Some(nulls) if nulls.is_null(row) => null_hash(index, seed),
                _ => hash(row, seed ^ column)?,
            };
        }
        Ok(())
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The text at `row` of a string column of any layout (checked by `is_string`).
fn text_at(a: &ArrayRef, row: usize) -> &str {
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(row),
        DataType::LargeUtf8 => a.as_string::<i64>().value(row),
        _ => a.as_string_view().value(row),
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

/// The nanoseconds below a whole microsecond of a nanosecond column's value (0 otherwise).
fn sub_micro_nanos(a: &ArrayRef, t: &DataType, row: usize) -> i64 {
    match t {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => a
            .as_primitive::<TimestampNanosecondType>()
            .value(row)
            .rem_euclid(1000),
        DataType::Time64(TimeUnit::Nanosecond) => a
            .as_primitive::<Time64NanosecondType>()
            .value(row)
            .rem_euclid(1000),
        _ => 0,
    }
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

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;
    use rstest::rstest;

    /// The XOR of row hashes DataFusion computes over `rows` (the differences must show in any
    /// combination of the hashes, XOR being the one that cancels most easily), a
    /// `VALUES` list of (id, a, b) with text a and b.
    async fn checksum(rows: &str) -> i64 {
        let ctx = SessionContext::new();
        super::register(&ctx);
        let sql = format!(
            "SELECT bit_xor(lakecheck_row_hash('int,text,text', kh, id, a, b)) AS checksum FROM (\
             SELECT lakecheck_row_hash('int', CAST(0 AS BIGINT), id) AS kh, id, a, b \
             FROM (VALUES {rows}) AS t(id, a, b))"
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let column = batches[0].column(0);
        use datafusion::arrow::array::AsArray;
        column
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0)
    }

    #[rstest]
    #[case::values_swapped_between_rows(
        "(1, 'x', 'p'), (2, 'y', 'q')",
        "(1, 'y', 'p'), (2, 'x', 'q')"
    )]
    #[case::values_swapped_between_columns("(1, 'x', 'y')", "(1, 'y', 'x')")]
    #[case::separator_moved("(1, 'a|b', 'c')", "(1, 'a', 'b|c')")]
    #[case::null_vs_empty("(1, '', 'p')", "(1, CAST(NULL AS VARCHAR), 'p')")]
    #[case::nulls_moved("(1, CAST(NULL AS VARCHAR), 'p')", "(1, 'p', CAST(NULL AS VARCHAR))")]
    #[case::key_changed("(1, 'x', 'p')", "(2, 'x', 'p')")]
    #[case::rows_swap_keys("(1, 'x', 'p'), (2, 'y', 'q')", "(2, 'x', 'p'), (1, 'y', 'q')")]
    #[tokio::test]
    async fn differences_never_cancel_in_a_segment(#[case] left: &str, #[case] right: &str) {
        assert_ne!(checksum(left).await, checksum(right).await);
    }

    /// The `scaled` hash of one decimal value stored as `value × 10^-scale`.
    fn scaled_hash(value: i128, scale: i8, canon_scale: u8) -> i64 {
        use datafusion::arrow::array::{ArrayRef, Decimal128Array};
        let array: ArrayRef = std::sync::Arc::new(
            Decimal128Array::from(vec![value])
                .with_precision_and_scale(38, scale)
                .unwrap(),
        );
        let mut hashes = [0i64];
        super::Encoder::new(&array, super::Canon::Scaled(canon_scale))
            .unwrap()
            .fold_hashes(0, &super::Seeds::Same(0), &mut hashes)
            .unwrap();
        hashes[0]
    }

    proptest::proptest! {
        /// A value hashes the same whatever scale its column keeps it at (1.5 at scale 1 =
        /// 1.50 at scale 2), and apart from any other value.
        #[test]
        fn scaled_hash_depends_on_the_value_not_the_column_scale(
            value in -1_000_000_000_000i64..1_000_000_000_000,
            other in -1_000_000_000_000i64..1_000_000_000_000,
            scale in 0u8..=4,
            wider in 0u8..=3,
            above in 0u8..=2,
        ) {
            let canon_scale = scale + wider + above;
            let widen = |v: i64| i128::from(v) * 10i128.pow(u32::from(wider));
            let at_own = scaled_hash(i128::from(value), scale as i8, canon_scale);
            let widened = scaled_hash(widen(value), (scale + wider) as i8, canon_scale);
            proptest::prop_assert_eq!(at_own, widened);
            let other_hash = scaled_hash(widen(other), (scale + wider) as i8, canon_scale);
            proptest::prop_assert_eq!(at_own == other_hash, value == other);
        }
    }

    #[test]
    fn a_scaled_value_hashes_its_text_at_the_canon_scale() {
        assert_eq!(
            scaled_hash(-15, 1, 4),
            crate::model::hash::pg_hash_seeded(b"-1.5000", 0)
        );
    }

    #[tokio::test]
    async fn row_order_does_not_matter() {
        assert_eq!(
            checksum("(1, 'x', 'p'), (2, 'y', 'q')").await,
            checksum("(2, 'y', 'q'), (1, 'x', 'p')").await
        );
    }
}
