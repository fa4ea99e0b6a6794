//! `foreach`: Kestra's benchmark B3, a ForEach over 100 values, run to the end once per
//! repetition on a fresh database; each variant is a set of knobs.
//!
//! Kestra reports B3 as the best of several runs; the samples keep every run, and the
//! minimum is the best-of-N figure.

use reports::results::Params;

use super::driver::{Observed, drive};
use super::{Env, Recorder, Result, flows};

/// The flow file used when a variant names none.
const DEFAULT_FLOW: &str = "benchmark03.yaml";

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let p = Params::new();
    drive(env, rec, "", async |slot| {
        let label = format!("foreach-{}", slot.ordinal);
        let (sample, done) =
            flows::probed(env, slot.variant, DEFAULT_FLOW, &label, async |o, flow| {
                flows::execute(env, o, &flow.namespace, &flow.id).await
            })
            .await?;
        let mut seen = Observed::default();
        seen.record_all(&p, &sample.metrics());
        seen.record(
            &p,
            "execution_duration_ms",
            flows::state_duration(&done).as_secs_f64() * 1000.0,
        );
        seen.record(
            &p,
            "task_runs_per_s",
            done.task_run_list.len() as f64 / sample.wall.as_secs_f64(),
        );
        Ok(seen)
    })
    .await
}
