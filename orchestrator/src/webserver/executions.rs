//! Execution routes: create, webhook, read, resume, and (at the end) kill and restart.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::{ApiError, AppState, input_values};

#[utoipa::path(post, path = "/api/v1/executions/{namespace}/{id}", tag = "Executions", params(("namespace" = String, Path, description = "The flow's namespace"), ("id" = String, Path, description = "The flow's id")),
    request_body(content = Object, description = "The execution's inputs, a JSON object"),
    responses(
        (status = 200, description = "The execution, created", body = Object),
        (status = 404, description = "No such flow", body = super::ErrorBody),
        (status = 409, description = "The flow is disabled", body = super::ErrorBody),
        (status = 422, description = "The inputs are invalid", body = super::ErrorBody)))]
pub(super) async fn trigger(
    State(o): State<AppState>,
    Path((namespace, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let inputs: Map<String, Value> = if body.is_empty() {
        Map::new()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("inputs must be a JSON object: {e}"),
            )
        })?
    };
    let labels = query
        .get("labels")
        .map(|l| {
            l.split(',')
                .filter_map(|kv| kv.split_once(':'))
                .map(|(k, v)| crate::model::Label {
                    key: k.into(),
                    value: v.into(),
                })
                .collect()
        })
        .unwrap_or_default();
    let exec = o
        .create_execution(&namespace, &id, inputs, labels, None)
        .await?;
    Ok(Json(
        serde_json::to_value(exec).expect("an execution serializes"),
    ))
}

#[utoipa::path(method(get, post, put), path = "/api/v1/executions/webhook/{namespace}/{id}/{key}", tag = "Executions",
    params(("namespace" = String, Path, description = "The flow's namespace"), ("id" = String, Path, description = "The flow's id"),
        ("key" = String, Path, description = "The webhook trigger's key")),
    request_body(content = String, description = "The webhook's body: JSON, or else text, as `trigger.body`"),
    responses(
        (status = 200, description = "The execution, created", body = Object),
        (status = 404, description = "No such flow or webhook key", body = super::ErrorBody),
        (status = 409, description = "The flow is disabled", body = super::ErrorBody)))]
pub(super) async fn webhook(
    State(o): State<AppState>,
    Path((namespace, id, key)): Path<(String, String, String)>,
    Query(parameters): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let headers: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                json!([String::from_utf8_lossy(v.as_bytes())]),
            )
        })
        .collect();
    let mut vars = Map::new();
    vars.insert("body".into(), body);
    vars.insert("headers".into(), Value::Object(headers));
    vars.insert(
        "parameters".into(),
        serde_json::to_value(parameters).expect("strings"),
    );
    let exec = o.webhook(&namespace, &id, &key, vars).await?;
    Ok(Json(
        serde_json::to_value(exec).expect("an execution serializes"),
    ))
}

#[utoipa::path(get, path = "/api/v1/executions/{id}", tag = "Executions",
    params(("id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The execution", body = Object),
        (status = 404, description = "No such execution", body = super::ErrorBody)))]
pub(super) async fn get_execution(
    State(o): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let exec = o.execution(&id).await?;
    Ok(Json(
        serde_json::to_value(exec).expect("an execution serializes"),
    ))
}

#[utoipa::path(post, path = "/api/v1/executions/{id}/resume", tag = "Executions",
    params(("id" = String, Path, description = "The execution's id")),
    request_body(content = Object, description = "The Pause's `onResume` inputs, as a JSON object or `multipart/form-data`"),
    responses(
        (status = 204, description = "The execution is resumed"),
        (status = 404, description = "No such execution", body = super::ErrorBody),
        (status = 409, description = "The execution is not paused", body = super::ErrorBody),
        (status = 422, description = "The inputs are invalid", body = super::ErrorBody)))]
pub(super) async fn resume(
    State(o): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let inputs = input_values(&o, &id, request).await?;
    o.resume(&id, inputs).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `kill`'s query: Kestra's `isOnKillCascade`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct KillQuery {
    /// Whether the executions its Subflow task runs started are killed too (default true).
    #[serde(default = "cascade_by_default")]
    is_on_kill_cascade: bool,
}

fn cascade_by_default() -> bool {
    true
}

/// Kestra's `DELETE /api/v1/executions/{executionId}/kill`: queues the kill for the
/// executor, which moves the execution to KILLING, has the workers stop its running task
/// runs and ends it KILLED. With `isOnKillCascade` (the default) an ended execution is
/// accepted too, for its subflow executions, as Kestra accepts it.
#[utoipa::path(delete, path = "/api/v1/executions/{id}/kill", tag = "Executions",
    params(("id" = String, Path, description = "The execution's id"), KillQuery),
    responses(
        (status = 202, description = "The kill is queued"),
        (status = 404, description = "No such execution", body = super::ErrorBody),
        (status = 409, description = "The execution has ended (without `isOnKillCascade`)", body = super::ErrorBody)))]
pub(super) async fn kill(
    State(o): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<KillQuery>,
) -> Result<StatusCode, ApiError> {
    o.kill(&id, query.is_on_kill_cascade).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Kestra's `POST /api/v1/executions/{executionId}/restart` (without `revision`): the
/// execution, restarted in place, as queued for the executor.
#[utoipa::path(post, path = "/api/v1/executions/{id}/restart", tag = "Executions",
    params(("id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The execution, RESTARTED", body = Object),
        (status = 404, description = "No such execution", body = super::ErrorBody),
        (status = 409, description = "The execution has not ended", body = super::ErrorBody),
        (status = 422, description = "No task run failed: nothing to restart", body = super::ErrorBody)))]
pub(super) async fn restart(
    State(o): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let exec = o.restart(&id).await?;
    Ok(Json(
        serde_json::to_value(exec).expect("an execution serializes"),
    ))
}
