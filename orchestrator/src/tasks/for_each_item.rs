use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};

use serde_json::{Map, Value, json};

use super::{Flowable, Role, Runnable, Subflow, TaskContext, TaskError, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps};
use crate::model::{StateType, TaskRun};
use crate::storage::Storage;

/// The type of the task that splits the items (Kestra's `ForEachItem$ForEachItemSplit`).
pub const SPLIT_TYPE: &str = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemSplit";
/// The type of the task that starts one execution per batch, and of those executions'
/// trigger (Kestra's `ForEachItem$ForEachItemExecutable`).
pub const EXECUTABLE_TYPE: &str = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemExecutable";
/// The type of the task that merges the executions' outputs (Kestra's
/// `ForEachItem$ForEachItemMergeOutputs`).
pub const MERGE_TYPE: &str = "io.kestra.plugin.core.flow.ForEachItem$ForEachItemMergeOutputs";

/// The output that counts a ForEachItem's executions by state.
pub const ITERATIONS: &str = "iterations";
/// The output that holds how many batches there are.
pub const NUMBER_OF_BATCHES: &str = "numberOfBatches";
/// The output that holds the folder the executions' outputs are written under.
pub const SUBFLOW_OUTPUTS_BASE_URI: &str = "subflowOutputsBaseUri";

/// `io.kestra.plugin.core.flow.ForEachItem`: splits an internal-storage file into batches
/// of lines and starts one execution of another flow per batch, as Kestra 58c1ca2d0's
/// `ForEachItem` does. It is a flowable of three fixed children, run in sequence:
///
/// * `{id}_split` ([`ForEachItemSplit`], on a worker) writes the batches and `splits.txt`,
///   the list of their URIs;
/// * `{id}_items` ([`ForEachItemExecutable`], run by the executor) starts one execution per
///   batch, with `taskrun.items` (the batch's URI) and `taskrun.iteration` (its number,
///   from 1) to render the `inputs` with, and counts them by state in its `iterations`
///   output until every one has ended;
/// * `{id}_merge` ([`ForEachItemMergeOutputs`], on a worker) concatenates the outputs the
///   executions wrote, one ION line each.
#[derive(Debug, Clone)]
pub struct ForEachItem {
    /// The split, items and merge tasks, in this order.
    pub tasks: Vec<Task>,
    /// Run once a child has failed; the task then fails.
    pub errors: Vec<Task>,
}

impl TaskType for ForEachItem {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.ForEachItem"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.flows.ForEachItem", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let id = props.id().to_string();
        let items = props.required("items")?;
        if !items.is_string() {
            return Err(props.error("property `items` must be a string"));
        }
        let batch = match props.take::<Option<Value>>("batch")? {
            None => json!({}),
            Some(b @ Value::Object(_)) => b,
            Some(_) => return Err(props.error("property `batch` must be a map")),
        };
        Batch::parse(&batch).map_err(|e| props.error(e))?;
        if props.take::<Option<Value>>("scheduleDate")?.is_some() {
            return Err(props.error(
                "property `scheduleDate` is not supported: flowbench starts a ForEachItem's \
                 executions at once",
            ));
        }
        let mut executable = Map::new();
        executable.insert("id".into(), format!("{id}_items").into());
        executable.insert("type".into(), EXECUTABLE_TYPE.into());
        for key in [
            "namespace",
            "flowId",
            "revision",
            "inputs",
            "labels",
            "wait",
            "transmitFailed",
            "inheritLabels",
        ] {
            if let Some(v) = props.take::<Option<Value>>(key)? {
                executable.insert(key.into(), v);
            }
        }
        let errors = props.tasks("errors", false)?;
        let split = props.task(json!({
            "id": format!("{id}_split"),
            "type": SPLIT_TYPE,
            "items": items,
            "batch": batch,
        }))?;
        let executable = props.task(Value::Object(executable))?;
        let merge = props.task(json!({"id": format!("{id}_merge"), "type": MERGE_TYPE}))?;
        props.finish()?;
        Ok(ForEachItem {
            tasks: vec![split, executable, merge],
            errors,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Flowable for ForEachItem {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.tasks, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let progress = walker.sequential(&self.tasks, Some(run.id), None);
        walker.or_errors(progress, &self.errors, run)
    }
}

/// How the items are split (Kestra's `ForEachItem.Batch`): by `bytes` (a size such as
/// `10MB`), else by `partitions` (that many batches, lines dealt round-robin), else by
/// `rows` (1 by default). Each may be an expression, rendered when the split runs. Every
/// line is written followed by `separator` (`"\n"` by default).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub bytes: Option<Value>,
    pub partitions: Option<Value>,
    pub rows: Value,
    pub separator: Value,
}

/// How a split cuts, once its properties are rendered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cut {
    /// A new batch starts once the current one holds at least this many bytes.
    Bytes(u64),
    /// This many batches, lines dealt in turn; the empty ones are dropped.
    Partitions(usize),
    /// A new batch starts once the current one holds this many lines.
    Rows(u64),
}

impl Batch {
    /// Reads and checks a `batch` map; values written as expressions are checked when
    /// they are rendered.
    fn parse(v: &Value) -> Result<Batch, String> {
        let Value::Object(m) = v else {
            return Err("property `batch` must be a map".into());
        };
        if let Some(k) = m
            .keys()
            .find(|k| !["bytes", "partitions", "rows", "separator"].contains(&k.as_str()))
        {
            return Err(format!("property `batch.{k}`: unknown property"));
        }
        let get = |k: &str| m.get(k).filter(|v| !v.is_null()).cloned();
        let batch = Batch {
            bytes: get("bytes"),
            partitions: get("partitions"),
            rows: get("rows").unwrap_or(json!(1)),
            separator: get("separator").unwrap_or(json!("\n")),
        };
        if let Some(b) = &batch.bytes
            && !is_expression(b)
        {
            readable_bytes(&text(b)).map_err(|e| format!("property `batch.bytes`: {e}"))?;
        }
        for (key, value) in [
            ("partitions", batch.partitions.as_ref()),
            ("rows", Some(&batch.rows)),
        ] {
            if let Some(v) = value
                && !is_expression(v)
            {
                positive(&text(v)).map_err(|e| format!("property `batch.{key}`: {e}"))?;
            }
        }
        if !batch.separator.is_string() {
            return Err("property `batch.separator` must be a string".into());
        }
        Ok(batch)
    }

    /// The cut, its values rendered (Kestra's `StorageService#split` reads `bytes`, then
    /// `partitions`, then `rows`).
    fn cut(&self, ctx: &TaskContext<'_>) -> Result<Cut, TaskError> {
        let render = |key: &str, v: &Value| -> Result<String, TaskError> {
            match v {
                Value::String(s) => ctx.render(s),
                other => Ok(text(other)),
            }
            .map_err(|e| TaskError::Failed(format!("batch `{key}`: {e}")))
        };
        let invalid = |key: &str, e: String| TaskError::Failed(format!("batch `{key}`: {e}"));
        if let Some(b) = &self.bytes {
            let b = render("bytes", b)?;
            return readable_bytes(&b)
                .map(Cut::Bytes)
                .map_err(|e| invalid("bytes", e));
        }
        if let Some(p) = &self.partitions {
            let p = render("partitions", p)?;
            return positive(&p)
                .map(|n| Cut::Partitions(n as usize))
                .map_err(|e| invalid("partitions", e));
        }
        let rows = render("rows", &self.rows)?;
        positive(&rows)
            .map(Cut::Rows)
            .map_err(|e| invalid("rows", e))
    }
}

fn is_expression(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.contains("{{") || s.contains("{%"))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn positive(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of 1 or more")),
    }
}

/// A size as Micronaut's `ReadableBytesTypeConverter` reads it, which Kestra uses: a
/// number of bytes, or one followed by `KB`, `MB` or `GB` (powers of 1024, any case).
fn readable_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let (digits, unit) = match t.len().checked_sub(2).map(|i| t.split_at(i)) {
        Some((d, "KB")) => (d, 1u64 << 10),
        Some((d, "MB")) => (d, 1 << 20),
        Some((d, "GB")) => (d, 1 << 30),
        _ => (t.as_str(), 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("Invalid size with value '{s}'"))
}

/// The split child of a [`ForEachItem`], run on a worker (Kestra's
/// `ForEachItem$ForEachItemSplit` and `StorageService#split`).
#[derive(Debug, Clone)]
pub struct ForEachItemSplit {
    pub items: String,
    pub batch: Batch,
}

impl TaskType for ForEachItemSplit {
    const TYPES: &'static [&'static str] = &[SPLIT_TYPE];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let items = props.required_string("items")?;
        let batch = props.take::<Option<Value>>("batch")?.unwrap_or(json!({}));
        let batch = Batch::parse(&batch).map_err(|e| props.error(e))?;
        props.finish()?;
        Ok(ForEachItemSplit { items, batch })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for ForEachItemSplit {
    /// Writes each batch as a file of this task run's folder, named by its number and the
    /// items' extension (`.tmp` when the URI has none), and `splits.txt`, their URIs one per
    /// line; outputs `splits`, the URI of that list. Lines end at `\n` (a `\r` before it
    /// is dropped) and are copied byte for byte.
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let uri = ctx.render(&self.items)?;
        if !uri.starts_with("kestra://") {
            let message = format!(
                "Unable to split the items from {uri}, this is not an internal storage URI!"
            );
            return Err(TaskError::Failed(message));
        }
        let cut = self.batch.cut(ctx)?;
        let separator = match &self.batch.separator {
            Value::String(s) => ctx.render(s)?,
            other => text(other),
        };
        let path = ctx
            .storage
            .path(&uri)
            .map_err(|e| TaskError::Failed(e.to_string()))?;
        let file = std::fs::File::open(&path)
            .map_err(|e| TaskError::Failed(format!("reading the items {uri}: {e}")))?;
        let extension = uri
            .strip_prefix("kestra://")
            .and_then(|p| p.rfind('.').map(|i| p[i..].to_string()))
            .unwrap_or_else(|| ".tmp".into());
        let mut batches = Batches::new(ctx, extension);
        let mut reader = BufReader::with_capacity(32 << 10, file);
        let mut line = Vec::new();
        let mut at = 0usize;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| TaskError::Failed(format!("reading the items {uri}: {e}")))?;
            if n == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            line.extend_from_slice(separator.as_bytes());
            let index = match cut {
                Cut::Partitions(n) => {
                    let i = at;
                    at = (at + 1) % n;
                    // Every partition exists from the start, empty or not.
                    while batches.files.len() < n {
                        batches.open()?;
                    }
                    i
                }
                Cut::Rows(limit) => batches.current(|b| b.rows >= limit)?,
                Cut::Bytes(limit) => batches.current(|b| b.bytes >= limit)?,
            };
            batches.write(index, &line)?;
        }
        let uris = batches.finish()?;
        let (splits, path) = ctx.output_file("splits.txt")?;
        std::fs::write(&path, uris.join("\n"))
            .map_err(|e| TaskError::Failed(format!("writing {splits}: {e}")))?;
        let mut out = Map::new();
        out.insert("splits".into(), splits.into());
        Ok(out)
    }
}

/// The batch files a split writes.
struct Batches<'c, 'a> {
    ctx: &'c TaskContext<'a>,
    extension: String,
    files: Vec<BatchFile>,
}

struct BatchFile {
    uri: String,
    path: std::path::PathBuf,
    out: BufWriter<std::fs::File>,
    rows: u64,
    bytes: u64,
}

impl<'c, 'a> Batches<'c, 'a> {
    fn new(ctx: &'c TaskContext<'a>, extension: String) -> Self {
        Batches {
            ctx,
            extension,
            files: Vec::new(),
        }
    }

    fn open(&mut self) -> Result<usize, TaskError> {
        let name = format!("{}{}", self.files.len() + 1, self.extension);
        let (uri, path) = self.ctx.output_file(&name)?;
        let file = std::fs::File::create(&path)
            .map_err(|e| TaskError::Failed(format!("writing {uri}: {e}")))?;
        self.files.push(BatchFile {
            uri,
            path,
            out: BufWriter::with_capacity(32 << 10, file),
            rows: 0,
            bytes: 0,
        });
        Ok(self.files.len() - 1)
    }

    /// The batch the next line goes to: the last one, or a new one when there is none yet
    /// or the last one is `full`.
    fn current(&mut self, full: impl Fn(&BatchFile) -> bool) -> Result<usize, TaskError> {
        match self.files.last() {
            Some(last) if !full(last) => Ok(self.files.len() - 1),
            _ => {
                if let Some(last) = self.files.last_mut() {
                    flush(last)?;
                }
                self.open()
            }
        }
    }

    fn write(&mut self, index: usize, line: &[u8]) -> Result<(), TaskError> {
        let f = &mut self.files[index];
        f.out
            .write_all(line)
            .map_err(|e| TaskError::Failed(format!("writing {}: {e}", f.uri)))?;
        f.rows += 1;
        f.bytes += line.len() as u64;
        Ok(())
    }

    /// Flushes every batch, removes the empty ones (a partition no line went to), and
    /// returns the URIs of the others, in order.
    fn finish(mut self) -> Result<Vec<String>, TaskError> {
        let mut uris = Vec::with_capacity(self.files.len());
        for f in &mut self.files {
            flush(f)?;
            if f.rows == 0 {
                std::fs::remove_file(&f.path)
                    .map_err(|e| TaskError::Failed(format!("removing {}: {e}", f.uri)))?;
            } else {
                uris.push(f.uri.clone());
            }
        }
        Ok(uris)
    }
}

fn flush(f: &mut BatchFile) -> Result<(), TaskError> {
    f.out
        .flush()
        .map_err(|e| TaskError::Failed(format!("writing {}: {e}", f.uri)))
}

/// The child of a [`ForEachItem`] that starts one execution per batch, run by the executor
/// (Kestra's `ForEachItem$ForEachItemExecutable`). Its properties are a Subflow's, without
/// `outputs`; it never allows failure itself (Kestra builds it without `allowFailure`), so
/// the ForEachItem's own `allowFailure` and `allowWarning` apply to the flowable.
#[derive(Debug, Clone)]
pub struct ForEachItemExecutable {
    pub subflow: Subflow,
}

impl TaskType for ForEachItemExecutable {
    const TYPES: &'static [&'static str] = &[EXECUTABLE_TYPE];

    fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let error = props.error("property `outputs` is not a ForEachItem property");
        let subflow = Subflow::parse(props)?;
        if subflow.outputs.is_some() {
            return Err(error);
        }
        Ok(ForEachItemExecutable { subflow })
    }

    fn role(&self) -> Role<'_> {
        Role::Iterative(self)
    }
}

/// Counts one of a ForEachItem's executions as moved from state `from` to state `to`, in
/// the `iterations` output of its `{id}_items` task run, as Kestra 58c1ca2d0's
/// `ExecutableUtils#manageIterations` does: once the ended ones (SUCCESS, FAILED, KILLED,
/// WARNING, CANCELLED) are as many as the batches, the task run ends, FAILED if one failed
/// (WARNING with `allow_failure`, SUCCESS with `allow_warning` too), else KILLED if one was
/// killed, else WARNING if one warned (SUCCESS with `allow_warning`), else SUCCESS; any of
/// them SUCCESS without `transmit_failed`. Its outputs are then the counts, the number of
/// batches, and `subflowOutputsBaseUri`, the folder the executions' outputs are under.
/// Returns whether the task run ended.
#[allow(clippy::too_many_arguments)]
pub fn count_iteration(
    tr: &mut TaskRun,
    from: StateType,
    to: StateType,
    batches: u64,
    transmit_failed: bool,
    allow_failure: bool,
    allow_warning: bool,
    at: jiff::Timestamp,
) -> bool {
    let outputs = tr.outputs.get_or_insert_with(Map::new);
    let mut iterations: BTreeMap<String, i64> = outputs
        .get(ITERATIONS)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    *iterations.entry(to.as_str().to_string()).or_insert(0) += 1;
    if from != to {
        let previous = iterations
            .entry(from.as_str().to_string())
            .or_insert(batches as i64);
        *previous -= 1;
    }
    let count = |s: StateType| iterations.get(s.as_str()).copied().unwrap_or(0);
    let ended: i64 = [
        StateType::Success,
        StateType::Failed,
        StateType::Killed,
        StateType::Warning,
        StateType::Cancelled,
    ]
    .into_iter()
    .map(count)
    .sum();
    outputs.insert(ITERATIONS.into(), json!(iterations));
    outputs.insert(NUMBER_OF_BATCHES.into(), json!(batches));
    if ended != batches as i64 {
        return false;
    }
    let state = if !transmit_failed {
        StateType::Success
    } else if count(StateType::Failed) > 0 {
        match (allow_failure, allow_warning) {
            (true, true) => StateType::Success,
            (true, false) => StateType::Warning,
            _ => StateType::Failed,
        }
    } else if count(StateType::Killed) > 0 {
        StateType::Killed
    } else if count(StateType::Warning) > 0 && !allow_warning {
        StateType::Warning
    } else {
        StateType::Success
    };
    let base = Storage::task_run_folder(tr);
    let base = base.strip_prefix("kestra://").unwrap_or(&base).to_string();
    let outputs = tr.outputs.get_or_insert_with(Map::new);
    outputs.insert(SUBFLOW_OUTPUTS_BASE_URI.into(), base.into());
    tr.state.transition(state, at);
    let mut attempt = crate::model::State::new(at);
    attempt.transition(state, at);
    // Kestra replaces the attempts with this one.
    tr.attempts = Some(vec![crate::model::TaskRunAttempt {
        state: attempt,
        log_file: None,
    }]);
    true
}

/// The merge child of a [`ForEachItem`], run on a worker (Kestra's
/// `ForEachItem$ForEachItemMergeOutputs`).
#[derive(Debug, Clone)]
pub struct ForEachItemMergeOutputs {
    /// The id of the ForEachItem's `{id}_items` task, whose outputs it reads.
    pub items_task: String,
}

impl TaskType for ForEachItemMergeOutputs {
    const TYPES: &'static [&'static str] = &[MERGE_TYPE];

    fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let items_task = match props.id().strip_suffix("_merge") {
            Some(parent) => format!("{parent}_items"),
            None => return Err(props.error("a ForEachItem merge task's id ends with `_merge`")),
        };
        props.finish()?;
        Ok(ForEachItemMergeOutputs { items_task })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for ForEachItemMergeOutputs {
    /// Concatenates the `outputs.ion` each execution wrote, by batch number, into this task
    /// run's `outputs.ion`, and outputs its URI as `subflowOutputs`. Nothing, when no
    /// execution ran or none wrote outputs (its flow has none).
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        // `outputs.{id}_items`, under the ForEachItem's value when it runs in a ForEach
        // (Kestra's `ForEachItem#extractOutput`).
        let mut items = ctx
            .vars
            .get("outputs")
            .and_then(|o| o.get(&self.items_task));
        if let Some(value) = ctx
            .vars
            .pointer("/parent/taskrun/value")
            .and_then(Value::as_str)
        {
            items = items.and_then(|o| o.get(value));
        }
        let Some(base) = items
            .and_then(|o| o.get(SUBFLOW_OUTPUTS_BASE_URI))
            .and_then(Value::as_str)
        else {
            return Ok(Map::new());
        };
        let base = format!("kestra://{base}");
        let dir = ctx
            .storage
            .path(&base)
            .map_err(|e| TaskError::Failed(e.to_string()))?;
        let mut batches: Vec<(u64, std::path::PathBuf)> = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(e) => return Err(TaskError::Failed(format!("listing {base}: {e}"))),
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.parse::<u64>().ok()?;
                    Some((n, e.path().join("outputs.ion")))
                })
                .collect(),
        };
        if batches.is_empty() {
            return Ok(Map::new());
        }
        batches.sort_by_key(|(n, _)| *n);
        let (uri, path) = ctx.output_file("outputs.ion")?;
        let file = std::fs::File::create(&path)
            .map_err(|e| TaskError::Failed(format!("writing {uri}: {e}")))?;
        let mut out = BufWriter::with_capacity(32 << 10, file);
        for (n, part) in &batches {
            let mut input = std::fs::File::open(part).map_err(|e| {
                TaskError::Failed(format!(
                    "reading the outputs of batch {n} ({base}/{n}): {e}"
                ))
            })?;
            std::io::copy(&mut input, &mut out)
                .map_err(|e| TaskError::Failed(format!("writing {uri}: {e}")))?;
        }
        out.flush()
            .map_err(|e| TaskError::Failed(format!("writing {uri}: {e}")))?;
        let mut outputs = Map::new();
        outputs.insert("subflowOutputs".into(), uri.into());
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_micronaut_reads_them() {
        assert_eq!(readable_bytes("10").unwrap(), 10);
        assert_eq!(readable_bytes("1KB").unwrap(), 1024);
        assert_eq!(readable_bytes("2mb").unwrap(), 2 << 20);
        assert_eq!(readable_bytes("1GB").unwrap(), 1 << 30);
        assert!(readable_bytes("ten").is_err());
        assert!(readable_bytes("0").is_err());
        assert!(readable_bytes("1TB").is_err());
    }

    fn task_run() -> TaskRun {
        TaskRun {
            id: "tr".into(),
            execution_id: "e".into(),
            namespace: "n".into(),
            flow_id: "f".into(),
            task_id: "each_items".into(),
            parent_task_run_id: None,
            value: None,
            attempts: None,
            outputs: None,
            state: crate::model::State::new(crate::model::now()),
            iteration: None,
        }
    }

    fn counts(tr: &TaskRun) -> Value {
        tr.outputs.as_ref().unwrap()[ITERATIONS].clone()
    }

    #[test]
    fn iterations_are_counted_as_kestra_counts_them() {
        let at = crate::model::now();
        let mut tr = task_run();
        tr.state.transition(StateType::Running, at);
        for _ in 0..3 {
            assert!(!count_iteration(
                &mut tr,
                StateType::Created,
                StateType::Running,
                3,
                true,
                false,
                false,
                at
            ));
        }
        assert_eq!(counts(&tr), json!({"CREATED": 0, "RUNNING": 3}));
        assert!(!count_iteration(
            &mut tr,
            StateType::Running,
            StateType::Success,
            3,
            true,
            false,
            false,
            at
        ));
        assert!(!count_iteration(
            &mut tr,
            StateType::Running,
            StateType::Failed,
            3,
            true,
            false,
            false,
            at
        ));
        assert!(count_iteration(
            &mut tr,
            StateType::Running,
            StateType::Success,
            3,
            true,
            true,
            false,
            at
        ));
        assert_eq!(
            counts(&tr),
            json!({"CREATED": 0, "RUNNING": 0, "SUCCESS": 2, "FAILED": 1})
        );
        assert_eq!(tr.state.current, StateType::Warning);
        assert_eq!(tr.attempt_count(), 1);
        let out = tr.outputs.as_ref().unwrap();
        assert_eq!(out[NUMBER_OF_BATCHES], json!(3));
        assert_eq!(
            out[SUBFLOW_OUTPUTS_BASE_URI],
            json!("/n/f/executions/e/tasks/each-items/tr")
        );
    }

    #[test]
    fn without_wait_the_batches_end_as_soon_as_they_start() {
        let at = crate::model::now();
        let mut tr = task_run();
        let ended: Vec<bool> = (0..2)
            .map(|_| {
                count_iteration(
                    &mut tr,
                    StateType::Running,
                    StateType::Success,
                    2,
                    true,
                    false,
                    false,
                    at,
                )
            })
            .collect();
        assert_eq!(ended, [false, true]);
        assert_eq!(counts(&tr), json!({"RUNNING": 0, "SUCCESS": 2}));
        assert_eq!(tr.state.current, StateType::Success);
    }

    #[test]
    fn a_failed_batch_fails_the_task_run_unless_failures_are_not_transmitted() {
        let at = crate::model::now();
        for (transmit, allow_failure, allow_warning, end) in [
            (true, false, false, StateType::Failed),
            (true, true, false, StateType::Warning),
            (true, true, true, StateType::Success),
            (false, false, false, StateType::Success),
        ] {
            let mut tr = task_run();
            count_iteration(
                &mut tr,
                StateType::Running,
                StateType::Failed,
                1,
                transmit,
                allow_failure,
                allow_warning,
                at,
            );
            assert_eq!(
                tr.state.current, end,
                "{transmit} {allow_failure} {allow_warning}"
            );
        }
    }

    #[test]
    fn bad_batches_fail_at_load() {
        let flow = |batch: &str| {
            crate::flow::parse_flow(
                &format!(
                    "id: f\nnamespace: n\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEachItem\n    items: \"{{{{ inputs.file }}}}\"\n    namespace: n\n    flowId: c\n{batch}"
                ),
                "f.yaml",
            )
            .map(|f| f.tasks[0].children().map(<[Task]>::len).collect::<Vec<_>>())
            .map_err(|e| e.to_string())
        };
        assert_eq!(flow("").unwrap(), [3, 0]);
        flow("    batch:\n      rows: \"{{ inputs.batch }}\"\n").unwrap();
        flow("    batch:\n      bytes: 10KB\n").unwrap();
        for (batch, says) in [
            ("    batch:\n      rows: 0\n", "batch.rows"),
            ("    batch:\n      partitions: -1\n", "batch.partitions"),
            ("    batch:\n      bytes: ten\n", "batch.bytes"),
            ("    batch:\n      lines: 3\n", "batch.lines"),
            ("    batch: 3\n", "`batch`"),
            (
                "    scheduleDate: \"2024-01-01T00:00:00Z\"\n",
                "scheduleDate",
            ),
        ] {
            let e = flow(batch).unwrap_err();
            assert!(e.contains("`each`") && e.contains(says), "{batch}: {e}");
        }
        let e = flow("    outputs:\n      a: b\n").unwrap_err();
        assert!(e.contains("`outputs`"), "{e}");
    }
}
