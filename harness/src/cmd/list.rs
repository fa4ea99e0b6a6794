//! `flowbench list`: each scenario, its workload, variants and claim.

use std::io::Write;
use std::process::ExitCode;

use harness::scenario::Scenario;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args, scenarios: &[Scenario]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for s in scenarios {
        let variants: Vec<&str> = s.variants.iter().map(|v| v.name.as_str()).collect();
        writeln!(out, "{:<16} {}", s.id, s.title)?;
        writeln!(
            out,
            "{:<16} claim: {} (Kestra: {})",
            "", s.claim.text, s.claim.kestra_figure
        )?;
        writeln!(out, "{:<16} variants: {}", "", variants.join(" vs "))?;
    }
    Ok(ExitCode::SUCCESS)
}
