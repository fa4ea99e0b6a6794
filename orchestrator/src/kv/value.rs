//! What a KV entry holds: the Ion value Kestra's Jackson Ion mapper writes, and the value
//! Kestra's readers get back from it.
//!
//! Kestra writes a KV value with `JacksonMapper.ofIon().writeValueAsBytes(value)` and reads it
//! with `readValue(raw, Object.class)` (`InternalKVStore`, commit 58c1ca2d). The Java types
//! that come back decide how the value looks afterwards: a timestamp is a `java.time.Instant`
//! (or a `LocalDate` at midnight UTC, or a `ZonedDateTime` at another offset, per Kestra's
//! `serializers/ion/IonParser`), and a top-level string shaped like an ISO-8601 duration is a
//! `java.time.Duration`. [`KvValue::to_output`] gives what Kestra's JSON mapper writes into a
//! task's outputs, [`KvValue::to_expression`] what a Pebble expression prints.

use serde::Deserialize;
use serde_json::Value as Json;

use crate::fileserde::{Decimal, Timestamp, Value as Ion};

/// Kestra's `KVType` (`io.kestra.core.models.kv.KVType`): how `kv.Set` reads a rendered
/// string before it stores it. Written in upper case, as Jackson reads Java enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum KvType {
    String,
    Number,
    Boolean,
    Datetime,
    Date,
    Duration,
    Json,
}

impl KvType {
    /// Converts a rendered string into the value `kv.Set` stores, as its `run` does: a JSON
    /// number, `Boolean.parseBoolean`, an `Instant` (for `DATE` too), a `Duration` (which
    /// Jackson writes as decimal seconds), or parsed JSON.
    pub fn convert(self, text: &str) -> Result<Ion, String> {
        match self {
            KvType::String => Ok(Ion::String(text.to_owned())),
            KvType::Number => number(text),
            KvType::Boolean => Ok(Ion::Bool(text.eq_ignore_ascii_case("true"))),
            KvType::Datetime | KvType::Date => instant(text).map(Ion::Timestamp),
            KvType::Duration => java_duration(text).map(|d| Ion::Decimal(seconds_decimal(d))),
            KvType::Json => serde_json::from_str::<Json>(text)
                .map(|json| to_ion(&json))
                .map_err(|e| format!("`{text}` is not JSON: {e}")),
        }
    }
}

/// A rendered value (JSON) as Jackson's Ion mapper writes it: integers as Ion ints, other
/// numbers as floats, objects as structs.
pub fn to_ion(json: &Json) -> Ion {
    Ion::deserialize(json).expect("every JSON value is an Ion value")
}

/// `JacksonMapper.ofJson().readValue(text, Number.class)`: a JSON number, or a JSON string
/// holding one.
fn number(text: &str) -> Result<Ion, String> {
    let bad = |e: &dyn std::fmt::Display| format!("`{text}` is not a number: {e}");
    let json: Json = serde_json::from_str(text).map_err(|e| bad(&e))?;
    let json = match json {
        Json::String(s) => serde_json::from_str(&s).map_err(|e| bad(&e))?,
        other => other,
    };
    match json {
        n @ Json::Number(_) => Ok(to_ion(&n)),
        other => Err(bad(&format!("found {other}"))),
    }
}

/// `Instant.parse`, kept at the millisecond precision Kestra's Ion writer keeps
/// (`Timestamp.forDateZ(Date.from(instant))`), in UTC.
pub(crate) fn instant(text: &str) -> Result<Timestamp, String> {
    let ts: jiff::Timestamp = text
        .trim()
        .parse()
        .map_err(|e| format!("Text '{text}' could not be parsed as an instant: {e}"))?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    Timestamp::with_ymd(dt.year() as u32, dt.month() as u32, dt.day() as u32)
        .with_hms(dt.hour() as u32, dt.minute() as u32, dt.second() as u32)
        .with_milliseconds(dt.subsec_nanosecond() as u32 / 1_000_000)
        .with_offset(0)
        .build()
        .map_err(|e| format!("Text '{text}' is out of an Ion timestamp's range: {e}"))
}

/// `Duration.parse`: Java's `PnDTnHnMn.nS` form (days are 24 hours; no years, months or
/// weeks).
fn java_duration(text: &str) -> Result<jiff::SignedDuration, String> {
    let bad = || format!("Text '{text}' cannot be parsed to a Duration");
    let span: jiff::Span = text.trim().parse().map_err(|_| bad())?;
    if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
        return Err(bad());
    }
    span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| bad())
}

/// A duration as Jackson's `DurationSerializer` writes it by default
/// (`WRITE_DURATIONS_AS_TIMESTAMPS` with nanoseconds): decimal seconds with nine fraction
/// digits, and `0.0` for zero.
fn seconds_decimal(d: jiff::SignedDuration) -> Decimal {
    if d.is_zero() {
        return Decimal::new(0, -1);
    }
    Decimal::new(d.as_nanos(), -9)
}

/// A value read from a KV entry, as `InternalKVStore.getValue` returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum KvValue {
    /// A top-level string matching Kestra's `DURATION_PATTERN` (`P1D`, `PT5M`): Kestra reads
    /// it as a `java.time.Duration`.
    Duration(jiff::SignedDuration),
    /// Anything else, as its Ion data.
    Ion(Ion),
}

impl KvValue {
    /// Reads a stored value the way Kestra's `getValue` does.
    pub(crate) fn from_stored(ion: Ion) -> Result<KvValue, String> {
        match &ion {
            Ion::String(s) if matches_duration_pattern(s) => {
                pattern_duration(s).map(KvValue::Duration)
            }
            _ => Ok(KvValue::Ion(ion)),
        }
    }

    /// The value as Kestra's JSON mapper writes it into task outputs (`kv.Get`'s `value`):
    /// instants as ISO-8601 text, dates as `yyyy-MM-dd`, a duration as decimal seconds,
    /// lobs as Base64.
    pub fn to_output(&self) -> Json {
        match self {
            KvValue::Duration(d) => {
                serde_json::Number::from_f64(d.as_secs_f64()).map_or(Json::Null, Json::Number)
            }
            KvValue::Ion(ion) => ion_to_json(ion),
        }
    }

    /// The value as a Pebble expression sees it (the `kv()` function): the same as
    /// [`KvValue::to_output`], except that a duration prints as `Duration.toString()` does
    /// (`PT24H5S`).
    pub fn to_expression(&self) -> Json {
        match self {
            KvValue::Duration(d) => Json::String(java_duration_string(*d)),
            KvValue::Ion(ion) => ion_to_json(ion),
        }
    }

    /// The bytes of a string or a lob, the two shapes Kestra's `StateStore` reads a state in.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match self {
            KvValue::Ion(Ion::String(s)) => Some(s.as_bytes()),
            KvValue::Ion(Ion::Blob(b) | Ion::Clob(b)) => Some(b),
            _ => None,
        }
    }
}

/// Kestra's `InternalKVStore.DURATION_PATTERN`,
/// `^P(?=[^T]|T.)(?:\d*D)?(?:T(?=.)(?:\d*H)?(?:\d*M)?(?:\d*S)?)?$`, matched by hand: whole
/// numbers of days, hours, minutes and seconds only.
fn matches_duration_pattern(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else {
        return false;
    };
    if rest.is_empty() || rest == "T" {
        return false;
    }
    let unit = |text: &str, letter: char| -> Option<usize> {
        let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        text[digits..].starts_with(letter).then_some(digits + 1)
    };
    let mut rest = rest;
    if let Some(n) = unit(rest, 'D') {
        rest = &rest[n..];
    }
    if rest.is_empty() {
        return true;
    }
    let Some(mut time) = rest.strip_prefix('T') else {
        return false;
    };
    if time.is_empty() {
        return false;
    }
    for letter in ['H', 'M', 'S'] {
        if let Some(n) = unit(time, letter) {
            time = &time[n..];
        }
    }
    time.is_empty()
}

/// `Duration.parse` of a string [`matches_duration_pattern`] accepted. The pattern lets a
/// unit have no digits (`PD`), which `Duration.parse` refuses, and so does this.
fn pattern_duration(s: &str) -> Result<jiff::SignedDuration, String> {
    let bad = || format!("Text '{s}' cannot be parsed to a Duration");
    let mut seconds: i64 = 0;
    let mut digits = String::new();
    for c in s.chars().skip(1) {
        let per_unit = match c {
            '0'..='9' => {
                digits.push(c);
                continue;
            }
            'T' => continue,
            'D' => 86_400,
            'H' => 3_600,
            // The pattern allows `M` only after `T`: minutes.
            'M' => 60,
            'S' => 1,
            _ => return Err(bad()),
        };
        let n: i64 = digits.parse().map_err(|_| bad())?;
        seconds = n
            .checked_mul(per_unit)
            .and_then(|v| seconds.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    Ok(jiff::SignedDuration::from_secs(seconds))
}

/// `java.time.Duration.toString()`: hours, minutes and seconds (`PT24H5S`, `PT0.5S`,
/// `PT-5S`, `PT0S`).
pub(crate) fn java_duration_string(d: jiff::SignedDuration) -> String {
    // Java keeps floor seconds and a non-negative nano adjustment.
    let (seconds, nanos) = match (d.as_secs(), d.subsec_nanos()) {
        (s, n) if n < 0 => (s - 1, 1_000_000_000 + n),
        (s, n) => (s, n),
    };
    if seconds == 0 && nanos == 0 {
        return "PT0S".into();
    }
    let total = if seconds < 0 && nanos > 0 {
        seconds + 1
    } else {
        seconds
    };
    let (hours, minutes, secs) = (total / 3600, (total % 3600) / 60, total % 60);
    let mut out = String::from("PT");
    if hours != 0 {
        out.push_str(&format!("{hours}H"));
    }
    if minutes != 0 {
        out.push_str(&format!("{minutes}M"));
    }
    if secs == 0 && nanos == 0 && out.len() > 2 {
        return out;
    }
    if seconds < 0 && nanos > 0 && secs == 0 {
        out.push_str("-0");
    } else {
        out.push_str(&secs.to_string());
    }
    if nanos > 0 {
        let fraction = if seconds < 0 {
            2_000_000_000 - nanos
        } else {
            nanos + 1_000_000_000
        };
        let fraction = fraction.to_string();
        out.push('.');
        out.push_str(fraction[1..].trim_end_matches('0'));
    }
    out.push('S');
    out
}

/// An Ion value as the Java object Jackson reads, then written as JSON by Kestra's mapper.
fn ion_to_json(ion: &Ion) -> Json {
    match ion {
        Ion::Timestamp(t) => Json::String(java_time_string(t)),
        Ion::List(items) | Ion::SExp(items) => Json::Array(items.iter().map(ion_to_json).collect()),
        Ion::Struct(fields) => {
            // A Java map: a repeated name keeps its last value.
            let mut map = serde_json::Map::with_capacity(fields.len());
            for (k, v) in fields {
                map.insert(k.clone(), ion_to_json(v));
            }
            Json::Object(map)
        }
        Ion::Annotated(_, inner) => ion_to_json(inner),
        // Scalars map as FileSerde maps them: decimals as numbers, lobs as Base64.
        other => serde_json::to_value(other).unwrap_or(Json::Null),
    }
}

/// An Ion timestamp as Kestra's `IonParser` reads it, printed as Java prints that type: an
/// `Instant` (`2023-05-02T01:02:03Z`) at UTC or an unknown offset, a `LocalDate`
/// (`2023-05-02`) when that instant is midnight, a `ZonedDateTime`
/// (`2023-05-02T03:02:03+02:00`) at any other offset.
fn java_time_string(t: &Timestamp) -> String {
    let nanos = t.nanoseconds();
    let date = format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day());
    let fraction = java_fraction(nanos);
    match t.offset() {
        None | Some(0) => {
            if t.hour() == 0 && t.minute() == 0 && t.second() == 0 && nanos == 0 {
                return date;
            }
            format!(
                "{date}T{:02}:{:02}:{:02}{fraction}Z",
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Some(offset) => {
            // LocalTime.toString leaves out zero seconds.
            let time = if t.second() == 0 && nanos == 0 {
                format!("{:02}:{:02}", t.hour(), t.minute())
            } else {
                format!(
                    "{:02}:{:02}:{:02}{fraction}",
                    t.hour(),
                    t.minute(),
                    t.second()
                )
            };
            let sign = if offset < 0 { '-' } else { '+' };
            let offset = offset.abs();
            format!("{date}T{time}{sign}{:02}:{:02}", offset / 60, offset % 60)
        }
    }
}

/// Java's fraction of a second: none, or three, six or nine digits.
fn java_fraction(nanos: u32) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kv_types_convert_as_kestras_set_does() {
        assert_eq!(
            KvType::Number.convert("123.45").unwrap(),
            Ion::Float(123.45)
        );
        assert_eq!(KvType::Number.convert("42").unwrap(), Ion::Int(42));
        assert!(KvType::Number.convert("forty").is_err());
        assert_eq!(KvType::Boolean.convert("TRUE").unwrap(), Ion::Bool(true));
        assert_eq!(KvType::Boolean.convert("yes").unwrap(), Ion::Bool(false));
        let KvValue::Ion(Ion::Timestamp(t)) =
            KvValue::Ion(KvType::Datetime.convert("2023-05-02T01:02:03Z").unwrap())
        else {
            panic!("a DATETIME is a timestamp");
        };
        assert_eq!(java_time_string(&t), "2023-05-02T01:02:03Z");
        assert!(
            KvType::Date.convert("2023-05-02").is_err(),
            "Instant.parse needs a time"
        );
        // Jackson writes a Duration as decimal seconds: Kestra's SetTest reads 86405 back.
        let d = KvType::Duration.convert("P1DT5S").unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), json!(86405.0));
        assert_eq!(
            KvType::Json.convert(r#"[{"some":"value"}]"#).unwrap(),
            Ion::List(vec![Ion::Struct(vec![(
                "some".into(),
                Ion::String("value".into())
            )])])
        );
        assert!(KvType::Json.convert("{nope").is_err());
    }

    #[test]
    fn duration_shaped_strings_read_back_as_durations() {
        for s in ["P1D", "PT5M", "P2DT3H4M5S", "PT10S", "PD"] {
            assert!(matches_duration_pattern(s), "{s}");
        }
        for s in ["P", "PT", "PT0.5S", "5M", "P1DT", "P1W", "hello"] {
            assert!(!matches_duration_pattern(s), "{s}");
        }
        let v = KvValue::from_stored(Ion::String("P1DT5S".into())).unwrap();
        assert_eq!(v.to_expression(), json!("PT24H5S"));
        assert_eq!(v.to_output(), json!(86405.0));
        assert!(KvValue::from_stored(Ion::String("PD".into())).is_err());
        let plain = KvValue::from_stored(Ion::String("PT0.5S".into())).unwrap();
        assert_eq!(plain.to_expression(), json!("PT0.5S"));
    }

    #[test]
    fn durations_print_as_java_does() {
        // Each expected text is what java.time.Duration.toString() printed (OpenJDK 17).
        let cases = [
            ("P1DT5S", "PT24H5S"),
            ("PT0.5S", "PT0.5S"),
            ("PT90M", "PT1H30M"),
            ("-PT5S", "PT-5S"),
            ("PT0S", "PT0S"),
            ("-PT0.5S", "PT-0.5S"),
        ];
        for (text, printed) in cases {
            assert_eq!(
                java_duration_string(java_duration(text).unwrap()),
                printed,
                "{text}"
            );
        }
    }

    #[test]
    fn timestamps_read_back_as_kestras_java_types() {
        let ts = |text: &str| {
            let mut r = crate::fileserde::reader(
                crate::fileserde::Format::Ion,
                text.as_bytes(),
                std::path::Path::new("t"),
                &Default::default(),
                Default::default(),
            )
            .unwrap();
            match r.next_record().unwrap().unwrap() {
                Ion::Timestamp(t) => java_time_string(&t),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(ts("2023-05-02T01:02:03.100Z"), "2023-05-02T01:02:03.100Z");
        assert_eq!(ts("2023-05-02T00:00:00.000Z"), "2023-05-02");
        assert_eq!(ts("2023-05-02T"), "2023-05-02");
        assert_eq!(ts("2023-05-02T03:02:00+02:00"), "2023-05-02T03:02+02:00");
    }
}
