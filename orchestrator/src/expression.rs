//! Pebble-style `{{ … }}` expressions rendered with minijinja (minimal version; the full
//! Kestra function and filter set lives in the expression engine).

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("{message} in `{template}`")]
pub struct ExpressionError {
    pub template: String,
    pub message: String,
}

pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_function("range", |a: i64, b: i64| (a..=b).collect::<Vec<_>>());
        Renderer { env }
    }

    fn err(template: &str, e: minijinja::Error) -> ExpressionError {
        ExpressionError {
            template: template.to_string(),
            message: e.to_string(),
        }
    }

    pub fn render(&self, template: &str, vars: &Value) -> Result<String, ExpressionError> {
        if !template.contains("{{") && !template.contains("{%") {
            return Ok(template.to_string());
        }
        self.env
            .render_str(template, vars)
            .map_err(|e| Self::err(template, e))
    }

    pub fn render_value(&self, value: &Value, vars: &Value) -> Result<Value, ExpressionError> {
        Ok(match value {
            Value::String(s) => Value::String(self.render(s, vars)?),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|v| self.render_value(v, vars))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(v, vars)?)))
                    .collect::<Result<_, ExpressionError>>()?,
            ),
            other => other.clone(),
        })
    }

    pub fn render_condition(&self, template: &str, vars: &Value) -> Result<bool, ExpressionError> {
        let s = self.render(template, vars)?;
        let s = s.trim();
        Ok(!(s.is_empty() || s == "false" || s == "0" || s == "null"))
    }

    pub fn render_list(&self, value: &Value, vars: &Value) -> Result<Vec<Value>, ExpressionError> {
        match value {
            Value::Array(a) => a.iter().map(|v| self.render_value(v, vars)).collect(),
            Value::String(s) => {
                let r = self.render(s, vars)?;
                serde_json::from_str::<Vec<Value>>(&r).map_err(|e| ExpressionError {
                    template: s.clone(),
                    message: format!("does not render to a JSON array: {e}"),
                })
            }
            other => Err(ExpressionError {
                template: other.to_string(),
                message: "expected a list".into(),
            }),
        }
    }

    pub fn check_syntax(&self, template: &str) -> Result<(), ExpressionError> {
        if !template.contains("{{") && !template.contains("{%") {
            return Ok(());
        }
        self.env
            .template_from_str(template)
            .map(|_| ())
            .map_err(|e| Self::err(template, e))
    }
}
