//! `write_report` on the synthetic fixture: every file, and what each must hold.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use reports::report::{FileReporter, Reporter, Reporters, figures, write_report};
use reports::results::{HistoryView, Results, ScenarioResult, Status};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture() -> (Results, HistoryView) {
    let results = Results::load(&fixtures().join("results.json")).unwrap();
    let text = std::fs::read_to_string(fixtures().join("history-view.json")).unwrap();
    (results, serde_json::from_str(&text).unwrap())
}

#[test]
fn writes_every_file_and_every_chart() {
    let (results, history) = fixture();
    let out = tempfile::tempdir().unwrap();
    let files = write_report(&results, Some(&history), out.path()).unwrap();

    // One forest plot per scenario with comparisons (4), the rows, threads and
    // rate sweeps, and the trend.
    let ids: Vec<&str> = files.charts.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "serde-none-ab",
            "queued-index-postgres-ab",
            "queued-index-postgres-pop-latency-vs-rows",
            "worker-threads-sqlite-sweep-threads",
            "e2e-webhook-postgres-latency-vs-rate-per-min",
            "worker-mutation-sqlite-ab",
            "json-mapping-sqlite-ab",
            "trend-queued-index-postgres-flow-date-total-time-executions-1000-limit-50",
        ]
    );
    for chart in &files.charts {
        let png = std::fs::read(&chart.png).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", chart.png.display());
        assert!(png.len() > 5_000);
        let svg = std::fs::read_to_string(&chart.svg).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(chart.png.starts_with(out.path().join("charts")));
    }
    assert!(files.index_html.is_file());
    assert!(files.summary_md.is_file());
    assert!(files.bencher_json.is_file());
}

#[test]
fn index_html_inlines_every_chart_and_links_nowhere() {
    let (results, history) = fixture();
    let out = tempfile::tempdir().unwrap();
    let files = write_report(&results, Some(&history), out.path()).unwrap();
    let html = std::fs::read_to_string(&files.index_html).unwrap();

    assert_eq!(html.matches("<svg").count(), files.charts.len());
    for chart in &files.charts {
        assert!(
            html.contains(&format!("id=\"fig-{}\"", chart.id)),
            "{}",
            chart.id
        );
    }
    for outside in ["http://", "https://", "<script", "<link", "src=", "@import"] {
        assert!(!html.contains(outside), "index.html contains {outside:?}");
    }
    // Every claim is shown beside Kestra's figure, escaped for HTML.
    for s in &results.scenarios {
        let figure = escaped(&s.claim.kestra_figure);
        assert!(html.contains(&figure), "missing {figure}");
    }
    assert!(html.contains("class=\"not-reproduced\">not reproduced<"));
    assert!(html.contains("class=\"reproduced\">reproduced<"));
}

/// Text as minijinja's HTML auto-escaping writes it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

#[test]
fn html_escapes_text_from_the_results() {
    let (mut results, _) = fixture();
    results.scenarios[0].claim.text = "<img src=x onerror=alert(1)>".into();
    let out = tempfile::tempdir().unwrap();
    let files = write_report(&results, None, out.path()).unwrap();
    let html = std::fs::read_to_string(&files.index_html).unwrap();
    assert!(!html.contains("<img"));
    assert!(html.contains("&lt;img"));
}

fn summary_for(results: &Results) -> String {
    let out = tempfile::tempdir().unwrap();
    let files = write_report(results, None, out.path()).unwrap();
    std::fs::read_to_string(files.summary_md).unwrap()
}

/// The summary's table row for a scenario title.
fn row<'a>(summary: &'a str, title: &str) -> &'a str {
    summary
        .lines()
        .find(|l| l.starts_with(&format!("| {title} |")))
        .unwrap_or_else(|| panic!("no row for {title} in\n{summary}"))
}

#[test]
fn summary_md_lists_each_claim_with_its_verdict() {
    let (results, _) = fixture();
    let summary = summary_for(&results);
    for s in &results.scenarios {
        let line = row(&summary, &s.title);
        assert!(line.contains(&s.claim.kestra_figure), "{line}");
        match (&s.status, s.claim_comparison()) {
            (Status::Ok, Some(c)) if !s.claim.kestra_counterpart => {
                assert!(line.contains(&c.verdict), "{line}");
                assert!(line.contains("| no Kestra counterpart |"), "{line}");
            }
            (Status::Ok, Some(c)) => {
                assert!(line.contains(&c.verdict), "{line}");
                let outcome = if c.reproduced == Some(true) {
                    "**reproduced**"
                } else {
                    "**not reproduced**"
                };
                assert!(line.contains(outcome), "{line}");
            }
            (Status::Skipped { reason }, _) => assert!(line.contains(reason), "{line}"),
            (Status::Failed { error }, _) => assert!(line.contains(error), "{line}"),
            (Status::Ok, None) => assert!(line.contains("no comparison"), "{line}"),
        }
    }
    assert!(summary.contains("### Largest changes"));
    assert_eq!(
        summary
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .count(),
        3,
        "three largest changes:\n{summary}"
    );
    // The largest change in the fixture is the 0.07× pop latency at 1M rows.
    assert!(summary.contains("1. `queued-index` (postgres) pop_latency [rows=1000000]"));
}

/// The summary's claim table row for a scenario on a backend.
fn claim_line<'a>(summary: &'a str, title: &str, backend: &str) -> &'a str {
    summary
        .lines()
        .find(|l| l.starts_with(&format!("| {title} | {backend} |")))
        .unwrap_or_else(|| panic!("no row for {title} on {backend} in\n{summary}"))
}

#[test]
fn the_claim_table_shows_the_headline_kestras_figure_and_commit() {
    let (results, _) = fixture();
    let summary = summary_for(&results);
    let line = claim_line(&summary, "FileSerde conversion", "none");
    for cell in [
        "| convert_time |",
        "| 0.68× (−32%) |",
        "| 0.64–0.72 | <0.001 |",
        "| improved |",
        "**reproduced**",
        "| 20–40% faster |",
        "| 0.70× |",
        "| 9b8a1c482, plugin-serdes 7c4a3a3 |",
    ] {
        assert!(line.contains(cell), "{cell} missing from {line}");
    }
}

/// Regression: `jdbc.json-mapping` changed PostgreSQL only; on SQLite the knob is
/// measured, but the claim row must say "no Kestra counterpart", never "reproduced",
/// even though the marked comparison's ratio would pass.
#[test]
fn a_backend_without_a_kestra_counterpart_is_never_a_reproduction() {
    let (results, _) = fixture();
    let sqlite = results
        .scenarios
        .iter()
        .find(|s| s.id == "json-mapping" && s.backend == "sqlite")
        .unwrap();
    assert_eq!(sqlite.claim_comparison().unwrap().reproduced, Some(true));
    assert_eq!(
        sqlite.claim_outcome(),
        Some(reports::results::ClaimOutcome::NoKestraCounterpart)
    );

    let summary = summary_for(&results);
    let line = claim_line(&summary, "Mapping execution rows", "sqlite");
    assert!(line.contains("| no Kestra counterpart |"), "{line}");
    assert!(!line.contains("reproduced"), "{line}");
    assert!(line.contains("| alloc_count | 0.75× (−25%) |"), "{line}");

    let out = tempfile::tempdir().unwrap();
    let files = write_report(&results, None, out.path()).unwrap();
    let html = std::fs::read_to_string(&files.index_html).unwrap();
    assert!(html.contains("class=\"no-counterpart\">no Kestra counterpart<"));
    assert!(
        html.contains("No Kestra counterpart on sqlite: Kestra made this change on postgres only")
    );
    // Its comparisons table says so on the claim's row too.
    assert!(html.contains("<td>improved</td><td>no Kestra counterpart</td>"));
    let svg =
        std::fs::read_to_string(out.path().join("charts/json-mapping-sqlite-ab.svg")).unwrap();
    assert!(
        svg.contains("no Kestra counterpart on sqlite"),
        "forest caption"
    );
    assert!(
        !svg.contains("Kestra&apos;s figure"),
        "no Kestra mark where Kestra made no change"
    );
}

#[test]
fn the_idle_thread_cost_is_explained_from_the_measured_figures() {
    let (mut results, _) = fixture();
    let summary = summary_for(&results);
    let line = summary
        .lines()
        .find(|l| l.starts_with("**Worker thread count (sqlite), memory:**"))
        .unwrap_or_else(|| panic!("no memory note in\n{summary}"));
    // Medians of the fixture's samples, and 128 × 21 KiB.
    for text in [
        "median of 3",
        "adds 21 KiB",
        "2.05k KiB of address space",
        "stack mapping is 2.05k KiB",
        "about 2.62 MiB resident",
        "ThreadStackSize = 1024 KiB",
    ] {
        assert!(line.contains(text), "{text} missing from {line}");
    }
    // The numbers come from the data.
    let wt = results
        .scenarios
        .iter_mut()
        .find(|s| s.id == "worker-threads")
        .unwrap();
    for m in wt
        .metrics
        .iter_mut()
        .filter(|m| m.metric == "idle_thread_rss_kib")
    {
        m.summary.median = 40.0;
    }
    assert!(summary_for(&results).contains("adds 40 KiB"));
    // A scenario that did not measure idle threads gets no note.
    let wt = results
        .scenarios
        .iter_mut()
        .find(|s| s.id == "worker-threads")
        .unwrap();
    wt.metrics.retain(|m| !m.metric.starts_with("idle_thread"));
    assert!(!summary_for(&results).contains(", memory:**"));
}

fn serde(r: &mut Results) -> &mut ScenarioResult {
    r.scenarios.iter_mut().find(|s| s.id == "serde").unwrap()
}

#[test]
fn reproduced_follows_the_data_not_the_template() {
    let (mut results, _) = fixture();
    assert!(row(&summary_for(&results), "FileSerde conversion").contains("**reproduced**"));

    serde(&mut results).comparisons[0].reproduced = Some(false);
    assert!(row(&summary_for(&results), "FileSerde conversion").contains("**not reproduced**"));

    for c in &mut serde(&mut results).comparisons {
        c.reproduced = None;
    }
    let line = summary_for(&results);
    let line = row(&line, "FileSerde conversion");
    assert!(
        line.contains("not judged") && !line.contains("**"),
        "{line}"
    );
}

#[test]
fn bencher_json_has_the_metric_format_shape() {
    let (results, _) = fixture();
    let out = tempfile::tempdir().unwrap();
    let files = write_report(&results, None, out.path()).unwrap();
    let bmf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(files.bencher_json).unwrap()).unwrap();

    let benchmarks = bmf.as_object().unwrap();
    let measured: usize = results
        .scenarios
        .iter()
        .filter(|s| s.status == Status::Ok)
        .map(|s| s.metrics.len())
        .sum();
    let measures: usize = benchmarks
        .values()
        .map(|m| m.as_object().unwrap().len())
        .sum();
    assert_eq!(measures, measured, "one measure per metric result");
    for (name, measures) in benchmarks {
        for (slug, m) in measures.as_object().unwrap() {
            assert!(
                slug.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            let m = m.as_object().unwrap();
            let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["lower_value", "upper_value", "value"],
                "{name}/{slug}"
            );
            let get = |k: &str| m[k].as_f64().unwrap();
            assert!(get("lower_value") <= get("value") && get("value") <= get("upper_value"));
        }
    }
    let pop = &bmf["queued-index/postgres/flow-date[rows=1000]"]["pop-latency"]["value"];
    assert!(pop.as_f64().unwrap() > 0.0);
    // Skipped and failed scenarios export nothing.
    assert!(benchmarks.keys().all(|k| !k.starts_with("log-heavy/")));
}

#[test]
fn figures_follow_the_shape_of_the_data() {
    let (mut results, _) = fixture();
    let before = figures(&results, None).len();
    // A scenario that failed gets no charts.
    let serde = results
        .scenarios
        .iter_mut()
        .find(|s| s.id == "serde")
        .unwrap();
    serde.status = Status::Failed {
        error: "boom".into(),
    };
    assert_eq!(figures(&results, None).len(), before - 1);
}

#[test]
fn a_file_reporter_in_a_fan_out_writes_the_report() {
    #[derive(Default)]
    struct Counts {
        started: usize,
        finished: usize,
        runs: usize,
    }
    struct Counting(Rc<RefCell<Counts>>);
    impl Reporter for Counting {
        fn scenario_started(&mut self, _: &str, _: &str) {
            self.0.borrow_mut().started += 1;
        }
        fn scenario_finished(&mut self, _: &ScenarioResult) {
            self.0.borrow_mut().finished += 1;
        }
        fn run_finished(&mut self, _: &Results, _: Option<&HistoryView>) -> reports::Result<()> {
            self.0.borrow_mut().runs += 1;
            Ok(())
        }
    }
    /// Takes only the default hooks.
    struct Silent;
    impl Reporter for Silent {}

    let (results, _) = fixture();
    let out = tempfile::tempdir().unwrap();
    // A file where the folder should be makes the file reporter fail.
    let blocked = out.path().join("blocked");
    std::fs::write(&blocked, "").unwrap();
    let counts = Rc::new(RefCell::new(Counts::default()));
    let mut all = Reporters(vec![
        Box::new(FileReporter::new(&blocked)),
        Box::new(Silent),
        Box::new(Counting(counts.clone())),
        Box::new(FileReporter::new(out.path().join("report"))),
    ]);
    for s in &results.scenarios {
        all.scenario_started(&s.id, &s.backend);
        all.scenario_finished(s);
    }
    let err = all.run_finished(&results, None).unwrap_err();
    assert!(err.to_string().contains("blocked"), "{err}");
    // The failing reporter did not stop the ones after it.
    let counts = counts.borrow();
    assert_eq!(counts.started, results.scenarios.len());
    assert_eq!(counts.finished, results.scenarios.len());
    assert_eq!(counts.runs, 1);
    assert!(out.path().join("report/index.html").is_file());
}

/// The plans a scenario recorded are listed, each with what it says in plain words, and the
/// report says so plainly when a plan sorts instead of walking the variant's index.
#[test]
fn query_plans_are_listed_with_their_reading() {
    use reports::results::{ParamValue, QueryPlan};
    let (mut results, _) = fixture();
    let queued = results
        .scenarios
        .iter_mut()
        .find(|s| s.id == "queued-index")
        .expect("the fixture has queued-index");
    let plan = |tenant: &str, uses: Option<bool>, sorts: Option<bool>| QueryPlan {
        variant: "flow-date".into(),
        params: [
            ("rows".to_string(), ParamValue::Int(100_000)),
            ("tenant".to_string(), ParamValue::Text(tenant.into())),
        ]
        .into(),
        index: "ix_execution_queued_flow_date".into(),
        statement: "SELECT \"key\", value FROM execution_queued WHERE tenant_id IS NULL".into(),
        plan: "Limit\n  ->  LockRows\n        ->  Sort <x>".into(),
        uses_index: uses,
        sorts,
    };
    queued.plans = vec![
        plan("none", Some(true), Some(true)),
        plan("main", Some(true), Some(false)),
        plan("other", None, None),
    ];
    let out = tempfile::tempdir().unwrap();
    let files = write_report(&results, None, out.path()).unwrap();
    let html = std::fs::read_to_string(&files.index_html).unwrap();
    assert!(html.contains("<h3>Query plans</h3>"));
    assert!(
        html.contains("finds the rows through ix_execution_queued_flow_date, then sorts them all")
    );
    assert!(html.contains("reads ix_execution_queued_flow_date in index order"));
    assert!(html.contains("Sort &lt;x&gt;"), "plan text is escaped");
    let md = std::fs::read_to_string(&files.summary_md).unwrap();
    assert!(md.contains("### Query plans"));
    assert!(md.contains("tenant=none"), "{md}");
    assert!(md.contains("uses ix_execution_queued_flow_date: yes; sorts: yes"));
    assert!(md.contains("the plan text does not say which index it uses"));
    // Without plans, no section.
    queued_without_plans(&mut results);
    let out = tempfile::tempdir().unwrap();
    let files = write_report(&results, None, out.path()).unwrap();
    let html = std::fs::read_to_string(&files.index_html).unwrap();
    assert!(!html.contains("Query plans"));
}

fn queued_without_plans(results: &mut Results) {
    for s in &mut results.scenarios {
        s.plans.clear();
    }
}

/// Kestra's published figures reach the rate chart whose x axis and unit they share, in
/// the chart's scale, and nowhere else.
#[test]
fn published_figures_are_drawn_on_the_matching_rate_chart() {
    use reports::report::FigureChart;
    use reports::results::PublishedSeries;
    let (mut results, _) = fixture();
    let e2e = results
        .scenarios
        .iter_mut()
        .find(|s| s.id == "e2e-webhook")
        .unwrap();
    // The fixture's latencies are in seconds.
    let unit = e2e
        .metrics
        .iter()
        .find(|m| m.latency.is_some())
        .map(|m| m.unit.clone())
        .unwrap();
    assert_eq!(unit, "s");
    let series = |label: &str, x: &str, unit: &str| PublishedSeries {
        label: label.into(),
        x: x.into(),
        unit: unit.into(),
        points: vec![[250.0, 0.31], [1500.0, 0.9]],
        ceiling: Some(4000.0),
    };
    e2e.claim.published = vec![
        series("Kestra OSS 0.23.4", "rate_per_min", "s"),
        series("another unit", "rate_per_min", "ms"),
        series("another axis", "threads", "s"),
    ];
    let figures = figures(&results, None);
    let rate = figures
        .iter()
        .find_map(|f| match &f.chart {
            FigureChart::Rate(r) => Some(r),
            _ => None,
        })
        .expect("the fixture has a rate chart");
    assert_eq!(rate.published.len(), 1, "{:?}", rate.published);
    let drawn = &rate.published[0];
    assert_eq!(drawn.label, "Kestra OSS 0.23.4");
    assert_eq!(drawn.ceiling, Some(4000.0));
    // In the chart's own unit: 0.31 s is 310 on a milliseconds axis.
    let factor = if rate.y_label.contains("(ms)") {
        1000.0
    } else {
        1.0
    };
    assert_eq!(
        drawn.points,
        vec![(250.0, 0.31 * factor), (1500.0, 0.9 * factor)]
    );
    // And the chart renders with them.
    let out = tempfile::tempdir().unwrap();
    write_report(&results, None, out.path()).unwrap();
}
