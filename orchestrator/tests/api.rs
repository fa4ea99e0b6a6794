//! The HTTP API, served in-process on 127.0.0.1:0.

mod common;

use std::sync::Arc;
use std::time::Duration;

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
        let common::Harness { o, dir } = common::start(&[]).await;
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
    let flow = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/kestra/valids/pause_on_resume.yaml"),
    )
    .unwrap();
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
