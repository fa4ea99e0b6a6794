//! Tests of scenario parsing: one valid file, then each kind of bad input.

use std::fs;
use std::path::Path;

use super::*;

const VALID: &str = r#"id = "serde"
title = "FileSerde: naive vs batched"
workload = "serde"
repetitions = 10
warmup = 2
backends = ["sqlite", "postgres"]

[claim]
text = "Batched serde is 20-40% faster"
kestra_figure = "+20–40%"
direction = "lower"
expected_ratio = 0.7
metric = "wall_ms"

[[variant]]
name = "naive"
knobs = { "serde.mode" = "naive", "worker.threads" = 8 }

[[variant]]
name = "batched"
knobs = { "serde.mode" = "batched" }

[params]
format = "json"
records = 10000

[sweep]
threads = [1, 2, "4x-cores"]

[[metric]]
name = "wall_ms"
unit = "ms"
better = "lower"
kind = "timing"
gate = { tolerance = 0.10 }

[[metric]]
name = "alloc_count"
unit = "allocations"
better = "lower"
kind = "counter"

[quick]
repetitions = 3
params = { records = 100 }
sweep = { threads = [1] }
"#;

const PATH: &str = "scenarios/serde/scenario.toml";

fn parse_with(from: &str, to: &str) -> Result<Scenario, ScenarioError> {
    assert!(VALID.contains(from), "test fixture lacks {from:?}");
    parse(&VALID.replacen(from, to, 1), Path::new(PATH))
}

/// Asserts the error is `Invalid` on `field` at `line` with `needle` in its message, and
/// that its Display names the file.
fn assert_invalid(err: ScenarioError, field: &str, line: usize, needle: &str) {
    let shown = err.to_string();
    assert!(matches!(err, ScenarioError::Invalid { .. }), "{shown}");
    assert_eq!(err.field(), Some(field), "{shown}");
    assert_eq!(err.line(), Some(line), "{shown}");
    assert!(shown.contains(needle), "{shown}");
    assert!(
        shown.starts_with(&format!("{PATH}:{line}: `{field}`")),
        "{shown}"
    );
}

#[test]
fn valid_file_parses_into_the_model() {
    let s = parse(VALID, Path::new(PATH)).unwrap();
    assert_eq!(s.id, "serde");
    assert_eq!(s.workload, Workload::Serde);
    assert_eq!(s.backends, [Backend::Sqlite, Backend::Postgres]);
    assert_eq!((s.repetitions, s.warmup), (10, 2));
    assert_eq!(s.claim.direction, ExpectedChange::Lower);
    assert_eq!(s.claim.metric.as_deref(), Some("wall_ms"));
    assert_eq!(s.variants.len(), 2);
    assert_eq!(s.variants[0].knobs["serde.mode"], "naive");
    assert_eq!(s.variants[0].knobs["worker.threads"], "8");
    assert_eq!(s.params["records"], ParamValue::Integer(10000));
    assert_eq!(
        s.sweep["threads"],
        [
            ParamValue::Integer(1),
            ParamValue::Integer(2),
            ParamValue::Text("4x-cores".into())
        ]
    );
    let wall = s.metric("wall_ms").unwrap();
    assert_eq!(
        (wall.better, wall.kind),
        (Direction::LowerIsBetter, MetricKind::Timing)
    );
    assert_eq!(wall.policy(&GatePolicy::default()).tolerance, 0.10);
    let allocs = s.metric("alloc_count").unwrap();
    assert_eq!(allocs.kind, MetricKind::Counter);
    assert_eq!(allocs.policy(&GatePolicy::default()), GatePolicy::default());
    assert_eq!(s.dir, Path::new("scenarios/serde"));
}

#[test]
fn quick_applies_its_overrides() {
    let q = parse_with("repetitions = 3", "repetitions = 5")
        .unwrap()
        .quick();
    assert_eq!((q.repetitions, q.warmup), (5, 2));
    assert_eq!(q.params["records"], ParamValue::Integer(100));
    assert_eq!(q.params["format"], ParamValue::Text("json".into()));
    assert_eq!(q.sweep["threads"], [ParamValue::Integer(1)]);
}

#[test]
fn malformed_toml_names_the_file_and_line() {
    let err = parse_with("warmup = 2", "warmup = = 2").unwrap_err();
    assert!(matches!(err, ScenarioError::Parse { .. }), "{err}");
    assert_eq!(err.line(), Some(5));
    assert!(err.to_string().starts_with(&format!("{PATH}:5")), "{err}");
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let err = parse_with("warmup = 2", "warmup = 2\nwarm_up = 1").unwrap_err();
    assert!(err.to_string().contains("unknown field `warm_up`"), "{err}");
    assert_eq!(err.line(), Some(6));

    let err = parse_with("unit = \"ms\"", "unit = \"ms\"\nunits = \"ms\"").unwrap_err();
    assert!(matches!(err, ScenarioError::Parse { .. }));
    assert!(err.to_string().contains("unknown field `units`"), "{err}");
    assert_eq!(err.field(), Some("metric[0].units"), "{err}");
    assert_eq!(err.line(), Some(33));
}

#[test]
fn missing_and_mistyped_fields() {
    let err = parse_with("title = \"FileSerde: naive vs batched\"\n", "").unwrap_err();
    assert!(err.to_string().contains("missing field `title`"), "{err}");

    let err = parse_with("repetitions = 10", "repetitions = \"ten\"").unwrap_err();
    assert_eq!(err.field(), Some("repetitions"), "{err}");
    assert_eq!(err.line(), Some(4));
}

#[test]
fn unknown_enum_values() {
    let err = parse_with("workload = \"serde\"", "workload = \"serdes\"").unwrap_err();
    assert_eq!(
        (err.field(), err.line()),
        (Some("workload"), Some(3)),
        "{err}"
    );
    assert!(
        err.to_string().contains("log-heavy"),
        "lists the known workloads: {err}"
    );

    let err = parse_with("\"sqlite\", \"postgres\"", "\"sqlite\", \"oracle\"").unwrap_err();
    assert_eq!(err.field(), Some("backends[1]"), "{err}");

    let err = parse_with("better = \"lower\"", "better = \"less\"").unwrap_err();
    assert_eq!(err.field(), Some("metric[0].better"), "{err}");

    let err = parse_with("kind = \"counter\"", "kind = \"count\"").unwrap_err();
    assert_eq!(err.field(), Some("metric[1].kind"), "{err}");
}

#[test]
fn unknown_knob() {
    let err = parse_with(
        "\"serde.mode\" = \"batched\"",
        "\"serde.modes\" = \"batched\"",
    )
    .unwrap_err();
    assert_invalid(
        err,
        "variant[1].knobs.serde.modes",
        21,
        "unknown knob `serde.modes`",
    );
}

#[test]
fn knob_value_outside_its_set() {
    let err = parse_with("\"serde.mode\" = \"batched\"", "\"serde.mode\" = \"fast\"").unwrap_err();
    assert_invalid(
        err,
        "variant[1].knobs.serde.mode",
        21,
        "must be one of naive, batched",
    );
}

#[test]
fn worker_threads_must_be_a_positive_integer() {
    for bad in ["0", "-4", "\"8\"", "2.5"] {
        let err = parse_with(
            "\"worker.threads\" = 8",
            &format!("\"worker.threads\" = {bad}"),
        )
        .unwrap_err();
        assert_invalid(
            err,
            "variant[0].knobs.worker.threads",
            17,
            "positive integer",
        );
    }
}

#[test]
fn every_design_knob_value_is_accepted() {
    for k in KNOBS {
        let values: Vec<String> = match k.values {
            KnobValues::OneOf(vs) => vs.iter().map(|v| format!("\"{v}\"")).collect(),
            KnobValues::PositiveInteger => vec!["1".into(), "128".into()],
        };
        for v in values {
            let s = parse_with(
                "\"serde.mode\" = \"batched\"",
                &format!("\"{}\" = {v}", k.name),
            );
            assert!(s.is_ok(), "{} = {v}: {:?}", k.name, s.err());
        }
    }
}

#[test]
fn unknown_and_duplicate_metrics() {
    let err = parse_with("name = \"alloc_count\"", "name = \"allocs\"").unwrap_err();
    assert_invalid(err, "metric[1].name", 38, "unknown metric `allocs`");

    let err = parse_with("name = \"alloc_count\"", "name = \"wall_ms\"").unwrap_err();
    assert_invalid(err, "metric[1].name", 38, "declared twice");
}

#[test]
fn duplicate_and_missing_variants() {
    let err = parse_with("name = \"batched\"", "name = \"naive\"").unwrap_err();
    assert_invalid(err, "variant[1].name", 20, "declared twice");

    let no_variants = VALID
        .replace("[[variant]]\nname = \"naive\"\nknobs = { \"serde.mode\" = \"naive\", \"worker.threads\" = 8 }\n", "")
        .replace("[[variant]]\nname = \"batched\"\nknobs = { \"serde.mode\" = \"batched\" }\n", "");
    let err = parse(&no_variants, Path::new(PATH)).unwrap_err();
    assert!(err.to_string().contains("missing field `variant`"), "{err}");
}

#[test]
fn zero_repetitions() {
    let err = parse_with("repetitions = 10", "repetitions = 0").unwrap_err();
    assert_invalid(err, "repetitions", 4, "at least 1");
    let err = parse_with("repetitions = 3", "repetitions = 0").unwrap_err();
    assert_invalid(err, "quick.repetitions", 44, "at least 1");
}

#[test]
fn backends_must_be_listed_once() {
    let err = parse_with("\"sqlite\", \"postgres\"", "").unwrap_err();
    assert_invalid(err, "backends", 6, "at least one backend");
    let err = parse_with("\"sqlite\", \"postgres\"", "\"sqlite\", \"sqlite\"").unwrap_err();
    assert_invalid(err, "backends", 6, "listed twice");
}

#[test]
fn claim_rules() {
    let err = parse_with("metric = \"wall_ms\"", "metric = \"cpu_ms\"").unwrap_err();
    assert_invalid(err, "claim.metric", 13, "not one of this scenario's");
    let err = parse_with("expected_ratio = 0.7", "expected_ratio = -1.0").unwrap_err();
    assert_invalid(err, "claim.expected_ratio", 12, "above 0");
}

#[test]
fn claim_names_kestras_commits_before_path_and_backends() {
    let s = parse_with(
        "metric = \"wall_ms\"\n",
        "metric = \"wall_ms\"\nkestra_commit = [\"9b8a1c482\", \"plugin-serdes 7c4a3a3\"]\n\
         before = \"a fresh serializer per record\"\nkestra_backends = [\"postgres\"]\n",
    )
    .unwrap();
    assert_eq!(
        s.claim.kestra_commits,
        ["9b8a1c482", "plugin-serdes 7c4a3a3"]
    );
    assert_eq!(
        s.claim.before.as_deref(),
        Some("a fresh serializer per record")
    );
    assert_eq!(s.claim.kestra_backends, [Backend::Postgres]);
    assert!(s.claim.has_kestra_counterpart("postgres"));
    assert!(!s.claim.has_kestra_counterpart("sqlite"));
    assert!(!s.claim.has_kestra_counterpart("mysql"));

    // One commit may be a plain string; without kestra_backends every backend counts.
    let s = parse_with(
        "metric = \"wall_ms\"\n",
        "metric = \"wall_ms\"\nkestra_commit = \"84d845cde\"\n",
    )
    .unwrap();
    assert_eq!(s.claim.kestra_commits, ["84d845cde"]);
    assert!(s.claim.before.is_none());
    for backend in ["sqlite", "postgres", "mysql", "none"] {
        assert!(s.claim.has_kestra_counterpart(backend), "{backend}");
    }
}

#[test]
fn claim_commits_and_backends_are_checked() {
    let err = parse_with(
        "metric = \"wall_ms\"\n",
        "metric = \"wall_ms\"\nkestra_commit = []\n",
    )
    .unwrap_err();
    assert_invalid(err, "claim.kestra_commit", 14, "at least one commit");
    let err = parse_with(
        "metric = \"wall_ms\"\n",
        "metric = \"wall_ms\"\nkestra_backends = []\n",
    )
    .unwrap_err();
    assert_invalid(err, "claim.kestra_backends", 14, "at least one backend");
    let err = parse_with(
        "metric = \"wall_ms\"\n",
        "metric = \"wall_ms\"\nkestra_backends = [\"postgres\", \"postgres\"]\n",
    )
    .unwrap_err();
    assert_invalid(err, "claim.kestra_backends", 14, "listed twice");
    let err = parse_with(
        "metric = \"wall_ms\"\n",
        "metric = \"wall_ms\"\nkestra_backends = [\"h2\"]\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("h2"), "{err}");
}

#[test]
fn gate_override_is_checked() {
    let err = parse_with("gate = { tolerance = 0.10 }", "gate = { alpha = 1.5 }").unwrap_err();
    assert_invalid(err, "metric[0].gate.alpha", 35, "0 < alpha < 1");
    let err = parse_with("gate = { tolerance = 0.10 }", "gate = { tolerence = 0.1 }").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `tolerence`"),
        "{err}"
    );
    assert_eq!(err.field(), Some("metric[0].gate.tolerence"), "{err}");
}

#[test]
fn quick_overrides_must_override_something() {
    let err = parse_with("sweep = { threads = [1] }", "sweep = { thread = [1] }").unwrap_err();
    assert_invalid(err, "quick.sweep.thread", 46, "there is no `sweep.thread`");
    let err = parse_with("params = { records = 100 }", "params = { rows = 100 }").unwrap_err();
    assert_invalid(err, "quick.params.rows", 45, "there is no `params.rows`");
    let err = parse_with("threads = [1, 2, \"4x-cores\"]", "threads = []").unwrap_err();
    assert_invalid(err, "sweep.threads", 28, "at least one value");
}

#[test]
fn bad_id() {
    let err = parse_with("id = \"serde\"", "id = \"Serde Bench\"").unwrap_err();
    assert_invalid(err, "id", 1, "is not an id");
}

#[test]
fn flow_paths_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("serde");
    fs::create_dir_all(folder.join("flows")).unwrap();
    fs::write(folder.join("flows/convert.yaml"), "id: convert\n").unwrap();
    let text = VALID.replacen(
        "name = \"batched\"",
        "name = \"batched\"\nflow = \"flows/convert.yaml\"",
        1,
    );
    fs::write(folder.join(SCENARIO_FILE), &text).unwrap();
    let s = load(&folder.join(SCENARIO_FILE)).unwrap();
    assert_eq!(
        s.variants[1].flow.as_deref(),
        Some(Path::new("flows/convert.yaml"))
    );

    fs::write(
        folder.join(SCENARIO_FILE),
        text.replace("convert.yaml", "missing.yaml"),
    )
    .unwrap();
    let err = load(&folder.join(SCENARIO_FILE)).unwrap_err();
    assert_eq!(err.field(), Some("variant[1].flow"), "{err}");
    assert!(err.to_string().contains("no flow file"), "{err}");
}

#[test]
fn load_all_sorts_by_id_and_checks_folder_names() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["worker-threads", "foreach", "serde"] {
        let folder = dir.path().join(id);
        fs::create_dir(&folder).unwrap();
        fs::write(
            folder.join(SCENARIO_FILE),
            VALID.replace("id = \"serde\"", &format!("id = \"{id}\"")),
        )
        .unwrap();
    }
    fs::create_dir(dir.path().join("not-a-scenario")).unwrap();
    fs::write(dir.path().join("README.md"), "scenarios\n").unwrap();
    let ids: Vec<String> = load_all(dir.path())
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["foreach", "serde", "worker-threads"]);

    // A folder whose scenario claims another id.
    let folder = dir.path().join("log-heavy");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join(SCENARIO_FILE), VALID).unwrap();
    let err = load_all(dir.path()).unwrap_err();
    assert_eq!((err.field(), err.line()), (Some("id"), Some(1)));
    assert!(err.path().ends_with("log-heavy/scenario.toml"), "{err}");
    assert!(
        err.to_string()
            .contains("differs from its folder name `log-heavy`"),
        "{err}"
    );
}

#[test]
fn missing_file_and_folder_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("nope/scenario.toml")).unwrap_err();
    assert!(matches!(err, ScenarioError::Io { .. }));
    assert!(
        err.to_string().contains("nope/scenario.toml: cannot read"),
        "{err}"
    );
    assert!(matches!(
        load_all(&dir.path().join("absent")),
        Err(ScenarioError::Io { .. })
    ));
}

/// Regression test for issue 10's "too few samples is not unchanged": `--quick` with 3
/// runs a side could never reach α = 0.05, so the loader raises it to 4 and says so.
#[test]
fn quick_repetitions_below_the_floor_are_raised_with_a_note() {
    let s = parse(VALID, Path::new(PATH)).unwrap();
    assert_eq!(s.floor.min, 4);
    assert_eq!(s.floor.raised_quick, Some(3));
    assert_eq!(s.floor.raised_full, None);
    assert_eq!(s.quick().repetitions, 4);
    let notes = s.repetition_notes(true);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("scenarios/serde/scenario.toml: [quick] repetitions = 3 raised to 4"),
        "{notes:?}"
    );
    assert!(
        notes[0].contains("0.100"),
        "the floor's p is shown: {notes:?}"
    );
    assert!(s.repetition_notes(false).is_empty());

    // A full run below the floor is raised too, and a quick run inherits it.
    let s = parse_with("repetitions = 10", "repetitions = 2").unwrap();
    assert_eq!((s.repetitions, s.floor.raised_full), (4, Some(2)));
    assert_eq!(s.repetition_notes(false).len(), 1);
}

#[test]
fn the_floor_follows_the_smallest_timing_alpha() {
    // α = 0.01 on a timing metric needs 5 a side (2/252 ≈ 0.008).
    let s = parse_with("gate = { tolerance = 0.10 }", "gate = { alpha = 0.01 }").unwrap();
    assert_eq!((s.floor.min, s.floor.alpha), (5, 0.01));
    assert_eq!(s.quick().repetitions, 5);
    // Counters are judged without a test: a counter-only scenario keeps what it declares.
    let counters_only = VALID
        .replace(
            "name = \"wall_ms\"\nunit = \"ms\"\nbetter = \"lower\"\nkind = \"timing\"\ngate = { tolerance = 0.10 }\n\n[[metric]]\n",
            "",
        )
        .replace("metric = \"wall_ms\"\n", "");
    let s = parse(&counters_only, Path::new(PATH)).unwrap();
    assert_eq!(s.metrics.len(), 1);
    assert_eq!((s.floor.min, s.quick().repetitions), (1, 3));
}

/// The shipped scenarios already declare enough repetitions, full and quick: nothing
/// is raised behind the reader's back.
#[test]
fn shipped_scenarios_reach_alpha_without_raising() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let all = load_all(&dir).unwrap();
    assert!(!all.is_empty());
    for s in &all {
        assert_eq!(
            (s.floor.raised_full, s.floor.raised_quick),
            (None, None),
            "{}: {:?}",
            s.id,
            s.repetition_notes(true)
        );
        assert!(s.quick().repetitions >= s.floor.min, "{}", s.id);
    }
}

#[test]
fn a_variant_load_tool_is_only_for_the_e2e_webhook_workload() {
    let err = parse_with(
        "knobs = { \"serde.mode\" = \"batched\" }",
        "knobs = { \"serde.mode\" = \"batched\" }\nload = \"hey\"",
    )
    .unwrap_err();
    assert_invalid(
        err,
        "variant[1].load",
        22,
        "only the `e2e-webhook` workload generates load",
    );
    let e2e = |load: &str| {
        VALID
            .replacen("workload = \"serde\"", "workload = \"e2e-webhook\"", 1)
            .replacen(
                "knobs = { \"serde.mode\" = \"batched\" }",
                &format!("knobs = {{ \"serde.mode\" = \"batched\" }}\nload = \"{load}\""),
                1,
            )
    };
    let s = parse(&e2e("hey"), Path::new(PATH)).unwrap();
    assert_eq!(s.variants[0].load, LoadTool::Flowbench);
    assert_eq!(s.variants[1].load, LoadTool::Hey);
    let err = parse(&e2e("wrk"), Path::new(PATH)).unwrap_err();
    assert!(err.to_string().contains("variant[1].load"), "{err}");
}
