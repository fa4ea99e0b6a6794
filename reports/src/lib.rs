//! Renders flowbench results: charts, an HTML page, a Markdown summary and a
//! Bencher Metric Format export.
//!
//! This crate knows only the results data types. The harness measures, computes
//! the statistics and verdicts, and writes a [`results::Results`]; this crate
//! reads it and draws. Chart code receives only plain data structs.
//!
//! The primary items are:
//!
//! * [`results::Results`], the versioned `results.json` schema, with
//!   [`results::Results::load`] and [`results::Results::save`];
//! * [`results::History`], the JSON Lines run history, and
//!   [`results::HistoryView`], the trends (with change points) a report shows;
//! * [`report::write_report`], which writes a whole report folder;
//! * the chart structs in [`charts`], each rendered with [`charts::render_svg`]
//!   or [`charts::render_png`];
//! * [`report::Reporter`], hooks a run calls, and [`report::Reporters`], which
//!   calls several.
//!
//! # Layout
//!
//! * `results`: the schema, URL redaction and the history file.
//! * `charts`: one file per chart type, plus the line-panel drawing they share.
//! * `report`: choosing figures from results (`figures`), the template view,
//!   and one writer per output: `html`, `markdown`, `bencher`.
//! * `templates/`: the minijinja templates, compiled in.
//! * `assets/`: the font PNG text is drawn with, and its licence.
//!
//! # Example
//!
//! ```no_run
//! use std::path::Path;
//! use reports::results::Results;
//!
//! # fn main() -> reports::Result<()> {
//! let results = Results::load(Path::new("target/flowbench/latest/results.json"))?;
//! let files = reports::report::write_report(&results, None, Path::new("target/report"))?;
//! println!("open {}", files.index_html.display());
//! # Ok(())
//! # }
//! ```
//!
//! A single chart needs no results file at all:
//!
//! ```
//! use reports::charts::{render_svg, TrendChart, TrendPoint};
//!
//! let chart = TrendChart {
//!     title: "total time".into(),
//!     caption: String::new(),
//!     y_label: "median (s)".into(),
//!     points: vec![
//!         TrendPoint { label: "3f2a1c9".into(), value: 20.4 },
//!         TrendPoint { label: "8b9c0d1".into(), value: 23.9 },
//!     ],
//!     change_points: vec![1],
//! };
//! let svg = render_svg(&chart).unwrap();
//! assert!(svg.contains("change at 8b9c0d1"));
//! ```

pub mod charts;
pub mod error;
pub mod report;
pub mod results;

pub use error::{Error, Result};
