//! Flow files of a scenario folder, and running them to the end.

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use orchestrator::flow::Flow;
use orchestrator::model::{Execution, StateType};
use orchestrator::service::{Components, Orchestrator};

use super::{Env, Probe, Result, RunSample, WorkloadError};
use crate::scenario::Variant;

/// How long one execution may take before the run fails rather than hangs.
pub const EXECUTION_TIMEOUT: Duration = Duration::from_secs(600);

/// Reads a flow file relative to the scenario folder.
pub fn read(env: &Env<'_>, relative: &Path) -> Result<String> {
    let path = env.scenario.dir.join(relative);
    std::fs::read_to_string(&path)
        .map_err(|e| WorkloadError::failed(format!("reading flow {}", path.display()), e))
}

/// The variant's flow file, or `default` (relative to the scenario folder) when the
/// variant names none.
pub fn for_variant(env: &Env<'_>, variant: &Variant, default: &str) -> Result<String> {
    match &variant.flow {
        Some(f) => read(env, f),
        None => read(env, Path::new(default)),
    }
}

/// Boots an orchestrator for one run of `variant` (its knobs, a database of its own named
/// by `label`) and deploys the variant's flow, or `default` when it names none.
pub async fn boot_variant(
    env: &Env<'_>,
    variant: &Variant,
    default: &str,
    label: &str,
) -> Result<(Arc<Orchestrator>, Arc<Flow>)> {
    let source = for_variant(env, variant, default)?;
    let o = env
        .boot(&env.knobs(variant)?, label, Components::ALL)
        .await?;
    let flow = deploy(&o, &source, default).await?;
    Ok((o, flow))
}

/// Boots the variant's orchestrator with its flow (as [`boot_variant`]), runs `work` under
/// a [`Probe`], and shuts the orchestrator down whatever `work` returned: the boot →
/// probe → shut down part of a run, around a workload's own work.
pub async fn probed<T>(
    env: &Env<'_>,
    variant: &Variant,
    default: &str,
    label: &str,
    work: impl AsyncFnOnce(&Arc<Orchestrator>, &Flow) -> Result<T>,
) -> Result<(RunSample, T)> {
    let (o, flow) = boot_variant(env, variant, default, label).await?;
    let probe = Probe::start(env.alloc);
    let result = work(&o, &flow).await;
    let sample = probe.finish();
    o.shutdown().await;
    Ok((sample, result?))
}

/// Deploys a flow, naming its origin in errors.
pub async fn deploy(o: &Orchestrator, source: &str, origin: &str) -> Result<Arc<Flow>> {
    o.deploy(source, origin)
        .await
        .map_err(|e| WorkloadError::failed(format!("deploying {origin}"), e))
}

/// Creates one execution of a flow and waits for its end; a run whose execution did not
/// succeed fails, since its timings would measure an error path.
pub async fn execute(
    env: &Env<'_>,
    o: &Orchestrator,
    namespace: &str,
    flow_id: &str,
) -> Result<Execution> {
    let created = o
        .create_execution(namespace, flow_id, Default::default(), vec![], None)
        .await
        .map_err(|e| WorkloadError::failed(format!("creating an execution of {flow_id}"), e))?;
    let done = tokio::select! {
        _ = env.cancel.cancelled() => return Err(WorkloadError::Interrupted),
        r = o.wait_terminal(&created.id, EXECUTION_TIMEOUT) => r,
    }
    .map_err(|e| WorkloadError::failed(format!("waiting for {flow_id}"), e))?;
    expect_success(&done)?;
    Ok(done)
}

/// Fails unless the execution ended in SUCCESS.
pub fn expect_success(e: &Execution) -> Result<()> {
    if e.state.current == StateType::Success {
        Ok(())
    } else {
        Err(WorkloadError::Failed(format!(
            "execution {} of {} ended {} instead of SUCCESS",
            e.id, e.flow_id, e.state.current
        )))
    }
}

/// The execution's own duration, from its state history: what Kestra's benchmark reads
/// as `state_duration`.
pub fn state_duration(e: &Execution) -> Duration {
    e.state.duration().unsigned_abs()
}

/// Replaces the `message` of every `Log` task whose message is a string by a list of
/// `lines` numbered copies of it: a noisy task, written once in the flow file.
pub fn expand_log_messages(source: &str, lines: usize) -> Result<String> {
    use serde_yaml_ng::Value;
    let mut doc: Value = serde_yaml_ng::from_str(source)
        .map_err(|e| WorkloadError::failed("parsing the log-heavy flow", e))?;
    fn walk(v: &mut Value, lines: usize) {
        match v {
            Value::Mapping(m) => {
                let is_log = m
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t == "io.kestra.plugin.core.log.Log");
                if is_log {
                    if let Some(Value::String(msg)) = m.get("message").cloned() {
                        let list = (1..=lines)
                            .map(|i| Value::String(format!("{msg} {i}/{lines}")))
                            .collect();
                        m.insert(Value::String("message".into()), Value::Sequence(list));
                    }
                }
                for (_, child) in m.iter_mut() {
                    walk(child, lines);
                }
            }
            Value::Sequence(s) => s.iter_mut().for_each(|c| walk(c, lines)),
            _ => {}
        }
    }
    walk(&mut doc, lines);
    serde_yaml_ng::to_string(&doc)
        .map_err(|e| WorkloadError::failed("writing the log-heavy flow", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_messages_expand_into_numbered_lists() {
        let src = "id: f\nnamespace: n\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hello\n  - id: o\n    type: io.kestra.plugin.core.output.OutputValues\n    values:\n      message: keep\n";
        let out = expand_log_messages(src, 3).unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).unwrap();
        let msgs = doc["tasks"][0]["message"].as_sequence().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[2].as_str(), Some("hello 3/3"));
        assert_eq!(doc["tasks"][1]["values"]["message"].as_str(), Some("keep"));
    }
}
