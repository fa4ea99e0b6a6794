//! The worker's real task handling, for the benchmarks in `harness/benches`; not a stable
//! API. A benchmark that re-implemented these paths would keep measuring its copy after
//! the worker changed.

use super::runner::TaskRunner;
use super::{Event, WorkerTask};
use crate::model::WorkerTaskResult;
use crate::service::Orchestrator;

/// Handles worker tasks as a worker thread does, with the orchestrator's knobs.
pub struct TaskHandler {
    runner: TaskRunner,
    events: flume::Sender<Event>,
    drained: flume::Receiver<Event>,
}

impl TaskHandler {
    /// Log lines go to the batched writer's channel and are dropped after each task run
    /// (`logs.indexing=sync` needs a running worker's pool: use a real run for that).
    pub fn new(o: &Orchestrator) -> Self {
        let (events, drained) = flume::unbounded();
        TaskHandler {
            runner: TaskRunner {
                renderer: o.renderer().clone(),
                storage: o.storage().clone(),
                knobs: o.knobs().clone(),
                emitter: None,
                logs: None,
            },
            events,
            drained,
        }
    }

    /// Runs the task run and builds its result: the `worker.task-handling` path under test.
    pub fn handle(&self, job: WorkerTask) -> WorkerTaskResult {
        let result = self.runner.execute(job, &self.events, None);
        self.drained.drain();
        result
    }
}
