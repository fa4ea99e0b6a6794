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
        Api::serve(knobs, None).await
    }

    /// With basic authentication.
    async fn start_with_auth(auth: Option<orchestrator::webserver::BasicAuth>) -> Api {
        Api::serve(&[], auth).await
    }

    async fn serve(knobs: &[&str], auth: Option<orchestrator::webserver::BasicAuth>) -> Api {
        let common::Harness { o, dir } = common::start(knobs).await;
        let o = Arc::new(o);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(orchestrator::webserver::serve_with_auth(
            listener,
            o.clone(),
            auth,
            {
                let stop = stop.clone();
                async move { stop.cancelled().await }
            },
        ));
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
        .get(format!("{base}/api/v1/flows/api/greet?source=true"))
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
    // The search's page is a named schema, with its parameters.
    assert!(
        doc["components"]["schemas"]["PagedResults"].is_object(),
        "{doc}"
    );
    let search = &paths["/api/v1/executions/search"]["get"];
    let names: Vec<&str> = search["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "page",
        "size",
        "sort",
        "namespace",
        "flowId",
        "startDate",
        "state",
        "labels",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for (path, method) in [
        ("/health", "get"),
        ("/api/v1/flows", "post"),
        ("/api/v1/flows/{namespace}/{id}", "get"),
        ("/api/v1/flows/{namespace}/{id}", "put"),
        ("/api/v1/executions/{namespace}/{id}", "post"),
        ("/api/v1/executions/webhook/{namespace}/{id}/{key}", "put"),
        ("/api/v1/executions/search", "get"),
        ("/api/v1/executions/{id}", "get"),
        ("/api/v1/executions/{id}", "delete"),
        ("/api/v1/executions/{id}/resume", "post"),
        ("/api/v1/flows/validate", "post"),
        ("/api/v1/executions/{executionId}/follow", "get"),
        ("/api/v1/logs/{executionId}", "get"),
        ("/api/v1/logs/{executionId}/follow", "get"),
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

/// Deploys a flow over HTTP.
async fn deploy(c: &reqwest::Client, base: &str, source: &str) {
    let r = c
        .post(format!("{base}/api/v1/flows"))
        .body(source.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

/// The status and JSON body of a response.
async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Kestra's `ExecutionControllerTest.trigger`, `triggerAndWait`, `nullLabels` and
/// `shouldRefuseSystemLabelsWhenCreatingAnExecution`, as `curl -F` sends them: text parts
/// are inputs by their name, a file part is the input its file name names, stored under
/// the new execution's `inputs/` folder and read back by the flow; `labels` are repeated `key:value` parameters; `wait=true` answers
/// with the ended execution. Bad labels, bad inputs, an unknown or disabled flow are
/// refused, and leave no file behind.
#[tokio::test]
async fn an_execution_is_created_from_a_form_with_a_file_labels_and_wait() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    deploy(
        &c,
        &base,
        "id: upload\nnamespace: api.exec\nlabels:\n  from-flow: yes\ninputs:\n  - id: name\n    type: STRING\n  - id: file\n    type: FILE\ntasks:\n  - id: echo\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ inputs.name }}: {{ read(inputs.file) }}\"\n",
    )
    .await;
    let form = || {
        reqwest::multipart::Form::new().text("name", "kestra").part(
            "files",
            reqwest::multipart::Part::bytes(b"a,b\n1,2\n".to_vec()).file_name("file"),
        )
    };
    // `url:` + a URL: the value is everything after the first `:`.
    let labels = "labels=a:label-1&labels=url:https%3A%2F%2Fkestra.io%2Fdocs%3Fx%3D1";
    let (status, exec) = answer(
        c.post(format!(
            "{base}/api/v1/executions/api.exec/upload?{labels}&wait=true"
        ))
        .multipart(form())
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{exec}");
    let id = exec["id"].as_str().unwrap().to_string();
    assert_eq!(exec["state"]["current"], "SUCCESS", "{exec}");
    assert_eq!(exec["url"], format!("/ui/executions/api.exec/upload/{id}"));
    assert_eq!(exec["deleted"], false);
    assert_eq!(exec["metadata"]["attemptNumber"], 1);
    let label = |key: &str| {
        exec["labels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["key"] == key)
            .map(|l| l["value"].clone())
    };
    assert_eq!(label("from-flow"), Some(json!("yes")));
    assert_eq!(label("a"), Some(json!("label-1")));
    assert_eq!(label("url"), Some(json!("https://kestra.io/docs?x=1")));
    assert_eq!(label("system.correlationId"), Some(json!(id)));
    assert_eq!(exec["inputs"]["name"], "kestra");
    let uri = exec["inputs"]["file"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("kestra:///api/exec/upload/executions/{id}/inputs/file/file.upl")
    );
    assert_eq!(o.storage().read_to_string(uri).unwrap(), "a,b\n1,2\n");
    assert_eq!(
        exec["taskRunList"][0]["outputs"]["value"],
        "kestra: a,b\n1,2\n"
    );

    // Without `wait`, the answer is the execution just created.
    let (status, created) = answer(
        c.post(format!("{base}/api/v1/executions/api.exec/upload"))
            .multipart(form())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["state"]["current"], "CREATED");
    let created_id = created["id"].as_str().unwrap();
    o.wait_terminal(created_id, Duration::from_secs(30))
        .await
        .unwrap();

    // Refused: a label without a key or a value, a system label, a missing input; each
    // leaves no execution folder behind.
    let executions = o.storage().root().join("api/exec/upload/executions");
    let folders = || std::fs::read_dir(&executions).unwrap().count();
    assert_eq!(folders(), 2);
    for (query, names) in [
        ("labels=:value", "labels"),
        ("labels=key:", "labels"),
        ("labels=nocolon", "labels"),
        ("labels=system.label:system", "system.label"),
        ("wait=maybe", "wait"),
    ] {
        let (status, body) = answer(
            c.post(format!("{base}/api/v1/executions/api.exec/upload?{query}"))
                .multipart(form())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 422, "{query}: {body}");
        assert!(body["message"].as_str().unwrap().contains(names), "{body}");
    }
    let only_a_file = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("file"),
    );
    let (status, body) = answer(
        c.post(format!("{base}/api/v1/executions/api.exec/upload"))
            .multipart(only_a_file)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`name`"),
        "{body}"
    );
    assert_eq!(folders(), 2);

    // An unknown flow is 404, a disabled one 409.
    let r = c
        .post(format!("{base}/api/v1/executions/api.exec/nope"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    deploy(
        &c,
        &base,
        "id: off\nnamespace: api.exec\ndisabled: true\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
    )
    .await;
    let r = c
        .post(format!("{base}/api/v1/executions/api.exec/off"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    api.stop().await;
}

/// Kestra's `ExecutionControllerTest.find`, `badDate` and `commaInOneOfMultiLabels`:
/// `GET /api/v1/executions/search` with its filters, pages and sorts, and its errors,
/// each naming the parameter.
#[tokio::test]
async fn executions_are_searched_with_filters_pages_and_sorts() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    let get = |query: &str| {
        let url = format!("{base}/api/v1/executions/search{query}");
        let c = c.clone();
        async move { answer(c.get(url).send().await.unwrap()).await }
    };
    // Nothing yet: an empty page, not an execution named `search`.
    assert_eq!(get("").await, (200, json!({"results": [], "total": 0})));

    deploy(&c, &base, "id: ok\nnamespace: api.search\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n").await;
    deploy(&c, &base, "id: ko\nnamespace: api.search.sub\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.execution.Fail\n").await;
    let mut ids = Vec::new();
    for (flow, labels) in [
        ("api.search/ok", "labels=team:a&labels=project:foo%2Cbar"),
        ("api.search/ok", "labels=team:b"),
        ("api.search.sub/ko", "labels=team:a"),
        ("api.search/ok", "labels=team:a&labels=project:baz"),
    ] {
        let (status, exec) = answer(
            c.post(format!(
                "{base}/api/v1/executions/{flow}?{labels}&wait=true"
            ))
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{exec}");
        ids.push(exec["id"].as_str().unwrap().to_string());
    }
    let found = |body: &Value| -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    let (status, all) = get("").await;
    assert_eq!(status, 200);
    assert_eq!(all["total"], 4);
    assert_eq!(found(&all), newest_first);
    assert_eq!(all["results"][0]["state"]["current"], "SUCCESS");
    // Pages from 1, of `size`; the total is over every page.
    let (_, page) = get("?page=2&size=3&sort=state.startDate:asc").await;
    assert_eq!(
        (found(&page), &page["total"]),
        (ids[3..].to_vec(), &json!(4))
    );
    let (_, page) = get("?page=1&size=3&sort=state.startDate:asc").await;
    assert_eq!(found(&page), ids[..3].to_vec());
    let (_, page) = get("?page=3&size=3").await;
    assert_eq!((found(&page).len(), &page["total"]), (0, &json!(4)));
    // A namespace finds those under it; with a flow id, that namespace only.
    assert_eq!(get("?namespace=api.search").await.1["total"], 4);
    assert_eq!(get("?namespace=api.search&flowId=ok").await.1["total"], 3);
    assert_eq!(get("?namespace=api.search&flowId=ko").await.1["total"], 0);
    assert_eq!(get("?namespace=api.sea").await.1["total"], 0);
    // States, repeatable.
    let (_, failed) = get("?state=FAILED").await;
    assert_eq!(found(&failed), [ids[2].clone()]);
    assert_eq!(get("?state=FAILED&state=SUCCESS").await.1["total"], 4);
    assert_eq!(get("?state=RUNNING").await.1["total"], 0);
    // Labels: every one given, a comma inside a value and a space after the `:` as Kestra
    // reads them.
    let (_, team_a) = get("?labels=team:a&sort=state.startDate:asc").await;
    assert_eq!(
        found(&team_a),
        [ids[0].clone(), ids[2].clone(), ids[3].clone()]
    );
    let (_, foo_bar) = get("?labels=project:%20foo%2Cbar&labels=team:a").await;
    assert_eq!(found(&foo_bar), [ids[0].clone()]);
    // Dates: started at or after, ended at or before; timeRange counts back from now.
    let second = o.execution(&ids[1]).await.unwrap();
    let third = o.execution(&ids[2]).await.unwrap();
    let start = second.state.start_date().to_string().replace('+', "%2B");
    let end = third.state.end_date().unwrap().to_string();
    let (_, window) = get(&format!(
        "?startDate={start}&endDate={end}&sort=state.startDate:asc"
    ))
    .await;
    assert_eq!(found(&window), ids[1..3].to_vec());
    assert_eq!(get("?timeRange=PT1H").await.1["total"], 4);
    assert_eq!(get("?startDate=2999-01-01T00:00").await.1["total"], 0);
    // Sorts: each of Kestra's fields, and the first field first.
    let (_, by_flow) = get("?sort=flowId:asc&sort=state.startDate:desc").await;
    assert_eq!(
        found(&by_flow),
        [
            ids[2].clone(),
            ids[3].clone(),
            ids[1].clone(),
            ids[0].clone()
        ]
    );
    for field in [
        "id",
        "state.endDate",
        "state.duration",
        "namespace",
        "state.current",
    ] {
        let (status, body) = get(&format!("?sort={field}:desc")).await;
        assert_eq!(
            (status, &body["total"]),
            (200, &json!(4)),
            "{field}: {body}"
        );
    }

    // Errors: 422, naming the parameter.
    for (query, names) in [
        ("?page=0", "page"),
        ("?size=-1", "size"),
        ("?size=ten", "size"),
        ("?sort=nope:asc", "nope"),
        ("?sort=state.startDate", "sort"),
        ("?startDate=yesterday", "startDate"),
        ("?endDate=2024-13-01T00:00", "endDate"),
        ("?state=DONE", "state"),
        ("?labels=team", "labels"),
        ("?timeRange=P1Y", "timeRange"),
        (
            "?startDate=2024-06-03T00:00:00.000%2B02:00&endDate=2023-06-05T00:00:00.000%2B02:00",
            "Start date must be before End Date",
        ),
        (
            "?startDate=2024-01-07T18:43:11.248%2B01:00&timeRange=PT12H",
            "are mutually exclusive",
        ),
    ] {
        let (status, body) = get(query).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(names),
            "{query}: {body}"
        );
    }

    api.stop().await;
}

/// Kestra's `ExecutionControllerTest.delete`: 204, then 404; the execution's logs and
/// files go unless `deleteLogs=false` / `deleteStorage=false`; a paused execution is
/// deleted as it is.
#[tokio::test]
async fn an_execution_is_deleted_with_its_logs_and_files() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    deploy(
        &c,
        &base,
        "id: gone\nnamespace: api.delete\ninputs:\n  - id: file\n    type: FILE\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
    )
    .await;
    let run = || async {
        let form = reqwest::multipart::Form::new().part(
            "files",
            reqwest::multipart::Part::bytes(b"data".to_vec()).file_name("file"),
        );
        let (status, exec) = answer(
            c.post(format!(
                "{base}/api/v1/executions/api.delete/gone?wait=true"
            ))
            .multipart(form)
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{exec}");
        o.wait_idle(Duration::from_secs(30)).await.unwrap();
        let id = exec["id"].as_str().unwrap().to_string();
        let uri = exec["inputs"]["file"].as_str().unwrap().to_string();
        assert!(!o.logs(&id).await.unwrap().is_empty());
        (id, uri)
    };

    let (id, uri) = run().await;
    let r = c
        .delete(format!("{base}/api/v1/executions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .get(format!("{base}/api/v1/executions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(o.logs(&id).await.unwrap().is_empty());
    assert!(o.storage().read_to_string(&uri).is_err());
    let r = c
        .delete(format!("{base}/api/v1/executions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let (kept, uri) = run().await;
    let r = c
        .delete(format!(
            "{base}/api/v1/executions/{kept}?deleteLogs=false&deleteStorage=false"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(o.execution(&kept).await.is_err());
    assert!(!o.logs(&kept).await.unwrap().is_empty());
    assert_eq!(o.storage().read_to_string(&uri).unwrap(), "data");

    // A paused execution: deleted as it is, as Kestra's `ExecutionService#delete`.
    deploy(
        &c,
        &base,
        "id: held\nnamespace: api.delete\ntasks:\n  - id: wait\n    type: io.kestra.plugin.core.flow.Pause\n",
    )
    .await;
    let (_, exec) = answer(
        c.post(format!("{base}/api/v1/executions/api.delete/held"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let held = exec["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while o.execution(&held).await.unwrap().state.current != orchestrator::model::StateType::Paused
    {
        assert!(tokio::time::Instant::now() < deadline, "never paused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = c
        .delete(format!("{base}/api/v1/executions/{held}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(o.execution(&held).await.is_err());

    api.stop().await;
}

/// One server-sent event: its `id` and its data, parsed as JSON.
#[derive(Debug)]
struct SseEvent {
    id: String,
    data: Value,
}

/// Reads a `text/event-stream` response one event at a time.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(c: &reqwest::Client, url: &str) -> EventStream {
        let response = c.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        EventStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event with data (keep-alive comments skipped); `None` once the server
    /// ended the stream. Fails the test after 30 s without one.
    async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let mut id = String::new();
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = v.trim().to_string();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    if !data.is_empty() {
                        return Some(SseEvent {
                            id,
                            data: serde_json::from_str(&data).unwrap(),
                        });
                    }
                    continue;
                }
                match self.response.chunk().await.unwrap() {
                    Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                    None => return None,
                }
            }
        })
        .await
        .expect("no event within 30 s")
    }

    /// Events until one whose data's `message` is `message`, which is returned last.
    async fn until_message(&mut self, message: &str) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await.expect("the log stream ended");
            let found = event.data["message"] == message;
            seen.push(event);
            if found {
                return seen;
            }
        }
    }
}

async fn trigger(c: &reqwest::Client, base: &str, namespace: &str, id: &str) -> String {
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

async fn wait_paused(o: &orchestrator::service::Orchestrator, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while o.execution(id).await.unwrap().state.current != orchestrator::model::StateType::Paused {
        assert!(tokio::time::Instant::now() < deadline, "never paused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const LEVELS_FLOW: &str = "id: levels\nnamespace: api.logs\ntasks:\n  - id: loud\n    type: io.kestra.plugin.core.log.Log\n    level: WARN\n    message: careful\n  - id: chatty\n    type: io.kestra.plugin.core.log.Log\n    level: DEBUG\n    message: details\n  - id: plain\n    type: io.kestra.plugin.core.log.Log\n    message: hello\n";

/// Kestra's `LogControllerTest.findByExecution`, with the `minLevel`, `taskId`, `taskRunId`
/// and `attempt` filters of `LogController#findByExecution`.
#[tokio::test]
async fn execution_logs_are_filtered_by_level_task_and_task_run() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    deploy(&c, &base, LEVELS_FLOW).await;
    let id = trigger(&c, &base, "api.logs", "levels").await;
    o.wait_terminal(&id, Duration::from_secs(30)).await.unwrap();
    o.wait_idle(Duration::from_secs(30)).await.unwrap();
    let get = |query: &str| {
        let url = format!("{base}/api/v1/logs/{id}{query}");
        let c = c.clone();
        async move { c.get(url).send().await.unwrap() }
    };
    let messages = |lines: &Value| -> Vec<String> {
        lines
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_string())
            .collect()
    };

    let all: Value = get("").await.json().await.unwrap();
    assert_eq!(messages(&all), ["careful", "details", "hello"]);
    // Kestra's LogEntry shape.
    let first = &all[0];
    assert_eq!(first["executionId"], id.as_str());
    assert_eq!(first["namespace"], "api.logs");
    assert_eq!(first["flowId"], "levels");
    assert_eq!(first["taskId"], "loud");
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["deleted"], false);
    assert!(first["timestamp"].is_string() && first["taskRunId"].is_string());
    assert!(first.get("id").is_none(), "{first}");

    let warn: Value = get("?minLevel=WARN").await.json().await.unwrap();
    assert_eq!(messages(&warn), ["careful"]);
    let info: Value = get("?minLevel=INFO").await.json().await.unwrap();
    assert_eq!(messages(&info), ["careful", "hello"]);
    let by_task: Value = get("?taskId=chatty").await.json().await.unwrap();
    assert_eq!(messages(&by_task), ["details"]);

    let plain_run = all[2]["taskRunId"].as_str().unwrap().to_string();
    let attempt = all[2]["attemptNumber"].as_u64().unwrap();
    let by_run: Value = get(&format!("?taskRunId={plain_run}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(messages(&by_run), ["hello"]);
    let by_attempt: Value = get(&format!("?taskRunId={plain_run}&attempt={attempt}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(messages(&by_attempt), ["hello"]);
    let other_attempt: Value = get(&format!("?taskRunId={plain_run}&attempt={}", attempt + 1))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(messages(&other_attempt), Vec::<String>::new());
    // The task id wins over the task run, as in Kestra's ExecutionLogService.
    let both: Value = get(&format!("?taskId=loud&taskRunId={plain_run}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(messages(&both), ["careful"]);

    let r = get("?minLevel=LOUD").await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("LOUD"), "{body}");
    // An execution without lines has none, as Kestra answers.
    let none: Value = c
        .get(format!("{base}/api/v1/logs/no-such-execution"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));

    api.stop().await;
}

const PAUSING_FLOW: &str = "id: pausing\nnamespace: api.follow\ntasks:\n  - id: before\n    type: io.kestra.plugin.core.log.Log\n    message: before the pause\n  - id: wait\n    type: io.kestra.plugin.core.flow.Pause\n  - id: quiet\n    type: io.kestra.plugin.core.log.Log\n    level: DEBUG\n    message: too quiet\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: after the pause\n";

/// Kestra's `ExecutionController#follow`: `progress` events while the execution runs, then
/// `progress` and `end` with the terminal state, and the stream ends; a terminal execution
/// is one `end` event.
#[tokio::test]
async fn an_execution_follow_ends_at_the_terminal_state() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    deploy(&c, &base, PAUSING_FLOW).await;
    let id = trigger(&c, &base, "api.follow", "pausing").await;
    wait_paused(&o, &id).await;

    let mut events = EventStream::open(&c, &format!("{base}/api/v1/executions/{id}/follow")).await;
    let first = events.next().await.unwrap();
    assert_eq!(first.id, "progress");
    assert_eq!(first.data["id"], id.as_str());
    assert_eq!(first.data["state"]["current"], "PAUSED");

    let r = c
        .post(format!("{base}/api/v1/executions/{id}/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let mut received = Vec::new();
    while let Some(event) = events.next().await {
        received.push(event);
    }
    let (end, before) = received.split_last().expect("events after the resume");
    assert_eq!(end.id, "end");
    assert_eq!(end.data["state"]["current"], "SUCCESS");
    let (last_progress, _) = before.split_last().expect("a progress before the end");
    assert_eq!(last_progress.id, "progress");
    assert_eq!(last_progress.data, end.data);
    assert!(before.iter().all(|e| e.id == "progress"), "{before:?}");

    // Already terminal: one `end`, and the stream ends.
    let mut again = EventStream::open(&c, &format!("{base}/api/v1/executions/{id}/follow")).await;
    let only = again.next().await.unwrap();
    assert_eq!(only.id, "end");
    assert_eq!(only.data["state"]["current"], "SUCCESS");
    assert!(again.next().await.is_none());

    let r = c
        .get(format!("{base}/api/v1/executions/nope/follow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    api.stop().await;
}

/// Kestra's `FlowControllerTest.idNoSource`: the flow's JSON, with its source only when
/// asked for.
#[tokio::test]
async fn a_flow_is_read_in_kestra_shape_with_its_source_on_request() {
    let api = Api::start().await;
    let base = api.base.clone();
    let c = reqwest::Client::new();
    let source = "id: shaped\nnamespace: api.flows\ndescription: read me\nlabels:\n  team: qa\ntasks:\n  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
    deploy(&c, &base, source).await;

    let flow: Value = c
        .get(format!("{base}/api/v1/flows/api.flows/shaped"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flow["id"], "shaped");
    assert_eq!(flow["namespace"], "api.flows");
    assert_eq!(flow["revision"], 1);
    assert_eq!(flow["description"], "read me");
    assert_eq!(flow["labels"], json!([{"key": "team", "value": "qa"}]));
    assert_eq!(flow["tasks"][0]["id"], "say");
    assert_eq!(flow["tasks"][0]["type"], "io.kestra.plugin.core.log.Log");
    assert_eq!(flow["disabled"], false);
    assert_eq!(flow["deleted"], false);
    assert!(flow.get("source").is_none(), "{flow}");

    let with_source: Value = c
        .get(format!("{base}/api/v1/flows/api.flows/shaped?source=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(with_source["source"], source);
    assert_eq!(with_source["tasks"], flow["tasks"]);

    let r = c
        .get(format!("{base}/api/v1/flows/api.flows/shaped?revision=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .get(format!("{base}/api/v1/flows/api.flows/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    api.stop().await;
}

/// Kestra's `FlowControllerTest.validateFlows` on flowbench's task types: several documents,
/// each with its verdict; nothing is stored.
#[tokio::test]
async fn flows_are_validated_one_verdict_per_document() {
    let api = Api::start().await;
    let base = api.base.clone();
    let c = reqwest::Client::new();
    let first = "id: first_flow\nnamespace: system\nrevision: 1\ntasks:\n  - id: task_one\n    type: io.kestra.plugin.core.log.Log\n    message: \"strange---string\"\n  - id: old\n    type: io.kestra.core.tasks.log.Log\n    message: hi\n";
    deploy(&c, &base, first).await;
    let valid = format!(
        "{first}\n---\n\nid: second_flow\nnamespace: validation\ntasks:\n  - id: task-two\n    type: io.kestra.plugin.core.debug.Echo\n    format: strangestring---\n  - id: task-three\n    type: io.kestra.plugin.core.debug.Echo\n    format: ---strangestring\n"
    );
    let validate = |body: String| {
        let c = c.clone();
        let url = format!("{base}/api/v1/flows/validate");
        async move {
            let r = c
                .post(url)
                .header("content-type", "application/x-yaml")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let verdicts = validate(valid).await;
    assert_eq!(verdicts.as_array().unwrap().len(), 2, "{verdicts}");
    let (one, two) = (&verdicts[0], &verdicts[1]);
    assert_eq!(one["index"], 0);
    assert_eq!(one["flow"], "first_flow");
    assert_eq!(one["namespace"], "system");
    // Revision 1 is stored, so a document sending revision 1 again is outdated.
    assert_eq!(one["outdated"], true);
    assert_eq!(one["deprecationPaths"], json!([]));
    assert_eq!(one["warnings"], json!([]));
    assert_eq!(
        one["infos"],
        json!(["io.kestra.core.tasks.log.Log is replaced by io.kestra.plugin.core.log.Log"])
    );
    assert!(one.get("constraints").is_none(), "{one}");
    assert_eq!(two["index"], 1);
    assert_eq!(two["flow"], "second_flow");
    assert_eq!(two["outdated"], false);
    assert_eq!(two["deprecationPaths"], json!(["tasks[0]", "tasks[1]"]));
    assert!(two.get("constraints").is_none(), "{two}");

    let invalid = "id: first_flow\nnamespace: validation\ntasks:\n  - id: task_one\n    type: io.kestra.plugin.core.log.Log\n    message: \"strange---string\"\n    unknownProp: unknownValue\n\n---\n\nid: second_flow\nnamespace: validation\ntasks:\n  - id: task-two\n    type: io.kestra.plugin.core.debug.UnknownTask\n";
    let verdicts = validate(invalid.to_string()).await;
    assert_eq!(verdicts.as_array().unwrap().len(), 2, "{verdicts}");
    let constraints = |v: &Value| v["constraints"].as_str().unwrap().to_string();
    assert!(
        constraints(&verdicts[0]).contains("unknownProp"),
        "{verdicts}"
    );
    assert!(constraints(&verdicts[0]).contains("task_one"), "{verdicts}");
    assert!(
        constraints(&verdicts[1]).contains("io.kestra.plugin.core.debug.UnknownTask"),
        "{verdicts}"
    );
    assert_eq!(verdicts[1]["index"], 1);
    assert_eq!(verdicts[1]["outdated"], false);
    assert!(verdicts[1].get("flow").is_none(), "{verdicts}");

    // Validating stored nothing.
    let r = c
        .get(format!("{base}/api/v1/flows/validation/second_flow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    api.stop().await;
}

/// Kestra's `AuthenticationFilterTest`: with basic authentication on, a request without
/// credentials or with wrong ones is 401 and changes nothing, the right ones pass, and the
/// health checks and a webhook with its key need none.
#[tokio::test]
async fn basic_authentication_guards_every_route_but_health_and_webhooks() {
    let auth =
        orchestrator::webserver::BasicAuth::new("admin@kestra.io".into(), "kestra".into()).unwrap();
    let api = Api::start_with_auth(Some(auth)).await;
    let base = api.base.clone();
    let c = reqwest::Client::new();
    let flow = "id: guarded\nnamespace: api.auth\ntriggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k3y\ntasks:\n  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";

    let r = c
        .post(format!("{base}/api/v1/flows"))
        .body(flow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    let r = c
        .post(format!("{base}/api/v1/flows"))
        .basic_auth("admin@kestra.io", Some("wrong"))
        .body(flow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("kestra\""));
    // Nothing was created.
    assert!(api.o.flow("api.auth", "guarded").await.is_err());

    let r = c
        .post(format!("{base}/api/v1/flows"))
        .basic_auth("admin@kestra.io", Some("kestra"))
        .body(flow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{base}/api/v1/flows/api.auth/guarded"))
        .basic_auth("admin@kestra.io", Some("kestra"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for path in [
        "/api/v1/flows/api.auth/guarded",
        "/api/v1/openapi.json",
        "/api/v1/logs/x",
    ] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = c
        .post(format!("{base}/api/v1/executions/api.auth/guarded"))
        .basic_auth("admin", Some("kestra"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    for path in ["/health", "/api/v1/health"] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = c
        .post(format!(
            "{base}/api/v1/executions/webhook/api.auth/guarded/k3y"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let hooked: Value = r.json().await.unwrap();
    let id = hooked["id"].as_str().unwrap();
    let r = c
        .get(format!("{base}/api/v1/executions/{id}"))
        .basic_auth("admin@kestra.io", Some("kestra"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The only execution is the webhook's: the refused trigger created none.
    assert_eq!(
        api.o
            .store()
            .executions_of_flow("api.auth", "guarded")
            .await
            .unwrap()
            .len(),
        1
    );

    // The OpenAPI document declares the scheme, on the guarded routes only.
    let doc: Value = c
        .get(format!("{base}/api/v1/openapi.json"))
        .basic_auth("admin@kestra.io", Some("kestra"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["basicAuth"]["scheme"],
        "basic"
    );
    assert_eq!(
        doc["paths"]["/api/v1/flows"]["post"]["security"],
        json!([{"basicAuth": []}])
    );
    assert!(doc["paths"]["/health"]["get"].get("security").is_none());
    assert!(
        doc["paths"]["/api/v1/executions/webhook/{namespace}/{id}/{key}"]["post"]
            .get("security")
            .is_none()
    );
    api.stop().await;
}

/// `server --bind` on an address other than loopback, without credentials, is refused in
/// one line before anything starts; credentials from the environment are used.
#[tokio::test]
async fn the_server_binary_refuses_an_open_bind_without_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["server", "standalone", "--port", "0", "--bind", "0.0.0.0"])
        .arg("--db")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .env_remove("FLOWBENCH_BASIC_AUTH_USERNAME")
        .env_remove("FLOWBENCH_BASIC_AUTH_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("0.0.0.0") && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );
    assert!(!dir.path().join("db.sqlite").exists(), "nothing is created");

    // A username without a password is refused too, naming what is missing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args([
            "server",
            "webserver",
            "--port",
            "0",
            "--basic-auth-username",
            "admin",
        ])
        .arg("--db")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .env_remove("FLOWBENCH_BASIC_AUTH_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--basic-auth-password"), "{stderr}");

    // Credentials from the environment guard a loopback server, and are never echoed.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["server", "webserver", "--port", "0"])
        .arg("--db")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .arg("--storage")
        .arg(dir.path().join("storage"))
        .env("FLOWBENCH_BASIC_AUTH_USERNAME", "admin")
        .env("FLOWBENCH_BASIC_AUTH_PASSWORD", "pa55-from-env")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let c = reqwest::Client::new();
    let r = c
        .get(format!("{base}/api/v1/flows/a/b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{base}/api/v1/flows/a/b"))
        .basic_auth("admin", Some("pa55-from-env"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("pa55-from-env"), "{stderr}");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["server", "--help"])
        .env("FLOWBENCH_BASIC_AUTH_PASSWORD", "pa55-from-env")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--basic-auth-password"), "{help}");
    assert!(!help.contains("pa55-from-env"), "{help}");
}

/// Kestra's `LogController#follow`: a client gets the lines indexed before it connected,
/// then each line written after, at `minLevel` or above.
#[tokio::test]
async fn a_log_follower_receives_lines_written_after_it_connected() {
    let api = Api::start().await;
    let (o, base) = (api.o.clone(), api.base.clone());
    let c = reqwest::Client::new();
    deploy(
        &c,
        &base,
        "id: slow\nnamespace: api.follow\ntasks:\n  - id: before\n    type: io.kestra.plugin.core.log.Log\n    message: before the sleep\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT2S\n  - id: quiet\n    type: io.kestra.plugin.core.log.Log\n    level: DEBUG\n    message: too quiet\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: after the sleep\n",
    )
    .await;
    let id = trigger(&c, &base, "api.follow", "slow").await;
    // Connect once the first line is indexed and the execution still sleeps.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !o
        .logs(&id)
        .await
        .unwrap()
        .iter()
        .any(|l| l.message == "before the sleep")
    {
        assert!(tokio::time::Instant::now() < deadline, "never logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!o.execution(&id).await.unwrap().state.is_terminal());
    let mut events =
        EventStream::open(&c, &format!("{base}/api/v1/logs/{id}/follow?minLevel=INFO")).await;
    let first = events.until_message("before the sleep").await;
    assert!(first.iter().all(|e| e.id == "progress"), "{first:?}");
    let later = events.until_message("after the sleep").await;
    assert_eq!(later.last().unwrap().data["executionId"], id.as_str());
    assert!(
        later.iter().all(|e| e.data["message"] != "too quiet"),
        "{later:?}"
    );

    let r = c
        .get(format!("{base}/api/v1/logs/{id}/follow?minLevel=LOUD"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    api.stop().await;
}
