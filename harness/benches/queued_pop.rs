//! `queued.index`: one pop of `execution_queued` on SQLite at 10k queued rows, with the
//! `flow` index vs the `flow-date` index, in Kestra OSS's tenant mode (no tenant, the pop
//! filters `tenant_id IS NULL`).
//!
//! Each variant connects its own store (which builds its index) to its own database
//! holding 10,000 queued executions over 10 flows. Each iteration pops the oldest
//! execution of one flow in its own transaction; the setup, untimed, queues one back so
//! the depth stays at 10k.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use orchestrator::knobs::Knobs;
use orchestrator::model::{Execution, State, new_id, now};
use orchestrator::repository::{ExecutionQueued, Store};

const ROWS: usize = 10_000;
const FLOWS: usize = 10;

fn queued(flow: usize) -> ExecutionQueued {
    let id = new_id();
    let execution = Execution {
        original_id: id.clone(),
        metadata: None,
        outputs: None,
        id,
        tenant_id: None,
        namespace: "benchmarks.queued".into(),
        flow_id: format!("flow-{flow}"),
        flow_revision: 1,
        inputs: Default::default(),
        labels: vec![],
        state: State::new(now()),
        task_run_list: vec![],
        trigger: None,
    };
    ExecutionQueued::new(execution, now())
}

async fn store(dir: &std::path::Path, index: &str) -> Arc<dyn Store> {
    let mut knobs = Knobs::default();
    knobs.set("queued.index", index).unwrap();
    let url = format!("sqlite://{}", dir.join(format!("{index}.db")).display());
    let store = orchestrator::repository::connect(&url, &knobs)
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    for i in 0..ROWS {
        tx.queued_push(&queued(i % FLOWS)).await.unwrap();
    }
    tx.commit().await.unwrap();
    store
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("queued.index/pop-10k");
    g.throughput(Throughput::Elements(1));
    for index in ["flow", "flow-date"] {
        let store = rt.block_on(store(tmp.path(), index));
        let mut n = 0usize;
        g.bench_function(index, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let flow = n % FLOWS;
                    rt.block_on(async {
                        let mut tx = store.begin().await.unwrap();
                        tx.queued_push(&queued(flow)).await.unwrap();
                        tx.commit().await.unwrap();
                    });
                    format!("flow-{flow}")
                },
                |flow_id| {
                    rt.block_on(async {
                        let mut tx = store.begin().await.unwrap();
                        let key = tx
                            .queued_pop(None, "benchmarks.queued", &flow_id)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                        black_box(key)
                    })
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
