//! The commands, one per file, dispatched by [`Command`].

mod compare;
mod list;
mod report;
mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use harness::measure::CountingAllocator;
use harness::scenario::{self, Scenario};

/// Benchmarks and regression gate for the flowbench orchestrator.
#[derive(Parser)]
#[command(name = "flowbench", version)]
pub struct Cli {
    /// The folder holding one sub-folder per scenario; by default the nearest
    /// `scenarios/` at or above the current directory.
    #[arg(long, global = true, env = "FLOWBENCH_SCENARIOS", value_name = "DIR")]
    scenarios_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the scenarios and the claim each checks.
    List(list::Args),
    /// Run scenarios and write results.json (exit 4 when a scenario failed).
    Run(run::Args),
    /// Compare two results files and gate on regressions (exit 3; 1 when incomplete).
    Compare(compare::Args),
    /// Render a results file as HTML, Markdown, charts and Bencher JSON.
    Report(report::Args),
    /// One scenario on one database, as `run` starts it in a process of its own.
    #[command(hide = true)]
    RunOne(run::OneArgs),
}

pub fn dispatch(cli: Cli, alloc: Option<&'static CountingAllocator>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::List(args) => list::run(args, &load_scenarios(cli.scenarios_dir.as_deref())?),
        Command::Run(args) => run::run(args, &load_scenarios(cli.scenarios_dir.as_deref())?, alloc),
        Command::Compare(args) => compare::run(args, load_scenarios(cli.scenarios_dir.as_deref())),
        Command::Report(args) => report::run(args),
        Command::RunOne(args) => {
            run::run_one(args, &load_scenarios(cli.scenarios_dir.as_deref())?, alloc)
        }
    }
}

/// Finds the scenarios folder: the one given, else `scenarios/` in the current directory
/// or the nearest parent, else the one beside this crate's sources.
fn scenarios_dir(given: Option<&Path>) -> PathBuf {
    if let Some(dir) = given {
        return dir.to_path_buf();
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let candidate = dir.join("scenarios");
            if candidate.is_dir() {
                return candidate;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn load_scenarios(given: Option<&Path>) -> anyhow::Result<Vec<Scenario>> {
    let dir = scenarios_dir(given);
    let all = scenario::load_all(&dir)?;
    anyhow::ensure!(!all.is_empty(), "no scenario.toml under {}", dir.display());
    Ok(all)
}
