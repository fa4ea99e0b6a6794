//! The cost of an execution id: Kestra's short form against the form flowbench had before.
//!
//! * `kestra_base62_v4`: [`orchestrator::model::new_id`], a random UUID written in base 62
//!   (Kestra's `IdUtils.create()`), 22 characters at most;
//! * `uuid_v7_hex`: a time-ordered UUID v7 as 32 hex digits, the ids flowbench wrote until
//!   ef7a0b5.
//!
//! Every execution, task run and executor log line takes one id, so the difference per id,
//! times those counts, is what the short form costs a run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn ids(c: &mut Criterion) {
    let mut group = c.benchmark_group("ids");
    group.bench_function("kestra_base62_v4", |b| {
        b.iter(|| black_box(orchestrator::model::new_id()))
    });
    group.bench_function("uuid_v7_hex", |b| {
        b.iter(|| black_box(uuid::Uuid::now_v7().simple().to_string()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = ids
}
criterion_main!(benches);
