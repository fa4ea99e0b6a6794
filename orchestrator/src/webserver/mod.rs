//! The HTTP API (axum), with the routes Kestra users and load tools call.
//!
//! | route | does |
//! |---|---|
//! | `GET /health`, `GET /api/v1/health` | 200 `{"status":"UP"}` when the database answers |
//! | `POST /api/v1/flows` (YAML body) | creates or updates a flow |
//! | `PUT /api/v1/flows/{namespace}/{id}` (YAML body) | updates a flow |
//! | `GET /api/v1/flows/{namespace}/{id}` (`?source=true`, `?revision=N`) | the flow in Kestra's JSON shape, with its `source` when asked |
//! | `POST /api/v1/flows/validate` (YAML body, documents separated by `---` lines) | one `ValidateConstraintViolation` per document; nothing is stored |
//! | `POST /api/v1/executions/{namespace}/{id}` (inputs as `multipart/form-data`, or a JSON object; `?labels=k:v` repeated, `?wait=true`) | creates an execution: Kestra's `ExecutionResponse`, the execution and its UI `url`; with `wait=true`, once it has ended. 404 unknown flow, 409 disabled, 422 bad inputs or labels |
//! | `GET/POST/PUT /api/v1/executions/webhook/{namespace}/{id}/{key}` | fires a webhook trigger |
//! | `GET /api/v1/executions/search` (`namespace`, `flowId`, `state`, `startDate`, `endDate`, `timeRange`, `labels`, `page` from 1, `size`, `sort` like `state.startDate:desc`) | `{"results": [...], "total": N}`; 422 naming a bad parameter |
//! | `GET /api/v1/executions/{id}` | the execution, in Kestra's JSON shape |
//! | `DELETE /api/v1/executions/{id}` (`deleteLogs`, `deleteStorage`, both true by default) | deletes it, whatever its state: 204, 404 unknown |
//! | `POST /api/v1/executions/{id}/resume` (the Pause's `onResume` inputs: `multipart/form-data`, or a JSON object) | resumes a paused execution: 204, 409 when it is not paused |
//! | `DELETE /api/v1/executions/{id}/kill` (`isOnKillCascade`, default true) | queues the kill for the executor: 202; the execution goes KILLING, its running task runs stop on their workers, it ends KILLED, and so do the executions its Subflow tasks started when cascading; 409 for an ended execution without cascade, 404 for an unknown one |
//! | `POST /api/v1/executions/{id}/restart` | restarts an ended execution in place (its FAILED task runs and their parents run again, one attempt up): the execution, RESTARTED; 409 while it runs, 422 when no task run failed |
//! | `GET /api/v1/executions/{executionId}/follow` | server-sent events: the execution on each change (`progress`), then `end` once terminal |
//! | `GET /api/v1/logs/{executionId}` (`minLevel`, `taskId`, `taskRunId`, `attempt`) | its log lines, in Kestra's shape |
//! | `GET /api/v1/logs/{executionId}/follow` (`minLevel`) | server-sent events (`progress`): its lines indexed so far, then each line indexed later |
//!
//! Inputs in `multipart/form-data` are read as Kestra's `FlowInputOutput` reads them: a
//! text part is the input its name names; a file part is the input its *file name* names
//! (`curl -F "files=@data.csv;filename=myInput"`), stored in internal storage under the
//! execution's `inputs/` folder, the value being its `kestra:///` URI. A JSON object of
//! inputs is still taken (flowbench's own clients send one). Execution ids have Kestra's
//! short base-62 form ([`crate::model::new_id`]).
//!
//! With basic authentication ([`BasicAuth`], the server's `--basic-auth-username` and
//! `--basic-auth-password`), every route but the health checks and the webhooks answers 401
//! without the credentials ([`auth`]); the OpenAPI document (`/api/v1/openapi.json`) declares
//! the `basicAuth` scheme on the routes it guards.

pub mod auth;
mod executions;
mod flows;
mod follow;
mod logs;

use auth::SecurityScheme;
pub use auth::{BasicAuth, BasicAuthError};

use std::future::Future;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::executor::RestartError;
use crate::flow::FlowLookupError;
use crate::service::{Orchestrator, ServiceError};
use crate::storage::Storage;
use crate::tasks::ResumeError;

pub(crate) type AppState = Arc<Orchestrator>;

/// The OpenAPI document's root; each handler's `#[utoipa::path]` adds its operation.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "flowbench orchestrator",
        description = "Kestra's HTTP API, as the flowbench reference orchestrator serves it."
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecurityScheme)
)]
struct ApiDoc;

/// The routes and the OpenAPI document that describes them, built from the same handlers.
pub fn router_and_api(orchestrator: Arc<Orchestrator>) -> (Router, utoipa::openapi::OpenApi) {
    let (router, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(api_health))
        .routes(routes!(flows::create_flow))
        .routes(routes!(flows::get_flow, flows::update_flow))
        .routes(routes!(flows::validate_flows))
        .routes(routes!(executions::webhook))
        .routes(routes!(executions::create))
        .routes(routes!(executions::search))
        .routes(routes!(
            executions::get_execution,
            executions::delete_execution
        ))
        .routes(routes!(executions::resume))
        .routes(routes!(executions::kill))
        .routes(routes!(executions::restart))
        .routes(routes!(follow::follow_execution))
        .routes(routes!(logs::get_logs))
        .routes(routes!(logs::follow_logs))
        .with_state(orchestrator)
        .split_for_parts();
    // The routes are in the document only now: mark those basic authentication guards.
    auth::mark_guarded(&mut api);
    for item in api.paths.paths.values_mut() {
        for op in auth::operations(item) {
            if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some() {
                document_error(
                    op,
                    "400",
                    "A path or query parameter, or the body, cannot be read as its type",
                );
            }
        }
    }
    let router = router.layer(axum::middleware::map_response(json_rejection));
    (router, api)
}

/// Adds an error answer with `status` to `op`, unless it documents one already.
pub(crate) fn document_error(op: &mut utoipa::openapi::path::Operation, status: &str, why: &str) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            ResponseBuilder::new()
                .description(why)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
                .into()
        });
}

/// axum's own rejections (a query parameter that is not a number, a body that is not
/// UTF-8…) are plain text; every error answer of this API is an [`ErrorBody`].
async fn json_rejection(response: Response) -> Response {
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    if !plain || !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    ApiError(status, String::from_utf8_lossy(&body).into_owned()).into_response()
}

/// The routes, and the OpenAPI document at `/api/v1/openapi.json`, with no authentication.
pub fn router(orchestrator: Arc<Orchestrator>) -> Router {
    router_with_auth(orchestrator, None)
}

/// [`router`], every route but the open ones requiring `auth` when given.
pub fn router_with_auth(orchestrator: Arc<Orchestrator>, auth: Option<BasicAuth>) -> Router {
    let (router, api) = router_and_api(orchestrator);
    let api = Arc::new(api);
    let router = router.route(
        "/api/v1/openapi.json",
        get(move || {
            let api = api.clone();
            async move { Json(api) }
        }),
    );
    match auth {
        Some(auth) => router.layer(axum::middleware::from_fn_with_state(
            Arc::new(auth),
            auth::require,
        )),
        None => router,
    }
}

/// Ends the server-sent event streams when the server shuts down: they follow an execution
/// or its logs for as long as the client stays, and graceful shutdown waits for every
/// response to end.
#[derive(Clone, Default)]
pub(crate) struct StreamsEnd(tokio_util::sync::CancellationToken);

impl StreamsEnd {
    /// `stream`, ended when the server shuts down (never, for a router served otherwise).
    pub(crate) fn bound<S: futures::Stream>(
        end: Option<axum::Extension<StreamsEnd>>,
        stream: S,
    ) -> impl futures::Stream<Item = S::Item> {
        use futures::StreamExt;
        let token = end.map(|e| e.0.0).unwrap_or_default();
        stream.take_until(token.cancelled_owned())
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish; server-sent event
/// streams end then.
pub async fn serve(
    listener: tokio::net::TcpListener,
    orchestrator: Arc<Orchestrator>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_auth(listener, orchestrator, None, shutdown).await
}

/// [`serve`], with basic authentication when `auth` is given.
pub async fn serve_with_auth(
    listener: tokio::net::TcpListener,
    orchestrator: Arc<Orchestrator>,
    auth: Option<BasicAuth>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let streams = StreamsEnd::default();
    let router = router_with_auth(orchestrator, auth).layer(axum::Extension(streams.clone()));
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            streams.0.cancel();
        })
        .await
}

/// The body of every error answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, naming the flow, execution or input.
    pub message: String,
}

#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { message: self.1 })).into_response()
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
            ServiceError::Ended(_) | ServiceError::Restart(RestartError::NotEnded { .. }) => {
                StatusCode::CONFLICT
            }
            ServiceError::Restart(RestartError::NothingToRestart(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ServiceError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ServiceError::Lookup(_) | ServiceError::Repository(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError(status, e.to_string())
    }
}

#[utoipa::path(get, path = "/health", tag = "Health",
    responses(
        (status = 200, description = "The database answers", body = Object, example = json!({"status": "UP"})),
        (status = 503, description = "The database does not answer", body = ErrorBody)))]
async fn health(State(o): State<AppState>) -> Result<Json<Value>, ApiError> {
    o.store()
        .counts()
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(json!({ "status": "UP" })))
}

/// `/health` under the API's prefix.
#[utoipa::path(get, path = "/api/v1/health", tag = "Health",
    responses(
        (status = 200, description = "The database answers", body = Object),
        (status = 503, description = "The database does not answer", body = ErrorBody)))]
async fn api_health(state: State<AppState>) -> Result<Json<Value>, ApiError> {
    health(state).await
}

pub(crate) fn unprocessable(message: String) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// Input values from a request body, for the execution `execution_id`: a JSON object, or
/// Kestra's `multipart/form-data`, whose text fields are values and whose file parts (the
/// input named by the part's file name) are stored in internal storage under the
/// execution's `inputs/` folder, the value being their `kestra:///` URI (Kestra's
/// `FlowInputOutput`).
pub(crate) async fn input_values(
    o: &Orchestrator,
    execution_id: &str,
    request: Request,
) -> Result<Map<String, Value>, ApiError> {
    if !is_multipart(&request) {
        return json_inputs(request).await;
    }
    let exec = o.execution(execution_id).await?;
    read_inputs(o, (&exec.namespace, &exec.flow_id, &exec.id), request).await
}

/// Inputs as a JSON object; no body is no inputs.
async fn json_inputs(request: Request) -> Result<Map<String, Value>, ApiError> {
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|e| unprocessable(format!("inputs: {e}")))?;
    if body.is_empty() {
        return Ok(Map::new());
    }
    serde_json::from_slice(&body)
        .map_err(|e| unprocessable(format!("inputs must be a JSON object: {e}")))
}

fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"))
}

/// [`input_values`] for an execution that is not stored yet, named by its `(namespace,
/// flow id, execution id)`: a new one, whose files must be under its own folder before it
/// is created (Kestra's `ExecutionController#create`).
pub(crate) async fn read_inputs(
    o: &Orchestrator,
    (namespace, flow_id, execution_id): (&str, &str, &str),
    request: Request,
) -> Result<Map<String, Value>, ApiError> {
    if !is_multipart(&request) {
        return json_inputs(request).await;
    }
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| unprocessable(format!("inputs: {e}")))?;
    let mut inputs = Map::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| unprocessable(format!("inputs: {e}")))?
    {
        let (name, value) = match field.file_name().map(str::to_string) {
            // A file part: its file name is the input's id, as Kestra's `FlowInputOutput`
            // reads it (`curl -F "files=@data.csv;filename=myInput"`). It is stored as
            // `{id}.upl`, Kestra's `FileInput` default extension.
            Some(id) => {
                if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\\']) {
                    return Err(unprocessable(format!(
                        "inputs: a file part's file name is the input's id, and `{id}` is not one"
                    )));
                }
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| unprocessable(format!("input `{id}`: {e}")))?;
                if data.is_empty() {
                    return Err(unprocessable(format!(
                        "input `{id}`: can't upload an empty file"
                    )));
                }
                let uri =
                    Storage::input_uri(namespace, flow_id, execution_id, &id, &format!("{id}.upl"));
                o.storage().write(&uri, &data).map_err(|e| {
                    let status = if e.kind() == std::io::ErrorKind::InvalidInput {
                        StatusCode::UNPROCESSABLE_ENTITY
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    };
                    ApiError(status, format!("input `{id}`: cannot store the file: {e}"))
                })?;
                (id, uri)
            }
            None => {
                let Some(name) = field.name().map(str::to_string) else {
                    continue;
                };
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| unprocessable(format!("input `{name}`: {e}")))?;
                let text = String::from_utf8(data.to_vec())
                    .map_err(|_| unprocessable(format!("input `{name}` is not UTF-8 text")))?;
                (name, text)
            }
        };
        inputs.insert(name, Value::String(value));
    }
    Ok(inputs)
}
