//! The gate on real runs: a HEAD run with `serde.mode` set back to Kestra's `naive` path is
//! flagged as regressed against a BASE run with the default knobs, and `compare` exits 3.
//! An A/A pair of real runs of the same build is not.
//!
//! The scenario gates on the deterministic allocation counter only. Timings of two separate
//! runs on a shared 2-core machine drift by more than the default 5% tolerance (an A/A pair
//! once measured 0.905× [0.877, 0.935] on CSV reads), so a test that gated on them would
//! fail on noise; the timing gate's false-alarm rate is checked on resampled recorded
//! samples in `cli.rs` instead.

use std::path::Path;
use std::process::{Command, Output};

/// One variant with no knob of its own, so `--set` decides the FileSerde path.
const SCENARIO: &str = r#"
id = "serde-gate"
title = "FileSerde under the gate"
workload = "serde"
repetitions = 8
warmup = 1
backends = ["sqlite"]

[claim]
text = "batched FileSerde allocates less per record"
kestra_figure = "+20–40% records/s"
direction = "lower"
expected_ratio = 0.8
metric = "alloc_count"

[[variant]]
name = "default"
knobs = {}

[sweep]
format = ["csv"]
records = [5000]

[[metric]]
name = "alloc_count"
unit = "allocations"
better = "lower"
kind = "counter"
"#;

fn flowbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FLOWBENCH_SCENARIOS")
        .output()
        .expect("flowbench runs")
}

fn run(dir: &Path, name: &str, extra: &[&str]) -> String {
    let out = dir.join(name);
    let scenarios = dir.join("scenarios");
    let mut args = vec![
        "run",
        "serde-gate",
        "--scenarios-dir",
        scenarios.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = flowbench(&args, dir);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    out.join("results.json").to_str().unwrap().to_string()
}

#[test]
fn a_head_run_on_the_before_path_is_flagged_and_an_a_a_pair_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("scenarios/serde-gate");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("scenario.toml"), SCENARIO).unwrap();

    let base = run(tmp.path(), "base", &[]);
    let again = run(tmp.path(), "again", &[]);
    let head = run(tmp.path(), "head", &["--set", "serde.mode=naive"]);

    let o = flowbench(
        &["compare", &base, &head, "--fail-on-regression"],
        tmp.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("regressed"), "{out}");

    let o = flowbench(
        &["compare", &base, &again, "--fail-on-regression"],
        tmp.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "A/A: {out}");
}
