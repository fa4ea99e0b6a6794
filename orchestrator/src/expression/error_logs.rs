//! Kestra's `errorLogs()` function
//! (`core/src/main/java/io/kestra/core/runners/pebble/functions/ErrorLogsFunction.java`,
//! commit 58c1ca2d): the ERROR lines of the current execution, the first 25 by timestamp
//! (`LogService#errorLogs`), each a map with Kestra's `LogEntry` fields (`taskId`,
//! `message`, `timestamp`, …).
//!
//! As in Kestra it reads the logs table, so it works only while a worker runs a task: the
//! worker opens a [`WorkerScope`] around each attempt. The lines of a task that failed just
//! before may not be indexed yet, so an empty answer is asked again, as Kestra's `RetryUtils`
//! does: from 100 ms, doubling up to 1 s between tries, for 5 s, then it is empty.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, State};

use crate::model::Level;
use crate::tasks::ExecutionLogs;

const ERROR_LOGS: &str = "errorLogs";
/// A call of the function, which [`super::Renderer`] looks for to give the template
/// `execution.id`.
pub(crate) const ERROR_LOGS_CALL: &str = "errorLogs(";
/// `LogService#errorLogs`'s page.
const PAGE: usize = 25;

thread_local! {
    /// The logs this thread's running task reads, while a [`WorkerScope`] is open.
    static LOGS: RefCell<Option<Arc<dyn ExecutionLogs>>> = const { RefCell::new(None) };
}

/// Lets `errorLogs()` read `logs` on this thread until it is dropped.
pub struct WorkerScope(());

impl WorkerScope {
    pub fn open(logs: Option<Arc<dyn ExecutionLogs>>) -> Self {
        LOGS.with(|l| *l.borrow_mut() = logs);
        WorkerScope(())
    }
}

impl Drop for WorkerScope {
    fn drop(&mut self) {
        LOGS.with(|l| l.borrow_mut().take());
    }
}

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function(ERROR_LOGS, error_logs);
}

fn error_logs(state: &State) -> Result<Value, Error> {
    let Some(logs) = LOGS.with(|l| l.borrow().clone()) else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "The 'errorLogs' function can only be used in the Worker as it access logs from the database.",
        ));
    };
    let execution = state.lookup("execution").unwrap_or_default();
    let id = execution
        .get_attr("id")
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "no execution id"))?;
    let started = Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        let mut lines = logs.logs(&id).map_err(|e| {
            Error::new(ErrorKind::InvalidOperation, "Unable to fetch error logs")
                .with_source(std::io::Error::other(e))
        })?;
        lines.retain(|l| l.level == Level::Error);
        if !lines.is_empty() || started.elapsed() + wait > Duration::from_secs(5) {
            lines.sort_by_key(|l| l.timestamp);
            lines.truncate(PAGE);
            return Ok(Value::from_serialize(&lines));
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(1));
    }
}
