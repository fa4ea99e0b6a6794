//! The `flowbench` binary as users and CI call it: listing, bad scenario folders,
//! `compare`'s exit codes, and a tiny run followed by a report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::gate::GatePolicy;
use rand::{Rng, SeedableRng};
use reports::results::{
    Better, Claim, Host, MetricKind, MetricResult, Params, Results, RunMetadata, SCHEMA_VERSION,
    ScenarioResult, Status, Summary, VariantResult,
};

fn flowbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(args)
        .current_dir(cwd)
        .env_remove("FLOWBENCH_SCENARIOS")
        .output()
        .expect("flowbench runs")
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn list_shows_the_nine_scenarios_with_their_claims() {
    let dir = scenarios_dir();
    let o = flowbench(&["list", "--scenarios-dir", dir.to_str().unwrap()], &dir);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for id in [
        "serde",
        "json-mapping",
        "queued-index",
        "log-heavy",
        "worker-threads",
        "worker-mutation",
        "e2e-webhook",
        "foreach",
        "scheduler",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(id)),
            "{id} missing:\n{out}"
        );
    }
    assert_eq!(out.matches("claim: ").count(), 9, "{out}");
}

/// A scenario folder holding one `foreach` scenario, with `edit` applied to its file.
fn bad_folder(edit: impl Fn(&str) -> String) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("foreach");
    std::fs::create_dir_all(&dir).unwrap();
    let src = scenarios_dir().join("foreach");
    std::fs::copy(src.join("benchmark03.yaml"), dir.join("benchmark03.yaml")).unwrap();
    let toml = std::fs::read_to_string(src.join("scenario.toml")).unwrap();
    let file = dir.join("scenario.toml");
    std::fs::write(&file, edit(&toml)).unwrap();
    (tmp, file)
}

fn assert_rejected(edit: impl Fn(&str) -> String, field: &str) {
    let (tmp, file) = bad_folder(edit);
    let o = flowbench(
        &["list", "--scenarios-dir", tmp.path().to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(file.to_str().unwrap()), "no file name: {err}");
    assert!(err.contains(field), "no field `{field}`: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_unknown_knob_names_file_and_field() {
    assert_rejected(
        |t| {
            t.replacen(
                "\"logs.indexing\" = \"sync\"",
                "\"logs.speed\" = \"sync\"",
                1,
            )
        },
        "variant[0].knobs.logs.speed",
    );
}

#[test]
fn an_unknown_metric_names_file_and_field() {
    assert_rejected(
        |t| t.replacen("name = \"wall_ms\"", "name = \"wall_seconds\"", 1),
        "metric[1].name",
    );
}

#[test]
fn malformed_toml_names_file_and_line() {
    let (tmp, file) = bad_folder(|t| t.replacen("repetitions = 5", "repetitions = = 5", 1));
    let o = flowbench(
        &["list", "--scenarios-dir", tmp.path().to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{}:", file.display())), "{err}");
}

// --- compare ---------------------------------------------------------------------------

fn summary(xs: &[f64]) -> Summary {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let median = s[s.len() / 2];
    Summary {
        median,
        mean: xs.iter().sum::<f64>() / xs.len() as f64,
        ci_low: s[0],
        ci_high: s[s.len() - 1],
        cov: 0.01,
        erratic: false,
        n: xs.len(),
    }
}

/// A results file with one scenario and one timing metric holding `samples`.
fn results(scenario: &str, samples: &[f64]) -> Results {
    Results {
        schema_version: SCHEMA_VERSION,
        run: RunMetadata {
            run_id: "test".into(),
            git_sha: None,
            started_at: "2025-06-01T02:00:00Z".parse().unwrap(),
            finished_at: "2025-06-01T02:10:00Z".parse().unwrap(),
            host: Host {
                cores: 2,
                memory_bytes: 1 << 30,
                os: "test".into(),
                kernel: "test".into(),
                rustc: "rustc".into(),
            },
            backend_versions: Default::default(),
            knobs: Default::default(),
            quick: false,
            database_urls: vec![],
        },
        scenarios: vec![ScenarioResult {
            id: scenario.into(),
            title: "t".into(),
            claim: Claim {
                text: "c".into(),
                kestra_figure: "k".into(),
                expected_direction: "lower".into(),
                expected_ratio: Some(0.5),
                kestra_commits: vec![],
                before: None,
                kestra_backends: vec![],
                kestra_counterpart: true,
                published: Vec::new(),
            },
            status: Status::Ok,
            backend: "sqlite".into(),
            variants: vec![VariantResult {
                name: "after".into(),
                knobs: Default::default(),
                params: Params::new(),
            }],
            metrics: vec![MetricResult {
                variant: "after".into(),
                metric: "wall_ms".into(),
                unit: "ms".into(),
                better: Better::Lower,
                kind: MetricKind::Timing,
                params: Params::new(),
                samples: samples.to_vec(),
                summary: summary(samples),
                latency: None,
            }],
            comparisons: vec![],
            plans: vec![],
        }],
    }
}

fn write(dir: &Path, name: &str, r: &Results) -> String {
    let p = dir.join(name);
    r.save(&p).unwrap();
    p.to_str().unwrap().to_string()
}

const BASE: [f64; 10] = [
    100.0, 101.5, 99.2, 100.8, 98.9, 100.1, 101.0, 99.6, 100.4, 99.9,
];

#[test]
fn compare_exits_3_on_a_real_slowdown() {
    let tmp = tempfile::tempdir().unwrap();
    let slower: Vec<f64> = BASE.iter().map(|x| x * 1.3).collect();
    let base = write(tmp.path(), "base.json", &results("foreach", &BASE));
    let head = write(tmp.path(), "head.json", &results("foreach", &slower));
    let o = flowbench(
        &["compare", &base, &head, "--fail-on-regression"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("regressed"), "{out}");
    assert!(out.contains("1.3"), "the ratio is shown: {out}");
}

/// A history in which this metric's median moves by a few percent from run to run,
/// as runs of one build on a shared machine do.
fn drifting_history(dir: &Path) -> String {
    let steps = [1.0, 1.04, 0.98, 1.03, 0.99, 1.04, 0.97, 1.02];
    let lines: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!(
                r#"{{"v":1,"run_id":"n{i}","time":"2025-06-0{}T02:00:00Z","medians":{{"foreach/sqlite/after/wall_ms":{}}}}}"#,
                i + 1,
                100.0 * f
            )
        })
        .collect();
    let p = dir.join("history.jsonl");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p.to_str().unwrap().to_string()
}

/// A 12% shift with tight samples fails the default 5% tolerance; against a history whose
/// runs drift by that much from night to night it is within the noise, while a 1.3×
/// slowdown still fails.
#[test]
fn compare_widens_the_timing_tolerance_to_the_drift_in_the_history() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write(tmp.path(), "base.json", &results("foreach", &BASE));
    let shifted: Vec<f64> = BASE.iter().map(|x| x * 1.12).collect();
    let head = write(tmp.path(), "head.json", &results("foreach", &shifted));
    let o = flowbench(&["compare", &base, &head], tmp.path());
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    let history = drifting_history(tmp.path());
    let o = flowbench(
        &["compare", &base, &head, "--history", &history],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 metrics have a measured tolerance"), "{out}");
    let row = out.lines().find(|l| l.contains("wall_ms")).unwrap();
    let tol: f64 = row
        .split_whitespace()
        .find_map(|w| w.strip_suffix('%')?.parse().ok())
        .unwrap();
    assert!(tol > 12.0 && tol < 40.0, "{row}");

    let slower: Vec<f64> = BASE.iter().map(|x| x * 1.5).collect();
    let head = write(tmp.path(), "slower.json", &results("foreach", &slower));
    let o = flowbench(
        &["compare", &base, &head, "--history", &history],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[test]
fn compare_exits_0_on_identical_results() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write(tmp.path(), "base.json", &results("foreach", &BASE));
    let head = write(tmp.path(), "head.json", &results("foreach", &BASE));
    let o = flowbench(
        &["compare", &base, &head, "--fail-on-regression"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unchanged"));
}

#[test]
fn compare_exits_1_on_a_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write(tmp.path(), "base.json", &results("foreach", &BASE));
    let o = flowbench(&["compare", &base, "nowhere.json"], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nowhere.json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn compare_exits_1_on_mismatched_scenarios_or_bad_json() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write(tmp.path(), "base.json", &results("foreach", &BASE));
    let head = write(tmp.path(), "head.json", &results("log-heavy", &BASE));
    let o = flowbench(&["compare", &base, &head], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("foreach/sqlite") && err.contains("log-heavy/sqlite"),
        "{err}"
    );

    std::fs::write(tmp.path().join("bad.json"), "{\"schema_version\": 1,").unwrap();
    let o = flowbench(&["compare", &base, "bad.json"], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

/// Regression test for issue 10: a noisy base (CoV 11.5%) and a head 22× slower, 5 runs
/// a side, p = 2/252. The old gate called it erratic and exited 0.
#[test]
fn compare_exits_3_on_a_noisy_but_clear_regression() {
    let tmp = tempfile::tempdir().unwrap();
    let base = [11.2, 12.0, 14.6, 12.4, 10.3];
    let head = [268.0, 281.5, 255.3, 290.1, 262.7];
    let base = write(tmp.path(), "base.json", &results("foreach", &base));
    let head = write(tmp.path(), "head.json", &results("foreach", &head));
    let o = flowbench(&["compare", &base, &head], tmp.path());
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("regressed (noisy)"),
        "{}",
        text(&o)
    );
}

/// 3 runs a side cannot reach α = 0.05: the row says so, the summary counts it and
/// warns, and strict gating fails on it.
#[test]
fn compare_shows_insufficient_samples_for_three_against_three() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write(
        tmp.path(),
        "base.json",
        &results("foreach", &[100.0, 101.0, 99.0]),
    );
    let head = write(
        tmp.path(),
        "head.json",
        &results("foreach", &[300.0, 303.0, 297.0]),
    );
    let o = flowbench(&["compare", &base, &head], tmp.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let row = out.lines().find(|l| l.contains("wall_ms")).unwrap();
    assert!(row.ends_with("insufficient samples"), "{row}");
    assert!(!out.contains("unchanged\n"), "{out}");
    assert!(out.contains("1 insufficient samples"), "{out}");
    assert!(out.contains("WARNING"), "{out}");
    let o = flowbench(
        &["compare", &base, &head, "--fail-on-regression"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn compare_exits_1_when_nothing_was_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let mut empty = results("foreach", &BASE);
    empty.scenarios[0].metrics.clear();
    let base = write(tmp.path(), "base.json", &empty);
    let o = flowbench(&["compare", &base, &base], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("0 compared"), "{out}");
    assert!(out.contains("NOTHING COMPARED"), "{out}");
}

#[test]
fn compare_exits_1_when_the_head_lost_a_metric_or_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write(tmp.path(), "base.json", &results("foreach", &BASE));
    let mut lost = results("foreach", &BASE);
    lost.scenarios[0].metrics[0].metric = "cpu_ms".into();
    let head = write(tmp.path(), "lost.json", &lost);
    let o = flowbench(&["compare", &base, &head], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("missing in head") && out.contains("missing in base"),
        "{out}"
    );

    let mut failed = results("foreach", &BASE);
    failed.scenarios[0].status = Status::Failed {
        error: "boom".into(),
    };
    failed.scenarios[0].metrics.clear();
    let head = write(tmp.path(), "failed.json", &failed);
    let o = flowbench(&["compare", &base, &head], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("head failed (failed: boom)"));
}

/// The five samples of `json-mapping`'s `normalize/wall_ms` (ms) recorded by
/// `flowbench run json-mapping --quick` on the project's 2-core machine (debug build),
/// with the noise such a machine has. A/A pairs are resampled from them.
const RECORDED: [f64; 5] = [609.1, 566.2, 563.9, 518.9, 532.9];

#[test]
fn a_a_comparisons_resampled_from_recorded_samples_raise_no_alarm() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut draw = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|_| RECORDED[rng.gen_range(0..RECORDED.len())])
            .collect()
    };
    for round in 0..20 {
        let a = draw(10);
        let b = draw(10);
        let d = harness::diff::diff(
            &results("foreach", &a),
            &results("foreach", &b),
            &GatePolicy::default().into(),
        )
        .unwrap();
        let regressed: Vec<_> = d.regressions().collect();
        assert!(
            regressed.is_empty(),
            "round {round}: false alarm {regressed:?}"
        );
        assert_eq!(d.incomplete().count(), 0);
    }
}

// --- run and report ----------------------------------------------------------------------

#[test]
fn a_quick_run_writes_results_and_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let dir = scenarios_dir();
    let o = flowbench(
        &[
            "run",
            "foreach",
            "serde",
            "--quick",
            "--scenarios-dir",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let results = Results::load(&out.join("results.json")).unwrap();
    assert_eq!(results.scenarios.len(), 2);
    let foreach = &results.scenarios[0];
    assert_eq!(foreach.status, Status::Ok, "{foreach:?}");
    for variant in ["before", "after"] {
        let m = foreach
            .metric(variant, "execution_duration_ms", &Params::new())
            .unwrap_or_else(|| panic!("{variant} measured"));
        assert_eq!(m.samples.len(), 4, "quick repetitions");
        assert!(m.samples.iter().all(|x| *x > 0.0));
    }
    assert!(foreach.claim_comparison().is_some(), "the claim is judged");
    let serde = &results.scenarios[1];
    assert_eq!(serde.status, Status::Ok, "{serde:?}");
    let csv_read: Params = [
        ("direction".to_string(), "read".into()),
        ("format".to_string(), "csv".into()),
        ("records".to_string(), 10_000i64.into()),
    ]
    .into_iter()
    .collect();
    for variant in ["naive", "batched"] {
        let m = serde
            .metric(variant, "records_per_s", &csv_read)
            .unwrap_or_else(|| panic!("{variant} CSV read measured"));
        assert_eq!(m.samples.len(), 4, "quick repetitions");
        assert!(m.samples.iter().all(|x| *x > 0.0));
    }

    let report = tmp.path().join("report");
    let o = flowbench(
        &[
            "report",
            out.join("results.json").to_str().unwrap(),
            "--out",
            report.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(
        html.contains("foreach") || html.contains("ForEach"),
        "{html}"
    );
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(md.contains("B3") || md.contains("foreach"), "{md}");
}

/// Regression test for issue 10's "a failed run must not pass": a scenario folder without
/// the flow its workload reads is recorded as failed; `run` exits 4 after writing
/// `results.json`, and comparing that file with itself exits 1.
#[test]
fn a_failed_scenario_fails_the_run_and_the_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("scenarios/log-heavy");
    std::fs::create_dir_all(&folder).unwrap();
    // A log-heavy scenario whose folder lacks `flows/`, where its workload reads the flow.
    let toml = r#"
id = "log-heavy"
title = "log-heavy without its flow"
workload = "log-heavy"
repetitions = 4
warmup = 0
backends = ["sqlite"]

[claim]
text = "c"
kestra_figure = "k"
direction = "lower"
expected_ratio = 0.5

[[variant]]
name = "default"

[params]
lines = 10

[[metric]]
name = "wall_ms"
unit = "ms"
better = "lower"
kind = "timing"
"#;
    std::fs::write(folder.join("scenario.toml"), toml).unwrap();
    let out = tmp.path().join("run");
    let o = flowbench(
        &[
            "run",
            "log-heavy",
            "--quick",
            "--scenarios-dir",
            tmp.path().join("scenarios").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("FAILED: log-heavy/sqlite"));
    let file = out.join("results.json");
    let results = Results::load(&file).unwrap();
    assert!(
        matches!(results.scenarios[0].status, Status::Failed { .. }),
        "{:?}",
        results.scenarios[0].status
    );
    let file = file.to_str().unwrap();
    let o = flowbench(&["compare", file, file], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("base failed") && out.contains("0 compared"),
        "{out}"
    );
}

/// A scenario folder holding `foreach` with `repetitions` runs a side and no warm-up, with
/// or without `--quick`, so that a run lasts long enough to be interrupted or killed in the
/// middle.
fn long_foreach(repetitions: u32) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scenarios/foreach");
    std::fs::create_dir_all(&dir).unwrap();
    let src = scenarios_dir().join("foreach");
    std::fs::copy(src.join("benchmark03.yaml"), dir.join("benchmark03.yaml")).unwrap();
    let toml = std::fs::read_to_string(src.join("scenario.toml"))
        .unwrap()
        .replace("repetitions = 5", &format!("repetitions = {repetitions}"))
        .replace("repetitions = 4", &format!("repetitions = {repetitions}"))
        .replace("warmup = 1\n", "warmup = 0\n");
    std::fs::write(dir.join("scenario.toml"), toml).unwrap();
    tmp
}

/// Starts `flowbench run` on `tmp`'s scenarios, waits until it has started the child
/// process of its first scenario and that child has run for a moment, and returns both.
fn start_run_with_child(tmp: &Path, scenarios: &[&str]) -> (std::process::Child, u32) {
    let mut args = vec!["run"];
    args.extend_from_slice(scenarios);
    let scenarios_dir = tmp.join("scenarios");
    let out = tmp.join("run");
    args.extend([
        "--scenarios-dir",
        scenarios_dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let parent = Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(&args)
        .current_dir(tmp)
        .env_remove("FLOWBENCH_SCENARIOS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let children = format!("/proc/{0}/task/{0}/children", parent.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let child = loop {
        let listed = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(pid) = listed.split_whitespace().next() {
            break pid.parse::<u32>().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no child process within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Let it get into its runs.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    (parent, child)
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// Each scenario runs in a child process; an interrupt sent to `flowbench run` alone (as a
/// CI runner sends it, not a terminal's Ctrl-C to the whole group) reaches the child, which
/// stops at its next run boundary: the scenario is recorded as interrupted, the rest as
/// skipped, and the results are still written, with exit 130.
#[test]
fn an_interrupt_reaches_the_scenario_process_and_results_are_written() {
    let tmp = long_foreach(100);
    let (parent, child) = start_run_with_child(tmp.path(), &["foreach"]);
    signal(parent.id(), "-INT");
    let o = parent.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(
        !Path::new(&format!("/proc/{child}")).exists()
            || std::fs::read_to_string(format!("/proc/{child}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the child process ended with its parent"
    );
    let results = Results::load(&tmp.path().join("run/results.json")).unwrap();
    assert_eq!(results.scenarios.len(), 1);
    match &results.scenarios[0].status {
        Status::Failed { error } => assert!(error.contains("interrupted"), "{error}"),
        other => panic!("expected an interrupted scenario, got {other:?}"),
    }
}

/// A scenario process that dies (here killed with SIGKILL, as the OOM killer would) fails
/// that scenario only: the run goes on to the next one, writes `results.json` and exits 4.
#[test]
fn a_killed_scenario_process_fails_that_scenario_only() {
    let tmp = long_foreach(100);
    // A second scenario, database-free and short, that must still run.
    let serde = tmp.path().join("scenarios/serde");
    std::fs::create_dir_all(&serde).unwrap();
    for entry in std::fs::read_dir(scenarios_dir().join("serde")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), serde.join(entry.file_name())).unwrap();
        }
    }
    let (parent, child) = start_run_with_child(tmp.path(), &["foreach", "serde", "--quick"]);
    signal(child, "-KILL");
    let o = parent.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let results = Results::load(&tmp.path().join("run/results.json")).unwrap();
    assert_eq!(results.scenarios.len(), 2, "{}", text(&o));
    match &results.scenarios[0].status {
        Status::Failed { error } => assert!(
            error.contains("without writing a result") && error.contains("signal: 9"),
            "{error}"
        ),
        other => panic!("expected the killed foreach to fail, got {other:?}"),
    }
    assert_eq!(results.scenarios[1].status, Status::Ok, "{}", text(&o));
}
