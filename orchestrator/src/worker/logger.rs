//! Where a task's log lines go, per the `logs.indexing` knob and the task's `logToFile` and
//! `logLevel` properties.

use std::io::Write;

use crate::model::{Level, LogEntry, TaskRun};
use crate::storage::Storage;
use crate::tasks::TaskLogger;

use super::Event;
use super::emitter::LogEmitter;

/// The identity stamped on every line of one attempt.
pub(super) struct LineStamp {
    pub task_run: TaskRun,
    pub attempt: u32,
    pub thread: String,
}

impl LineStamp {
    fn entry(&self, seq: usize, level: Level, message: String) -> LogEntry {
        let tr = &self.task_run;
        LogEntry {
            id: format!("{}:{}:{}", tr.id, self.attempt, seq),
            namespace: tr.namespace.clone(),
            flow_id: tr.flow_id.clone(),
            task_id: Some(tr.task_id.clone()),
            execution_id: tr.execution_id.clone(),
            task_run_id: Some(tr.id.clone()),
            attempt_number: Some(self.attempt),
            timestamp: crate::model::now(),
            level,
            thread: Some(self.thread.clone()),
            message,
        }
    }
}

pub(super) enum Sink {
    /// `logs.indexing=batched`: lines go to the worker's writer, which queues them in
    /// batches for the indexer; the task thread never waits on the database.
    Queue(flume::Sender<Event>),
    /// `logs.indexing=sync`: Kestra 0.19's `emitAsync`: each line goes to a pool that
    /// commits it in a transaction of its own; the task thread does not wait.
    EmitAsync(LogEmitter),
    /// `logToFile: true`: lines go to a file in internal storage, not to the database.
    File {
        file: std::io::BufWriter<std::fs::File>,
        uri: String,
    },
}

pub(super) struct AttemptLogger {
    pub stamp: LineStamp,
    pub threshold: Level,
    pub sink: Sink,
    pub seq: usize,
    /// The first error writing a line; the attempt fails with it rather than lose lines.
    pub error: Option<String>,
}

impl AttemptLogger {
    pub fn new(stamp: LineStamp, threshold: Level, sink: Sink) -> Self {
        AttemptLogger {
            stamp,
            threshold,
            sink,
            seq: 0,
            error: None,
        }
    }

    pub fn for_file(storage: &Storage, stamp: &LineStamp) -> std::io::Result<Sink> {
        let uri = Storage::task_run_uri(
            &stamp.task_run,
            &format!("logs-attempt-{}.txt", stamp.attempt),
        );
        let file = storage.append(&uri)?;
        Ok(Sink::File {
            file: std::io::BufWriter::with_capacity(32 * 1024, file),
            uri,
        })
    }

    /// Flushes a file sink and returns its URI.
    pub fn finish(&mut self) -> Option<String> {
        match &mut self.sink {
            Sink::File { file, uri } => {
                if let Err(e) = file.flush() {
                    self.error
                        .get_or_insert(format!("writing task logs to {uri}: {e}"));
                }
                Some(uri.clone())
            }
            _ => None,
        }
    }
}

impl TaskLogger for AttemptLogger {
    fn log(&mut self, level: Level, message: String) {
        if !level.passes(self.threshold) {
            return;
        }
        let seq = self.seq;
        self.seq += 1;
        match &mut self.sink {
            Sink::Queue(tx) => {
                let entry = self.stamp.entry(seq, level, message);
                // The writer only stops at shutdown, after the threads; a send cannot fail
                // while the attempt runs.
                let _ = tx.send(Event::Log(entry));
            }
            Sink::EmitAsync(emitter) => {
                let entry = self.stamp.entry(seq, level, message);
                if let Err(e) = emitter.emit_async(entry) {
                    self.error
                        .get_or_insert(format!("emitting a log line: {e}"));
                }
            }
            Sink::File { file, uri } => {
                let ts = crate::model::now();
                if let Err(e) = writeln!(file, "{ts} {} {message}", level.as_str()) {
                    self.error
                        .get_or_insert(format!("writing task logs to {uri}: {e}"));
                }
            }
        }
    }
}
