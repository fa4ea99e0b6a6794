//! `worker.task-handling`: building a `WorkerTaskResult` from a `WorkerTask`, `mutate`
//! vs `immutable`.
//!
//! The worker's result-building code is private to the orchestrator, so this benchmarks
//! the equivalent work on a real `WorkerTask`: one the executor queued for a task run of
//! the `worker-mutation` scenario's flow (a sizeable run context), taken from the queue.
//! `mutate` is a JSON round trip of the whole task, three `with…`-style copies and a
//! final clone, as the worker's `mutate` path does; `immutable` moves the task run out of
//! the borrowed task and sets its fields. The task itself (running the `OutputValues`) is
//! the same for both and left out.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use orchestrator::model::{StateType, TaskRunAttempt, WorkerTaskResult};
use orchestrator::repository::QueueType;
use orchestrator::service::{Components, Config, Orchestrator};
use orchestrator::worker::WorkerTask;

fn queued_worker_task() -> WorkerTask {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let o = Orchestrator::connect(Config {
            db: format!("sqlite://{}", tmp.path().join("bench.db").display()),
            knobs: Default::default(),
            storage: tmp.path().join("storage"),
            timing: Default::default(),
        })
        .await
        .unwrap();
        // An executor and no worker: the worker tasks stay in the queue for us.
        o.start(Components {
            executor: true,
            worker: false,
            indexer: false,
        });
        let flow = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scenarios/worker-mutation/flows/small-outputs.yaml"),
        )
        .unwrap();
        let flow = o.deploy(&flow, "small-outputs.yaml").await.unwrap();
        o.create_execution(&flow.namespace, &flow.id, Default::default(), vec![], None)
            .await
            .unwrap();
        let task = loop {
            let mut tx = o.store().begin().await.unwrap();
            let polled = tx.poll(&[QueueType::WorkerTask], 1).await.unwrap();
            if let Some(p) = polled.into_iter().next() {
                break serde_json::from_str::<WorkerTask>(&p.value).unwrap();
            }
            drop(tx);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        o.shutdown().await;
        task
    })
}

fn outcome() -> (
    Vec<TaskRunAttempt>,
    serde_json::Map<String, serde_json::Value>,
) {
    let mut attempt =
        orchestrator::model::State::of(StateType::Running, orchestrator::model::now());
    attempt.transition(StateType::Success, orchestrator::model::now());
    let mut outputs = serde_json::Map::new();
    outputs.insert("values".into(), serde_json::json!({ "item": "1" }));
    (
        vec![TaskRunAttempt {
            state: attempt,
            log_file: None,
        }],
        outputs,
    )
}

fn mutate(job: WorkerTask) -> WorkerTaskResult {
    let (attempts, outputs) = outcome();
    let text = serde_json::to_string(&job).unwrap();
    let mut copy: WorkerTask = serde_json::from_str(&text).unwrap();
    let mut task_run = copy.task_run.clone();
    task_run.attempts = Some(attempts);
    copy = WorkerTask {
        task_run,
        ..copy.clone()
    };
    let mut task_run = copy.task_run.clone();
    task_run.outputs = Some(outputs);
    copy = WorkerTask {
        task_run,
        ..copy.clone()
    };
    let mut task_run = copy.task_run.clone();
    task_run
        .state
        .transition(StateType::Success, orchestrator::model::now());
    copy = WorkerTask {
        task_run,
        ..copy.clone()
    };
    let whole = copy.clone();
    WorkerTaskResult {
        task_run: whole.task_run,
    }
}

fn immutable(job: WorkerTask) -> WorkerTaskResult {
    let (attempts, outputs) = outcome();
    let mut state = job.task_run.state.clone();
    state.transition(StateType::Success, orchestrator::model::now());
    WorkerTaskResult {
        task_run: orchestrator::model::TaskRun {
            attempts: Some(attempts),
            outputs: Some(outputs),
            state,
            ..job.task_run
        },
    }
}

fn bench(c: &mut Criterion) {
    let task = queued_worker_task();
    let size = serde_json::to_string(&task).unwrap().len();
    let mut g = c.benchmark_group("worker.task-handling");
    g.throughput(Throughput::Elements(1));
    eprintln!("worker task: {size} bytes of JSON");
    g.bench_function("mutate", |b| {
        b.iter_batched(
            || task.clone(),
            |t| black_box(mutate(t)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("immutable", |b| {
        b.iter_batched(
            || task.clone(),
            |t| black_box(immutable(t)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
