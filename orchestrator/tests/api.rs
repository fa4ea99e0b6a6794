//! The HTTP API, served in-process on 127.0.0.1:0.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

#[tokio::test]
async fn flows_executions_logs_and_health_over_http() {
    let h = common::start(&[]).await;
    let common::Harness { o, dir: _dir } = h;
    let o = Arc::new(o);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(orchestrator::webserver::serve(listener, o.clone(), {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    }));
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

    stop.cancel();
    server.await.unwrap().unwrap();
    o.shutdown().await;
}
