//! The HTTP API, served in-process on 127.0.0.1:0.

mod common;

use std::sync::Arc;
use std::time::Duration;

use orchestrator::model::StateType;
use serde_json::{Value, json};

/// An orchestrator with its HTTP API served on 127.0.0.1:0.
struct Api {
    o: Arc<orchestrator::service::Orchestrator>,
    base: String,
    stop: tokio_util::sync::CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Api {
        Api::start_with(&[]).await
    }

    /// With these knobs set.
    async fn start_with(knobs: &[&str]) -> Api {
        let common::Harness { o, dir } = common::start(knobs).await;
        let o = Arc::new(o);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(orchestrator::webserver::serve(listener, o.clone(), {
            let stop = stop.clone();
            async move { stop.cancelled().await }
        }));
        Api {
            o,
            base,
            stop,
            server,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
        self.o.shutdown().await;
    }
}

#[tokio::test]
async fn flows_executions_logs_and_health_over_http() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();

    let health: Value = c
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "UP");

    let v1 = "id: greet\nnamespace: api\ninputs:\n  - id: who\n    type: STRING\n    defaults: you\ntriggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: s3cr3t\ntasks:\n  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: \"v1 {{ inputs.who }}\"\n";
    let r = c
        .post(format!("{base}/api/v1/flows"))
        .body(v1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["revision"], 1);

    let v2 = v1.replace("v1 {{", "v2 {{").replace("key: s3cr3t", "key: s3cr3t\n  - id: hook2\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: other");
    let updated: Value = c
        .put(format!("{base}/api/v1/flows/api/greet"))
        .body(v2.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["revision"], 2);
    let fetched: Value = c
        .get(format!("{base}/api/v1/flows/api/greet"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["source"], v2);

    // A flow whose body names another flow than the path is refused.
    let r = c
        .put(format!("{base}/api/v1/flows/api/other"))
        .body(v2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    // An invalid flow is refused with the reason, and nothing is stored.
    let r = c
        .post(format!("{base}/api/v1/flows"))
        .body("id: bad\nnamespace: api\ntasks:\n  - id: x\n    type: io.kestra.Nope\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let msg: Value = r.json().await.unwrap();
    assert!(
        msg["message"]
            .as_str()
            .unwrap()
            .contains("unknown task type")
    );
    assert_eq!(
        c.get(format!("{base}/api/v1/flows/api/bad"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let exec: Value = c
        .post(format!("{base}/api/v1/executions/api/greet?labels=team:qa"))
        .json(&json!({"who": "HTTP"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = exec["id"].as_str().unwrap().to_string();
    assert_eq!(exec["state"]["current"], "CREATED");
    assert_eq!(exec["labels"][0]["key"], "team");
    o.wait_terminal(&id, Duration::from_secs(30)).await.unwrap();
    o.wait_idle(Duration::from_secs(30)).await.unwrap();
    let done: Value = c
        .get(format!("{base}/api/v1/executions/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["state"]["current"], "SUCCESS");
    let logs: Value = c
        .get(format!("{base}/api/v1/logs/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs[0]["message"], "v2 HTTP");

    // Webhooks: the right key starts an execution carrying the request; a wrong key is 404.
    let hooked: Value = c
        .post(format!(
            "{base}/api/v1/executions/webhook/api/greet/other?x=1"
        ))
        .json(&json!({"k": "v"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hooked["trigger"]["id"], "hook2");
    assert_eq!(hooked["trigger"]["variables"]["body"]["k"], "v");
    assert_eq!(hooked["trigger"]["variables"]["parameters"]["x"], "1");
    let r = c
        .get(format!("{base}/api/v1/executions/webhook/api/greet/wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Bad inputs and unknown things are client errors, not server errors.
    let r = c
        .post(format!("{base}/api/v1/executions/api/greet"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = c
        .post(format!("{base}/api/v1/executions/api/greet"))
        .json(&json!({"nope": 1}))
        .send()
        .await
        .unwrap();
    // Kestra ignores inputs the flow does not declare.
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        c.get(format!("{base}/api/v1/executions/missing"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.post(format!("{base}/api/v1/executions/api/missing"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    api.stop().await;
}

/// Kestra's `PauseTest.runOnResume` and `runOnResumeMissingInputs` over HTTP: the resume
/// takes the `onResume` inputs as `multipart/form-data`, a file part stored in internal
/// storage; a resume that misses a required input, or of an execution that is not paused,
/// is refused and changes nothing.
#[tokio::test]
async fn a_paused_execution_resumes_over_http_with_its_on_resume_inputs() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    let flow = kestra_flow("pause_on_resume");
    let r = c
        .post(format!("{base}/api/v1/flows"))
        .body(flow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created: Value = c
        .post(format!(
            "{base}/api/v1/executions/io.kestra.tests/pause_on_resume"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let exec = o.execution(&id).await.unwrap();
        if exec.state.current == orchestrator::model::StateType::Paused {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never paused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The required `asked` is missing (no body, as Kestra's test resumes with none): 422,
    // naming it, and the execution stays paused.
    let r = c
        .post(format!("{base}/api/v1/executions/{id}/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("`asked`"),
        "{body}"
    );
    let exec = o.execution(&id).await.unwrap();
    assert_eq!(exec.state.current, orchestrator::model::StateType::Paused);

    let form = reqwest::multipart::Form::new()
        .text("asked", "restarted")
        .part(
            "data",
            reqwest::multipart::Part::bytes(id.clone().into_bytes()).file_name("data"),
        );
    let r = c
        .post(format!("{base}/api/v1/executions/{id}/resume"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);

    let done = o.wait_terminal(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(done.state.current, orchestrator::model::StateType::Success);
    let last = done
        .task_run_list
        .iter()
        .find(|t| t.task_id == "last")
        .unwrap();
    let values = &last.outputs.as_ref().unwrap()["values"];
    assert_eq!(values["asked"], "restarted");
    let uri = values["data"].as_str().unwrap();
    assert!(uri.starts_with("kestra://"), "{uri}");
    assert_eq!(o.storage().read_to_string(uri).unwrap(), id);

    // Not paused any more: 409. Unknown: 404.
    let r = c
        .post(format!("{base}/api/v1/executions/{id}/resume"))
        .json(&json!({"asked": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = c
        .post(format!("{base}/api/v1/executions/nope/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    api.stop().await;
}

/// The OpenAPI document is generated from the handlers: every route the router serves is in
/// it, with its methods.
#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let api = Api::start().await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", api.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/api/v1/flows", "post"),
        ("/api/v1/flows/{namespace}/{id}", "get"),
        ("/api/v1/flows/{namespace}/{id}", "put"),
        ("/api/v1/executions/{namespace}/{id}", "post"),
        ("/api/v1/executions/webhook/{namespace}/{id}/{key}", "put"),
        ("/api/v1/executions/{id}", "get"),
        ("/api/v1/executions/{id}/resume", "post"),
        ("/api/v1/logs/{execution_id}", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from {}",
            serde_json::to_string_pretty(paths).unwrap()
        );
    }
    api.stop().await;
}

/// One of Kestra's test flows, in `tests/kestra/valids`.
fn kestra_flow(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kestra/valids")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A flow whose one task sleeps for a minute: killed, it must stop long before.
const SLEEPER: &str = "id: sleeper\nnamespace: tests\ntasks:\n  - id: sleep\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT60S\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: never\n";

/// Deploys `yaml` and creates an execution of it over HTTP; returns its id.
async fn start_over_http(c: &reqwest::Client, base: &str, yaml: &str) -> String {
    let flow: Value = c
        .post(format!("{base}/api/v1/flows"))
        .body(yaml.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (namespace, id) = (
        flow["namespace"].as_str().unwrap(),
        flow["id"].as_str().unwrap(),
    );
    let created: Value = c
        .post(format!("{base}/api/v1/executions/{namespace}/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().to_string()
}

/// Waits (up to 30 s) until `ready` holds for the execution.
async fn wait_until(
    o: &orchestrator::service::Orchestrator,
    id: &str,
    what: &str,
    ready: impl Fn(&orchestrator::model::Execution) -> bool,
) -> orchestrator::model::Execution {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let exec = o.execution(id).await.unwrap();
        if ready(&exec) {
            return exec;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "execution {id}: {what} not reached, {:?}",
            exec.state.current
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the worker holds `n` task runs (`worker_job_running`).
async fn wait_jobs(o: &orchestrator::service::Orchestrator, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while o.store().counts().await.unwrap().running_jobs != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {n} jobs running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn kill_over_http(
    c: &reqwest::Client,
    base: &str,
    id: &str,
    query: &str,
) -> reqwest::Response {
    c.delete(format!("{base}/api/v1/executions/{id}/kill{query}"))
        .send()
        .await
        .unwrap()
}

fn states(exec: &orchestrator::model::Execution) -> Vec<(String, StateType)> {
    exec.task_run_list
        .iter()
        .map(|t| (t.task_id.clone(), t.state.current))
        .collect()
}

/// Kestra's `ExecutionControllerTest.kill`: a running Sleep is stopped on its worker, and
/// the execution ends KILLED through KILLING with its task run KILLED; the worker's one
/// thread is free again. An ended execution: 202 with `isOnKillCascade` (the default), 409
/// without; an unknown one: 404.
#[tokio::test]
async fn a_killed_sleep_stops_and_its_execution_ends_killed() {
    let api = Api::start_with(&["worker.threads=1"]).await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    let started = tokio::time::Instant::now();
    let id = start_over_http(&c, &base, SLEEPER).await;
    wait_jobs(&o, 1).await;

    let r = kill_over_http(&c, &base, &id, "").await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let killed = o.wait_terminal(&id, Duration::from_secs(30)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "the Sleep ran on"
    );
    assert_eq!(killed.state.current, StateType::Killed);
    assert!(
        killed
            .state
            .histories
            .iter()
            .any(|h| h.state == StateType::Killing)
    );
    assert_eq!(states(&killed), [("sleep".to_string(), StateType::Killed)]);
    let attempts = killed.task_run_list[0].attempts.as_ref().unwrap();
    assert_eq!(attempts.last().unwrap().state.current, StateType::Killed);

    // The worker's one thread runs the next execution at once.
    let next = start_over_http(
        &c,
        &base,
        "id: quick\nnamespace: tests\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
    )
    .await;
    let next = o
        .wait_terminal(&next, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(next.state.current, StateType::Success);
    o.wait_idle(Duration::from_secs(20)).await.unwrap();

    let r = kill_over_http(&c, &base, &id, "").await;
    assert_eq!(
        r.status(),
        202,
        "an ended execution, with cascade: accepted"
    );
    let r = kill_over_http(&c, &base, &id, "?isOnKillCascade=false").await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already finished"),
        "{body}"
    );
    assert_eq!(
        o.execution(&id).await.unwrap().state.current,
        StateType::Killed
    );
    // Kestra's `State#isFailed` is FAILED alone: nothing of a killed run restarts.
    let r = c
        .post(format!("{base}/api/v1/executions/{id}/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = kill_over_http(&c, &base, "nosuchexecution", "").await;
    assert_eq!(r.status(), 404);
    api.stop().await;
}

/// Kestra's `ExecutionControllerTest.killPaused`: a paused execution is killed where it
/// waits; the Pause and the Sequential around it end KILLED, and nothing after runs.
#[tokio::test]
async fn a_killed_pause_ends_killed() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    let flow = "id: paused\nnamespace: tests\ntasks:\n  - id: seq\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: pause\n        type: io.kestra.plugin.core.flow.Pause\n        delay: PT60S\n      - id: after\n        type: io.kestra.plugin.core.log.Log\n        message: never\n";
    let id = start_over_http(&c, &base, flow).await;
    wait_until(&o, &id, "PAUSED", |e| e.state.current == StateType::Paused).await;

    let r = kill_over_http(&c, &base, &id, "").await;
    assert_eq!(r.status(), 202);
    let killed = o.wait_terminal(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(killed.state.current, StateType::Killed);
    assert_eq!(
        states(&killed),
        [
            ("seq".to_string(), StateType::Killed),
            ("pause".to_string(), StateType::Killed)
        ]
    );
    // Its delay, due later, finds nothing paused.
    let r = c
        .post(format!("{base}/api/v1/executions/{id}/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    api.stop().await;
}

/// A killed parent's subflow execution is killed too with `isOnKillCascade` (Kestra's
/// `killSubflowExecutions`), and runs on without it; the parent ends KILLED either way.
#[tokio::test]
async fn a_kill_reaches_subflow_executions_on_cascade_only() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{base}/api/v1/flows"))
        .body(SLEEPER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let parent = "id: parent\nnamespace: tests\ntasks:\n  - id: sub\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: tests\n    flowId: sleeper\n";
    for cascade in [true, false] {
        let jobs_before = o.store().counts().await.unwrap().running_jobs;
        let id = start_over_http(&c, &base, parent).await;
        let started = wait_until(&o, &id, "its subflow started", |e| {
            e.task_run_list
                .first()
                .and_then(|t| t.outputs.as_ref()?.get("executionId"))
                .is_some()
        })
        .await;
        let child = started.task_run_list[0].outputs.as_ref().unwrap()["executionId"]
            .as_str()
            .unwrap()
            .to_string();
        wait_jobs(&o, jobs_before + 1).await;

        let query = if cascade {
            ""
        } else {
            "?isOnKillCascade=false"
        };
        let r = kill_over_http(&c, &base, &id, query).await;
        assert_eq!(r.status(), 202);
        let killed = o.wait_terminal(&id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(killed.state.current, StateType::Killed, "cascade {cascade}");
        assert_eq!(states(&killed), [("sub".to_string(), StateType::Killed)]);
        if cascade {
            let child = o
                .wait_terminal(&child, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(child.state.current, StateType::Killed);
            assert_eq!(states(&child), [("sleep".to_string(), StateType::Killed)]);
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let child_now = o.execution(&child).await.unwrap();
            assert_eq!(
                child_now.state.current,
                StateType::Running,
                "killed without cascade"
            );
            // Killed on its own, it ends KILLED as well.
            assert_eq!(kill_over_http(&c, &base, &child, "").await.status(), 202);
            let child = o
                .wait_terminal(&child, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(child.state.current, StateType::Killed);
        }
    }
    o.wait_idle(Duration::from_secs(20)).await.unwrap();
    api.stop().await;
}

/// Kestra's `ExecutionControllerTest.restartFromLastFailed` and `restartWithNoFailure`: a
/// FAILED execution restarts in place (same id, RESTARTED, its failed task run RESTARTED
/// with its attempt kept), runs the failed task again, which succeeds on its second
/// attempt, and goes on to SUCCESS; a SUCCESS execution is refused with 422, a running one
/// with 409, an unknown one with 404.
#[tokio::test]
async fn a_failed_execution_restarts_and_succeeds() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    let flow = kestra_flow("restart_last_failed");
    let id = start_over_http(&c, &base, &flow).await;
    let failed = o.wait_terminal(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(failed.state.current, StateType::Failed);
    assert_eq!(failed.task_run_list.len(), 3);
    assert_eq!(failed.task_run_list[2].state.current, StateType::Failed);

    let r = c
        .post(format!("{base}/api/v1/executions/{id}/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let restarted: Value = r.json().await.unwrap();
    assert_eq!(restarted["id"], id.as_str());
    assert_eq!(restarted["state"]["current"], "RESTARTED");
    assert_eq!(restarted["metadata"]["attemptNumber"], 2);
    let runs = restarted["taskRunList"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for run in &runs[..2] {
        assert_eq!(run["state"]["current"], "SUCCESS");
        assert_eq!(run["attempts"].as_array().unwrap().len(), 1);
    }
    assert_eq!(runs[2]["state"]["current"], "RESTARTED");
    assert_eq!(runs[2]["attempts"].as_array().unwrap().len(), 1);

    let done = wait_until(&o, &id, "ended again", |e| {
        e.state.is_terminal() && e.task_run_list.len() == 4
    })
    .await;
    assert_eq!(done.state.current, StateType::Success);
    assert!(
        done.task_run_list
            .iter()
            .all(|t| t.state.current == StateType::Success)
    );
    let attempts: Vec<usize> = done
        .task_run_list
        .iter()
        .map(|t| t.attempt_count())
        .collect();
    assert_eq!(attempts, [1, 1, 2, 1]);

    // Nothing failed: nothing to restart.
    let r = c
        .post(format!("{base}/api/v1/executions/{id}/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("No task found to restart"),
        "{body}"
    );

    let running = start_over_http(&c, &base, SLEEPER).await;
    wait_until(&o, &running, "RUNNING", |e| {
        e.state.current == StateType::Running
    })
    .await;
    let r = c
        .post(format!("{base}/api/v1/executions/{running}/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(kill_over_http(&c, &base, &running, "").await.status(), 202);
    o.wait_terminal(&running, Duration::from_secs(30))
        .await
        .unwrap();

    let r = c
        .post(format!("{base}/api/v1/executions/nosuchexecution/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    api.stop().await;
}
