//! Renders a results file (by default the synthetic test fixture) into a folder,
//! so the charts and pages can be looked at.
//!
//! ```text
//! cargo run -p reports --example render_fixture -- [RESULTS.json [HISTORY-VIEW.json]] [--out DIR]
//! ```
//!
//! The output goes to `target/flowbench/render-fixture/` unless `--out` is given.

use std::path::PathBuf;
use std::process::ExitCode;

use reports::report::write_report;
use reports::results::{HistoryView, Results};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut positional = Vec::new();
    let mut out =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/flowbench/render-fixture");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--out" {
            out = args.next().ok_or("--out needs a folder")?.into();
        } else {
            positional.push(PathBuf::from(arg));
        }
    }
    let results_path = positional
        .first()
        .cloned()
        .unwrap_or_else(|| fixtures.join("results.json"));
    let history_path = positional.get(1).cloned().or_else(|| {
        positional
            .is_empty()
            .then(|| fixtures.join("history-view.json"))
    });

    let results = Results::load(&results_path)?;
    let history: Option<HistoryView> = match &history_path {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    let files = write_report(&results, history.as_ref(), &out)?;
    println!("{}", files.index_html.display());
    println!("{}", files.summary_md.display());
    println!("{}", files.bencher_json.display());
    for chart in &files.charts {
        println!("{}", chart.png.display());
    }
    Ok(())
}
