//! Kestra's `render(toRender, recursive = true)` function (`RenderFunction`, 58c1ca2d0):
//! renders a value that holds an expression, against every variable of the context.
//!
//! Kestra 0.20 no longer renders a variable's value again (`kestra.variables.recursive-rendering`
//! is false), so `vars.second: "{{ vars.first }} > 2"` prints as written unless a flow asks
//! for it with `{{ render(vars.second) }}`. A string is rendered until it no longer changes
//! (at most 100 times, Kestra's `MAX_RENDERING_AMOUNT`), or once with `recursive=false`; a
//! map or a list has each string inside rendered; any other value is returned as it is
//! (`VariableRenderer#renderObject`).

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use super::coalesce;
use super::pebble::context_of;

/// The function's name, which also tells [`super::Renderer`] to give it every variable.
pub(crate) const RENDER_CALL: &str = "render(";

/// Kestra's `VariableRenderer.MAX_RENDERING_AMOUNT`.
const MAX_RENDERING_AMOUNT: usize = 100;

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function("render", render);
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.to_owned())
}

fn render(state: &State, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let to_render = match (
        args.first().cloned(),
        kwargs.get::<Option<Value>>("toRender")?,
    ) {
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => {
            return Err(invalid(
                "The 'render' function expects an argument 'toRender'.",
            ));
        }
    };
    let recursive = match (
        args.get(1).cloned(),
        kwargs.get::<Option<Value>>("recursive")?,
    ) {
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => Value::from(true),
    };
    kwargs.assert_all_used()?;
    if recursive.kind() != ValueKind::Bool {
        return Err(invalid(
            "The 'render' function expects an optional argument 'recursive' with type boolean.",
        ));
    }
    let context = context_of(state);
    render_value(state.env(), &to_render, &context, recursive.is_true())
}

fn render_value(
    env: &Environment<'_>,
    value: &Value,
    context: &Value,
    recursive: bool,
) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            render_string(env, text, context, recursive).map(Value::from)
        }
        ValueKind::Seq => value
            .try_iter()?
            .map(|item| render_value(env, &item, context, recursive))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::from),
        ValueKind::Map => {
            let mut out = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                let key = render_value(env, &key, context, recursive)?;
                out.push((key, render_value(env, &item, context, recursive)?));
            }
            Ok(Value::from_iter(out))
        }
        _ => Ok(value.clone()),
    }
}

fn render_string(
    env: &Environment<'_>,
    text: &str,
    context: &Value,
    recursive: bool,
) -> Result<String, Error> {
    let mut current = text.to_owned();
    for _ in 0..=MAX_RENDERING_AMOUNT {
        if !current.contains('{') {
            // Not a template: Kestra short-circuits it.
            return Ok(current);
        }
        let next = env.render_str(&coalesce::translate(&current), context)?;
        if !recursive || next == current {
            return Ok(next);
        }
        current = next;
    }
    Err(invalid("Too many rendering attempts"))
}
