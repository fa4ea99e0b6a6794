//! Dates for the `date` filter and the `now()` function, with Java `DateTimeFormatter` patterns.
//!
//! Kestra's `AbstractDate` accepts a named format (`iso`, `sql`, `iso_date`, …) or a Java
//! pattern such as `yyyy-MM-dd HH:mm:ss`. Inputs are ISO-8601 strings (with or without offset),
//! plain dates, or epoch seconds. Time zones are fixed offsets (`UTC`, `Z`, `+02:00`): there is
//! no tz database in this build, and a region name (`Europe/Paris`) is reported as an error.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike, Utc};
use minijinja::value::Value;

/// Parses what Kestra accepts as a date: an ISO string, a date, or epoch seconds.
pub(crate) fn parse(value: &Value, zone: FixedOffset) -> Result<DateTime<FixedOffset>, String> {
    if let Some(s) = value.as_str() {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(dt.with_timezone(&zone));
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
                return local(naive, zone);
            }
        }
        if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return local(date.and_hms_opt(0, 0, 0).unwrap_or_default(), zone);
        }
        return Err(format!("cannot parse '{s}' as a date"));
    }
    if let Some(secs) = value.as_i64() {
        return DateTime::from_timestamp(secs, 0)
            .map(|dt| dt.with_timezone(&zone))
            .ok_or_else(|| format!("timestamp {secs} is out of range"));
    }
    if let Ok(secs) = f64::try_from(value.clone()) {
        let nanos = (secs.fract() * 1e9).round() as u32;
        return DateTime::from_timestamp(secs.trunc() as i64, nanos)
            .map(|dt| dt.with_timezone(&zone))
            .ok_or_else(|| format!("timestamp {secs} is out of range"));
    }
    Err(format!("cannot use {value} as a date"))
}

fn local(naive: NaiveDateTime, zone: FixedOffset) -> Result<DateTime<FixedOffset>, String> {
    naive
        .and_local_timezone(zone)
        .single()
        .ok_or_else(|| format!("{naive} does not exist in {zone}"))
}

/// Reads a time zone argument: `UTC`, `GMT`, `Z`, or an offset like `+02:00` / `-0530`.
pub(crate) fn zone(name: Option<&str>) -> Result<FixedOffset, String> {
    let Some(name) = name else {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    };
    let name = name.trim();
    if matches!(name, "UTC" | "GMT" | "Z" | "Etc/UTC") {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let offset = name
        .strip_prefix("UTC")
        .or_else(|| name.strip_prefix("GMT"))
        .unwrap_or(name);
    let (sign, rest) = match offset.as_bytes().first() {
        Some(b'+') => (1, &offset[1..]),
        Some(b'-') => (-1, &offset[1..]),
        _ => {
            return Err(format!(
                "unsupported time zone '{name}' (only UTC and fixed offsets)"
            ));
        }
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok(), Some(0)),
        4 => (digits[..2].parse().ok(), digits[2..].parse().ok()),
        _ => (None, None),
    };
    match (h, m) {
        (Some(h), Some(m)) => FixedOffset::east_opt(sign * (h * 3600 + m * 60))
            .ok_or_else(|| format!("invalid offset '{name}'")),
        _ => Err(format!("invalid offset '{name}'")),
    }
}

/// The current time, as `now()` sees it.
pub(crate) fn now(zone: FixedOffset) -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&zone)
}

/// Formats with a Kestra named format or a Java `DateTimeFormatter` pattern.
pub(crate) fn format(dt: &DateTime<FixedOffset>, format: &str) -> Result<String, String> {
    let pattern = match format {
        "iso" | "iso_offset_date_time" | "iso_date_time" | "iso_zoned_date_time" => {
            "yyyy-MM-dd'T'HH:mm:ss.nXXX"
        }
        "iso_instant" => {
            return self::format(
                &dt.with_timezone(&FixedOffset::east_opt(0).expect("utc")),
                "iso",
            );
        }
        "sql" => "yyyy-MM-dd HH:mm:ss.SSSSSS",
        "iso_date" | "iso_offset_date" => "yyyy-MM-ddXXX",
        "iso_local_date" => "yyyy-MM-dd",
        "iso_time" | "iso_offset_time" => "HH:mm:ss.nXXX",
        "iso_local_time" => "HH:mm:ss.n",
        "iso_local_date_time" => "yyyy-MM-dd'T'HH:mm:ss.n",
        "iso_sec" => "yyyy-MM-dd'T'HH:mm:ssXXX",
        "iso_milli" => "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
        other => other,
    };
    java_pattern(dt, pattern)
}

/// Formats `dt` with a Java `DateTimeFormatter` pattern (the common letters).
///
/// `n` is not Java's nano-of-second here: it stands for ISO's optional fraction, printed with
/// as few digits as needed and dropped (with its dot) when zero, as `ISO_OFFSET_DATE_TIME` does.
fn java_pattern(dt: &DateTime<FixedOffset>, pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // quoted literal; '' is a single quote
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        out.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '.' && chars.get(i + 1) == Some(&'n') {
                let nanos = dt.nanosecond() % 1_000_000_000;
                if nanos != 0 {
                    let digits = format!("{nanos:09}");
                    out.push('.');
                    out.push_str(digits.trim_end_matches('0'));
                }
                i += 2;
                continue;
            }
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        i += n;
        let nanos = dt.nanosecond() % 1_000_000_000;
        let text = match (c, n) {
            ('y' | 'u', 2) => format!("{:02}", dt.year().rem_euclid(100)),
            ('y' | 'u', _) => format!("{:0n$}", dt.year()),
            ('M', 1 | 2) => format!("{:0n$}", dt.month()),
            ('M', 3) => dt.format("%b").to_string(),
            ('M', _) => dt.format("%B").to_string(),
            ('d', _) => format!("{:0n$}", dt.day()),
            ('D', _) => format!("{:0n$}", dt.ordinal()),
            ('H', _) => format!("{:0n$}", dt.hour()),
            ('h', _) => format!("{:0n$}", dt.hour12().1),
            ('m', _) => format!("{:0n$}", dt.minute()),
            ('s', _) => format!("{:0n$}", dt.second()),
            ('S', _) => format!("{nanos:09}")[..n.min(9)].to_owned(),
            ('n', _) => nanos.to_string(),
            ('a', _) => dt.format("%p").to_string(),
            ('E', 1..=3) => dt.format("%a").to_string(),
            ('E', _) => dt.format("%A").to_string(),
            ('e', _) => dt.weekday().number_from_monday().to_string(),
            ('X', _) if dt.offset().local_minus_utc() == 0 => "Z".to_owned(),
            ('X' | 'x', 1 | 2) => dt.format("%z").to_string(),
            ('X' | 'x', _) => dt.format("%:z").to_string(),
            ('Z', 1..=3) => dt.format("%z").to_string(),
            ('Z', _) => dt.format("%:z").to_string(),
            ('z' | 'V' | 'O', _) if dt.offset().local_minus_utc() == 0 => "UTC".to_owned(),
            ('z' | 'V' | 'O', _) => dt.format("%:z").to_string(),
            _ => {
                return Err(format!(
                    "unsupported date pattern letter '{c}' in '{pattern}'"
                ));
            }
        };
        out.push_str(&text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        parse(&Value::from(s), zone(None).unwrap()).unwrap()
    }

    #[test]
    fn java_patterns_format_like_date_time_formatter() {
        let dt = at("2024-03-05T07:08:09.123456Z");
        assert_eq!(
            format(&dt, "yyyy-MM-dd HH:mm:ss").unwrap(),
            "2024-03-05 07:08:09"
        );
        assert_eq!(format(&dt, "dd/MM/yy 'at' H'h'").unwrap(), "05/03/24 at 7h");
        assert_eq!(
            format(&dt, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap(),
            "2024-03-05T07:08:09.123Z"
        );
        assert_eq!(format(&dt, "EEEE d MMMM").unwrap(), "Tuesday 5 March");
    }

    #[test]
    fn named_formats() {
        let dt = at("2024-03-05T07:08:09.120Z");
        assert_eq!(format(&dt, "iso").unwrap(), "2024-03-05T07:08:09.12Z");
        assert_eq!(format(&dt, "sql").unwrap(), "2024-03-05 07:08:09.120000");
        assert_eq!(
            format(&at("2024-03-05"), "iso").unwrap(),
            "2024-03-05T00:00:00Z"
        );
    }

    #[test]
    fn offsets_and_epoch_seconds() {
        let paris = zone(Some("+02:00")).unwrap();
        let dt = parse(&Value::from(0), paris).unwrap();
        assert_eq!(
            format(&dt, "yyyy-MM-dd HH:mm XXX").unwrap(),
            "1970-01-01 02:00 +02:00"
        );
        assert!(zone(Some("Europe/Paris")).is_err());
    }

    #[test]
    fn unknown_letters_are_errors() {
        assert!(format(&at("2024-03-05"), "yyyy qq").is_err());
    }
}
