//! Log routes.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

use super::{ApiError, AppState};

#[utoipa::path(get, path = "/api/v1/logs/{execution_id}", tag = "Logs",
    params(("execution_id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The execution's log lines", body = Vec<Object>),
        (status = 404, description = "No such execution", body = super::ErrorBody)))]
pub(super) async fn get_logs(
    State(o): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let logs = o.logs(&id).await?;
    Ok(Json(
        serde_json::to_value(logs).expect("log entries serialize"),
    ))
}
