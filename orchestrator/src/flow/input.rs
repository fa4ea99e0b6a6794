use serde::Deserialize;
use serde_json::{Map, Value};

/// A flow input (`inputs:`), with Kestra's type names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    #[serde(alias = "name")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub defaults: Option<Value>,
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

const KNOWN_TYPES: &[&str] = &[
    "STRING",
    "INT",
    "FLOAT",
    "BOOLEAN",
    "BOOL",
    "DATETIME",
    "DATE",
    "TIME",
    "DURATION",
    "JSON",
    "YAML",
    "ARRAY",
    "URI",
    "ENUM",
    "SELECT",
    "MULTISELECT",
    "SECRET",
    "EMAIL",
    "FILE",
];

/// An input value that does not fit its declaration.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A required input has no value and no default.
    #[error("input `{0}` is required and has no default")]
    Missing(String),
    /// A value could not be converted to the input's type.
    #[error("input `{id}` expects {kind}, got `{value}`")]
    Invalid {
        id: String,
        kind: String,
        value: String,
    },
}

impl Input {
    pub fn check_type(&self) -> Result<(), String> {
        if KNOWN_TYPES.contains(&self.kind.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "input `{}` has unknown type `{}` (known: {})",
                self.id,
                self.kind,
                KNOWN_TYPES.join(", ")
            ))
        }
    }

    /// Converts a given value (often a string from a form or the CLI) to this input's type.
    pub(crate) fn coerce(&self, value: &Value) -> Result<Value, InputError> {
        let invalid = || InputError::Invalid {
            id: self.id.clone(),
            kind: self.kind.clone(),
            value: match value {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            },
        };
        let text = value.as_str();
        Ok(match self.kind.as_str() {
            "INT" => match value {
                Value::Number(n) if n.is_i64() => value.clone(),
                _ => Value::from(
                    text.and_then(|s| s.trim().parse::<i64>().ok())
                        .ok_or_else(invalid)?,
                ),
            },
            "FLOAT" => match value {
                Value::Number(_) => value.clone(),
                _ => Value::from(
                    text.and_then(|s| s.trim().parse::<f64>().ok())
                        .ok_or_else(invalid)?,
                ),
            },
            "BOOLEAN" | "BOOL" => match value {
                Value::Bool(_) => value.clone(),
                _ => match text.map(str::trim) {
                    Some("true") => Value::Bool(true),
                    Some("false") => Value::Bool(false),
                    _ => return Err(invalid()),
                },
            },
            "JSON" | "ARRAY" | "MULTISELECT" => match value {
                Value::String(s) => serde_json::from_str(s).map_err(|_| invalid())?,
                v => v.clone(),
            },
            "ENUM" | "SELECT" => {
                let s = text.ok_or_else(invalid)?;
                match &self.values {
                    Some(allowed) if !allowed.iter().any(|a| a == s) => return Err(invalid()),
                    _ => value.clone(),
                }
            }
            _ => match value {
                Value::String(_) => value.clone(),
                v => Value::String(v.to_string()),
            },
        })
    }
}

/// Resolves an execution's inputs: given values are typed, missing ones take their defaults,
/// and a required input with neither is an error, as in Kestra's `FlowInputOutput`.
pub fn resolve_inputs(
    declared: &[Input],
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, InputError> {
    // Kestra's `FlowInputOutput.resolveInputs` reads the declared inputs only: a value for an
    // input the flow does not declare is ignored.
    let mut out = Map::new();
    for input in declared {
        match given.get(&input.id).or(input.defaults.as_ref()) {
            Some(v) => {
                out.insert(input.id.clone(), input.coerce(v)?);
            }
            None if input.required => return Err(InputError::Missing(input.id.clone())),
            None => {
                out.insert(input.id.clone(), Value::Null);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(id: &str, kind: &str, defaults: Option<Value>) -> Input {
        Input {
            id: id.into(),
            kind: kind.into(),
            defaults,
            required: true,
            description: None,
            values: None,
        }
    }

    #[test]
    fn defaults_fill_missing_and_values_are_typed() {
        let declared = vec![
            input("name", "STRING", Some(json!("World"))),
            input("n", "INT", None),
            input("flag", "BOOL", Some(json!(true))),
        ];
        let given = json!({"n": "42"}).as_object().unwrap().clone();
        let out = resolve_inputs(&declared, &given).unwrap();
        assert_eq!(out["name"], "World");
        assert_eq!(out["n"], 42);
        assert_eq!(out["flag"], true);
    }

    #[test]
    fn missing_required_and_bad_values_are_errors() {
        let declared = vec![input("n", "INT", None)];
        let err = resolve_inputs(&declared, &Map::new()).unwrap_err();
        assert!(err.to_string().contains("`n` is required"));
        let given = json!({"n": "abc"}).as_object().unwrap().clone();
        assert!(matches!(
            resolve_inputs(&declared, &given),
            Err(InputError::Invalid { .. })
        ));
        let given = json!({"n": 1, "zzz": 1}).as_object().unwrap().clone();
        let resolved = resolve_inputs(&declared, &given).unwrap();
        assert!(
            !resolved.contains_key("zzz"),
            "undeclared inputs are ignored"
        );
    }
}
