//! `flowbench`: runs the scenarios, compares results files, renders reports.
//!
//! The commands live one per file under `cmd/`; this file installs the counting
//! allocator, parses the command line and turns errors into exit codes: 1 for an error,
//! printed once with its chain, and 0 when stdout is closed early (`flowbench list | head`).

use std::process::ExitCode;

use clap::Parser;

mod cmd;

/// Counts every allocation, so workloads can report `alloc_count` and `alloc_bytes`.
/// A `dhat-heap` build lets dhat record instead; the counters are then left out.
#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static GLOBAL: harness::measure::CountingAllocator = harness::measure::CountingAllocator::new();

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

/// The counting allocator, when it is the global one.
fn counting_allocator() -> Option<&'static harness::measure::CountingAllocator> {
    #[cfg(not(feature = "dhat-heap"))]
    {
        Some(&GLOBAL)
    }
    #[cfg(feature = "dhat-heap")]
    {
        None
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOWBENCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cmd::Cli::parse();
    match cmd::dispatch(cli, counting_allocator()) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
