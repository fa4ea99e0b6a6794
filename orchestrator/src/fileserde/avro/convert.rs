//! Record conversion between [`Value`] and `apache_avro::types::Value`, driven by the
//! schema (see the mapping table in `docs/fileserde.md`).

use apache_avro::schema::{DecimalSchema, Name, RecordSchema};
use apache_avro::types::Value as Avro;
use apache_avro::{Schema, Uuid};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use super::{AvroOptions, Names};
use crate::fileserde::value::decimal_to_f64;
use crate::fileserde::{Decimal, Timestamp, Value};

type Conv<T> = std::result::Result<T, String>;

fn resolve<'s>(schema: &'s Schema, names: &'s Names) -> Conv<&'s Schema> {
    match schema {
        Schema::Ref { name } => names
            .get(name)
            .ok_or_else(|| format!("unknown named type `{}`", name.fullname(None))),
        s => Ok(s),
    }
}

/// Avro into a value. Map entries are sorted by key, since Avro maps have no order.
pub(super) fn from_avro(v: Avro, schema: &Schema, names: &Names) -> Conv<Value> {
    let schema = resolve(schema, names)?;
    Ok(match v {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => Value::Bool(b),
        Avro::Int(i) => Value::Int(i.into()),
        Avro::Long(i) => Value::Int(i),
        Avro::Float(f) => Value::Float(f.into()),
        Avro::Double(f) => Value::Float(f),
        Avro::Bytes(b) | Avro::Fixed(_, b) => Value::Blob(b),
        Avro::String(s) => Value::String(s),
        Avro::Enum(_, s) => Value::Symbol(s),
        Avro::Uuid(u) => Value::String(u.to_string()),
        Avro::BigDecimal(d) => Value::String(d.to_string()),
        Avro::Union(index, inner) => {
            let Schema::Union(union) = schema else {
                return Err("union value for a non-union schema".into());
            };
            let branch = union
                .variants()
                .get(index as usize)
                .ok_or_else(|| format!("union index {index} out of range"))?;
            from_avro(*inner, branch, names)?
        }
        Avro::Array(items) => {
            let Schema::Array(array) = schema else {
                return Err("array value for a non-array schema".into());
            };
            Value::List(
                items
                    .into_iter()
                    .map(|i| from_avro(i, &array.items, names))
                    .collect::<Conv<_>>()?,
            )
        }
        Avro::Map(map) => {
            let Schema::Map(map_schema) = schema else {
                return Err("map value for a non-map schema".into());
            };
            let mut fields = map
                .into_iter()
                .map(|(k, v)| Ok((k, from_avro(v, &map_schema.types, names)?)))
                .collect::<Conv<Vec<_>>>()?;
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Struct(fields)
        }
        Avro::Record(fields) => {
            let Schema::Record(record) = schema else {
                return Err("record value for a non-record schema".into());
            };
            Value::Struct(
                fields
                    .into_iter()
                    .zip(&record.fields)
                    .map(|((k, v), f)| Ok((k, from_avro(v, &f.schema, names)?)))
                    .collect::<Conv<_>>()?,
            )
        }
        Avro::Decimal(d) => {
            let Schema::Decimal(DecimalSchema { scale, .. }) = schema else {
                return Err("decimal value for a non-decimal schema".into());
            };
            let bytes = Vec::<u8>::try_from(&d).map_err(|e| e.to_string())?;
            let unscaled = i128_from_be(&bytes).ok_or("decimal wider than 128 bits")?;
            Value::Decimal(Decimal::new(unscaled, -(*scale as i64)))
        }
        Avro::Date(days) => {
            let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::Duration::days(days.into())))
                .ok_or("date out of range")?;
            let t = Timestamp::with_ymd(ion_year(date.year())?, date.month(), date.day())
                .build()
                .map_err(|e| e.to_string())?;
            Value::Timestamp(t)
        }
        Avro::TimeMillis(ms) => Value::String(time_of_day(i64::from(ms) * 1_000_000)?),
        Avro::TimeMicros(us) => Value::String(time_of_day(us.saturating_mul(1_000))?),
        Avro::TimestampMillis(ms) => timestamp(ms, 1_000_000, 3, Some(0))?,
        Avro::TimestampMicros(us) => timestamp(us, 1_000, 6, Some(0))?,
        Avro::TimestampNanos(ns) => timestamp(ns, 1, 9, Some(0))?,
        Avro::LocalTimestampMillis(ms) => timestamp(ms, 1_000_000, 3, None)?,
        Avro::LocalTimestampMicros(us) => timestamp(us, 1_000, 6, None)?,
        Avro::LocalTimestampNanos(ns) => timestamp(ns, 1, 9, None)?,
        Avro::Duration(d) => Value::Struct(vec![
            ("months".into(), Value::Int(u32::from(d.months()).into())),
            ("days".into(), Value::Int(u32::from(d.days()).into())),
            ("millis".into(), Value::Int(u32::from(d.millis()).into())),
        ]),
    })
}

/// Ion years run from 1 to 9999; chrono's are signed.
fn ion_year(year: i32) -> Conv<u32> {
    u32::try_from(year)
        .ok()
        .filter(|y| (1..=9999).contains(y))
        .ok_or_else(|| format!("year {year} is outside Ion's range"))
}

fn i128_from_be(bytes: &[u8]) -> Option<i128> {
    if bytes.len() > 16 {
        return None;
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        0xFF
    } else {
        0
    };
    let mut buf = [fill; 16];
    buf[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(buf))
}

fn i128_to_be_minimal(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    // Drop leading sign bytes while the next byte still carries the sign.
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

fn time_of_day(nanos: i64) -> Conv<String> {
    let secs = u32::try_from(nanos.div_euclid(1_000_000_000)).map_err(|e| e.to_string())?;
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, frac)
        .map(|t| t.format("%H:%M:%S%.f").to_string())
        .ok_or_else(|| "time of day out of range".into())
}

/// An epoch count (`unit_nanos` nanoseconds per unit) as a timestamp with `digits`
/// fractional digits, at UTC (`Some(0)`) or with an unknown offset (`None`).
fn timestamp(count: i64, unit_nanos: i64, digits: u32, offset: Option<i32>) -> Conv<Value> {
    let per_sec = 1_000_000_000 / unit_nanos;
    let secs = count.div_euclid(per_sec);
    let nanos = (count.rem_euclid(per_sec) * unit_nanos) as u32;
    let dt = DateTime::from_timestamp(secs, nanos)
        .ok_or("timestamp out of range")?
        .naive_utc();
    Ok(Value::Timestamp(ion_timestamp(dt, digits, offset)?))
}

fn ion_timestamp(dt: NaiveDateTime, digits: u32, offset: Option<i32>) -> Conv<Timestamp> {
    let b = Timestamp::with_ymd(ion_year(dt.year())?, dt.month(), dt.day()).with_hms(
        dt.hour(),
        dt.minute(),
        dt.second(),
    );
    let nanos = dt.nanosecond();
    let b = match digits {
        3 => b.with_milliseconds(nanos / 1_000_000),
        6 => b.with_microseconds(nanos / 1_000),
        _ => b.with_nanoseconds(nanos),
    };
    let built = match offset {
        Some(minutes) => b.with_offset(minutes).build(),
        None => b.build(),
    };
    built.map_err(|e| e.to_string())
}

/// The naive local date-time of a timestamp, and its offset in minutes if known.
fn naive_of(t: &Timestamp) -> Conv<(NaiveDateTime, Option<i32>)> {
    let date =
        NaiveDate::from_ymd_opt(t.year() as i32, t.month(), t.day()).ok_or("invalid date")?;
    let time = NaiveTime::from_hms_nano_opt(t.hour(), t.minute(), t.second(), t.nanoseconds())
        .ok_or("invalid time")?;
    Ok((date.and_time(time), t.offset()))
}

/// A timestamp given as text: RFC 3339, a local date-time, or a date.
fn parse_datetime(s: &str) -> Conv<(NaiveDateTime, Option<i32>)> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok((dt.naive_local(), Some(dt.offset().local_minus_utc() / 60)));
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok((dt, None));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| (d.and_time(NaiveTime::MIN), None))
        .map_err(|_| format!("`{s}` is not a date-time"))
}

fn datetime_of(v: &Value) -> Conv<(NaiveDateTime, Option<i32>)> {
    match v {
        Value::Timestamp(t) => naive_of(t),
        Value::String(s) | Value::Symbol(s) => parse_datetime(s),
        other => Err(format!("expected a timestamp, found {}", kind(other))),
    }
}

fn epoch(v: &Value, unit_nanos: i64, local: bool) -> Conv<i64> {
    if let Value::Int(i) = v {
        return Ok(*i);
    }
    let (naive, offset) = datetime_of(v)?;
    let utc = match (local, offset) {
        (false, Some(minutes)) => naive - chrono::Duration::minutes(minutes.into()),
        _ => naive,
    };
    let nanos = utc
        .and_utc()
        .timestamp_nanos_opt()
        .ok_or("timestamp out of range")?;
    Ok(nanos.div_euclid(unit_nanos))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Decimal(_) => "decimal",
        Value::Timestamp(_) => "timestamp",
        Value::String(_) => "string",
        Value::Symbol(_) => "symbol",
        Value::Blob(_) => "blob",
        Value::Clob(_) => "clob",
        Value::List(_) => "list",
        Value::SExp(_) => "sexp",
        Value::Struct(_) => "struct",
        Value::Annotated(_, v) => kind(v),
    }
}

fn mismatch<T>(expected: &str, v: &Value) -> Conv<T> {
    Err(format!(
        "expected {expected}, found {} {}",
        kind(v),
        preview(v)
    ))
}

fn preview(v: &Value) -> String {
    let mut s = v.to_text().unwrap_or_else(|| "null".into());
    if s.len() > 40 {
        let cut = (0..=40).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    format!("`{s}`")
}

/// A value into Avro for `schema`, with Kestra's string conversions (numbers, booleans
/// and nulls given as text, as CSV rows give them).
pub(super) fn to_avro(v: &Value, schema: &Schema, names: &Names, opts: &AvroOptions) -> Conv<Avro> {
    let v = v.unannotated();
    let schema = resolve(schema, names)?;
    let text = match v {
        Value::String(s) | Value::Symbol(s) => Some(s.as_str()),
        _ => None,
    };
    Ok(match schema {
        Schema::Null => match (v, text) {
            (Value::Null, _) => Avro::Null,
            (_, Some(s)) if opts.null_values.iter().any(|n| n == s) => Avro::Null,
            _ => return mismatch("null", v),
        },
        Schema::Boolean => match (v, text) {
            (Value::Bool(b), _) => Avro::Boolean(*b),
            (_, Some(s)) if opts.true_values.iter().any(|t| t == s) => Avro::Boolean(true),
            (_, Some(s)) if opts.false_values.iter().any(|f| f == s) => Avro::Boolean(false),
            _ => return mismatch("boolean", v),
        },
        Schema::Int => {
            Avro::Int(int_of(v).and_then(|i| i32::try_from(i).map_err(|e| e.to_string()))?)
        }
        Schema::Long => Avro::Long(int_of(v)?),
        Schema::Float => Avro::Float(float_of(v)? as f32),
        Schema::Double => Avro::Double(float_of(v)?),
        Schema::Bytes => match v {
            Value::Blob(b) | Value::Clob(b) => Avro::Bytes(b.clone()),
            Value::String(s) => Avro::Bytes(s.as_bytes().to_vec()),
            _ => return mismatch("bytes", v),
        },
        Schema::String => match v.to_text() {
            Some(s) if !matches!(v, Value::Blob(_) | Value::Clob(_)) => Avro::String(s),
            _ => return mismatch("string", v),
        },
        Schema::Fixed(f) => match v {
            Value::Blob(b) | Value::Clob(b) if b.len() == f.size => Avro::Fixed(f.size, b.clone()),
            _ => return mismatch(&format!("{} bytes", f.size), v),
        },
        Schema::Enum(e) => match text.and_then(|s| e.symbols.iter().position(|x| x == s)) {
            Some(i) => Avro::Enum(i as u32, e.symbols[i].clone()),
            None => return mismatch(&format!("one of {:?}", e.symbols), v),
        },
        Schema::Union(u) => {
            let variants = u.variants();
            let null_index = variants.iter().position(|s| matches!(s, Schema::Null));
            let is_null_text = text.is_some_and(|s| opts.null_values.iter().any(|n| n == s));
            if let Some(i) = null_index
                && (matches!(v, Value::Null) || (opts.infer_all_fields && is_null_text))
            {
                return Ok(Avro::Union(i as u32, Box::new(Avro::Null)));
            }
            let mut errors = Vec::new();
            for (i, branch) in variants.iter().enumerate() {
                match to_avro(v, branch, names, opts) {
                    Ok(a) => return Ok(Avro::Union(i as u32, Box::new(a))),
                    Err(e) => errors.push(e),
                }
            }
            return Err(format!("no union branch fits: {}", errors.join("; ")));
        }
        Schema::Array(a) => match v {
            Value::List(items) | Value::SExp(items) => Avro::Array(
                items
                    .iter()
                    .map(|i| to_avro(i, &a.items, names, opts))
                    .collect::<Conv<_>>()?,
            ),
            _ => return mismatch("array", v),
        },
        Schema::Map(m) => match v {
            Value::Struct(fields) => Avro::Map(
                fields
                    .iter()
                    .map(|(k, f)| Ok((k.clone(), to_avro(f, &m.types, names, opts)?)))
                    .collect::<Conv<_>>()?,
            ),
            _ => return mismatch("map", v),
        },
        Schema::Record(r) => record(v, r, names, opts)?,
        Schema::Decimal(d) => decimal(v, d)?,
        Schema::Uuid => match text.map(Uuid::parse_str) {
            Some(Ok(u)) => Avro::Uuid(u),
            _ => return mismatch("uuid", v),
        },
        Schema::Date => {
            let days =
                datetime_of(v)?.0.date() - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
            Avro::Date(i32::try_from(days.num_days()).map_err(|e| e.to_string())?)
        }
        Schema::TimeMillis | Schema::TimeMicros => {
            let nanos = match (v, text) {
                (Value::Int(i), _) => return time_from_int(*i, schema),
                (_, Some(s)) => NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
                    .map_err(|_| format!("`{s}` is not a time of day"))?,
                _ => return mismatch("time of day", v),
            };
            let ns = i64::from(nanos.num_seconds_from_midnight()) * 1_000_000_000
                + i64::from(nanos.nanosecond());
            match schema {
                Schema::TimeMillis => Avro::TimeMillis((ns / 1_000_000) as i32),
                _ => Avro::TimeMicros(ns / 1_000),
            }
        }
        Schema::TimestampMillis => Avro::TimestampMillis(epoch(v, 1_000_000, false)?),
        Schema::TimestampMicros => Avro::TimestampMicros(epoch(v, 1_000, false)?),
        Schema::TimestampNanos => Avro::TimestampNanos(epoch(v, 1, false)?),
        Schema::LocalTimestampMillis => Avro::LocalTimestampMillis(epoch(v, 1_000_000, true)?),
        Schema::LocalTimestampMicros => Avro::LocalTimestampMicros(epoch(v, 1_000, true)?),
        Schema::LocalTimestampNanos => Avro::LocalTimestampNanos(epoch(v, 1, true)?),
        other => return Err(format!("Avro type {other:?} is not supported for writing")),
    })
}

fn time_from_int(i: i64, schema: &Schema) -> Conv<Avro> {
    Ok(match schema {
        Schema::TimeMillis => Avro::TimeMillis(i32::try_from(i).map_err(|e| e.to_string())?),
        _ => Avro::TimeMicros(i),
    })
}

fn int_of(v: &Value) -> Conv<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an integer")),
        _ => mismatch("integer", v),
    }
}

fn float_of(v: &Value) -> Conv<f64> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Decimal(d) => Ok(decimal_to_f64(d)),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a number")),
        _ => mismatch("number", v),
    }
}

fn decimal(v: &Value, schema: &DecimalSchema) -> Conv<Avro> {
    let (coefficient, exponent): (i128, i64) = match v {
        Value::Int(i) => ((*i).into(), 0),
        Value::Decimal(d) => {
            let c = ion_rs::Int::try_from(d.coefficient()).map_err(|e| e.to_string())?;
            (i128::try_from(c).map_err(|e| e.to_string())?, d.exponent())
        }
        _ => return mismatch("decimal", v),
    };
    let scale = schema.scale as i64;
    // value = coefficient × 10^exponent = unscaled × 10^-scale
    let shift = exponent + scale;
    let unscaled = if shift >= 0 {
        10i128
            .checked_pow(shift as u32)
            .and_then(|p| coefficient.checked_mul(p))
    } else {
        10i128
            .checked_pow((-shift) as u32)
            .filter(|p| coefficient % p == 0)
            .map(|p| coefficient / p)
    }
    .ok_or_else(|| format!("{} does not fit scale {scale}", preview(v)))?;
    let mut bytes = i128_to_be_minimal(unscaled);
    if let Schema::Fixed(f) = schema.inner.as_ref() {
        if bytes.len() > f.size {
            return Err(format!("{} does not fit {} bytes", preview(v), f.size));
        }
        let fill = if unscaled < 0 { 0xFF } else { 0 };
        let mut padded = vec![fill; f.size - bytes.len()];
        padded.extend_from_slice(&bytes);
        bytes = padded;
    }
    Ok(Avro::Decimal(apache_avro::Decimal::from(bytes)))
}

fn record(v: &Value, r: &RecordSchema, names: &Names, opts: &AvroOptions) -> Conv<Avro> {
    match v {
        Value::Struct(fields) => {
            if opts.strict_schema
                && let Some((extra, _)) = fields.iter().find(|(k, _)| !r.lookup.contains_key(k))
            {
                return Err(format!(
                    "field `{extra}` is not in the schema of `{}`",
                    full(&r.name)
                ));
            }
            let mut out = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let avro = match v.get(&f.name) {
                    Some(fv) => to_avro(fv, &f.schema, names, opts),
                    None => match &f.default {
                        Some(default) => Avro::from(default.clone())
                            .resolve(&f.schema)
                            .map_err(|e| e.to_string()),
                        None => to_avro(&Value::Null, &f.schema, names, opts),
                    },
                }
                .map_err(|e| format!("field `{}`: {e}", f.name))?;
                out.push((f.name.clone(), avro));
            }
            Ok(Avro::Record(out))
        }
        // A CSV row without header: fields by position, as Kestra's `fromArray`.
        Value::List(items) => {
            if opts.strict_schema && items.len() > r.fields.len() {
                return Err(format!(
                    "{} values for {} fields of `{}`",
                    items.len(),
                    r.fields.len(),
                    full(&r.name)
                ));
            }
            let mut out = Vec::with_capacity(r.fields.len());
            for (i, f) in r.fields.iter().enumerate() {
                let item = items.get(i).unwrap_or(&Value::Null);
                let avro = to_avro(item, &f.schema, names, opts)
                    .map_err(|e| format!("field `{}`: {e}", f.name))?;
                out.push((f.name.clone(), avro));
            }
            Ok(Avro::Record(out))
        }
        _ => mismatch("record", v),
    }
}

fn full(name: &Name) -> String {
    name.fullname(None)
}
