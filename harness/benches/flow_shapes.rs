//! How the reference orchestrator's execution time grows with an execution's shape, on its
//! default (after) path:
//!
//! * `foreach/100`: Kestra's benchmark B3 (`scenarios/foreach/benchmark03.yaml`), a
//!   ForEach over 100 values, each an `OutputValues`;
//! * `foreach/1000` and `foreach/10000`: the same flow over 1,000 and 10,000 values;
//! * `sequence/200`: 200 `Return` tasks one after the other, so each step is one round trip
//!   executor → worker → executor.
//!
//! Each backend gets one orchestrator (executor, worker, indexer in this process) on a fresh
//! database: SQLite always; PostgreSQL and MariaDB/MySQL when `FLOWBENCH_POSTGRES_URL` /
//! `FLOWBENCH_MYSQL_URL` are set (a database is created there and dropped afterwards). An
//! iteration is one execution; the time recorded is the execution's own duration (its
//! state's start to end, as Kestra's benchmarks report it), not the polling around it. The
//! best execution of each shape is printed too, as Kestra reports B3 as a best of several.
//!
//! `FLOWBENCH_SHAPES` picks shapes (comma-separated, e.g. `foreach/100,sequence/200`);
//! `foreach/10000` runs only when named there, as one iteration takes seconds to minutes.

use std::cell::Cell;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use harness::scenario::Backend;
use harness::workload::ServerDatabases;
use orchestrator::model::StateType;
use orchestrator::service::{Components, Config, Orchestrator};

/// B3 exactly as Kestra publishes it.
const B3: &str = include_str!("../../scenarios/foreach/benchmark03.yaml");

/// `(name, flow source)` of every shape.
fn shapes() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in [100, 1000, 10000] {
        // Pebble's range is inclusive: `range(1, n)` is n values.
        let source = B3
            .replace("range(1, 100)", &format!("range(1, {n})"))
            .replace("id: benchmark03", &format!("id: foreach{n}"));
        out.push((format!("foreach/{n}"), source));
    }
    let mut seq = String::from("id: sequence200\nnamespace: benchmarks\ntasks:\n");
    for i in 0..200 {
        seq.push_str(&format!(
            "  - id: r{i}\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{{{ taskrun.id }}}}\"\n"
        ));
    }
    out.push(("sequence/200".to_string(), seq));
    out
}

fn selected(name: &str) -> bool {
    match std::env::var("FLOWBENCH_SHAPES") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|s| s.trim() == name),
        _ => name != "foreach/10000",
    }
}

/// The backends to measure: `(name, database URL, databases to drop afterwards)`.
fn backends(
    rt: &tokio::runtime::Runtime,
    tmp: &std::path::Path,
) -> Vec<(&'static str, String, Option<ServerDatabases>)> {
    let mut out = vec![(
        "sqlite",
        format!("sqlite://{}", tmp.join("shapes.db").display()),
        None,
    )];
    for (name, var, backend) in [
        ("postgres", "FLOWBENCH_POSTGRES_URL", Backend::Postgres),
        ("mysql", "FLOWBENCH_MYSQL_URL", Backend::Mysql),
    ] {
        let Ok(url) = std::env::var(var) else {
            eprintln!("{name}: skipped, {var} is not set");
            continue;
        };
        let dbs = ServerDatabases::new(&url, backend).expect("a server backend");
        match rt.block_on(dbs.create()) {
            Ok(db) => out.push((name, db, Some(dbs))),
            Err(e) => eprintln!("{name}: skipped, cannot create a database: {e}"),
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (backend, url, dbs) in backends(&rt, tmp.path()) {
        let o = rt
            .block_on(Orchestrator::connect(Config {
                db: url,
                knobs: Default::default(),
                storage: tmp.path().join(format!("storage-{backend}")),
                timing: Default::default(),
            }))
            .unwrap_or_else(|e| panic!("{backend}: {e:#}"));
        rt.block_on(async { o.start(Components::ALL) });
        let mut g = c.benchmark_group(backend);
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(1));
        for (shape, source) in shapes().into_iter().filter(|(s, _)| selected(s)) {
            let flow = rt
                .block_on(o.deploy(&source, &format!("{shape}.yaml")))
                .unwrap();
            // Kestra publishes B3 as the best of several runs: kept beside criterion's mean.
            let (best, runs) = (Cell::new(Duration::MAX), Cell::new(0u32));
            g.bench_function(&shape, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let e = o
                                .create_execution(
                                    &flow.namespace,
                                    &flow.id,
                                    Default::default(),
                                    vec![],
                                    None,
                                )
                                .await
                                .unwrap();
                            let done = o
                                .wait_terminal(&e.id, Duration::from_secs(1800))
                                .await
                                .unwrap();
                            assert_eq!(done.state.current, StateType::Success, "{backend} {shape}");
                            let took = done.state.duration().unsigned_abs();
                            best.set(best.get().min(took));
                            runs.set(runs.get() + 1);
                            total += took;
                        }
                        total
                    })
                })
            });
            eprintln!(
                "{backend}/{shape}: best {:.1} ms of {} executions",
                best.get().as_secs_f64() * 1000.0,
                runs.get()
            );
        }
        g.finish();
        rt.block_on(o.shutdown());
        if let Some(dbs) = dbs
            && let Err(e) = rt.block_on(dbs.drop_all())
        {
            eprintln!("{backend}: {e}");
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
