//! `flowbench list`: each scenario, its workload, variants and claim, with the Kestra
//! commits its "before" path follows and, per backend, whether Kestra made the change
//! there at all.

use std::io::Write;
use std::process::ExitCode;

use harness::scenario::Scenario;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args, scenarios: &[Scenario]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for s in scenarios {
        write_scenario(&mut out, s)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Column where the details of a scenario start, under its title.
const INDENT: &str = "                 ";

fn write_scenario(out: &mut impl Write, s: &Scenario) -> std::io::Result<()> {
    let variants: Vec<&str> = s.variants.iter().map(|v| v.name.as_str()).collect();
    writeln!(out, "{:<16} {}", s.id, s.title)?;
    writeln!(
        out,
        "{INDENT}claim: {} (Kestra: {})",
        s.claim.text, s.claim.kestra_figure
    )?;
    writeln!(out, "{INDENT}variants: {}", variants.join(" vs "))?;
    if let Some(before) = &s.claim.before {
        writeln!(out, "{INDENT}before: {before}")?;
    }
    if !s.claim.kestra_commits.is_empty() {
        writeln!(
            out,
            "{INDENT}Kestra commit: {}",
            s.claim.kestra_commits.join(", ")
        )?;
    }
    let rows: Vec<String> = s
        .backends
        .iter()
        .map(|b| {
            if s.claim.has_kestra_counterpart(b.name()) {
                format!("{} claim", b.name())
            } else {
                format!("{} no Kestra counterpart", b.name())
            }
        })
        .collect();
    writeln!(out, "{INDENT}backends: {}", rows.join(" · "))?;
    Ok(())
}
