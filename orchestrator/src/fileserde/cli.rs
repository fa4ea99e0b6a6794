//! `orchestrator convert`: convert a record file from the command line.
//!
//! ```text
//! orchestrator convert --from csv --to ion in.csv out.ion
//! orchestrator convert --from ion --to avro --schema rows.avsc in.ion out.avro --set serde.mode=naive
//! ```

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{ConvertOptions, Format, SerdeMode};

/// Arguments of the `convert` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct ConvertArgs {
    /// Format of IN: ion, json, csv or avro.
    #[arg(long)]
    pub from: Format,
    /// Format of OUT: ion, json, csv or avro.
    #[arg(long)]
    pub to: Format,
    /// Input file.
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Output file; written whole or not at all.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Avro schema file (JSON), needed with `--to avro`.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Knob settings, `key=value`; this command knows `serde.mode=naive|batched`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Runs the conversion and prints what it did on stderr.
pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    let mut mode = SerdeMode::default();
    for setting in &args.set {
        let Some((key, value)) = setting.split_once('=') else {
            bail!("--set expects key=value, got `{setting}`");
        };
        match key.trim() {
            "serde.mode" => mode = value.trim().parse().map_err(anyhow::Error::msg)?,
            other => bail!("unknown setting `{other}` for convert (known: serde.mode)"),
        }
    }
    let mut opts = ConvertOptions::default();
    if let Some(schema) = &args.schema {
        let text = std::fs::read_to_string(schema)
            .with_context(|| format!("reading Avro schema {}", schema.display()))?;
        opts.avro.schema = Some(text);
    }
    let stats = super::convert(&args.input, args.from, &args.output, args.to, &opts, mode)
        .with_context(|| {
            format!(
                "converting {} ({}) to {} ({})",
                args.input.display(),
                args.from,
                args.output.display(),
                args.to
            )
        })?;
    eprintln!(
        "{} records, {} bytes in, {} bytes out ({mode})",
        stats.records, stats.bytes_in, stats.bytes_out
    );
    Ok(())
}
