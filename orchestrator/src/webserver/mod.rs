//! The HTTP API (axum), with the routes Kestra users and load tools call.
//!
//! | route | does |
//! |---|---|
//! | `GET /health`, `GET /api/v1/health` | 200 `{"status":"UP"}` when the database answers |
//! | `POST /api/v1/flows` (YAML body) | creates or updates a flow |
//! | `PUT /api/v1/flows/{namespace}/{id}` (YAML body) | updates a flow |
//! | `GET /api/v1/flows/{namespace}/{id}` (`?source=true`, `?revision=N`) | the flow in Kestra's JSON shape, with its `source` when asked |
//! | `POST /api/v1/flows/validate` (YAML body, documents separated by `---` lines) | one `ValidateConstraintViolation` per document; nothing is stored |
//! | `POST /api/v1/executions/{namespace}/{id}` (optional JSON object of inputs) | triggers an execution |
//! | `GET/POST/PUT /api/v1/executions/webhook/{namespace}/{id}/{key}` | fires a webhook trigger |
//! | `GET /api/v1/executions/{id}` | the execution, in Kestra's JSON shape |
//! | `POST /api/v1/executions/{id}/resume` (the Pause's `onResume` inputs: `multipart/form-data`, or a JSON object) | resumes a paused execution: 204, 409 when it is not paused |
//! | `GET /api/v1/executions/{executionId}/follow` | server-sent events: the execution on each change (`progress`), then `end` once terminal |
//! | `GET /api/v1/logs/{executionId}` (`minLevel`, `taskId`, `taskRunId`, `attempt`) | its log lines, in Kestra's shape |
//! | `GET /api/v1/logs/{executionId}/follow` (`minLevel`) | server-sent events (`progress`): its lines indexed so far, then each line indexed later |
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
        .routes(routes!(executions::trigger))
        .routes(routes!(executions::get_execution))
        .routes(routes!(executions::resume))
        .routes(routes!(follow::follow_execution))
        .routes(routes!(logs::get_logs))
        .routes(routes!(logs::follow_logs))
        .with_state(orchestrator)
        .split_for_parts();
    // The routes are in the document only now: mark those basic authentication guards.
    auth::mark_guarded(&mut api);
    (router, api)
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

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
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
    axum::serve(listener, router_with_auth(orchestrator, auth))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The body of every error answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, naming the flow, execution or input.
    pub message: String,
}

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
/// Kestra's `multipart/form-data`, whose text fields are values and whose file parts are
/// stored in internal storage under the execution's `inputs/` folder, the value being
/// their `kestra:///` URI (Kestra's `FlowInputOutput`).
pub(crate) async fn input_values(
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
