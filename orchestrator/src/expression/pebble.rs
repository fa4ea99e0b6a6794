//! The Pebble and Kestra filters, functions and tests that minijinja lacks or defines differently.
//!
//! Each one follows the Kestra class named in its comment (`io.kestra.core.runners.pebble.*`)
//! or Pebble's core extension. minijinja built-ins with the same behaviour (`length`, `upper`,
//! `lower`, `trim`, `first`, `last`, `join`, `abs`, `sort`, `reverse`, `title`, `capitalize`…)
//! are kept as they are.

use super::coalesce::{NAV_FUNCTION, PRESENT_TEST};
use super::date;
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

/// Largest list `range` will build, so a typo cannot allocate the machine away.
const MAX_RANGE: i64 = 1_000_000;

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function("range", range);
    env.add_function("now", now);
    env.add_function("fromJson", from_json);
    env.add_function("json", from_json);
    env.add_function("max", max);
    env.add_function("min", min);
    env.add_function(NAV_FUNCTION, nav);
    env.add_function("secret", secret);
    env.add_function(CURRENT_EACH_OUTPUT, current_each_output);
    env.add_function(PRINT_CONTEXT, print_context);

    env.add_filter("json", to_json);
    env.add_filter("toJson", to_json);
    env.add_filter("default", default);
    env.add_filter("keys", keys);
    env.add_filter("values", values);
    env.add_filter("number", number);
    env.add_filter("date", date_filter);
    env.add_filter("timestamp", timestamp);
    env.add_filter("slugify", slugify);
    env.add_filter("startsWith", |s: &str, prefix: &str| s.starts_with(prefix));
    env.add_filter("endsWith", |s: &str, suffix: &str| s.ends_with(suffix));
    env.add_filter("substringBefore", |s: &str, sep: &str| {
        s.find(sep).map_or(s, |p| &s[..p]).to_owned()
    });
    env.add_filter("substringBeforeLast", |s: &str, sep: &str| {
        s.rfind(sep).map_or(s, |p| &s[..p]).to_owned()
    });
    env.add_filter("substringAfter", |s: &str, sep: &str| {
        s.find(sep).map_or("", |p| &s[p + sep.len()..]).to_owned()
    });
    env.add_filter("substringAfterLast", |s: &str, sep: &str| {
        s.rfind(sep).map_or("", |p| &s[p + sep.len()..]).to_owned()
    });
    env.add_filter("split", split);
    env.add_filter("replace", replace);
    env.add_filter("slice", slice);
    env.add_filter("distinct", distinct);
    env.add_filter("flatten", flatten);
    env.add_filter("chunk", chunk);
    env.add_filter("merge", merge);
    env.add_filter("raw", |v: Value| v);

    // Pebble reads `null` as well as `none` as the null literal (`{{ a ?? null }}`, in
    // Kestra's own test flows); minijinja knows only `none`.
    env.add_global("null", Value::from(()));

    env.add_test("json", is_json);
    env.add_test("null", |v: &Value| v.is_none());
    env.add_test("empty", |v: &Value| is_empty(v));
    env.add_test("map", |v: &Value| v.kind() == ValueKind::Map);
    env.add_test(PRESENT_TEST, |v: &Value| !v.is_undefined() && !v.is_none());
}

/// The function whose templates also read `taskrun` and `parents` (see `Renderer::meta`).
pub(crate) const CURRENT_EACH_OUTPUT: &str = "currentEachOutput";

/// Kestra OSS's `secret(key)` (`SecretService`): the environment variable `SECRET_<KEY>`, its
/// name's suffix compared upper-cased, its value base64-encoded (line breaks ignored).
fn secret(key: &str) -> Result<Value, Error> {
    use base64::Engine;
    let wanted = key.to_uppercase();
    let found = std::env::vars_os().find_map(|(name, value)| {
        let name = name.to_str()?;
        let suffix = name.strip_prefix("SECRET_")?;
        (suffix.to_uppercase() == wanted).then(|| value.to_string_lossy().into_owned())
    });
    let Some(encoded) = found else {
        return Err(invalid(format!("Cannot find secret for key '{key}'.")));
    };
    let encoded: String = encoded
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| invalid(format!("secret '{key}' is not Base64-encoded: {e}")))?;
    Ok(Value::from(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Kestra's `printContext()` (`FetchContextFunction`, 58c1ca2d0): every variable of the
/// context as one map, the functions left out. The renderer gives a template that calls it
/// all the variables.
pub(crate) const PRINT_CONTEXT: &str = "printContext";

fn print_context(state: &State) -> Value {
    context_of(state)
}

/// Every variable of the context as one map, without the environment's functions.
pub(crate) fn context_of(state: &State) -> Value {
    let mut names: Vec<String> = state
        .known_variables()
        .into_iter()
        .map(|n| n.into_owned())
        .collect();
    names.sort();
    names.dedup();
    Value::from_iter(names.into_iter().filter_map(|name| {
        let value = state.lookup(&name)?;
        // The environment's functions are globals too.
        (value.kind() != ValueKind::Plain && !value.is_undefined()).then_some((name, value))
    }))
}

/// Kestra's `currentEachOutput(outputs.task)`: the output of `task` for the current loop
/// iteration, found under the values of the task run's parents (outermost first) and its own.
fn current_each_output(state: &State, outputs: Value) -> Result<Value, Error> {
    if outputs.kind() != ValueKind::Map {
        return Err(invalid(
            "The 'currentEachOutput' function expects an argument 'outputs' with type map.",
        ));
    }
    let value_of = |taskrun: Value| {
        taskrun
            .get_attr("value")
            .ok()
            .filter(|v| !v.is_none() && !v.is_undefined())
    };
    let mut values = Vec::new();
    if let Some(parents) = state.lookup("parents")
        && let Ok(parents) = parents.try_iter()
    {
        let parents: Vec<Value> = parents.collect();
        for parent in parents.iter().rev() {
            if let Some(v) = parent.get_attr("taskrun").ok().and_then(value_of) {
                values.push(v);
            }
        }
    }
    if let Some(v) = state.lookup("taskrun").and_then(value_of) {
        values.push(v);
    }
    let mut current = outputs;
    for v in values {
        current = current.get_item(&v).unwrap_or(Value::UNDEFINED);
    }
    Ok(current)
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Pebble's `range(start, end[, step])`, which includes `end` (`range(1, 3)` is `[1, 2, 3]`).
fn range(start: i64, end: i64, step: Option<i64>) -> Result<Value, Error> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(invalid("range step must not be 0"));
    }
    let count = if (step > 0 && end >= start) || (step < 0 && end <= start) {
        (end - start) / step + 1
    } else {
        0
    };
    if count > MAX_RANGE {
        return Err(invalid(format!(
            "range of {count} values exceeds {MAX_RANGE}"
        )));
    }
    Ok(Value::from_iter((0..count).map(|i| start + i * step)))
}

/// Kestra `NowFunction`: the current time, formatted (`iso` unless `format` is given).
fn now(kwargs: Kwargs) -> Result<String, Error> {
    let zone = date::zone(kwargs.get::<Option<&str>>("timeZone")?).map_err(invalid)?;
    let format = kwargs.get::<Option<&str>>("format")?.unwrap_or("iso");
    kwargs.assert_all_used()?;
    date::format(&date::now(zone), format).map_err(invalid)
}

/// Kestra `DateFilter`: `{{ execution.startDate | date("yyyy-MM-dd") }}`.
fn date_filter(value: Value, format: Option<&str>, kwargs: Kwargs) -> Result<Value, Error> {
    if value.is_none() {
        return Ok(Value::from(()));
    }
    let zone = date::zone(kwargs.get::<Option<&str>>("timeZone")?).map_err(invalid)?;
    let format = match format {
        Some(f) => f,
        None => kwargs.get::<Option<&str>>("format")?.unwrap_or("iso"),
    };
    let _ = kwargs.get::<Option<&str>>("locale")?; // English names only
    kwargs.assert_all_used()?;
    let dt = date::parse(&value, zone).map_err(invalid)?;
    date::format(&dt, format).map(Value::from).map_err(invalid)
}

/// Kestra `TimestampFilter`: epoch seconds of a date.
fn timestamp(value: Value, kwargs: Kwargs) -> Result<i64, Error> {
    let zone = date::zone(kwargs.get::<Option<&str>>("timeZone")?).map_err(invalid)?;
    kwargs.assert_all_used()?;
    Ok(date::parse(&value, zone).map_err(invalid)?.timestamp())
}

/// Kestra `FromJsonFunction` (and the deprecated `json()` function): parses JSON text.
fn from_json(text: Value) -> Result<Value, Error> {
    if text.is_none() {
        return Ok(text);
    }
    let Some(s) = text.as_str() else {
        return Err(invalid(format!(
            "fromJson expects a string, got {}",
            text.kind()
        )));
    };
    serde_json::from_str::<serde_json::Value>(s)
        .map(Value::from_serialize)
        .map_err(|e| invalid(format!("invalid JSON '{s}': {e}")))
}

/// Kestra `ToJsonFilter` (and the deprecated `json` filter): compact JSON text.
fn to_json(value: Value) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    serde_json::to_string(&value).map_err(|e| invalid(format!("cannot write JSON: {e}")))
}

/// Kestra `JsonTest`: true when a string parses as JSON.
fn is_json(value: &Value) -> bool {
    match value.kind() {
        ValueKind::String => value
            .as_str()
            .is_some_and(|s| serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()),
        // Java's toString of a number or a boolean is valid JSON; of a map or list it is not.
        ValueKind::Number | ValueKind::Bool => true,
        _ => false,
    }
}

/// Pebble `EmptyTest`: undefined, null, a blank string or an empty collection.
fn is_empty(value: &Value) -> bool {
    if value.is_undefined() || value.is_none() {
        return true;
    }
    if let Some(s) = value.as_str() {
        return s.trim().is_empty();
    }
    matches!(value.kind(), ValueKind::Seq | ValueKind::Map) && value.len() == Some(0)
}

/// Pebble `DefaultFilter`: the default when the value is empty in the sense of `EmptyTest`.
fn default(value: &Value, other: Option<Value>) -> Value {
    if is_empty(value) {
        other.unwrap_or_else(|| Value::from(""))
    } else {
        value.clone()
    }
}

/// Kestra `KeysFilter`: keys of a map, indices of a list.
fn keys(value: Value) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::Map => Ok(Value::from_iter(value.try_iter()?)),
        ValueKind::Seq => Ok(Value::from_iter(0..value.len().unwrap_or(0) as i64)),
        kind => Err(invalid(format!("keys expects a map or a list, got {kind}"))),
    }
}

/// Kestra `ValuesFilter`: values of a map.
fn values(value: Value) -> Result<Value, Error> {
    if value.kind() != ValueKind::Map {
        return Err(invalid(format!(
            "values expects a map, got {}",
            value.kind()
        )));
    }
    let mut out = Vec::new();
    for key in value.try_iter()? {
        out.push(value.get_item(&key)?);
    }
    Ok(Value::from(out))
}

/// Kestra `NumberFilter`: parses a string as a number (integer when it has no fraction).
fn number(value: Value, kind: Option<&str>) -> Result<Value, Error> {
    if value.kind() == ValueKind::Number {
        return Ok(value);
    }
    let Some(s) = value.as_str() else {
        return Err(invalid(format!(
            "number expects a string, got {}",
            value.kind()
        )));
    };
    let s = s.trim();
    let bad = || invalid(format!("'{s}' is not a number"));
    match kind.map(str::to_ascii_uppercase).as_deref() {
        Some("INT" | "LONG" | "BIGINTEGER") => s.parse::<i64>().map(Value::from).map_err(|_| bad()),
        Some("FLOAT" | "DOUBLE" | "BIGDECIMAL") => {
            s.parse::<f64>().map(Value::from).map_err(|_| bad())
        }
        Some(other) => Err(invalid(format!("unknown number type '{other}'"))),
        None => match s.parse::<i64>() {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => s.parse::<f64>().map(Value::from).map_err(|_| bad()),
        },
    }
}

/// Kestra `SlugifyFilter`: lower case, runs of other characters become one `-`.
fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Pebble `SplitFilter` (Java `String.split` on a literal): `limit` caps the number of parts;
/// without it, trailing empty parts are dropped as Java does.
fn split(s: &str, delimiter: &str, limit: Option<usize>) -> Value {
    let parts: Vec<&str> = match limit {
        Some(n) if n > 0 => s.splitn(n, delimiter).collect(),
        _ => {
            let mut v: Vec<&str> = s.split(delimiter).collect();
            while v.len() > 1 && v.last() == Some(&"") {
                v.pop();
            }
            v
        }
    };
    Value::from_iter(parts.into_iter().map(String::from))
}

/// Pebble's `replace({'old': 'new', …})`; the two-string minijinja form also works.
fn replace(s: &str, from: Value, to: Option<&str>) -> Result<String, Error> {
    if let Some(to) = to {
        return Ok(s.replace(from.as_str().unwrap_or_default(), to));
    }
    if from.kind() != ValueKind::Map {
        return Err(invalid("replace expects a map of replacements"));
    }
    let mut out = s.to_owned();
    for key in from.try_iter()? {
        let with = from.get_item(&key)?;
        out = out.replace(&text(&key), &text(&with));
    }
    Ok(out)
}

/// A value as Java's `String.valueOf` would print it inside Kestra (booleans lower case).
fn text(value: &Value) -> String {
    match value.kind() {
        ValueKind::Bool => value.is_true().to_string(),
        ValueKind::None | ValueKind::Undefined => String::new(),
        ValueKind::Map | ValueKind::Seq => serde_json::to_string(value).unwrap_or_default(),
        _ => value.to_string(),
    }
}

/// Pebble `SliceFilter`: `slice(from, to)` of a string or a list (minijinja's differs).
fn slice(value: Value, from: usize, to: Option<usize>) -> Result<Value, Error> {
    if let Some(s) = value.as_str() {
        let chars: Vec<char> = s.chars().collect();
        let to = to.unwrap_or(chars.len()).min(chars.len());
        return Ok(Value::from(
            chars
                .get(from.min(to)..to)
                .unwrap_or_default()
                .iter()
                .collect::<String>(),
        ));
    }
    let items: Vec<Value> = value.try_iter()?.collect();
    let to = to.unwrap_or(items.len()).min(items.len());
    Ok(Value::from(items[from.min(to)..to].to_vec()))
}

/// Kestra `DistinctFilter`: a list without duplicates, first occurrence kept.
fn distinct(value: Value) -> Result<Value, Error> {
    let mut out: Vec<Value> = Vec::new();
    for item in value.try_iter()? {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(Value::from(out))
}

/// Kestra `FlattenFilter`: one level of nested lists flattened.
fn flatten(value: Value) -> Result<Value, Error> {
    let mut out = Vec::new();
    for item in value.try_iter()? {
        if item.kind() == ValueKind::Seq {
            out.extend(item.try_iter()?);
        } else {
            out.push(item);
        }
    }
    Ok(Value::from(out))
}

/// Kestra `ChunkFilter`: a list cut into lists of `size`.
fn chunk(value: Value, size: usize) -> Result<Value, Error> {
    if size == 0 {
        return Err(invalid("chunk size must be positive"));
    }
    let items: Vec<Value> = value.try_iter()?.collect();
    Ok(Value::from_iter(
        items.chunks(size).map(|c| Value::from(c.to_vec())),
    ))
}

/// Pebble `MergeFilter`: two lists concatenated, or two maps merged (right wins).
fn merge(left: Value, right: Value) -> Result<Value, Error> {
    match (left.kind(), right.kind()) {
        (ValueKind::Map, ValueKind::Map) => {
            let mut pairs = Vec::new();
            for key in left.try_iter()? {
                if right.get_item(&key).map_or(true, |v| v.is_undefined()) {
                    pairs.push((key.clone(), left.get_item(&key)?));
                }
            }
            for key in right.try_iter()? {
                pairs.push((key.clone(), right.get_item(&key)?));
            }
            Ok(Value::from_iter(pairs))
        }
        _ => Ok(Value::from_iter(left.try_iter()?.chain(right.try_iter()?))),
    }
}

/// Pebble `MaxFunction` / `MinFunction`: `max(a, b, …)`.
fn max(values: Rest<Value>) -> Value {
    values
        .iter()
        .max_by(|a, b| a.cmp(b))
        .cloned()
        .unwrap_or_default()
}

fn min(values: Rest<Value>) -> Value {
    values
        .iter()
        .min_by(|a, b| a.cmp(b))
        .cloned()
        .unwrap_or_default()
}

/// Walks `root` along `path`, yielding undefined at the first missing step (for `??`).
fn nav(root: Value, path: Rest<Value>) -> Value {
    let mut current = root;
    for step in path.iter() {
        if current.is_undefined() || current.is_none() {
            return Value::UNDEFINED;
        }
        current = current.get_item(step).unwrap_or(Value::UNDEFINED);
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_includes_its_end_like_pebble() {
        assert_eq!(range(1, 100, None).unwrap().len(), Some(100));
        assert_eq!(range(5, 1, Some(-2)).unwrap().to_string(), "[5, 3, 1]");
        assert_eq!(range(3, 1, None).unwrap().len(), Some(0));
        assert!(range(1, 2, Some(0)).is_err());
        assert!(range(0, i64::from(i32::MAX), None).is_err());
    }

    #[test]
    fn split_follows_java() {
        assert_eq!(split("a,b,,", ",", None).to_string(), r#"["a", "b"]"#);
        assert_eq!(split("a,b,c", ",", Some(2)).to_string(), r#"["a", "b,c"]"#);
    }

    #[test]
    fn slugify_collapses_separators() {
        assert_eq!(slugify("  Hello, World!  2024 "), "hello-world-2024");
    }

    #[test]
    fn number_parses_integers_and_decimals() {
        assert_eq!(number(Value::from("42"), None).unwrap(), Value::from(42));
        assert_eq!(number(Value::from("1.5"), None).unwrap(), Value::from(1.5));
        assert!(number(Value::from("x"), None).is_err());
    }

    #[test]
    fn empty_matches_pebble() {
        assert!(is_empty(&Value::from("  ")));
        assert!(is_empty(&Value::from(())));
        assert!(!is_empty(&Value::from(0)));
    }
}
