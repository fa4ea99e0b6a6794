//! Execution routes: create, webhook, search, read, delete, resume, kill and restart, as
//! Kestra's `ExecutionController`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, input_values, read_inputs, unprocessable};
use crate::model::{Execution, Label, StateType, new_id};
use crate::repository::search::{Direction, ExecutionSearch, SortField};
use crate::service::CORRELATION_ID;
use crate::service::ServiceError;
use crate::storage::Storage;
use crate::tasks::SYSTEM_PREFIX;

/// How long `wait=true` waits for the execution to end before answering 504. (Kestra waits
/// as long as the client does.)
const WAIT_LIMIT: Duration = Duration::from_secs(3600);

/// Query parameters of `POST /api/v1/executions/{namespace}/{id}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CreateParams {
    /// A label of the execution as `key:value`; repeat the parameter for more
    /// (`?labels=team:data&labels=env:prod`).
    #[serde(default)]
    labels: Vec<String>,
    /// Answer when the execution has ended (terminated, and not paused), with its final
    /// state, rather than as soon as it is created.
    #[serde(default)]
    wait: bool,
}

impl CreateParams {
    fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut params = CreateParams::default();
        for (name, value) in pairs {
            match name.as_str() {
                "labels" => params.labels.push(value.clone()),
                "wait" => params.wait = parse_bool(name, value)?,
                _ => {}
            }
        }
        Ok(params)
    }
}

/// An execution as `POST /api/v1/executions/{namespace}/{id}` answers it: Kestra's
/// `ExecutionResponse`, the execution and the address of its page in Kestra's UI.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ExecutionResponse {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    execution: Value,
    /// `/ui/executions/{namespace}/{flowId}/{id}`: Kestra's `executionUrl`, relative, as
    /// Kestra gives it when `kestra.url` is not set.
    url: String,
}

#[utoipa::path(post, path = "/api/v1/executions/{namespace}/{id}", tag = "Executions",
    params(("namespace" = String, Path, description = "The flow's namespace"), ("id" = String, Path, description = "The flow's id"), CreateParams),
    request_body(content = Object, description = "The flow's inputs as `multipart/form-data` (Kestra's way: text parts are values, file parts are stored in internal storage and their `kestra:///` URI is the value), or as a JSON object"),
    responses(
        (status = 200, description = "The execution, created (with `wait=true`, ended)", body = ExecutionResponse),
        (status = 404, description = "No such flow", body = super::ErrorBody),
        (status = 409, description = "The flow is disabled", body = super::ErrorBody),
        (status = 422, description = "The inputs or a label are invalid", body = super::ErrorBody),
        (status = 504, description = "`wait=true` and the execution did not end within an hour", body = super::ErrorBody)))]
pub(super) async fn create(
    State(o): State<AppState>,
    Path((namespace, id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    request: Request,
) -> Result<Json<ExecutionResponse>, ApiError> {
    let params = CreateParams::from_pairs(&query)?;
    let labels = creation_labels(&params.labels)?;
    // The flow first, as Kestra's `getFlowIfExecutableOrThrow`: nothing is stored for a
    // flow that cannot run.
    let flow = o.flow(&namespace, &id).await?;
    if flow.disabled {
        return Err(ServiceError::Disabled(flow.key()).into());
    }
    // The id is chosen before the inputs are read, so that file inputs are stored under the
    // execution's own folder, as Kestra's `Execution.newExecution` then `readExecutionInputs`.
    let execution_id = new_id();
    let files = Storage::execution_uri(&namespace, &id, &execution_id);
    let created = match read_inputs(&o, (&namespace, &id, &execution_id), request).await {
        Ok(inputs) => {
            o.create_execution_as(execution_id, &namespace, &id, inputs, labels, None)
                .await
        }
        Err(e) => {
            let _ = o.storage().delete_folder(&files);
            return Err(e);
        }
    };
    let execution = match created {
        Ok(execution) => execution,
        Err(e) => {
            // Invalid inputs: the files stored for them belong to no execution.
            let _ = o.storage().delete_folder(&files);
            return Err(e.into());
        }
    };
    let execution = if params.wait {
        o.wait_terminal(&execution.id, WAIT_LIMIT).await?
    } else {
        execution
    };
    let url = format!(
        "/ui/executions/{}/{}/{}",
        execution.namespace, execution.flow_id, execution.id
    );
    Ok(Json(ExecutionResponse {
        execution: execution_json(&execution),
        url,
    }))
}

/// Labels given to a new execution, Kestra's `parseLabels`: each `key:value` (the value is
/// everything after the first `:`, so it may hold more), and none of Kestra's `system.`
/// labels but `system.correlationId`.
fn creation_labels(given: &[String]) -> Result<Vec<Label>, ApiError> {
    let labels = query_labels(given)?;
    if let Some(l) = labels
        .iter()
        .find(|l| l.key.starts_with(SYSTEM_PREFIX) && l.key != CORRELATION_ID)
    {
        return Err(unprocessable(format!(
            "labels: system labels can only be set by Kestra itself, offending label: {}={}",
            l.key, l.value
        )));
    }
    Ok(labels)
}

/// `key:value` labels from query parameters, as Kestra's `RequestUtils.toMap` reads them:
/// the key ends at the first `:` or space, the value is what follows the first `:`,
/// trimmed; a label without a key or a value is refused (Kestra: 422 "Invalid queryString
/// parameter"). A key given twice keeps its last value.
fn query_labels(given: &[String]) -> Result<Vec<Label>, ApiError> {
    let mut labels: Vec<Label> = Vec::new();
    for text in given {
        let key = text.split([':', ' ']).next().unwrap_or_default();
        let value = text
            .split_once(':')
            .map(|(_, v)| v.trim())
            .unwrap_or_default();
        if key.is_empty() || value.is_empty() {
            return Err(unprocessable(format!(
                "labels: invalid queryString parameter `{text}`: a label is `key:value`"
            )));
        }
        labels.retain(|l| l.key != key);
        labels.push(Label {
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(labels)
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
    Ok(Json(execution_json(&exec)))
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
    Ok(Json(execution_json(&exec)))
}

/// Query parameters of `GET /api/v1/executions/search`, Kestra's.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(super) struct SearchParams {
    /// The page, from 1 (default 1).
    page: Option<u64>,
    /// The page's size, at least 1 (default 10).
    size: Option<u64>,
    /// `field:asc` or `field:desc`, repeatable; the fields are `id`, `state.startDate`,
    /// `state.endDate`, `state.duration`, `namespace`, `flowId` and `state.current`.
    /// Default: `state.startDate:desc`.
    #[serde(default)]
    sort: Vec<String>,
    /// The namespace and those under it (only that namespace when `flowId` is given).
    namespace: Option<String>,
    flow_id: Option<String>,
    /// Started at or after this time, `yyyy-MM-ddTHH:mm[:ss][.SSS][XXX]` (UTC without an
    /// offset).
    start_date: Option<String>,
    /// Ended at or before this time, in the same form.
    end_date: Option<String>,
    /// Started within this ISO-8601 duration before now (`PT5M`, `P1D`); not with
    /// `startDate`.
    time_range: Option<String>,
    /// A current state (`SUCCESS`, `FAILED`, …), repeatable.
    #[serde(default)]
    state: Vec<String>,
    /// A label as `key:value`, repeatable: the execution has every one.
    #[serde(default)]
    labels: Vec<String>,
}

impl SearchParams {
    fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut p = SearchParams::default();
        for (name, value) in pairs {
            let value = value.clone();
            match name.as_str() {
                "page" => p.page = Some(parse_count(name, &value)?),
                "size" => p.size = Some(parse_count(name, &value)?),
                "sort" => p.sort.push(value),
                "namespace" => p.namespace = Some(value),
                "flowId" => p.flow_id = Some(value),
                "startDate" => p.start_date = Some(value),
                "endDate" => p.end_date = Some(value),
                "timeRange" => p.time_range = Some(value),
                "state" => p.state.push(value),
                "labels" => p.labels.push(value),
                _ => {}
            }
        }
        Ok(p)
    }

    /// The repository's search, checked: Kestra's validations and messages.
    fn search(self, now: Timestamp) -> Result<ExecutionSearch, ApiError> {
        let mut start_date = self
            .start_date
            .as_deref()
            .map(|d| parse_date("startDate", d))
            .transpose()?;
        let end_date = self
            .end_date
            .as_deref()
            .map(|d| parse_date("endDate", d))
            .transpose()?;
        if let (Some(start), Some(end)) = (start_date, end_date)
            && start > end
        {
            return Err(unprocessable(format!(
                "Illegal argument: Start date must be before End Date (startDate {start}, endDate {end})"
            )));
        }
        if let Some(range) = &self.time_range {
            if start_date.is_some() {
                return Err(unprocessable(
                    "Illegal argument: Parameters 'startDate' and 'timeRange' are mutually exclusive"
                        .into(),
                ));
            }
            start_date = Some(now - parse_time_range(range)?);
        }
        let states = self
            .state
            .iter()
            .map(|s| {
                serde_json::from_value::<StateType>(Value::String(s.clone())).map_err(|_| {
                    unprocessable(format!(
                        "state: `{s}` is not a state (CREATED, RUNNING, SUCCESS, FAILED, …)"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let sort = self
            .sort
            .iter()
            .map(|s| parse_sort(s))
            .collect::<Result<_, _>>()?;
        Ok(ExecutionSearch {
            namespace: self.namespace,
            flow_id: self.flow_id,
            states,
            start_date,
            end_date,
            labels: query_labels(&self.labels)?,
            sort,
            page: self.page.unwrap_or(1),
            size: self.size.unwrap_or(10),
        })
    }
}

/// A page of results: Kestra's `PagedResults`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PagedResults {
    /// The page's executions, in Kestra's JSON shape.
    #[schema(value_type = Vec<Object>)]
    results: Vec<Value>,
    /// How many executions match, over every page.
    total: u64,
}

#[utoipa::path(get, path = "/api/v1/executions/search", tag = "Executions",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of the executions that match", body = PagedResults),
        (status = 422, description = "A parameter is invalid (named in the message)", body = super::ErrorBody)))]
pub(super) async fn search(
    State(o): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<PagedResults>, ApiError> {
    let search = SearchParams::from_pairs(&query)?.search(crate::model::now())?;
    let page = o
        .store()
        .search_executions(&search)
        .await
        .map_err(ServiceError::from)?;
    Ok(Json(PagedResults {
        results: page.results.iter().map(execution_json).collect(),
        total: page.total,
    }))
}

/// Query parameters of `DELETE /api/v1/executions/{id}`, Kestra's.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteParams {
    /// Delete the execution's log lines too (default true).
    #[serde(default = "yes")]
    delete_logs: bool,
    /// Accepted for Kestra's clients; flowbench keeps no metrics.
    #[serde(default = "yes")]
    #[allow(dead_code)]
    delete_metrics: bool,
    /// Delete the execution's files in internal storage too (default true).
    #[serde(default = "yes")]
    delete_storage: bool,
}

fn yes() -> bool {
    true
}

#[utoipa::path(delete, path = "/api/v1/executions/{id}", tag = "Executions",
    params(("id" = String, Path, description = "The execution's id"), DeleteParams),
    responses(
        (status = 204, description = "The execution is deleted"),
        (status = 404, description = "No such execution", body = super::ErrorBody)))]
pub(super) async fn delete_execution(
    State(o): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    // Kestra's `ExecutionService#delete`: the row goes whatever the execution's state. A
    // running one's later messages find no execution and are dropped by the executor.
    let execution = o.execution(&id).await?;
    if !o
        .store()
        .delete_execution(&id, params.delete_logs)
        .await
        .map_err(ServiceError::from)?
    {
        return Err(ServiceError::ExecutionNotFound(id).into());
    }
    if params.delete_storage {
        let files = Storage::execution_uri(&execution.namespace, &execution.flow_id, &execution.id);
        o.storage().delete_folder(&files).map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("execution `{id}` is deleted, but not its files in internal storage: {e}"),
            )
        })?;
    }
    Ok(StatusCode::NO_CONTENT)
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
    #[serde(default = "yes")]
    is_on_kill_cascade: bool,
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

/// An execution as Kestra's API prints it: the stored document, with the `deleted` flag
/// Kestra's `Execution` always has, the `metadata` a first attempt keeps implicit here
/// (attempt 1, created when it started), and no `inputs` when there are none (Kestra's
/// `@JsonInclude(NON_EMPTY)`).
pub(super) fn execution_json(execution: &Execution) -> Value {
    let mut json = serde_json::to_value(execution).expect("an execution serializes");
    if let Value::Object(fields) = &mut json {
        if execution.inputs.is_empty() {
            fields.remove("inputs");
        }
        fields.insert("deleted".into(), Value::Bool(false));
        fields.entry("metadata").or_insert_with(|| {
            json!({
                "attemptNumber": execution.attempt_number(),
                "originalCreatedDate": execution.original_created_date(),
            })
        });
    }
    json
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    value
        .parse()
        .map_err(|_| unprocessable(format!("{name}: `{value}` is not `true` or `false`")))
}

/// `page` or `size`: a whole number, at least 1 (Kestra's `@Min(1)`).
fn parse_count(name: &str, value: &str) -> Result<u64, ApiError> {
    match value.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n as u64),
        Ok(_) => Err(unprocessable(format!(
            "{name}: must be greater than or equal to 1"
        ))),
        Err(_) => Err(unprocessable(format!(
            "{name}: `{value}` is not a whole number"
        ))),
    }
}

/// `field:direction`, Kestra's `PageableUtils.sort`: `asc` sorts up, anything else down.
fn parse_sort(text: &str) -> Result<(SortField, Direction), ApiError> {
    let parts: Vec<&str> = text.split(':').collect();
    let [field, direction] = parts[..] else {
        return Err(unprocessable(format!(
            "sort: invalid sort parameter `{text}`: it is `field:asc` or `field:desc`"
        )));
    };
    let field = SortField::parse(field).ok_or_else(|| {
        let names: Vec<&str> = SortField::NAMES.iter().map(|(n, _)| *n).collect();
        unprocessable(format!(
            "sort: cannot sort on `{field}`; the fields are {}",
            names.join(", ")
        ))
    })?;
    let direction = if direction == "asc" {
        Direction::Asc
    } else {
        Direction::Desc
    };
    Ok((field, direction))
}

/// A date of the search, in Kestra's `yyyy-MM-dd'T'HH:mm[:ss][.SSS][XXX]`: with an offset,
/// or without one, then taken as UTC.
fn parse_date(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| {
            unprocessable(format!(
                "{name}: `{text}` is not a date-time like 2024-01-07T18:43:11.248+01:00 (an offset's `+` is sent as %2B)"
            ))
        })
}

/// `timeRange`, an ISO-8601 duration as Java's `Duration.parse` reads it: days, hours,
/// minutes and seconds, no years, months or weeks.
fn parse_time_range(text: &str) -> Result<SignedDuration, ApiError> {
    let invalid = || {
        unprocessable(format!(
            "timeRange: `{text}` is not a duration of days, hours, minutes and seconds like PT5M or P1D"
        ))
    };
    let span: jiff::Span = text.parse().map_err(|_| invalid())?;
    if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
        return Err(invalid());
    }
    let seconds = i64::from(span.get_days()) * 86_400
        + i64::from(span.get_hours()) * 3_600
        + span.get_minutes() * 60
        + span.get_seconds();
    let nanos = span.get_milliseconds() * 1_000_000
        + span.get_microseconds() * 1_000
        + span.get_nanoseconds();
    Ok((SignedDuration::from_secs(seconds) + SignedDuration::from_nanos(nanos)).abs())
}
