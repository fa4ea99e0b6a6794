//! Flow routes, as Kestra's `FlowController`: create, update and read a flow, and validate
//! flow sources without storing them.
//!
//! A flow is answered in Kestra's JSON shape: the YAML as written (its properties in their
//! order, nulls left out), with `revision`, `labels` as a list of `{key, value}`, `disabled`
//! and `deleted`, and `source` when asked for (`?source=true`; always after a create or
//! update, as Kestra answers a `FlowWithSource`). Kestra also writes every task property's
//! default value (`allowFailure: false`, …); flowbench writes the properties as given.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ApiError, AppState};
use crate::service::ServiceError;

/// A flow in Kestra's JSON shape, with its `source` when `with_source`.
fn flow_json(f: &crate::flow::Flow, with_source: bool) -> Value {
    let mut written = match serde_yaml_ng::from_str::<Value>(&f.source) {
        Ok(Value::Object(doc)) => doc,
        // A stored flow parsed once; its source is a map.
        _ => Map::new(),
    };
    let mut out = Map::new();
    out.insert("id".into(), f.id.clone().into());
    out.insert("namespace".into(), f.namespace.clone().into());
    out.insert("revision".into(), f.revision.into());
    for key in [
        "id",
        "namespace",
        "revision",
        "labels",
        "disabled",
        "deleted",
    ] {
        written.remove(key);
    }
    if !f.labels.is_empty() {
        out.insert(
            "labels".into(),
            serde_json::to_value(&f.labels).expect("labels serialize"),
        );
    }
    out.extend(written.into_iter().filter(|(_, v)| !v.is_null()));
    out.insert("disabled".into(), f.disabled.into());
    out.insert("deleted".into(), false.into());
    if with_source {
        out.insert("source".into(), f.source.clone().into());
    }
    Value::Object(out)
}

#[utoipa::path(post, path = "/api/v1/flows", tag = "Flows",
    request_body(content = String, content_type = "application/x-yaml", description = "The flow's YAML source"),
    responses(
        (status = 200, description = "The flow, created or updated, with its source", body = Object),
        (status = 422, description = "The flow is invalid", body = super::ErrorBody)))]
pub(super) async fn create_flow(
    State(o): State<AppState>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let flow = o.deploy(&body, "request body").await?;
    Ok(Json(flow_json(&flow, true)))
}

#[utoipa::path(put, path = "/api/v1/flows/{namespace}/{id}", tag = "Flows", params(("namespace" = String, Path, description = "The flow's namespace"), ("id" = String, Path, description = "The flow's id")),
    request_body(content = String, content_type = "application/x-yaml", description = "The flow's YAML source"),
    responses(
        (status = 200, description = "The flow, updated, with its source", body = Object),
        (status = 422, description = "The flow is invalid, or names another flow", body = super::ErrorBody)))]
pub(super) async fn update_flow(
    State(o): State<AppState>,
    Path((namespace, id)): Path<(String, String)>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let parsed = crate::flow::parse_flow(&body, "request body").map_err(ServiceError::from)?;
    if parsed.namespace != namespace || parsed.id != id {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the body defines flow `{}.{}`, the path names `{namespace}.{id}`",
                parsed.namespace, parsed.id
            ),
        ));
    }
    let flow = o.deploy(&body, "request body").await?;
    Ok(Json(flow_json(&flow, true)))
}

/// The options of `GET /api/v1/flows/{namespace}/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub(super) struct FlowQuery {
    /// Include the flow's YAML source as `source`.
    #[serde(default)]
    source: bool,
    /// This revision rather than the latest. flowbench keeps only the latest: any other is
    /// not found.
    revision: Option<i32>,
}

#[utoipa::path(get, path = "/api/v1/flows/{namespace}/{id}", tag = "Flows",
    params(("namespace" = String, Path, description = "The flow's namespace"), ("id" = String, Path, description = "The flow's id"), FlowQuery),
    responses(
        (status = 200, description = "The flow, in Kestra's JSON shape", body = Object),
        (status = 404, description = "No such flow, or not at that revision", body = super::ErrorBody)))]
pub(super) async fn get_flow(
    State(o): State<AppState>,
    Path((namespace, id)): Path<(String, String)>,
    Query(query): Query<FlowQuery>,
) -> Result<Json<Value>, ApiError> {
    let flow = o.flow(&namespace, &id).await?;
    if let Some(revision) = query.revision.filter(|r| *r != flow.revision) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "flow `{namespace}.{id}` has no revision {revision} here: only its latest, {}, is kept",
                flow.revision
            ),
        ));
    }
    Ok(Json(flow_json(&flow, query.source)))
}

/// One flow's verdict, as Kestra's `ValidateConstraintViolation` (nulls left out).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ValidateConstraintViolation {
    /// The flow's id, when the document is a valid flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<String>,
    /// The flow's namespace, when the document is a valid flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    /// The document's place in the body, from 0.
    index: usize,
    /// Why the document is not a valid flow; absent when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    constraints: Option<String>,
    /// The document gives a `revision` other than the stored flow's next one.
    outdated: bool,
    /// Where the flow uses what Kestra deprecates (a type, a property), e.g. `tasks[1]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    deprecation_paths: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
    /// The old type names used, each with the name that replaces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    infos: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/api/v1/flows/validate", tag = "Flows",
    request_body(content = String, content_type = "application/x-yaml", description = "One or more flows' YAML, separated by `---` lines"),
    responses(
        (status = 200, description = "One verdict per document, in order; nothing is stored", body = Vec<ValidateConstraintViolation>),
        (status = 503, description = "The database does not answer", body = super::ErrorBody)))]
pub(super) async fn validate_flows(
    State(o): State<AppState>,
    body: String,
) -> Result<Json<Vec<ValidateConstraintViolation>>, ApiError> {
    let mut verdicts = Vec::new();
    for (index, source) in split_documents(&body).into_iter().enumerate() {
        let mut verdict = ValidateConstraintViolation {
            index,
            ..Default::default()
        };
        match crate::flow::parse_flow(source, &format!("document {index}")) {
            Err(e) => verdict.constraints = Some(e.to_string()),
            Ok(flow) => {
                let written: Value = serde_yaml_ng::from_str(source).unwrap_or_default();
                if let Some(sent) = written.get("revision").and_then(Value::as_i64) {
                    let last = o
                        .store()
                        .flow(&flow.namespace, &flow.id)
                        .await
                        .map_err(ServiceError::from)?
                        .map_or(0, |(revision, _)| revision);
                    verdict.outdated = sent != i64::from(last) + 1;
                }
                verdict.deprecation_paths = Some(deprecation_paths(&written));
                verdict.warnings = Some(warnings(&written));
                verdict.infos = Some(relocations(&written));
                verdict.flow = Some(flow.id);
                verdict.namespace = Some(flow.namespace);
            }
        }
        verdicts.push(verdict);
    }
    Ok(Json(verdicts))
}

/// The documents of a multi-document body: split at each `---` line but a first one, as
/// Kestra splits at a newline followed by `---`.
fn split_documents(body: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if offset > 0 && line.trim_end() == "---" {
            documents.push(&body[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push(&body[start..]);
    documents
}

/// The task types Kestra 58c1ca2d0 marks `@Deprecated`, among those flowbench runs.
const DEPRECATED_TYPES: &[&str] = &[
    "io.kestra.plugin.core.flow.EachSequential",
    "io.kestra.plugin.core.flow.EachParallel",
    "io.kestra.plugin.core.debug.Echo",
];

/// `(type, property)`: the properties Kestra 58c1ca2d0 marks `@Deprecated`, among those of
/// the task types flowbench runs.
const DEPRECATED_PROPERTIES: &[(&str, &str)] = &[
    ("io.kestra.plugin.core.flow.Pause", "tasks"),
    ("io.kestra.plugin.core.flow.Subflow", "outputs"),
];

/// The flow's deprecated top-level properties (`listeners`, `taskDefaults`), tasks and task
/// properties, as Kestra's `FlowService#deprecationPaths` lists them. Kestra drops the
/// parent's path of a nested task (`tasks[1]` for the second child of `tasks[0]`); here the
/// whole path is given (`tasks[0].tasks[1]`).
fn deprecation_paths(flow: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(written) = map.get("type").and_then(Value::as_str) {
                    let kind = crate::tasks::TaskKind::type_named(written).unwrap_or(written);
                    if DEPRECATED_TYPES.contains(&kind) {
                        out.push(path.to_string());
                    }
                    for (_, property) in DEPRECATED_PROPERTIES.iter().filter(|(t, _)| *t == kind) {
                        if map.get(*property).is_some_and(|v| !v.is_null()) {
                            out.push(format!("{path}.{property}"));
                        }
                    }
                }
                for (key, v) in map {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(v, &path, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out: Vec<String> = ["listeners", "taskDefaults"]
        .into_iter()
        .filter(|k| flow.get(k).is_some_and(|v| !v.is_null()))
        .map(String::from)
        .collect();
    walk(flow, "", &mut out);
    out
}

/// Kestra's `FlowService#warnings`: a `Flow` trigger with neither `conditions` nor
/// `preconditions` starts on every execution of every flow.
fn warnings(flow: &Value) -> Vec<String> {
    let Some(triggers) = flow.get("triggers").and_then(Value::as_array) else {
        return Vec::new();
    };
    triggers
        .iter()
        .filter(|t| {
            t.get("type")
                .and_then(Value::as_str)
                .is_some_and(|k| crate::flow_trigger::FLOW_TRIGGER_TYPES.contains(&k))
                && t.get("conditions")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
                && t.get("preconditions").is_none_or(Value::is_null)
        })
        .map(|t| {
            format!(
                "This flow will be triggered for EVERY execution of EVERY flow on your instance. We recommend adding the preconditions property to the Flow trigger '{}'.",
                t.get("id").and_then(Value::as_str).unwrap_or_default()
            )
        })
        .collect()
}

/// Kestra's `FlowService#relocations`, as `infos`: each old type name written (a task's, or
/// a trigger's), with the name that replaces it. Old condition names are not listed.
fn relocations(flow: &Value) -> Vec<String> {
    fn replacement(written: &str) -> Option<String> {
        if let Some(kind) = crate::tasks::TaskKind::type_named(written).filter(|k| *k != written) {
            return Some(kind.to_string());
        }
        let trigger = written.strip_prefix("io.kestra.core.models.triggers.types.")?;
        ["Webhook", "Schedule", "Flow"]
            .contains(&trigger)
            .then(|| format!("io.kestra.plugin.core.trigger.{trigger}"))
    }
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for v in map.values() {
                    if let Some((written, current)) =
                        v.as_str().and_then(|w| Some((w, replacement(w)?)))
                    {
                        out.push(format!("{written} is replaced by {current}"));
                    }
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(flow, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn documents_split_at_separator_lines_only() {
        let body = "id: a\nmessage: \"strange---string\"\n---\nid: b\nformat: ---x\n---\n\nid: c\n";
        let docs = split_documents(body);
        assert_eq!(docs.len(), 3, "{docs:?}");
        assert!(docs[0].contains("strange---string"));
        assert!(docs[1].contains("id: b") && docs[1].contains("---x"));
        assert!(docs[2].contains("id: c"));
        // A leading separator opens the first document, as in Kestra.
        assert_eq!(split_documents("---\nid: a\n").len(), 1);
    }

    #[test]
    fn deprecation_paths_name_deprecated_types_and_properties() {
        let flow = yaml(
            "id: f\nnamespace: n\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n  - id: b\n    type: io.kestra.core.tasks.flows.EachSequential\n    value: [1]\n    tasks:\n      - id: c\n        type: io.kestra.plugin.core.debug.Echo\n        format: x\n  - id: p\n    type: io.kestra.plugin.core.flow.Pause\n    tasks: []\n",
        );
        assert_eq!(
            deprecation_paths(&flow),
            ["tasks[1]", "tasks[1].tasks[0]", "tasks[2].tasks"]
        );
    }

    #[test]
    fn infos_name_old_type_names_and_their_replacement() {
        let flow = yaml(
            "id: f\nnamespace: n\ntasks:\n  - id: a\n    type: io.kestra.core.tasks.log.Log\n    message: hi\ntriggers:\n  - id: t\n    type: io.kestra.core.models.triggers.types.Webhook\n    key: k\n",
        );
        assert_eq!(
            relocations(&flow),
            [
                "io.kestra.core.tasks.log.Log is replaced by io.kestra.plugin.core.log.Log",
                "io.kestra.core.models.triggers.types.Webhook is replaced by io.kestra.plugin.core.trigger.Webhook"
            ]
        );
    }

    #[test]
    fn a_flow_trigger_without_conditions_is_warned_about() {
        let flow = yaml(
            "triggers:\n  - id: every\n    type: io.kestra.plugin.core.trigger.Flow\n  - id: some\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        in: [SUCCESS]\n",
        );
        let w = warnings(&flow);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("'every'"), "{w:?}");
    }
}
