//! `serde`: FileSerde read, write and convert, `serde.mode=naive` vs `batched`
//! (Kestra: +20–40% records/s).
//!
//! Setup, untimed: for each format and size, `records` order-like records (id, customer,
//! amount, flag, ISO date) are written once to an input file with the batched path. Each
//! measured run then reads that file, writes the records to a new file, and converts the
//! file to ION (ION itself converts to JSON Lines), with the variant's `serde.mode`, and
//! records records/s and MB/s per direction, plus CPU and allocations.

use std::path::Path;
use std::time::Instant;

use orchestrator::fileserde::{self, ConvertOptions, Format, SerdeMode, Value};

use super::driver::{Observed, drive};
use super::{Env, Probe, Recorder, Result, WorkloadError};
use crate::scenario::ParamValue;

const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "Order", "fields": [
  {"name": "id", "type": "long"},
  {"name": "customer", "type": "string"},
  {"name": "amount", "type": "double"},
  {"name": "paid", "type": "boolean"},
  {"name": "date", "type": "string"}]}"#;

fn records(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            Value::Struct(vec![
                ("id".into(), Value::Int(i as i64)),
                (
                    "customer".into(),
                    Value::String(format!("customer-{}", i % 997)),
                ),
                ("amount".into(), Value::Float((i % 10_000) as f64 / 7.0)),
                ("paid".into(), Value::Bool(i % 3 == 0)),
                (
                    "date".into(),
                    Value::String(format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1)),
                ),
            ])
        })
        .collect()
}

fn options() -> ConvertOptions {
    let mut o = ConvertOptions::default();
    o.avro.schema = Some(AVRO_SCHEMA.to_string());
    o
}

/// The conversion measured for a format: to ION, or for ION itself, to JSON Lines.
fn convert_target(f: Format) -> Format {
    if f == Format::Ion {
        Format::Json
    } else {
        Format::Ion
    }
}

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let formats: Vec<Format> = env
        .sweep("format")?
        .iter()
        .map(|v| match v {
            ParamValue::Text(t) => t
                .parse::<Format>()
                .map_err(|e| WorkloadError::Failed(format!("`sweep.format`: {e}"))),
            other => Err(WorkloadError::Failed(format!(
                "`sweep.format` holds {other:?}, not a format name"
            ))),
        })
        .collect::<Result<_>>()?;
    let opts = options();
    let dir = env.scratch.join("serde");
    std::fs::create_dir_all(&dir)
        .map_err(|e| WorkloadError::failed("creating the scratch folder", e))?;
    let mut modes = Vec::new();
    for v in &s.variants {
        modes.push(env.knobs(v)?.serde_mode);
    }
    for n in env.int_sweep("records")? {
        let data = records(n as usize);
        for &format in &formats {
            env.check_cancel()?;
            let input = dir.join(format!("input-{n}.{format}"));
            fileserde::write_all(&input, format, &data, &opts, SerdeMode::Batched)
                .map_err(|e| WorkloadError::failed(format!("writing the {format} input"), e))?;
            let bytes = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0) as f64;
            drive(env, rec, &format!("{format}, {n} records"), async |slot| {
                let mode = modes[slot.variant_index];
                let mut seen = Observed::default();
                for direction in ["read", "write", "convert"] {
                    env.check_cancel()?;
                    let out = dir.join(format!("out-{n}-{direction}.{format}"));
                    let probe = Probe::start(env.alloc);
                    let started = Instant::now();
                    let done = measure(direction, format, &input, &out, &data, &opts, mode);
                    let elapsed = started.elapsed().as_secs_f64();
                    let sample = probe.finish();
                    let _ = std::fs::remove_file(&out);
                    let count = done.map_err(|e| {
                        WorkloadError::failed(format!("{format} {direction} ({mode})"), e)
                    })?;
                    if count != data.len() as u64 {
                        return Err(WorkloadError::Failed(format!(
                            "{format} {direction} ({mode}) handled {count} of {} records",
                            data.len()
                        )));
                    }
                    let params = super::params([
                        ("format", format.to_string().as_str().into()),
                        ("direction", direction.into()),
                        ("records", n.into()),
                    ]);
                    seen.record_all(&params, &sample.metrics());
                    seen.record(&params, "records_per_s", count as f64 / elapsed);
                    seen.record(&params, "mb_per_s", bytes / 1e6 / elapsed);
                }
                Ok(seen)
            })
            .await?;
            let _ = std::fs::remove_file(&input);
        }
    }
    Ok(())
}

/// Runs one direction; returns how many records went through.
fn measure(
    direction: &str,
    format: Format,
    input: &Path,
    out: &Path,
    data: &[Value],
    opts: &ConvertOptions,
    mode: SerdeMode,
) -> fileserde::Result<u64> {
    match direction {
        "read" => fileserde::read_all(input, format, opts, mode).map(|r| r.len() as u64),
        "write" => fileserde::write_all(out, format, data, opts, mode).map(|_| data.len() as u64),
        _ => fileserde::convert(input, format, out, convert_target(format), opts, mode)
            .map(|s| s.records),
    }
}
