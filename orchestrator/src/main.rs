//! The `orchestrator` binary. For now it has the `convert` subcommand only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orchestrator::fileserde::cli::{self, ConvertArgs};

#[derive(Parser)]
#[command(
    name = "orchestrator",
    version,
    about = "Reference workflow orchestrator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a record file between ion, json, csv and avro.
    Convert(ConvertArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert(args) => cli::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe downstream is not a failure of this command.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
