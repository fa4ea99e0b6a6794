//! The `jq` filter, run by jaq (Kestra's `JqFilter` runs jackson-jq).
//!
//! `{{ outputs | jq('.task.value') }}` returns the *list* of every result of the program, so
//! flows usually write `| first`. A string input is parsed as JSON first, as Kestra does.
//! Compiled programs are kept per thread (jaq filters are not `Send`), in a small map that is
//! emptied when it fills up.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

type Data = data::JustLut<Val>;
type Program = jaq_core::Filter<Data>;

/// Programs kept per thread before the cache is emptied.
const CACHE_CAPACITY: usize = 256;

thread_local! {
    static PROGRAMS: RefCell<HashMap<String, Rc<Program>>> = RefCell::new(HashMap::new());
}

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("jq", jq);
}

fn jq(input: Value, program: &str) -> Result<Value, Error> {
    if input.is_none() {
        return Ok(input);
    }
    let json_text = match input.as_str() {
        Some(s) => s.to_owned(),
        None => {
            serde_json::to_string(&input).map_err(|e| fail(format!("cannot read input: {e}")))?
        }
    };
    let input = jaq_json::read::parse_single(json_text.as_bytes())
        .map_err(|e| fail(format!("input is not JSON ({e}): {json_text}")))?;
    let program = cached(program)?;
    let ctx = Ctx::<Data>::new(&program.lut, Vars::new([]));
    let mut out = Vec::new();
    for result in program.id.run((ctx, input)).map(unwrap_valr) {
        let val = result.map_err(|e| fail(format!("jq error: {e}")))?;
        out.push(to_value(&val));
    }
    Ok(Value::from(out))
}

fn fail(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// Converts a jaq value back through its JSON text; non-JSON results (NaN, bytes) become strings.
fn to_value(val: &Val) -> Value {
    let text = val.to_string();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => Value::from_serialize(&json),
        Err(_) => Value::from(text),
    }
}

fn cached(program: &str) -> Result<Rc<Program>, Error> {
    if let Some(hit) = PROGRAMS.with(|p| p.borrow().get(program).cloned()) {
        return Ok(hit);
    }
    let compiled =
        Rc::new(compile(program).map_err(|e| fail(format!("invalid jq '{program}': {e}")))?);
    PROGRAMS.with(|p| {
        let mut programs = p.borrow_mut();
        if programs.len() >= CACHE_CAPACITY {
            programs.clear();
        }
        programs.insert(program.to_owned(), compiled.clone());
    });
    Ok(compiled)
}

fn compile(code: &str) -> Result<Program, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(&arena, File { code, path: () })
        .map_err(|errors| {
            let mut msgs = Vec::new();
            for (_, error) in errors {
                match error {
                    jaq_core::load::Error::Io(e) => msgs.extend(e.into_iter().map(|(_, m)| m)),
                    jaq_core::load::Error::Lex(e) => msgs.extend(
                        e.into_iter()
                            .map(|(expect, at)| format!("expected {} at '{at}'", expect.as_str())),
                    ),
                    jaq_core::load::Error::Parse(e) => msgs.extend(
                        e.into_iter()
                            .map(|(expect, at)| format!("expected {} at '{at}'", expect.as_str())),
                    ),
                }
            }
            msgs.join("; ")
        })?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            let mut msgs = Vec::new();
            for (_, undefined) in errors {
                for (name, kind) in undefined {
                    msgs.push(format!("undefined {} '{name}'", kind.as_str()));
                }
            }
            msgs.join("; ")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_every_result_as_a_list() {
        let input = Value::from_serialize(serde_json::json!({"a": [1, 2, {"b": "x"}]}));
        let out = jq(input, ".a[]").unwrap();
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"[1,2,{"b":"x"}]"#);
    }

    #[test]
    fn string_input_is_parsed_as_json() {
        let out = jq(Value::from(r#"{"k": "v"}"#), ".k").unwrap();
        assert_eq!(out.to_string(), r#"["v"]"#);
    }

    #[test]
    fn std_functions_are_available() {
        let input = Value::from_serialize(serde_json::json!([3, 1, 2]));
        assert_eq!(
            jq(input, "sort | map(. * 2) | length").unwrap().to_string(),
            "[3]"
        );
    }

    #[test]
    fn bad_programs_are_errors() {
        let err = jq(Value::from("{}"), ".a[").unwrap_err();
        assert!(err.to_string().contains("invalid jq"), "{err}");
        let err = jq(Value::from("{}"), "nosuchfn").unwrap_err();
        assert!(err.to_string().contains("nosuchfn"), "{err}");
    }
}
