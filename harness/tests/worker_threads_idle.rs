//! The worker-threads scenario measures what an idle worker thread costs: a trimmed
//! quick run on SQLite records the `idle_thread_*` figures under `idle-threads`.
//! The test checks that they are measured and plausible, never how large they are.

use std::path::Path;
use std::process::Command;

use reports::results::{Params, Results, Status};

#[test]
fn a_worker_threads_run_records_the_cost_of_an_idle_thread() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/worker-threads");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scenarios/worker-threads");
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    for flow in ["cpu", "sleep", "mixed"] {
        let name = format!("flows/{flow}.yaml");
        std::fs::copy(src.join(&name), dir.join(&name)).unwrap();
    }
    // The shipped file, with the sweep cut to one task and one extra thread count.
    let toml = std::fs::read_to_string(src.join("scenario.toml"))
        .unwrap()
        .replace(
            "sweep = { threads = [1, \"4x-cores\", 128] }",
            "sweep = { threads = [1], task = [\"sleep\"] }",
        )
        .replace(
            "params = { iterations = 32 }",
            "params = { iterations = 4 }",
        );
    assert!(
        toml.contains("task = [\"sleep\"]"),
        "the quick section changed"
    );
    std::fs::write(dir.join("scenario.toml"), toml).unwrap();

    let out = tmp.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(["run", "worker-threads", "--quick", "--scenarios-dir"])
        .arg(tmp.path().join("scenarios"))
        .arg("--out")
        .arg(&out)
        .env_remove("FLOWBENCH_SCENARIOS")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let results = Results::load(&out.join("results.json")).unwrap();
    let s = &results.scenarios[0];
    assert_eq!(s.status, Status::Ok, "{s:?}");
    let idle = s
        .variants
        .iter()
        .find(|v| v.name == "idle-threads")
        .unwrap();
    assert_eq!(idle.params["threads"], 128i64.into());
    let metric = |name: &str| {
        s.metric("idle-threads", name, &Params::new())
            .unwrap_or_else(|| panic!("{name} not recorded"))
    };
    // As many rounds as the A/B runs had.
    let task: Params = [("task".to_string(), "sleep".into())].into_iter().collect();
    let repetitions = s
        .metric("128-threads", "peak_rss_kib", &task)
        .expect("the A/B runs are recorded")
        .samples
        .len();
    assert!(repetitions >= 3, "{repetitions}");
    for name in [
        "idle_thread_rss_kib",
        "idle_thread_vsz_kib",
        "idle_thread_stack_kib",
    ] {
        let m = metric(name);
        assert_eq!(
            m.samples.len(),
            repetitions,
            "{name}: one sample per repetition"
        );
        assert!(
            m.samples.iter().all(|x| x.is_finite()),
            "{name}: {:?}",
            m.samples
        );
    }
    // Every idle thread reserves a stack: far more than a guard page, and the process's
    // address space grows with the threads.
    assert!(
        metric("idle_thread_stack_kib")
            .samples
            .iter()
            .all(|&k| k >= 64.0)
    );
    assert!(metric("idle_thread_vsz_kib").summary.median > 0.0);
    // The figures are not compared as A/B: no comparison names them.
    assert!(
        s.comparisons
            .iter()
            .all(|c| !c.metric.starts_with("idle_thread"))
    );
}
