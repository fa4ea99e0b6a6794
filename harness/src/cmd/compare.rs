//! `flowbench compare BASE HEAD`: a verdict table; exit 0 when nothing regressed, 3 on a
//! regression, 1 on an error (a missing or bad file, different scenarios).
//!
//! Each metric is judged under the default [`GatePolicy`], changed by its scenario
//! file's `gate = { … }`, and, with `--history`, a timing tolerance widened to the
//! between-run drift the history shows ([`harness::drift`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use harness::diff::{Policies, Row, RowVerdict, diff};
use harness::drift::Drift;
use harness::gate::GatePolicy;
use harness::scenario::Scenario;
use reports::results::Results;
use reports::results::history::History;

/// The exit code of a comparison that found a regression.
pub const EXIT_REGRESSED: u8 = 3;

#[derive(clap::Args)]
pub struct Args {
    /// The baseline results.json.
    base: PathBuf,
    /// The results.json to judge against it.
    head: PathBuf,
    /// Also fail when a scenario that the base measured failed or was skipped in the
    /// head, or when one of its metrics is missing: a broken benchmark hides regressions.
    #[arg(long)]
    fail_on_regression: bool,
    /// Show only the rows that changed (improved, regressed, erratic, failed, missing).
    #[arg(long)]
    changes_only: bool,
    /// A history file (`flowbench run --history`): each timing metric's tolerance is
    /// widened to the drift between consecutive runs in it, once it holds 5 runs of
    /// that metric. The head's own run is left out if it was already appended.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

/// `scenarios` are the scenario files found, for their per-metric gate overrides; an
/// error finding them is noted and the defaults are used.
pub fn run(args: Args, scenarios: anyhow::Result<Vec<Scenario>>) -> anyhow::Result<ExitCode> {
    let base = Results::load(&args.base)?;
    let head = Results::load(&args.head)?;
    let mut notes = Vec::new();
    let mut policies = match scenarios {
        Ok(all) => Policies::from_scenarios(GatePolicy::default(), &all),
        Err(e) => {
            notes.push(format!(
                "scenario files not read ({e:#}): every metric uses the default gate policy"
            ));
            Policies::default()
        }
    };
    if let Some(path) = &args.history {
        let history = History::load(path)?;
        policies.drift = Drift::from_history(&history, Some(&head.run.run_id));
        notes.push(format!(
            "drift from {} ({} runs): {} timing metrics have a measured tolerance",
            path.display(),
            history.records.len(),
            policies.drift.len()
        ));
    }
    let d = diff(&base, &head, &policies)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<40} {:<28} {:>12} {:>12} {:>8} {:>19} {:>8} {:>6}  verdict",
        "scenario/backend/variant",
        "metric [params]",
        "base",
        "head",
        "ratio",
        "95% CI",
        "p",
        "tol"
    )?;
    for row in &d.rows {
        let unchanged = matches!(
            row.verdict,
            RowVerdict::Judged(harness::gate::Verdict::Unchanged)
        );
        if args.changes_only && unchanged {
            continue;
        }
        writeln!(out, "{}", format_row(row))?;
    }
    for note in notes.iter().chain(&d.notes) {
        writeln!(out, "note: {note}")?;
    }
    let regressions: Vec<&Row> = d.regressions(args.fail_on_regression).collect();
    let count = |label: &str| d.rows.iter().filter(|r| r.verdict.label() == label).count();
    writeln!(
        out,
        "{} compared: {} improved, {} regressed, {} unchanged, {} erratic, {} failed or missing",
        d.rows.len(),
        count("improved"),
        count("regressed"),
        count("unchanged"),
        count("erratic"),
        count("head failed") + count("missing"),
    )?;
    if regressions.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "REGRESSION: {} row(s) fail the gate",
            regressions.len()
        )?;
        Ok(ExitCode::from(EXIT_REGRESSED))
    }
}

fn format_row(r: &Row) -> String {
    let metric = if r.params.is_empty() {
        r.metric.clone()
    } else {
        format!("{} [{}]", r.metric, r.params)
    };
    let num = |x: f64| {
        if x.is_nan() {
            "-".to_string()
        } else {
            format!("{x:.4}")
        }
    };
    let ci = if r.ci.0.is_nan() {
        "-".to_string()
    } else {
        format!("[{:.3}, {:.3}]", r.ci.0, r.ci.1)
    };
    let detail = match &r.verdict {
        RowVerdict::HeadFailed(why) => format!(" ({why})"),
        _ => String::new(),
    };
    format!(
        "{:<40} {:<28} {:>12} {:>12} {:>8} {:>19} {:>8} {:>6}  {}{}",
        format!("{}/{}/{}", r.scenario, r.backend, r.variant),
        metric,
        format!("{}{}", num(r.base_median), unit(&r.unit)),
        format!("{}{}", num(r.head_median), unit(&r.unit)),
        if r.ratio.is_nan() {
            "-".to_string()
        } else {
            format!("{:.3}×", r.ratio)
        },
        ci,
        r.p_value.map_or("-".to_string(), |p| format!("{p:.3}")),
        format!("{:.0}%", r.tolerance * 100.0),
        r.verdict.label(),
        detail,
    )
}

fn unit(u: &str) -> String {
    if u.is_empty() {
        String::new()
    } else {
        format!(" {u}")
    }
}
