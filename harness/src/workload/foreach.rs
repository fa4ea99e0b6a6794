//! `foreach`: Kestra's benchmark B3, a ForEach over 100 values, run to the end once per
//! repetition on a fresh database; each variant is a set of knobs.
//!
//! Kestra reports B3 as the best of several runs; the samples keep every run, and the
//! minimum is the best-of-N figure.

use super::{Env, Probe, Recorder, Result, flows};
use crate::interleave::{Phase, schedule};

/// The flow file used when a variant names none.
const DEFAULT_FLOW: &str = "benchmark03.yaml";

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let runs = schedule(&s.variants, s.repetitions as usize, s.warmup as usize);
    env.progress.runs(runs.len() as u64);
    for (n, run) in runs.enumerate() {
        env.check_cancel()?;
        let variant = run.variant;
        env.progress
            .run(&variant.name, &format!("round {}", run.round + 1));
        let (o, flow) =
            flows::boot_variant(env, variant, DEFAULT_FLOW, &format!("foreach-{n}")).await?;
        let probe = Probe::start(env.alloc);
        let result = flows::execute(env, &o, &flow.namespace, &flow.id).await;
        let sample = probe.finish();
        o.shutdown().await;
        let done = result?;
        if run.phase == Phase::Measured {
            let p = Default::default();
            rec.record_all(&variant.name, &p, &sample.metrics());
            rec.record(
                &variant.name,
                &p,
                "execution_duration_ms",
                flows::state_duration(&done).as_secs_f64() * 1000.0,
            );
            rec.record(
                &variant.name,
                &p,
                "task_runs_per_s",
                done.task_run_list.len() as f64 / sample.wall.as_secs_f64(),
            );
        }
        env.progress.done();
    }
    Ok(())
}
