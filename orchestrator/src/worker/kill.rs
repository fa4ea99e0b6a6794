//! Killing the task runs of a killed execution, as Kestra's `Worker` does on an
//! `ExecutionKilledExecution` in state `EXECUTED`.
//!
//! The executor consumes a kill request, moves the execution to KILLING and, in the same
//! transaction, queues the kill again in state `EXECUTED` ([`ExecutionKilled`]). Every
//! worker reads those rows without consuming them ([`Store::kills_after`]), from the queue's
//! end when it started, as Kestra's workers receive the kill queue with no consumer group
//! (`JdbcQueue#receive`, by offset): each worker must see each kill. It reads again the rows
//! of the last [`LAG`], so that a row whose transaction committed after a later row was
//! read (offsets are taken at insert, rows seen at commit) is not missed; a kill applied
//! twice changes nothing.
//!
//! [`Kills`] is what the task threads and that reader share: the [`KillSwitch`] of every
//! running task run, and the executions killed lately, so that a task run taken from the
//! queue after its execution was killed ends KILLED without running (Kestra's
//! `Worker#killedExecution`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::model::TaskRun;
use crate::queue::{ExecutionKilled, KillState, Timing};
use crate::repository::{QueueType, Store};
use crate::tasks::KillSwitch;

/// How long a worker remembers a killed execution, for its task runs still queued.
const REMEMBER: Duration = Duration::from_secs(3600);

/// How far back each read of the kill queue goes again (well under
/// [`crate::repository::KILLS_KEPT_SECS`], after which consumed rows are deleted).
const LAG: Duration = Duration::from_secs(10);

/// How many kill rows one read takes.
const READ_SIZE: usize = 100;

/// The running task runs of a worker and the executions killed lately.
#[derive(Default)]
pub(crate) struct Kills {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Killed execution id → when the executor killed it.
    killed: HashMap<String, Timestamp>,
    /// Running task run id → its execution id, when its state last changed, its switch.
    running: HashMap<String, Running>,
}

struct Running {
    execution_id: String,
    changed: Option<Timestamp>,
    switch: Arc<KillSwitch>,
}

impl Running {
    /// Whether a kill of its execution at `at` applies: it was queued before the kill. A
    /// task run restarted since has changed state after it.
    fn killed_by(&self, at: Timestamp) -> bool {
        self.changed.is_none_or(|c| c <= at)
    }
}

impl Kills {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain maps: a panic cannot leave them half-changed.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a task run about to start; its switch is already off when its execution
    /// was killed after it was queued.
    pub fn start(&self, task_run: &TaskRun) -> Arc<KillSwitch> {
        let running = Running {
            execution_id: task_run.execution_id.clone(),
            changed: task_run.state.histories.last().map(|h| h.date),
            switch: Arc::new(KillSwitch::default()),
        };
        let switch = running.switch.clone();
        let mut inner = self.lock();
        if let Some(at) = inner.killed.get(&task_run.execution_id)
            && running.killed_by(*at)
        {
            switch.kill();
        }
        inner.running.insert(task_run.id.clone(), running);
        switch
    }

    /// The task run ended.
    pub fn finish(&self, task_run_id: &str) {
        self.lock().running.remove(task_run_id);
    }

    /// Kills the execution's running task runs queued before `at`, and remembers the kill
    /// for those still queued; returns how many it killed.
    pub fn kill(&self, execution_id: &str, at: Timestamp) -> usize {
        let mut inner = self.lock();
        let forget = Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(REMEMBER).unwrap_or_default())
            .unwrap_or(Timestamp::MIN);
        inner.killed.retain(|_, at| *at >= forget);
        let latest = inner.killed.entry(execution_id.to_string()).or_insert(at);
        *latest = (*latest).max(at);
        let mut n = 0;
        for running in inner.running.values() {
            if running.execution_id == execution_id && running.killed_by(at) {
                running.switch.kill();
                n += 1;
            }
        }
        n
    }
}

/// Where a worker reads the kill queue from: every row after `low`, each row applied once.
#[derive(Default)]
struct Cursor {
    /// `None` until the first read found the queue's end.
    low: Option<i64>,
    /// The rows read after `low`, by offset, with when they were first read; a row leaves
    /// (and `low` moves up to it) once read [`LAG`] ago.
    seen: BTreeMap<i64, Instant>,
}

/// Reads the executed kills until `shutdown`, woken by every push to the kill queue, and
/// applies them to `kills`.
pub(crate) async fn watch(
    store: Arc<dyn Store>,
    kills: Arc<Kills>,
    timing: Timing,
    worker: String,
    shutdown: CancellationToken,
) {
    let notifier = store.notifier();
    let mut cursor = Cursor::default();
    let mut idle = timing.min_poll;
    loop {
        // Registered before the read (see `Notifier::notified`).
        let pushed = notifier.notified(QueueType::ExecutionKilled);
        tokio::pin!(pushed);
        pushed.as_mut().enable();
        match read(&*store, &kills, &mut cursor).await {
            Ok(0) => idle = (idle * 2).min(timing.max_poll),
            Ok(_) => idle = timing.min_poll,
            Err(e) => {
                tracing::warn!("worker {worker}: reading the kill queue failed: {e}");
                idle = timing.max_poll;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = &mut pushed => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
}

/// Reads the kill rows after the cursor and applies the executed ones not applied yet;
/// the first read only finds the queue's end (those kills were carried out before this
/// worker started). Returns how many new rows it read.
async fn read(
    store: &dyn Store,
    kills: &Kills,
    cursor: &mut Cursor,
) -> crate::repository::Result<usize> {
    let first = cursor.low.is_none();
    let mut after = cursor.low.unwrap_or(0);
    let mut new = 0;
    loop {
        let rows = store.kills_after(after, READ_SIZE).await?;
        for row in &rows {
            after = row.offset;
            if first || cursor.seen.contains_key(&row.offset) {
                continue;
            }
            cursor.seen.insert(row.offset, Instant::now());
            new += 1;
            let Some(kill) = crate::queue::decode::<ExecutionKilled>(row) else {
                continue;
            };
            if kill.state == KillState::Executed {
                let at = kill.date.unwrap_or_else(Timestamp::now);
                let n = kills.kill(&kill.execution_id, at);
                tracing::debug!(
                    "execution {} killed: {n} running task runs stopped",
                    kill.execution_id
                );
            }
        }
        if rows.len() < READ_SIZE {
            break;
        }
    }
    if first {
        cursor.low = Some(after);
    }
    while let Some((&offset, &read_at)) = cursor.seen.first_key_value()
        && read_at.elapsed() >= LAG
    {
        cursor.low = Some(offset);
        cursor.seen.pop_first();
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{State, StateType};

    fn task_run(id: &str, execution: &str, at: Timestamp) -> TaskRun {
        let mut state = State::new(at);
        state.transition(StateType::Running, at);
        TaskRun {
            id: id.into(),
            execution_id: execution.into(),
            namespace: "n".into(),
            flow_id: "f".into(),
            task_id: "t".into(),
            parent_task_run_id: None,
            value: None,
            attempts: None,
            outputs: None,
            state,
            iteration: None,
        }
    }

    #[test]
    fn a_kill_stops_the_executions_running_task_runs_and_the_ones_queued_before_it() {
        let kills = Kills::default();
        let t0 = Timestamp::now();
        let later = t0 + jiff::SignedDuration::from_secs(5);
        let running = kills.start(&task_run("a", "e1", t0));
        let other = kills.start(&task_run("b", "e2", t0));
        assert_eq!(kills.kill("e1", later), 1);
        assert!(running.is_killed());
        assert!(!other.is_killed(), "another execution's task run runs on");
        // Queued before the kill, taken after it: killed at once.
        assert!(kills.start(&task_run("c", "e1", t0)).is_killed());
        // Restarted after the kill: runs.
        let restarted = later + jiff::SignedDuration::from_secs(5);
        assert!(!kills.start(&task_run("d", "e1", restarted)).is_killed());
        // The same kill read again leaves the restarted one running.
        kills.kill("e1", later);
        kills.finish("a");
        assert!(!kills.lock().running.contains_key("a"));
        assert!(!kills.lock().running["d"].switch.is_killed());
    }

    #[test]
    fn a_killed_sleep_wakes_at_once() {
        let switch = Arc::new(KillSwitch::default());
        let sleeper = {
            let switch = switch.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                switch.sleep(Duration::from_secs(60));
                started.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        switch.kill();
        let slept = sleeper.join().unwrap();
        assert!(slept < Duration::from_secs(30), "slept {slept:?}");
    }
}
