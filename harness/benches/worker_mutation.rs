//! `worker.task-handling`: a worker thread handling one `WorkerTask`, `mutate` vs
//! `immutable`, through the orchestrator's own code (`orchestrator::worker::bench`).
//!
//! The task is a real one: the executor queued it for a task run of the `worker-mutation`
//! scenario's flow (a sizeable run context), and it is taken from the queue. Each iteration
//! runs the real `TaskRunner::execute`: the task (an `OutputValues`) and building the
//! result, the part the knob changes. Cloning the task for each iteration is setup, outside
//! the timed part.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use orchestrator::knobs::Knobs;
use orchestrator::queue::WorkerTask;
use orchestrator::repository::QueueType;
use orchestrator::service::{Components, Config, Orchestrator};
use orchestrator::worker::bench::TaskHandler;

/// An orchestrator with these knobs, on a fresh SQLite file; no component started.
fn orchestrator(rt: &tokio::runtime::Runtime, tmp: &std::path::Path, knobs: Knobs) -> Orchestrator {
    rt.block_on(Orchestrator::connect(Config {
        db: format!("sqlite://{}", tmp.join("bench.db").display()),
        knobs,
        storage: tmp.join("storage"),
        timing: Default::default(),
    }))
    .unwrap()
}

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
            scheduler: false,
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

fn bench(c: &mut Criterion) {
    let task = queued_worker_task();
    let size = serde_json::to_string(&task).unwrap().len();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("worker.task-handling");
    g.throughput(Throughput::Elements(1));
    eprintln!("worker task: {size} bytes of JSON");
    for mode in ["mutate", "immutable"] {
        let mut knobs = Knobs::default();
        knobs
            .apply(&[&format!("worker.task-handling={mode}")])
            .unwrap();
        let dir = tmp.path().join(mode);
        std::fs::create_dir_all(&dir).unwrap();
        let o = orchestrator(&rt, &dir, knobs);
        let handler = TaskHandler::new(&o);
        g.bench_function(mode, |b| {
            b.iter_batched(
                || task.clone(),
                |t| black_box(handler.handle(t)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
