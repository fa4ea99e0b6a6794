//! `flowbench compare BASE HEAD`: a verdict table, then an exit code a CI job can gate on.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | every row both sides measured was judged, and none regressed |
//! | 3 | a metric regressed (also when some rows are incomplete: the regression is the news) |
//! | 1 | an error: a missing or bad file, different scenarios; a scenario or metric that one side measured and the other failed, skipped or lacks; nothing compared at all; with `--fail-on-regression`, a metric with too few samples to judge |
//!
//! `insufficient samples` (sample sizes with which the U test cannot reach α, such as
//! 3 runs a side) is always counted and warned about: such a metric cannot show a
//! regression. With `--fail-on-regression`, as the nightly gate runs it, it fails with
//! exit 1, since the gate could not do its job there; without it the exit status ignores
//! it.
//!
//! Each metric is judged under the default [`GatePolicy`], changed by its scenario
//! file's `gate = { … }`, and, with `--history`, a tolerance widened to the between-run
//! drift the history shows ([`harness::drift`]). A noisy timing metric's tolerance is
//! widened further by its own spread ([`harness::gate`]); its verdict then reads
//! "regressed (noisy)" and still fails the gate.

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
/// The exit code of a comparison that is incomplete or judged nothing.
pub const EXIT_INCOMPLETE: u8 = 1;

#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 every metric both sides measured was judged and none \
regressed; 3 a metric regressed (\"regressed (noisy)\" too); 1 an error: a missing or bad \
file, different scenarios, a scenario or metric failed, skipped or missing on one side, \
nothing compared, or with --fail-on-regression a metric with insufficient samples."
)]
pub struct Args {
    /// The baseline results.json.
    base: PathBuf,
    /// The results.json to judge against it.
    head: PathBuf,
    /// Strict gating, as CI runs it: also fail (exit 1) when a metric has too few samples
    /// for the U test to reach α (`insufficient samples`), since a regression there could
    /// not be seen. Failed, skipped or missing scenarios and metrics, and a comparison
    /// that judged nothing, exit 1 with or without it; a regression exits 3.
    #[arg(long)]
    fail_on_regression: bool,
    /// Show only the rows that changed (improved, regressed, erratic, insufficient
    /// samples, failed, missing).
    #[arg(long)]
    changes_only: bool,
    /// A history file (`flowbench run --history`): each metric's tolerance is
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
            "drift from {} ({} runs): {} metrics have a measured tolerance",
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
    let count = |label: &str| d.rows.iter().filter(|r| r.verdict.label() == label).count();
    let regressed = d.regressions().count();
    let incomplete = d.incomplete().count();
    let insufficient = d.insufficient().count();
    writeln!(
        out,
        "{} compared: {} improved, {regressed} regressed, {} unchanged, {} erratic, \
         {insufficient} insufficient samples; {incomplete} failed or missing",
        d.judged(),
        count("improved"),
        count("unchanged"),
        count("erratic"),
    )?;
    if insufficient > 0 {
        writeln!(
            out,
            "WARNING: {insufficient} row(s) have too few samples for the U test to reach α \
             (raise the scenario's repetitions): a regression there cannot be seen{}",
            if args.fail_on_regression {
                "; --fail-on-regression fails on them"
            } else {
                ""
            }
        )?;
    }
    if incomplete > 0 {
        writeln!(
            out,
            "INCOMPLETE: {incomplete} row(s) failed, were skipped or are missing on one side"
        )?;
    }
    if regressed > 0 {
        writeln!(out, "REGRESSION: {regressed} row(s) fail the gate")?;
        return Ok(ExitCode::from(EXIT_REGRESSED));
    }
    if d.judged() == 0 {
        writeln!(
            out,
            "NOTHING COMPARED: the two files hold no metric both measured"
        )?;
        return Ok(ExitCode::from(EXIT_INCOMPLETE));
    }
    if incomplete > 0 || (args.fail_on_regression && insufficient > 0) {
        return Ok(ExitCode::from(EXIT_INCOMPLETE));
    }
    Ok(ExitCode::SUCCESS)
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
        RowVerdict::HeadFailed(why) | RowVerdict::BaseFailed(why) => format!(" ({why})"),
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
        if r.tolerance.is_nan() {
            "-".to_string()
        } else {
            format!("{:.0}%", r.tolerance * 100.0)
        },
        r.label(),
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
