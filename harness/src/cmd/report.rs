//! `flowbench report RESULTS [--history FILE] --out DIR`: the HTML page, Markdown
//! summary, charts and Bencher export, with change points found in the history.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use harness::changepoint::{ChangePointConfig, detect};
use reports::results::{History, HistoryView, MetricKey, Results, Status, Trend};

/// At most this many history charts: one per claim series, then any series that shifted.
const MAX_TRENDS: usize = 24;

#[derive(clap::Args)]
pub struct Args {
    /// A results.json written by `flowbench run`.
    results: PathBuf,
    /// A history file (JSON Lines) to chart trends and change points from.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Folder to write the report into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let results = Results::load(&args.results)?;
    let view = match &args.history {
        Some(path) => Some(trends(&results, &History::load(path)?)),
        None => None,
    };
    let files = reports::report::write_report(&results, view.as_ref(), &args.out)?;
    println!("{}", files.index_html.display());
    println!("{}", files.summary_md.display());
    println!("{}", files.bencher_json.display());
    println!(
        "{} chart(s) in {}",
        files.charts.len(),
        args.out.join("charts").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The series to chart: those the claims are judged on first, then any other series
/// in which E-Divisive finds a change point.
pub fn trends(results: &Results, history: &History) -> HistoryView {
    let mut claim_keys = Vec::new();
    let mut units = std::collections::BTreeMap::new();
    for s in results.scenarios.iter().filter(|s| s.status == Status::Ok) {
        for m in &s.metrics {
            let key = MetricKey::new(&s.id, &s.backend, &m.variant, &m.metric, &m.params);
            units.insert(key.to_string(), m.unit.clone());
        }
        if let Some(c) = s.claim_comparison() {
            for v in [&c.base_variant, &c.head_variant] {
                claim_keys
                    .push(MetricKey::new(&s.id, &s.backend, v, &c.metric, &c.params).to_string());
            }
        }
    }
    let cfg = ChangePointConfig::default();
    let mut seen = BTreeSet::new();
    let mut view = HistoryView::default();
    let mut consider = |key: &str, only_if_shifted: bool, view: &mut HistoryView| {
        if view.trends.len() >= MAX_TRENDS || !seen.insert(key.to_string()) {
            return;
        }
        let points = history.series(key);
        if points.len() < 2 {
            return;
        }
        let values: Vec<f64> = points.iter().map(|p| p.value).collect();
        let change_points: Vec<usize> = detect(&values, &cfg)
            .map(|cps| cps.into_iter().map(|c| c.index).collect())
            .unwrap_or_default();
        if only_if_shifted && change_points.is_empty() {
            return;
        }
        view.trends.push(Trend {
            key: key.to_string(),
            unit: units.get(key).cloned().unwrap_or_default(),
            points,
            change_points,
        });
    };
    for key in &claim_keys {
        consider(key, false, &mut view);
    }
    for key in history.keys() {
        consider(key, true, &mut view);
    }
    view
}
