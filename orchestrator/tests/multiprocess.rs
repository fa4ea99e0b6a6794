//! A deployment as separate OS processes sharing one PostgreSQL schema: a webserver, an
//! executor, two workers and an indexer (`orchestrator server <role>`).
//!
//! * `workers_killed_mid_run_lose_nothing`: 500 executions through the HTTP API, one worker
//!   `kill -9`ed mid-run; every execution ends SUCCESS and the logs table holds each line
//!   exactly once.
//! * `postgres_restart_mid_run`: the PostgreSQL cluster is restarted while executions run;
//!   every execution still reaches a terminal state. It stops the shared server, so it runs
//!   only with `FLOWBENCH_PG_RESTART=1` or `CI=true`.
//! * `schedulers_killed_and_restarted_fire_every_tick_once`: two schedulers fire a
//!   one-second schedule, both are `kill -9`ed, a third starts later; every second from the
//!   first tick to the last has exactly one execution.

mod backend_common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use backend_common::{Backend, TestDb, in_ci};
use futures::StreamExt;
use orchestrator::knobs::Knobs;
use orchestrator::model::StateType;
use orchestrator::service::Orchestrator;

/// The restart test stops the PostgreSQL every test of this file uses: run them one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Four log lines per execution (the Sleep says how long it waits), and a short Sleep so
/// that a kill lands mid-task.
const FLOW: &str = r#"
id: multiprocess
namespace: tests
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ execution.id }}"
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.05S
  - id: bye
    type: io.kestra.plugin.core.log.Log
    message:
      - bye 1
      - bye 2
"#;
const LINES_PER_EXECUTION: usize = 4;

/// Every child process, killed (SIGKILL) and reaped when the test ends, however it ends.
#[derive(Default)]
struct Processes(Vec<(String, Child)>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Processes {
    /// Starts `orchestrator server <role>` and waits for its ready line; returns that line.
    fn start(&mut self, role: &str, name: &str, db: &str, dir: &Path, extra: &[&str]) -> String {
        let stderr = std::fs::File::create(dir.join(format!("{name}.stderr"))).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .args([
                "server",
                role,
                "--db",
                db,
                "--port",
                "0",
                "--liveness-timeout",
                "3",
            ])
            .arg("--storage")
            .arg(dir.join("storage"))
            .args(extra)
            .current_dir(dir)
            // Info level, so that workers announce their id.
            .env("FLOWBENCH_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the orchestrator binary starts");
        let stdout = child.stdout.take().unwrap();
        self.0.push((name.to_string(), child));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "{name} printed no ready line; stderr:\n{}",
                    std::fs::read_to_string(dir.join(format!("{name}.stderr"))).unwrap_or_default()
                )
            });
        assert!(
            line == "started" || line.starts_with("listening on http://"),
            "{name}: {line}"
        );
        line
    }

    fn child(&mut self, name: &str) -> &mut Child {
        let (_, child) = self
            .0
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect("known process");
        child
    }

    fn kill(&mut self, name: &str) {
        let child = self.child(name);
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// Sends SIGSTOP or SIGCONT with `kill(1)`: a stopped worker finishes nothing, so what it
    /// holds while stopped is exactly what a SIGKILL then orphans.
    fn signal(&mut self, name: &str, signal: &str) {
        let pid = self.child(name).id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill {signal} {name}: {status}");
    }
}

/// Fields drop in order: the processes are killed before the schema is dropped.
struct Deployment {
    processes: Processes,
    /// An observer in the test process: reads the tables, runs no component.
    observer: Orchestrator,
    base: String,
    db: TestDb,
}

async fn deploy() -> Option<Deployment> {
    let db = TestDb::create(Backend::Postgres).await?;
    let flows = db.dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(flows.join("multiprocess.yaml"), FLOW).unwrap();
    let observer = db.orchestrator(Knobs::default()).await;
    let mut processes = Processes::default();
    let dir = db.dir.path();
    let flows = flows.display().to_string();
    let line = processes.start("webserver", "webserver", &db.url, dir, &["--flows", &flows]);
    let base = line.trim_start_matches("listening on ").to_string();
    processes.start("executor", "executor", &db.url, dir, &[]);
    processes.start("worker", "worker-1", &db.url, dir, &["--threads", "4"]);
    processes.start("worker", "worker-2", &db.url, dir, &["--threads", "4"]);
    processes.start("indexer", "indexer", &db.url, dir, &[]);
    Some(Deployment {
        processes,
        observer,
        base,
        db,
    })
}

/// POSTs `n` executions, 16 at a time; calls `during(i)` after the i-th is accepted.
async fn trigger(base: &str, n: usize, mut during: impl FnMut(usize)) -> Vec<String> {
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/executions/tests/multiprocess");
    let mut requests = futures::stream::iter(0..n)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    // Retried: while the database restarts, the webserver answers 5xx.
                    match client.post(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            let v: serde_json::Value = r.json().await.expect("an execution");
                            return v["id"].as_str().expect("an id").to_string();
                        }
                        other if Instant::now() > deadline => panic!("trigger failed: {other:?}"),
                        _ => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        })
        .buffer_unordered(16);
    let mut ids = Vec::with_capacity(n);
    while let Some(id) = requests.next().await {
        ids.push(id);
        during(ids.len());
    }
    ids
}

/// Waits (bounded) until every execution is terminal and every queued message consumed;
/// tolerates read errors while the database is away.
async fn wait_all_terminal(o: &Orchestrator, ids: &[String], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let done = match o.store().counts().await {
            Ok(c) => {
                c.terminal_executions == ids.len() as i64
                    && c.pending_messages == 0
                    && c.running_jobs == 0
            }
            Err(_) => false,
        };
        if done {
            return;
        }
        if Instant::now() > deadline {
            let c = o.store().counts().await;
            panic!("not every execution ended within {limit:?}: {c:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Task runs the worker holds, read straight from `worker_job_running`.
async fn jobs_held(conn: &mut sqlx::PgConnection, worker: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM worker_job_running WHERE worker_id = $1")
            .bind(worker)
            .fetch_one(conn)
            .await
            .unwrap();
    n
}

/// The id a worker announces on stderr (`worker worker-… started`; info level).
fn worker_id(db: &TestDb, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = stderr_of(db, name);
        if let Some(id) = text
            .split_whitespace()
            .find(|w| w.starts_with("worker-") && w.len() > "worker-".len())
        {
            return id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{name} never logged its id:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(db: &TestDb, name: &str) -> String {
    std::fs::read_to_string(db.dir.path().join(format!("{name}.stderr"))).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_mid_run_lose_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(mut d) = deploy().await else { return };
    let total = 500;
    let worker_1 = worker_id(&d.db, "worker-1");
    // Executions keep arriving while the test waits for worker-1 to hold task runs.
    let sending = tokio::spawn({
        let base = d.base.clone();
        async move { trigger(&base, total, |_| {}).await }
    });
    // Freeze worker-1, count the task runs it holds, and kill it only if it holds some:
    // stopped, it cannot finish them between the count and the kill.
    let mut conn = d.db.pg_connection().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let orphaned = loop {
        d.processes.signal("worker-1", "-STOP");
        let held = jobs_held(&mut conn, &worker_1).await;
        if held > 0 {
            d.processes.kill("worker-1");
            break held;
        }
        d.processes.signal("worker-1", "-CONT");
        assert!(Instant::now() < deadline, "worker-1 never took a task run");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let ids = sending.await.expect("the trigger task");
    assert_eq!(ids.len(), total);
    wait_all_terminal(&d.observer, &ids, Duration::from_secs(240)).await;

    let mut lines = 0;
    for id in &ids {
        let e = d.observer.execution(id).await.unwrap();
        assert_eq!(e.state.current, StateType::Success, "{id}");
        assert_eq!(e.task_run_list.len(), 3, "{id}");
        let logs = d.observer.logs(id).await.unwrap();
        let mut messages: Vec<&str> = logs.iter().map(|l| l.message.as_str()).collect();
        messages.sort();
        assert_eq!(
            messages,
            [
                "Waiting for PT0.05S",
                "bye 1",
                "bye 2",
                &format!("hello {id}")
            ],
            "{id}"
        );
        lines += logs.len();
    }
    assert_eq!(lines, total * LINES_PER_EXECUTION);
    let c = d.observer.store().counts().await.unwrap();
    assert_eq!(
        c.logs as usize,
        total * LINES_PER_EXECUTION,
        "no line lost, none doubled"
    );
    assert_eq!(
        jobs_held(&mut conn, &worker_1).await,
        0,
        "the {orphaned} task runs worker-1 held when killed were taken over"
    );
    assert!(
        stderr_of(&d.db, "executor").contains(&format!("worker {worker_1} stopped heartbeating")),
        "the executor noticed the dead worker:\n{}",
        stderr_of(&d.db, "executor")
    );
}

fn restart_allowed() -> bool {
    std::env::var("FLOWBENCH_PG_RESTART").is_ok_and(|v| v == "1") || in_ci()
}

/// `pg_ctlcluster --skip-systemctl-redirect VERSION main restart`, for the one cluster here.
fn restart_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql lists the cluster versions")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("one PostgreSQL cluster");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "restarting PostgreSQL failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_run() {
    let _serial = ONE_AT_A_TIME.lock().await;
    if !restart_allowed() {
        eprintln!(
            "SKIPPED: restarting the shared PostgreSQL needs FLOWBENCH_PG_RESTART=1 (or CI=true)"
        );
        return;
    }
    let Some(mut d) = deploy().await else { return };
    let mut ids = trigger(&d.base, 100, |_| {}).await;
    let before = d.observer.store().counts().await.unwrap();
    eprintln!(
        "restarting PostgreSQL with {} of {} executions terminal",
        before.terminal_executions,
        ids.len()
    );
    restart_postgres();
    // Work created after the restart goes through reconnected pools and listeners.
    ids.extend(trigger(&d.base, 50, |_| {}).await);
    wait_all_terminal(&d.observer, &ids, Duration::from_secs(240)).await;
    for id in &ids {
        let e = d.observer.execution(id).await.unwrap();
        assert!(e.state.is_terminal(), "{id}: {}", e.state.current);
    }
    let warned = ["executor", "worker-1", "worker-2", "indexer"]
        .iter()
        .filter(|n| stderr_of(&d.db, n).contains("WARN"))
        .count();
    eprintln!("{warned} of 4 components logged a warning during the restart");
    // The processes outlived the restart.
    for (name, child) in &mut d.processes.0 {
        assert!(child.try_wait().unwrap().is_none(), "{name} exited");
    }
}

/// A schedule firing every second, one execution per tick.
const TICKING: &str = r#"
id: ticking
namespace: tests
triggers:
  - id: every-second
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
    timezone: UTC
tasks:
  - id: r
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.date }}"
"#;

/// Two `server scheduler` processes on one PostgreSQL fire each tick once between them;
/// both are `kill -9`ed, ticks pass with no scheduler, and a third one started then fires
/// the missed ticks: from the first tick to the last, every second has exactly one
/// execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedulers_killed_and_restarted_fire_every_tick_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let dir = db.dir.path();
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(flows.join("ticking.yaml"), TICKING).unwrap();
    let flows = flows.display().to_string();
    let observer = db.orchestrator(Knobs::default()).await;
    let mut processes = Processes::default();
    processes.start(
        "scheduler",
        "scheduler-1",
        &db.url,
        dir,
        &["--flows", &flows],
    );
    processes.start(
        "scheduler",
        "scheduler-2",
        &db.url,
        dir,
        &["--flows", &flows],
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    processes.kill("scheduler-1");
    tokio::time::sleep(Duration::from_secs(2)).await;
    processes.kill("scheduler-2");
    let down = observer
        .store()
        .executions_of_flow("tests", "ticking")
        .await
        .unwrap()
        .len();
    // No scheduler for three seconds: those ticks are missed until one starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    processes.start("scheduler", "scheduler-3", &db.url, dir, &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    processes.kill("scheduler-3");

    let mut dates: Vec<jiff::Timestamp> = observer
        .store()
        .executions_of_flow("tests", "ticking")
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let trigger = e.trigger.expect("a scheduled execution has its trigger");
            trigger.variables["date"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    dates.sort();
    assert!(down >= 3, "only {down} ticks fired before the kills");
    assert!(
        dates.len() >= down + 5,
        "{} executions: the restarted scheduler fired too few of the missed ticks ({down} before)",
        dates.len()
    );
    for pair in dates.windows(2) {
        assert_eq!(
            pair[1].duration_since(pair[0]),
            jiff::SignedDuration::from_secs(1),
            "a tick doubled or lost between {} and {}",
            pair[0],
            pair[1]
        );
    }
    drop(processes);
    observer.shutdown().await;
}
