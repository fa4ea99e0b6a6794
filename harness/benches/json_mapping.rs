//! `jdbc.json-mapping`: decoding one stored execution, `normalize` vs `direct`.
//!
//! The input is real: an execution of Kestra's benchmark 02 (10 task runs), run to the
//! end by the orchestrator in-process and read back as the JSON the `executions` table
//! holds. Both paths are the repositories' own decoding, called through
//! `orchestrator::repository::bench_decode`: `direct` parses the text straight into
//! `Execution`; `normalize` parses it into a generic tree, renders that back to text and
//! parses the text (Kestra before 1d7982406, on PostgreSQL). PostgreSQL's `direct` path
//! reads the JSONB bytes through sqlx's `Json<T>`, which is the same `serde_json` parse of
//! the same text.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use orchestrator::knobs::JsonMapping;
use orchestrator::model::Execution;
use orchestrator::repository::bench_decode as decode;
use orchestrator::service::{Components, Config, Orchestrator};

fn stored_execution() -> String {
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
        o.start(Components::ALL);
        let flow = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scenarios/e2e-webhook/benchmark02.yaml"),
        )
        .unwrap();
        let flow = o.deploy(&flow, "benchmark02.yaml").await.unwrap();
        let e = o
            .create_execution(&flow.namespace, &flow.id, Default::default(), vec![], None)
            .await
            .unwrap();
        let done = o
            .wait_terminal(&e.id, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        o.shutdown().await;
        serde_json::to_string(&done).unwrap()
    })
}

fn bench(c: &mut Criterion) {
    let text = stored_execution();
    let mut g = c.benchmark_group("jdbc.json-mapping");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("normalize", |b| {
        b.iter_batched(
            || text.clone(),
            |t| black_box(decode::<Execution>(JsonMapping::Normalize, &t).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("direct", |b| {
        b.iter_batched(
            || text.clone(),
            |t| black_box(decode::<Execution>(JsonMapping::Direct, &t).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
