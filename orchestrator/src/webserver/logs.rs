//! Log routes, as Kestra's `LogController`: an execution's indexed lines, filtered
//! (`findByExecution`), and the same lines followed as server-sent events (`follow`).
//!
//! A follower first receives the lines already indexed, then each line indexed after it
//! connected, each once. It is woken when this process's indexer commits lines
//! ([`crate::repository::Notifier::logs_indexed`]), and reads again every
//! [`super::follow::POLL`] as well, for lines an indexer in another process wrote. As
//! Kestra's, the stream stays open until the client closes it.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::model::{Level, LogEntry};

/// A log line in Kestra's JSON shape (`io.kestra.core.models.executions.LogEntry`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogLine {
    namespace: String,
    flow_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<String>,
    execution_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_run_id: Option<String>,
    /// Always written, `null` when the line is not a task attempt's (Kestra's `@JsonInclude`).
    attempt_number: Option<u32>,
    #[schema(value_type = String, format = DateTime)]
    timestamp: jiff::Timestamp,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    #[schema(value_type = String)]
    level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread: Option<String>,
    message: String,
    /// Always `false`: flowbench deletes no log line.
    deleted: bool,
}

impl From<LogEntry> for LogLine {
    fn from(l: LogEntry) -> Self {
        LogLine {
            namespace: l.namespace,
            flow_id: l.flow_id,
            task_id: l.task_id,
            execution_id: l.execution_id,
            task_run_id: l.task_run_id,
            attempt_number: l.attempt_number,
            timestamp: l.timestamp,
            level: l.level,
            thread: l.thread,
            message: l.message,
            deleted: false,
        }
    }
}

/// The filters of `GET /api/v1/logs/{executionId}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub(super) struct LogsQuery {
    /// The least severe level kept: `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    min_level: Option<String>,
    /// Only this task run's lines.
    task_run_id: Option<String>,
    /// Only this task's lines (`taskRunId` and `attempt` are then ignored, as in Kestra).
    task_id: Option<String>,
    /// With `taskRunId`: only this attempt's lines.
    attempt: Option<u32>,
}

/// The filter of `GET /api/v1/logs/{executionId}/follow`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub(super) struct FollowQuery {
    /// The least severe level kept: `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    min_level: Option<String>,
}

/// Which lines an answer keeps, as Kestra's `ExecutionLogService#getExecutionLogs` chooses:
/// by task id when one is given, else by task run (and attempt), else all; at `minLevel` or
/// more severe.
#[derive(Debug, Default, Clone, PartialEq)]
struct LogFilter {
    min_level: Option<Level>,
    task_id: Option<String>,
    task_run_id: Option<String>,
    attempt: Option<u32>,
}

impl LogFilter {
    fn keeps(&self, line: &LogEntry) -> bool {
        if self.min_level.is_some_and(|min| !line.level.passes(min)) {
            return false;
        }
        if let Some(task_id) = &self.task_id {
            return line.task_id.as_ref() == Some(task_id);
        }
        if let Some(task_run_id) = &self.task_run_id {
            return line.task_run_id.as_ref() == Some(task_run_id)
                && self.attempt.is_none_or(|a| line.attempt_number == Some(a));
        }
        true
    }
}

fn min_level(given: Option<&str>) -> Result<Option<Level>, ApiError> {
    given
        .map(|l| {
            l.parse::<Level>().map_err(|_| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("minLevel `{l}` is not one of ERROR, WARN, INFO, DEBUG, TRACE"),
                )
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/api/v1/logs/{executionId}", tag = "Logs",
    params(("executionId" = String, Path, description = "The execution's id"), LogsQuery),
    responses(
        (status = 200, description = "The execution's log lines that pass the filters, oldest first (none for an unknown execution, as in Kestra)", body = Vec<LogLine>),
        (status = 400, description = "`minLevel` is not a level", body = super::ErrorBody)))]
pub(super) async fn get_logs(
    State(o): State<AppState>,
    Path(execution_id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Json<Vec<LogLine>>, ApiError> {
    let filter = LogFilter {
        min_level: min_level(query.min_level.as_deref())?,
        task_id: query.task_id,
        task_run_id: query.task_run_id,
        attempt: query.attempt,
    };
    let lines = o.logs(&execution_id).await?;
    Ok(Json(
        lines
            .into_iter()
            .filter(|l| filter.keeps(l))
            .map(LogLine::from)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/logs/{executionId}/follow", tag = "Logs",
    params(("executionId" = String, Path, description = "The execution's id"), FollowQuery),
    responses(
        (status = 200, description = "Server-sent events, each with the id `progress` and a log line as its data: the lines already indexed, then each line indexed later. The stream stays open until the client closes it.",
            body = LogLine, content_type = "text/event-stream"),
        (status = 400, description = "`minLevel` is not a level", body = super::ErrorBody)))]
pub(super) async fn follow_logs(
    State(o): State<AppState>,
    Path(execution_id): Path<String>,
    Query(query): Query<FollowQuery>,
    end: Option<axum::Extension<super::StreamsEnd>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = LogFilter {
        min_level: min_level(query.min_level.as_deref())?,
        ..LogFilter::default()
    };
    let follower = LogFollower {
        o,
        execution_id,
        filter,
        sent: HashSet::new(),
        pending: VecDeque::new(),
    };
    let stream = futures::stream::unfold(follower, |mut f| async move {
        let line = f.next().await;
        Some((Ok(progress(&LogLine::from(line))), f))
    });
    let stream = super::StreamsEnd::bound(end, stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A `progress` event (Micronaut's `Event.of(data).id("progress")`, as Kestra sends them).
pub(super) fn progress(data: &impl Serialize) -> Event {
    Event::default()
        .id("progress")
        .json_data(data)
        .expect("an API body serializes")
}

/// One client's follow: the lines it was sent, by id, and those read but not sent yet.
struct LogFollower {
    o: AppState,
    execution_id: String,
    filter: LogFilter,
    sent: HashSet<String>,
    pending: VecDeque<LogEntry>,
}

impl LogFollower {
    /// The next line to send, waiting for one as long as it takes.
    async fn next(&mut self) -> LogEntry {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return line;
            }
            let o = self.o.clone();
            let notifier = o.store().notifier();
            // Registered before the read, so that lines committed during it wake the wait.
            let indexed = notifier.logs_notified();
            tokio::pin!(indexed);
            indexed.as_mut().enable();
            match o.logs(&self.execution_id).await {
                Ok(lines) => {
                    for line in lines {
                        if self.filter.keeps(&line) && self.sent.insert(line.id.clone()) {
                            self.pending.push_back(line);
                        }
                    }
                }
                Err(e) => tracing::warn!(
                    "following the logs of execution {}: {e}; retrying",
                    self.execution_id
                ),
            }
            if self.pending.is_empty() {
                tokio::select! {
                    _ = &mut indexed => {}
                    _ = tokio::time::sleep(super::follow::POLL) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level, task_id: &str, task_run_id: &str, attempt: u32) -> LogEntry {
        LogEntry {
            id: format!("{task_run_id}:{attempt}:{level:?}"),
            namespace: "n".into(),
            flow_id: "f".into(),
            task_id: Some(task_id.into()),
            execution_id: "e".into(),
            task_run_id: Some(task_run_id.into()),
            attempt_number: Some(attempt),
            timestamp: jiff::Timestamp::UNIX_EPOCH,
            level,
            thread: None,
            message: "m".into(),
        }
    }

    #[test]
    fn min_level_keeps_the_lines_at_least_as_severe() {
        let filter = LogFilter {
            min_level: Some(Level::Warn),
            ..LogFilter::default()
        };
        assert!(filter.keeps(&line(Level::Error, "t", "r", 0)));
        assert!(filter.keeps(&line(Level::Warn, "t", "r", 0)));
        assert!(!filter.keeps(&line(Level::Info, "t", "r", 0)));
        assert!(!filter.keeps(&line(Level::Trace, "t", "r", 0)));
    }

    #[test]
    fn task_id_wins_over_task_run_id_as_in_kestra() {
        let filter = LogFilter {
            task_id: Some("t".into()),
            task_run_id: Some("other".into()),
            attempt: Some(3),
            ..LogFilter::default()
        };
        assert!(filter.keeps(&line(Level::Info, "t", "r", 0)));
        assert!(!filter.keeps(&line(Level::Info, "u", "other", 3)));
    }

    #[test]
    fn task_run_id_and_attempt_select_one_attempt() {
        let filter = LogFilter {
            task_run_id: Some("r".into()),
            attempt: Some(1),
            ..LogFilter::default()
        };
        assert!(filter.keeps(&line(Level::Info, "t", "r", 1)));
        assert!(!filter.keeps(&line(Level::Info, "t", "r", 0)));
        assert!(!filter.keeps(&line(Level::Info, "t", "s", 1)));
        let any_attempt = LogFilter {
            task_run_id: Some("r".into()),
            ..LogFilter::default()
        };
        assert!(any_attempt.keeps(&line(Level::Info, "t", "r", 0)));
    }

    #[test]
    fn a_bad_min_level_names_itself() {
        let e = min_level(Some("LOUD")).unwrap_err();
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        assert!(e.1.contains("`LOUD`"), "{}", e.1);
        assert_eq!(min_level(Some("INFO")).unwrap(), Some(Level::Info));
    }

    #[test]
    fn a_line_in_kestra_shape_has_no_id_and_always_an_attempt_number() {
        let mut l = line(Level::Info, "t", "r", 0);
        l.attempt_number = None;
        let json = serde_json::to_value(LogLine::from(l)).unwrap();
        assert!(json.get("id").is_none());
        assert!(json["attemptNumber"].is_null() && json.get("attemptNumber").is_some());
        assert_eq!(json["deleted"], false);
        assert_eq!(json["level"], "INFO");
        assert_eq!(json["timestamp"], "1970-01-01T00:00:00Z");
    }
}
