//! Kestra's `read(path)` and `fileSize(path)` functions
//! (`core/src/main/java/io/kestra/core/runners/pebble/functions/ReadFileFunction.java` and
//! `FileSizeFunction.java`, commit 58c1ca2d): the text, or the size in bytes, of a file in
//! internal storage, given by its `kestra:///` URI. As in Kestra, the file must belong to
//! the current execution (`kestra:///{namespace}/{flow}/executions/{execution}/…`), or to
//! the execution that triggered it (a Subflow's parent). Kestra's `read` also reads a
//! namespace file from a relative path; flowbench has no namespace files, and says so.

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, State};

use crate::storage::Storage;

const SCHEME: &str = "kestra:///";

/// Calls of the functions, which [`super::Renderer`] looks for to give the template the
/// execution's and its trigger's ids.
pub(crate) const CALLS: [&str; 2] = ["read(", "fileSize("];

pub(crate) fn register(env: &mut Environment<'static>, storage: Option<Storage>) {
    let for_read = storage.clone();
    env.add_function(
        "read",
        move |state: &State, path: Option<Value>, kwargs: Kwargs| {
            let (storage, uri) = owned_file(for_read.as_ref(), state, path, kwargs, "read")?;
            storage
                .read_to_string(&uri)
                .map(Value::from)
                .map_err(|e| invalid(format!("Unable to read the file '{uri}': {e}")))
        },
    );
    env.add_function(
        "fileSize",
        move |state: &State, path: Option<Value>, kwargs: Kwargs| {
            let (storage, uri) = owned_file(storage.as_ref(), state, path, kwargs, "fileSize")?;
            let path = storage.path(&uri).map_err(|e| invalid(e.to_string()))?;
            std::fs::metadata(&path)
                .map(|m| Value::from(m.len()))
                .map_err(|e| invalid(format!("Unable to get the size of '{uri}': {e}")))
        },
    );
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// The storage and the URI `path` names, once checked to belong to the execution.
fn owned_file<'s>(
    storage: Option<&'s Storage>,
    state: &State,
    path: Option<Value>,
    kwargs: Kwargs,
    function: &str,
) -> Result<(&'s Storage, String), Error> {
    let named: Option<Value> = kwargs.get("path")?;
    kwargs.assert_all_used()?;
    let expects = || {
        invalid(format!(
            "The '{function}' function expects an argument 'path' that is a path to a namespace file or an internal storage URI."
        ))
    };
    let path = path.or(named).ok_or_else(expects)?;
    let path = path.as_str().ok_or_else(expects)?.to_owned();
    if !path.starts_with(SCHEME) {
        return Err(invalid(format!(
            "Unable to read the namespace file '{path}': flowbench has no namespace files"
        )));
    }
    let attr = |var: &str, key: &str| -> Option<String> {
        state
            .lookup(var)?
            .get_attr(key)
            .ok()?
            .as_str()
            .map(str::to_owned)
    };
    let owned_by = |namespace: Option<String>, flow: Option<String>, execution: Option<String>| {
        matches!((namespace, flow, execution), (Some(n), Some(f), Some(e))
            if path.starts_with(&format!("{}/", Storage::execution_uri(&n, &f, &e))))
    };
    let own = owned_by(
        attr("flow", "namespace"),
        attr("flow", "id"),
        attr("execution", "id"),
    ) || owned_by(
        attr("trigger", "namespace"),
        attr("trigger", "flowId"),
        attr("trigger", "executionId"),
    );
    if !own {
        return Err(invalid(format!(
            "Unable to read the file '{path}' as it didn't belong to the current execution"
        )));
    }
    let storage = storage.ok_or_else(|| {
        invalid(format!(
            "The '{function}' function needs internal storage, and this renderer has none"
        ))
    })?;
    Ok((storage, path))
}
