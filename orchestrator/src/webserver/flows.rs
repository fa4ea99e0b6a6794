//! Flow routes: create, update and read a flow's source.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::service::ServiceError;

fn flow_json(f: &crate::flow::Flow) -> Value {
    json!({ "id": f.id, "namespace": f.namespace, "revision": f.revision, "source": f.source })
}

#[utoipa::path(post, path = "/api/v1/flows", tag = "Flows",
    request_body(content = String, content_type = "application/x-yaml", description = "The flow's YAML source"),
    responses(
        (status = 200, description = "The flow, created or updated", body = Object),
        (status = 422, description = "The flow is invalid", body = super::ErrorBody)))]
pub(super) async fn create_flow(
    State(o): State<AppState>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let flow = o.deploy(&body, "request body").await?;
    Ok(Json(flow_json(&flow)))
}

#[utoipa::path(put, path = "/api/v1/flows/{namespace}/{id}", tag = "Flows", params(("namespace" = String, Path, description = "The flow's namespace"), ("id" = String, Path, description = "The flow's id")),
    request_body(content = String, content_type = "application/x-yaml", description = "The flow's YAML source"),
    responses(
        (status = 200, description = "The flow, updated", body = Object),
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
    Ok(Json(flow_json(&flow)))
}

#[utoipa::path(get, path = "/api/v1/flows/{namespace}/{id}", tag = "Flows", params(("namespace" = String, Path, description = "The flow's namespace"), ("id" = String, Path, description = "The flow's id")),
    responses(
        (status = 200, description = "The flow", body = Object),
        (status = 404, description = "No such flow", body = super::ErrorBody)))]
pub(super) async fn get_flow(
    State(o): State<AppState>,
    Path((namespace, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let flow = o.flow(&namespace, &id).await?;
    Ok(Json(flow_json(&flow)))
}
