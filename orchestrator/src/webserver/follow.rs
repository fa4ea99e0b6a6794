//! `GET /api/v1/executions/{executionId}/follow`: an execution as server-sent events, as
//! Kestra's `ExecutionController#follow`.
//!
//! An execution already terminal is sent once, as an `end` event, and the stream ends.
//! Otherwise it is sent as a `progress` event, then again as `progress` each time it
//! changes, and when it reaches a terminal state, as `progress` and then `end`, after which
//! the stream ends (Kestra's `isStopFollow`: terminated, and not `PAUSED`). Each event's
//! data is the execution's JSON, as `GET /api/v1/executions/{id}` answers.
//!
//! The store notifies the end of an execution run by this process's executor
//! ([`crate::repository::Notifier::terminated`]); the changes before it have no
//! notification, so the follower reads the execution again every [`POLL`] (which also
//! covers an executor in another process). Changes closer together than that reach the
//! client as one.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::Value;

use super::{ApiError, AppState};
use crate::model::{Execution, StateType};

/// How often a follower reads again what no notification announces.
pub(super) const POLL: Duration = Duration::from_millis(250);

#[utoipa::path(get, path = "/api/v1/executions/{executionId}/follow", tag = "Executions",
    params(("executionId" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "Server-sent events whose data is the execution: `progress` on each change, then `end` once it is terminal, after which the stream ends",
            body = Object, content_type = "text/event-stream"),
        (status = 404, description = "No such execution", body = super::ErrorBody)))]
pub(super) async fn follow_execution(
    State(o): State<AppState>,
    Path(id): Path<String>,
    end: Option<axum::Extension<super::StreamsEnd>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let exec = o.execution(&id).await?;
    let mut follower = ExecutionFollower {
        o,
        id,
        last: None,
        pending: VecDeque::new(),
        ended: false,
    };
    follower.saw(&exec);
    let stream = futures::stream::unfold(follower, |mut f| async move {
        f.next().await.map(|event| (Ok(event), f))
    });
    let stream = super::StreamsEnd::bound(end, stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Kestra's `isStopFollow`.
fn stops_follow(exec: &Execution) -> bool {
    exec.state.is_terminal() && exec.state.current != StateType::Paused
}

/// One client's follow: the execution's JSON as last sent, and the events not sent yet.
struct ExecutionFollower {
    o: AppState,
    id: String,
    last: Option<Value>,
    pending: VecDeque<Event>,
    /// The `end` event is queued: nothing is read after it.
    ended: bool,
}

impl ExecutionFollower {
    /// Queues the events a read of the execution calls for. The first read of an execution
    /// already terminal is `end` alone, as in Kestra.
    fn saw(&mut self, exec: &Execution) {
        let json = serde_json::to_value(exec).expect("an execution serializes");
        let first = self.last.is_none();
        let stop = stops_follow(exec);
        if self.last.as_ref() != Some(&json) && !(first && stop) {
            self.pending.push_back(super::logs::progress(&json));
        }
        if stop {
            self.pending.push_back(
                Event::default()
                    .id("end")
                    .json_data(&json)
                    .expect("an execution serializes"),
            );
            self.ended = true;
        }
        self.last = Some(json);
    }

    /// The next event, waiting for a change as long as it takes; `None` after `end`.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            let o = self.o.clone();
            let terminated = o.store().notifier().terminated.notified();
            tokio::pin!(terminated);
            terminated.as_mut().enable();
            match o.store().execution(&self.id).await {
                Ok(Some(exec)) => self.saw(&exec),
                Ok(None) => {
                    tracing::warn!("following execution {}: it is gone", self.id);
                    return None;
                }
                Err(e) => tracing::warn!("following execution {}: {e}; retrying", self.id),
            }
            if self.pending.is_empty() {
                tokio::select! {
                    _ = &mut terminated => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }
}
