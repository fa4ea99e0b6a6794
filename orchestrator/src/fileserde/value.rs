//! [`Value`]: the one dynamic record type every format reads into and writes from.
//!
//! It follows Ion's data model, the richest of the four formats, so that an ION file
//! read and written again keeps its timestamps, decimals, symbols, lobs and
//! annotations. The JSON mapping lives here too, as `Serialize`/`Deserialize`
//! impls, so that the JSON reader and writer stream straight into and out of it.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

pub use ion_rs::{Decimal, Timestamp};

/// One record, or one value inside a record.
///
/// Structs keep their field order and allow repeated names, as Ion does. See
/// `docs/fileserde.md` for how each variant maps to JSON, CSV and Avro.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any Ion null (`null`, `null.int`, …): the type of a typed null is not kept.
    Null,
    Bool(bool),
    /// An integer that fits in 64 bits; larger Ion integers are read as [`Value::Decimal`].
    Int(i64),
    Float(f64),
    /// An exact decimal (Ion `decimal`, Avro `decimal` logical type).
    Decimal(Decimal),
    /// An Ion timestamp with its precision and offset.
    Timestamp(Timestamp),
    String(String),
    /// An Ion symbol (and an Avro enum symbol).
    Symbol(String),
    Blob(Vec<u8>),
    Clob(Vec<u8>),
    List(Vec<Value>),
    SExp(Vec<Value>),
    /// Fields in their order; a name may repeat.
    Struct(Vec<(String, Value)>),
    /// A value with Ion annotations (`a::b::value`). Never nested: the annotations of a
    /// value are all in one `Annotated`.
    Annotated(Vec<String>, Box<Value>),
}

impl Value {
    /// The first field named `name`, when this is a struct.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self.unannotated() {
            Value::Struct(fields) => fields.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value without its annotations.
    pub fn unannotated(&self) -> &Value {
        match self {
            Value::Annotated(_, v) => v,
            v => v,
        }
    }

    /// The value as text for CSV cells and for Avro string fields: strings and symbols
    /// as they are, `null` as `None`, scalars in their Ion text form, lobs in base64,
    /// containers as JSON.
    pub fn to_text(&self) -> Option<String> {
        Some(match self.unannotated() {
            Value::Null => return None,
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Decimal(d) => decimal_to_plain_string(d),
            Value::Timestamp(t) => t.to_string(),
            Value::String(s) | Value::Symbol(s) => s.clone(),
            Value::Blob(b) | Value::Clob(b) => BASE64.encode(b),
            v @ (Value::List(_) | Value::SExp(_) | Value::Struct(_)) => {
                serde_json::to_string(v).unwrap_or_default()
            }
            Value::Annotated(..) => unreachable!("unannotated() removed annotations"),
        })
    }
}

pub(crate) const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A decimal as plain digits with a `.` (`12.50`, `-0.001`, `1200`), the way Java's
/// `BigDecimal.toPlainString` writes it, rather than Ion's `d`-exponent form.
pub(crate) fn decimal_to_plain_string(d: &Decimal) -> String {
    let coefficient = d.coefficient();
    let digits = coefficient.magnitude().to_string();
    let sign = if coefficient.is_negative() || coefficient.is_negative_zero() {
        "-"
    } else {
        ""
    };
    let exponent = d.exponent();
    if exponent >= 0 {
        let zeros = "0".repeat(exponent as usize);
        return format!("{sign}{digits}{zeros}");
    }
    let scale = (-exponent) as usize;
    if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        format!("{sign}{int}.{frac}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
    }
}

/// The nearest `f64` to a decimal, for formats that only have binary floats.
pub(crate) fn decimal_to_f64(d: &Decimal) -> f64 {
    let coefficient = d.coefficient();
    let sign = if coefficient.is_negative() || coefficient.is_negative_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}{}e{}", coefficient.magnitude(), d.exponent())
        .parse()
        .unwrap_or(f64::NAN)
}

/// JSON mapping of a value (see `docs/fileserde.md`): annotations are dropped,
/// decimals become numbers, timestamps strings in Ion/ISO-8601 form, symbols strings,
/// lobs base64 strings, sexps arrays.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::Decimal(d) => serializer.serialize_f64(decimal_to_f64(d)),
            Value::Timestamp(t) => serializer.collect_str(t),
            Value::String(s) | Value::Symbol(s) => serializer.serialize_str(s),
            Value::Blob(b) | Value::Clob(b) => serializer.serialize_str(&BASE64.encode(b)),
            Value::List(items) | Value::SExp(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Struct(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Annotated(_, v) => v.serialize(serializer),
        }
    }
}

/// JSON into a value: integers that fit in `i64` become [`Value::Int`], larger ones
/// an exact [`Value::Decimal`], other numbers [`Value::Float`], objects structs.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Decimal(Decimal::from(v)),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            fields.push((k, v));
        }
        Ok(Value::Struct(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimal_strings() {
        let cases = [
            (Decimal::new(1250, -2), "12.50"),
            (Decimal::new(-1, -3), "-0.001"),
            (Decimal::new(12, 2), "1200"),
            (Decimal::new(0, 0), "0"),
        ];
        for (d, want) in cases {
            assert_eq!(decimal_to_plain_string(&d), want);
        }
        assert_eq!(decimal_to_f64(&Decimal::new(-125, -2)), -1.25);
    }

    #[test]
    fn json_mapping_of_ion_types() {
        let v = Value::Struct(vec![
            ("d".into(), Value::Decimal(Decimal::new(15, -1))),
            ("s".into(), Value::Symbol("sym".into())),
            ("b".into(), Value::Blob(b"hi".to_vec())),
            (
                "a".into(),
                Value::Annotated(vec!["x".into()], Box::new(Value::Int(1))),
            ),
        ]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"d":1.5,"s":"sym","b":"aGk=","a":1}"#
        );
        let back: Value = serde_json::from_str(r#"{"n":18446744073709551615,"f":1.5}"#).unwrap();
        assert_eq!(
            back.get("n"),
            Some(&Value::Decimal(Decimal::from(u64::MAX)))
        );
        assert_eq!(back.get("f"), Some(&Value::Float(1.5)));
    }
}
