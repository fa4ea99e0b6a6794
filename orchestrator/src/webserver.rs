//! The HTTP API (axum), with the routes Kestra users and load tools call.
//!
//! | route | does |
//! |---|---|
//! | `GET /health`, `GET /api/v1/health` | 200 `{"status":"UP"}` when the database answers |
//! | `POST /api/v1/flows` (YAML body) | creates or updates a flow |
//! | `PUT /api/v1/flows/{namespace}/{id}` (YAML body) | updates a flow |
//! | `GET /api/v1/flows/{namespace}/{id}` | the flow's source and revision |
//! | `POST /api/v1/executions/{namespace}/{id}` (optional JSON object of inputs) | triggers an execution |
//! | `GET/POST/PUT /api/v1/executions/webhook/{namespace}/{id}/{key}` | fires a webhook trigger |
//! | `GET /api/v1/executions/{id}` | the execution, in Kestra's JSON shape |
//! | `POST /api/v1/executions/{id}/resume` (the Pause's `onResume` inputs: `multipart/form-data`, or a JSON object) | resumes a paused execution: 204, 409 when it is not paused |
//! | `GET /api/v1/logs/{executionId}` | its log lines |

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::flow::FlowLookupError;
use crate::service::{Orchestrator, ServiceError};
use crate::storage::Storage;
use crate::tasks::ResumeError;

type AppState = Arc<Orchestrator>;

pub fn router(orchestrator: Arc<Orchestrator>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/health", get(health))
        .route("/api/v1/flows", post(create_flow))
        .route(
            "/api/v1/flows/{namespace}/{id}",
            get(get_flow).put(update_flow),
        )
        .route(
            "/api/v1/executions/webhook/{namespace}/{id}/{key}",
            get(webhook).post(webhook).put(webhook),
        )
        .route("/api/v1/executions/{namespace}/{id}", post(trigger))
        .route("/api/v1/executions/{id}", get(get_execution))
        .route("/api/v1/executions/{id}/resume", post(resume))
        .route("/api/v1/logs/{execution_id}", get(get_logs))
        .with_state(orchestrator)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    orchestrator: Arc<Orchestrator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(orchestrator))
        .with_graceful_shutdown(shutdown)
        .await
}

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "message": self.1 }))).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Lookup(FlowLookupError::NotFound { .. })
            | ServiceError::WebhookNotFound(_)
            | ServiceError::ExecutionNotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Flow(_) | ServiceError::Inputs { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Disabled(_) | ServiceError::Resume(ResumeError::NotPaused(_)) => {
                StatusCode::CONFLICT
            }
            ServiceError::Resume(ResumeError::NoTaskRun { .. }) => StatusCode::NOT_FOUND,
            ServiceError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ServiceError::Lookup(_) | ServiceError::Repository(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError(status, e.to_string())
    }
}

async fn health(State(o): State<AppState>) -> Result<Json<Value>, ApiError> {
    o.store()
        .counts()
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(json!({ "status": "UP" })))
}

fn flow_json(f: &crate::flow::Flow) -> Value {
    json!({ "id": f.id, "namespace": f.namespace, "revision": f.revision, "source": f.source })
}

async fn create_flow(State(o): State<AppState>, body: String) -> Result<Json<Value>, ApiError> {
    let flow = o.deploy(&body, "request body").await?;
    Ok(Json(flow_json(&flow)))
}

async fn update_flow(
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
    Ok(Json(flow_json(&flow)))
}

async fn get_flow(
    State(o): State<AppState>,
    Path((namespace, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let flow = o.flow(&namespace, &id).await?;
    Ok(Json(flow_json(&flow)))
}

async fn trigger(
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

async fn webhook(
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

async fn get_execution(
    State(o): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let exec = o.execution(&id).await?;
    Ok(Json(
        serde_json::to_value(exec).expect("an execution serializes"),
    ))
}

async fn resume(
    State(o): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let inputs = input_values(&o, &id, request).await?;
    o.resume(&id, inputs).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn unprocessable(message: String) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// Input values from a request body, for the execution `execution_id`: a JSON object, or
/// Kestra's `multipart/form-data`, whose text fields are values and whose file parts are
/// stored in internal storage under the execution's `inputs/` folder, the value being
/// their `kestra:///` URI (Kestra's `FlowInputOutput`).
async fn input_values(
    o: &Orchestrator,
    execution_id: &str,
    request: Request,
) -> Result<Map<String, Value>, ApiError> {
    let multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    if !multipart {
        let body = Bytes::from_request(request, &())
            .await
            .map_err(|e| unprocessable(format!("inputs: {e}")))?;
        if body.is_empty() {
            return Ok(Map::new());
        }
        return serde_json::from_slice(&body)
            .map_err(|e| unprocessable(format!("inputs must be a JSON object: {e}")));
    }
    let exec = o.execution(execution_id).await?;
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| unprocessable(format!("inputs: {e}")))?;
    let mut inputs = Map::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| unprocessable(format!("inputs: {e}")))?
    {
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        let file_name = field.file_name().map(str::to_string);
        let data = field
            .bytes()
            .await
            .map_err(|e| unprocessable(format!("input `{name}`: {e}")))?;
        let value = match file_name {
            Some(file_name) => {
                // The name's last part only: a client's folders are not the storage's.
                let file_name = file_name
                    .rsplit(['/', '\\'])
                    .next()
                    .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                    .ok_or_else(|| {
                        unprocessable(format!("input `{name}`: file name `{file_name}`"))
                    })?;
                let uri =
                    Storage::input_uri(&exec.namespace, &exec.flow_id, &exec.id, &name, file_name);
                o.storage().write(&uri, &data).map_err(|e| {
                    let status = if e.kind() == std::io::ErrorKind::InvalidInput {
                        StatusCode::UNPROCESSABLE_ENTITY
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    };
                    ApiError(
                        status,
                        format!("input `{name}`: cannot store the file: {e}"),
                    )
                })?;
                uri
            }
            None => String::from_utf8(data.to_vec())
                .map_err(|_| unprocessable(format!("input `{name}` is not UTF-8 text")))?,
        };
        inputs.insert(name, Value::String(value));
    }
    Ok(inputs)
}

async fn get_logs(
    State(o): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let logs = o.logs(&id).await?;
    Ok(Json(
        serde_json::to_value(logs).expect("log entries serialize"),
    ))
}
