//! Flow concurrency limits (`concurrency: {limit, behavior}`), through `execution_queued`.

mod common;

use std::time::Duration;

use common::start;
use orchestrator::model::{Execution, StateType};

fn flow(behavior: &str) -> String {
    format!(
        "id: limited\nnamespace: tests\nconcurrency:\n  limit: 1\n  behavior: {behavior}\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.2S\n"
    )
}

async fn run_three(sets: &[&str], behavior: &str) -> Vec<Execution> {
    let h = start(sets).await;
    let f = h.o.deploy(&flow(behavior), "limited.yaml").await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let e =
            h.o.create_execution(&f.namespace, &f.id, Default::default(), vec![], None)
                .await
                .unwrap();
        ids.push(e.id);
    }
    let mut done = Vec::new();
    for id in &ids {
        done.push(
            h.o.wait_terminal(id, Duration::from_secs(30))
                .await
                .unwrap(),
        );
    }
    h.stop().await;
    done
}

fn count(execs: &[Execution], s: StateType) -> usize {
    execs.iter().filter(|e| e.state.current == s).count()
}

/// The running intervals (RUNNING → end) of each execution never overlap under limit 1.
fn assert_never_two_running(execs: &[Execution]) {
    let mut spans: Vec<_> = execs
        .iter()
        .filter_map(|e| {
            let start = e
                .state
                .histories
                .iter()
                .find(|h| h.state == StateType::Running)?
                .date;
            Some((start, e.state.end_date()?))
        })
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "two executions ran at once: {spans:?}");
    }
}

#[tokio::test]
async fn queue_runs_every_execution_one_at_a_time() {
    for index in ["queued.index=flow-date", "queued.index=flow"] {
        let execs = run_three(&[index], "QUEUE").await;
        assert_eq!(count(&execs, StateType::Success), 3, "{index}");
        let queued = execs
            .iter()
            .filter(|e| {
                e.state
                    .histories
                    .iter()
                    .any(|h| h.state == StateType::Queued)
            })
            .count();
        assert_eq!(queued, 2, "{index}: two executions waited in QUEUED");
        assert_never_two_running(&execs);
    }
}

#[tokio::test]
async fn cancel_cancels_executions_over_the_limit() {
    let execs = run_three(&[], "CANCEL").await;
    assert_eq!(count(&execs, StateType::Success), 1);
    assert_eq!(count(&execs, StateType::Cancelled), 2);
    assert!(
        execs
            .iter()
            .all(|e| e.state.current != StateType::Cancelled || e.task_run_list.is_empty())
    );
}

#[tokio::test]
async fn fail_fails_executions_over_the_limit() {
    let execs = run_three(&[], "FAIL").await;
    assert_eq!(count(&execs, StateType::Success), 1);
    assert_eq!(count(&execs, StateType::Failed), 2);
    assert!(
        execs
            .iter()
            .all(|e| e.state.current != StateType::Failed || e.task_run_list.is_empty())
    );
}
