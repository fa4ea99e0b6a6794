//! The standalone server as a real process: webhook load with no loss, and `kill -9`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator::knobs::Knobs;
use orchestrator::repository::{self, Store};

/// A running `orchestrator server standalone`, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .args([
                "server",
                "standalone",
                "--port",
                "0",
                "--liveness-timeout",
                "2",
            ])
            .arg("--db")
            .arg(db_url(dir))
            .arg("--storage")
            .arg(dir.join("storage"))
            .arg("--flows")
            .arg(dir.join("flows"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Server { child, base }
    }

    fn kill(&mut self) {
        // SIGKILL: no shutdown hook runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("db.sqlite").display())
}

fn setup(flows: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("flows");
    std::fs::create_dir_all(&f).unwrap();
    for (name, text) in flows {
        std::fs::write(f.join(name), text).unwrap();
    }
    dir
}

async fn store(dir: &Path) -> Arc<dyn Store> {
    repository::connect(&db_url(dir), &Knobs::default())
        .await
        .unwrap()
}

async fn wait_all_terminal(
    store: &dyn Store,
    expected: i64,
    within: Duration,
) -> repository::Counts {
    let deadline = Instant::now() + within;
    loop {
        let c = store.counts().await.unwrap();
        if c.terminal_executions >= expected && c.pending_messages == 0 && c.running_jobs == 0 {
            return c;
        }
        assert!(Instant::now() < deadline, "not all executions ended: {c:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn benchmark01() -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/e2e-webhook/benchmark01.yaml"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_webhook_request_ends_as_a_terminal_execution() {
    let b1 = benchmark01();
    let dir = setup(&[("b1.yaml", &b1)]);
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let url = format!(
        "{}/api/v1/executions/webhook/benchmarks/benchmark01/benchmark",
        server.base
    );
    let requests = (0..200).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let r = client.get(&url).send().await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            let v: serde_json::Value = r.json().await.ok()?;
            v["id"].as_str().map(str::to_string)
        })
    });
    let mut accepted = HashSet::new();
    for r in futures::future::join_all(requests).await {
        if let Some(id) = r.unwrap() {
            accepted.insert(id);
        }
    }
    // Loopback and a healthy server: every request is expected to be accepted; the
    // guarantee checked below is for whatever was.
    assert!(
        accepted.len() >= 190,
        "only {} of 200 accepted",
        accepted.len()
    );
    let s = store(dir.path()).await;
    let c = wait_all_terminal(&*s, accepted.len() as i64, Duration::from_secs(120)).await;
    assert_eq!(c.executions, accepted.len() as i64);
    assert_eq!(c.terminal_executions, accepted.len() as i64);
    for id in &accepted {
        let e = s
            .execution(id)
            .await
            .unwrap()
            .expect("accepted execution is stored");
        assert_eq!(e.state.current.as_str(), "SUCCESS");
        assert_eq!(e.task_run_list.len(), 2);
    }
    // One log line per execution (benchmark01 logs once), none lost, none doubled.
    assert_eq!(c.logs, accepted.len() as i64);
    drop(server);
}

/// Every log id the database holds (indexed, or queued for the indexer).
async fn acknowledged_log_ids(dir: &Path) -> HashSet<String> {
    let pool = sqlx::SqlitePool::connect(&db_url(dir)).await.unwrap();
    let rows: Vec<(String,)> = sqlx::query_as(
        r#"SELECT "key" FROM logs UNION SELECT "key" FROM queues WHERE type = 'log'"#,
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter().map(|(k,)| k).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_loses_no_execution_and_no_acknowledged_log_line() {
    let flow = "id: slow\nnamespace: crash\ntriggers:\n  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\ntasks:\n  - id: first\n    type: io.kestra.plugin.core.log.Log\n    message: \"start {{ execution.id }}\"\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.4S\n  - id: last\n    type: io.kestra.plugin.core.log.Log\n    message: [\"end {{ execution.id }}\", \"bye\"]\n";
    let dir = setup(&[("slow.yaml", flow)]);
    let mut server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/executions/webhook/crash/slow/k", server.base);
    let mut accepted = Vec::new();
    for _ in 0..40 {
        let v: serde_json::Value = client
            .post(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        accepted.push(v["id"].as_str().unwrap().to_string());
    }
    // Let some executions sleep mid-task, then kill without warning.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = acknowledged_log_ids(dir.path()).await;
    server.kill();
    let s = store(dir.path()).await;
    let at_kill = s.counts().await.unwrap();
    assert!(
        at_kill.terminal_executions < accepted.len() as i64,
        "the kill should land mid-run: {at_kill:?}"
    );
    drop(s);

    let _restarted = Server::start(dir.path());
    let s = store(dir.path()).await;
    let c = wait_all_terminal(&*s, accepted.len() as i64, Duration::from_secs(120)).await;
    assert_eq!(c.executions, accepted.len() as i64);
    for id in &accepted {
        let e = s.execution(id).await.unwrap().unwrap();
        assert_eq!(e.state.current.as_str(), "SUCCESS", "{id}");
        let logs = s.logs(id).await.unwrap();
        let mut msgs: Vec<_> = logs.iter().map(|l| l.message.clone()).collect();
        msgs.sort();
        assert_eq!(
            msgs,
            vec![
                "Waiting for PT0.4S".to_string(),
                "bye".to_string(),
                format!("end {id}"),
                format!("start {id}")
            ]
        );
    }
    let after = acknowledged_log_ids(dir.path()).await;
    let lost: Vec<_> = before.difference(&after).collect();
    assert!(lost.is_empty(), "acknowledged log lines lost: {lost:?}");
    assert_eq!(
        c.logs,
        4 * accepted.len() as i64,
        "no line lost and none doubled"
    );
}
