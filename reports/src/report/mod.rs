//! Report writers: HTML, Markdown, Bencher Metric Format and chart files.
//!
//! [`write_report`] writes everything into one folder:
//!
//! ```text
//! out_dir/
//!   index.html        self-contained: inline CSS and SVG, no scripts, no links out
//!   summary.md        claims, verdicts and the largest changes, for CI summaries
//!   bencher.json      Bencher Metric Format
//!   charts/<id>.svg   one per figure
//!   charts/<id>.png
//! ```
//!
//! Whether a claim is "reproduced" is read from the comparison the harness marked
//! with `reproduced`; nothing here decides it.

mod bencher;
pub mod figures;
mod html;
mod markdown;
mod view;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::results::{HistoryView, Results, ScenarioResult};

pub use bencher::bencher_json;
pub use figures::{Figure, FigureChart, figures};

/// The files one report consists of.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    pub index_html: PathBuf,
    pub summary_md: PathBuf,
    pub bencher_json: PathBuf,
    pub charts: Vec<ChartFiles>,
}

/// One figure's files.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartFiles {
    pub id: String,
    pub title: String,
    pub svg: PathBuf,
    pub png: PathBuf,
}

/// A chart rendered once, for both the files and the inline HTML.
pub(crate) struct RenderedFigure {
    pub figure: Figure,
    pub svg: String,
}

/// Writes the whole report for `results` into `out_dir`, creating it if needed.
pub fn write_report(
    results: &Results,
    history: Option<&HistoryView>,
    out_dir: &Path,
) -> Result<ReportFiles> {
    let charts_dir = out_dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|e| Error::io(&charts_dir, e))?;

    let mut rendered = Vec::new();
    let mut charts = Vec::new();
    for figure in figures(results, history) {
        let svg = figure.render_svg()?;
        let png = figure.render_png()?;
        let files = ChartFiles {
            id: figure.id.clone(),
            title: figure.title().to_string(),
            svg: charts_dir.join(format!("{}.svg", figure.id)),
            png: charts_dir.join(format!("{}.png", figure.id)),
        };
        write(&files.svg, svg.as_bytes())?;
        write(&files.png, &png)?;
        charts.push(files);
        rendered.push(RenderedFigure { figure, svg });
    }

    let view = view::ReportView::new(results, &rendered);
    let files = ReportFiles {
        index_html: out_dir.join("index.html"),
        summary_md: out_dir.join("summary.md"),
        bencher_json: out_dir.join("bencher.json"),
        charts,
    };
    write(&files.index_html, html::render(&view)?.as_bytes())?;
    write(&files.summary_md, markdown::render(&view)?.as_bytes())?;
    let bmf = serde_json::to_string_pretty(&bencher_json(results)).expect("BMF is plain JSON");
    write(&files.bencher_json, (bmf + "\n").as_bytes())?;
    Ok(files)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Hooks a run calls as it goes, in the manner of criterion's `Report`: every
/// hook does nothing unless a reporter overrides it.
pub trait Reporter {
    /// A scenario is about to run on a backend.
    fn scenario_started(&mut self, _scenario: &str, _backend: &str) {}

    /// A scenario finished, failed or was skipped.
    fn scenario_finished(&mut self, _result: &ScenarioResult) {}

    /// The run is over and its results are complete.
    fn run_finished(&mut self, _results: &Results, _history: Option<&HistoryView>) -> Result<()> {
        Ok(())
    }
}

/// Calls every reporter it holds, in order.
#[derive(Default)]
pub struct Reporters(pub Vec<Box<dyn Reporter>>);

impl Reporter for Reporters {
    fn scenario_started(&mut self, scenario: &str, backend: &str) {
        for r in &mut self.0 {
            r.scenario_started(scenario, backend);
        }
    }

    fn scenario_finished(&mut self, result: &ScenarioResult) {
        for r in &mut self.0 {
            r.scenario_finished(result);
        }
    }

    /// Every reporter runs even if one fails; the first error is returned.
    fn run_finished(&mut self, results: &Results, history: Option<&HistoryView>) -> Result<()> {
        let mut first_error = None;
        for r in &mut self.0 {
            if let Err(e) = r.run_finished(results, history) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Writes the report files with [`write_report`] when the run finishes.
pub struct FileReporter {
    pub out_dir: PathBuf,
    /// The files written, once the run has finished.
    pub files: Option<ReportFiles>,
}

impl FileReporter {
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        FileReporter {
            out_dir: out_dir.into(),
            files: None,
        }
    }
}

impl Reporter for FileReporter {
    fn run_finished(&mut self, results: &Results, history: Option<&HistoryView>) -> Result<()> {
        self.files = Some(write_report(results, history, &self.out_dir)?);
        Ok(())
    }
}
