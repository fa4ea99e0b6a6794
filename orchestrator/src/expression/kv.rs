//! Kestra's `kv(key, namespace, errorOnMissing)` function
//! (`core/src/main/java/io/kestra/core/runners/pebble/functions/KvFunction.java`, commit
//! 58c1ca2d): the value of a KV entry, read from the current flow's namespace unless
//! `namespace` names another, through the same [`KvService`] rules the KV tasks follow.
//!
//! Arguments are positional or named, as Pebble allows. A missing key gives `null` unless
//! `errorOnMissing` is `true`; an expired key, a bad key or a namespace that does not exist
//! fail the expression with the store's message.

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::kv::KvService;

const KV: &str = "kv";
/// A call of the function, which [`super::Renderer`] looks for to give the template
/// `flow.namespace`.
pub(crate) const KV_CALL: &str = "kv(";

pub(crate) fn register(env: &mut Environment<'static>, service: Option<KvService>) {
    env.add_function(
        KV,
        move |state: &State,
              key: Option<Value>,
              namespace: Option<Value>,
              error_on_missing: Option<Value>,
              kwargs: Kwargs| {
            kv(
                service.as_ref(),
                state,
                [key, namespace, error_on_missing],
                kwargs,
            )
        },
    );
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// One argument, positional or named; `null` counts as absent, as Java's `args.get` reads it.
fn argument(
    positional: Option<Value>,
    kwargs: &Kwargs,
    name: &str,
) -> Result<Option<Value>, Error> {
    let named: Option<Value> = kwargs.get(name)?;
    Ok(positional
        .or(named)
        .filter(|v| !v.is_none() && !v.is_undefined()))
}

fn kv(
    service: Option<&KvService>,
    state: &State,
    [key, namespace, error_on_missing]: [Option<Value>; 3],
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let key = argument(key, &kwargs, "key")?
        .ok_or_else(|| invalid("The 'kv' function expects an argument 'key'."))?;
    let key = key
        .as_str()
        .ok_or_else(|| {
            invalid(format!(
                "The 'kv' function expects a string 'key', got {key}"
            ))
        })?
        .to_owned();
    let namespace = match argument(namespace, &kwargs, "namespace")? {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| {
                    invalid(format!(
                        "The 'kv' function expects a string 'namespace', got {v}"
                    ))
                })?
                .to_owned(),
        ),
    };
    let error_on_missing = match argument(error_on_missing, &kwargs, "errorOnMissing")? {
        None => false,
        Some(v) if v.kind() == minijinja::value::ValueKind::Bool => v.is_true(),
        Some(v) => {
            return Err(invalid(format!(
                "The 'kv' function expects a boolean 'errorOnMissing', got {v}"
            )));
        }
    };
    kwargs.assert_all_used()?;
    let Some(service) = service else {
        return Err(invalid(
            "The 'kv' function needs internal storage, and this renderer has none",
        ));
    };
    let flow_namespace = state
        .lookup("flow")
        .and_then(|flow| flow.get_attr("namespace").ok())
        .and_then(|ns| ns.as_str().map(str::to_owned))
        .ok_or_else(|| invalid("The 'kv' function needs `flow.namespace`, and there is none"))?;
    // Kestra's FlowService.checkAllowedNamespace allows every namespace in OSS.
    let namespace = namespace.unwrap_or_else(|| flow_namespace.clone());
    let value = service
        .store(&namespace, Some(&flow_namespace))
        .and_then(|store| store.get_value(&key))
        .map_err(|e| invalid(e.to_string()))?;
    match value {
        Some(v) => Ok(Value::from_serialize(v.to_expression())),
        None if error_on_missing => Err(invalid(format!(
            "The key '{key}' does not exist in the namespace '{namespace}'."
        ))),
        None => Ok(Value::from(())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::{ExpressionError, Renderer};
    use crate::kv::{FlowNamespaces, KvService, KvStore};
    use crate::storage::Storage;

    fn vars() -> serde_json::Value {
        json!({"flow": {"id": "kv", "namespace": "io.kestra.tests"}, "inputs": {"yes": true}})
    }

    /// A renderer over fresh storage where `io.kestra.tests` holds `my-key` and
    /// `company.other` holds `their-key`.
    fn renderer(dir: &tempfile::TempDir) -> Renderer {
        let storage = Storage::new(dir.path()).unwrap();
        KvStore::new(&storage, "io.kestra.tests")
            .put("my-key", &json!({"field": "value"}).into(), None, true)
            .unwrap();
        KvStore::new(&storage, "company.other")
            .put("their-key", &json!(42).into(), None, true)
            .unwrap();
        Renderer::with_kv(KvService::new(storage, Arc::new(FlowNamespaces::default())))
    }

    fn message(e: ExpressionError) -> String {
        e.to_string()
    }

    #[test]
    fn kv_reads_the_flows_namespace_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let r = renderer(&dir);
        assert_eq!(
            r.render("{{ kv('my-key').field }}", &vars()).unwrap(),
            "value"
        );
        assert_eq!(
            r.render("{{ kv('my-key') }}", &vars()).unwrap(),
            r#"{"field":"value"}"#
        );
        assert_eq!(
            r.render("{{ kv(key='my-key').field }}", &vars()).unwrap(),
            "value"
        );
    }

    #[test]
    fn a_missing_key_is_null_unless_error_on_missing() {
        let dir = tempfile::tempdir().unwrap();
        let r = renderer(&dir);
        assert_eq!(r.render("[{{ kv('nope') }}]", &vars()).unwrap(), "[]");
        assert_eq!(
            r.render("{{ kv('nope').field ?? 'none' }}", &vars())
                .unwrap(),
            "none"
        );
        assert_eq!(
            r.render("[{{ kv('nope', errorOnMissing=false) }}]", &vars())
                .unwrap(),
            "[]"
        );
        for template in [
            "{{ kv('nope', 'io.kestra.tests', true) }}",
            "{{ kv('nope', errorOnMissing=inputs.yes) }}",
        ] {
            let err = message(r.render(template, &vars()).unwrap_err());
            assert!(
                err.contains("The key 'nope' does not exist in the namespace 'io.kestra.tests'."),
                "{template}: {err}"
            );
        }
    }

    #[test]
    fn kv_reads_another_namespace_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let r = renderer(&dir);
        assert_eq!(
            r.render("{{ kv('their-key', 'company.other') + 1 }}", &vars())
                .unwrap(),
            "43"
        );
        assert_eq!(
            r.render("{{ kv('their-key', namespace='company.other') }}", &vars())
                .unwrap(),
            "42"
        );
        // A parent namespace is always reachable, even with nothing in it.
        assert_eq!(
            r.render("[{{ kv('x', 'io.kestra') }}]", &vars()).unwrap(),
            "[]"
        );
        let err = message(r.render("{{ kv('x', 'nowhere') }}", &vars()).unwrap_err());
        assert!(
            err.contains("Cannot access the KV store. The namespace 'nowhere' does not exist."),
            "{err}"
        );
        let err = message(r.render("{{ kv('a/b') }}", &vars()).unwrap_err());
        assert!(
            err.contains("Key must start with an alphanumeric character"),
            "{err}"
        );
    }

    #[test]
    fn kv_without_storage_or_key_says_why() {
        let no_storage = Renderer::new();
        let err = message(no_storage.render("{{ kv('k') }}", &vars()).unwrap_err());
        assert!(err.contains("needs internal storage"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = message(renderer(&dir).render("{{ kv() }}", &vars()).unwrap_err());
        assert!(
            err.contains("The 'kv' function expects an argument 'key'."),
            "{err}"
        );
    }
}
