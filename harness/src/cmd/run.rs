//! `flowbench run`: runs scenarios on each database and writes `results.json`.
//!
//! Each scenario runs on each `--db` its `backends` list allows; a scenario that fails
//! is recorded as failed with its error and the others carry on. Ctrl-C stops at the
//! next run boundary: the scenario in progress is recorded as interrupted, the rest as
//! skipped, and the file is still written (exit 130).
//!
//! Each (scenario, database) runs in a process of its own (`flowbench run-one`, hidden), so
//! that a process-wide reading such as the peak RSS measures that scenario and not what the
//! scenarios before it left in the allocator, and so that a crash fails one scenario
//! rather than the whole run. `--in-process` (implied by `--heap-profile`, which profiles
//! one process) runs them all in this one.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | every scenario ran, or was skipped as not applicable (a backend it does not support, a database that does not answer) |
//! | 4 | a scenario failed; `results.json` (and the history line) are still written with everything that finished |
//! | 130 | interrupted by Ctrl-C; `results.json` is still written |
//! | 1 | an error before or instead of the run (bad arguments, an unwritable folder): no results |
//!
//! A failed run must not pass a CI job: its `results.json` records the failure, and
//! `flowbench compare` then exits 1 on it too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use orchestrator::knobs::Knobs;
use reports::results::{
    History, HistoryRecord, Results, RunMetadata, SCHEMA_VERSION, ScenarioResult, Status,
    redact_url,
};
use tokio_util::sync::CancellationToken;

use harness::gate::GatePolicy;
use harness::measure::CountingAllocator;
use harness::scenario::Scenario;
use harness::suite;
use harness::workload::{self, Database, Env, Progress};

/// The exit code of a run in which a scenario failed (its results are still written).
pub const EXIT_SCENARIO_FAILED: u8 = 4;

#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 every scenario ran or was skipped as not applicable \
(skips are listed); 4 a scenario failed (results.json is still written, and compare exits 1 \
on it); 130 interrupted by Ctrl-C (results.json still written); 1 an error before the run."
)]
pub struct Args {
    /// Scenario ids to run; all of them when none is given.
    scenarios: Vec<String>,
    /// A database to run on (repeatable): `sqlite` (a fresh file per run, the default),
    /// `sqlite://PATH`, `postgres://…`, `mysql://…`, `mssql://…`, or `postgres` / `mysql` /
    /// `mssql`: the URL in `FLOWBENCH_POSTGRES_URL` / `FLOWBENCH_MYSQL_URL` /
    /// `FLOWBENCH_MSSQL_URL`, or a container with `--provision containers`.
    #[arg(long = "db", value_name = "URL")]
    dbs: Vec<String>,
    /// `containers`: start each `--db postgres|mysql|mssql` server in a container for the run
    /// (needs a Docker engine and the orchestrator's `containers` feature, so a build with
    /// `--features orchestrator/containers`).
    #[arg(long, value_enum, value_name = "HOW")]
    provision: Option<orchestrator::provision::Provision>,
    #[command(flatten)]
    settings: Settings,
    /// Output folder; by default `target/flowbench/<run-id>/`, and
    /// `target/flowbench/latest` then points to it.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Append this run's medians to a history file (JSON Lines).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Write a dhat heap profile of the whole run (needs `--features dhat-heap`); implies
    /// `--in-process`.
    #[arg(long, value_name = "FILE")]
    heap_profile: Option<PathBuf>,
    /// Run every scenario inside this process instead of one child process per scenario
    /// and database. Process-wide readings (peak RSS) then include what earlier scenarios
    /// left behind.
    #[arg(long)]
    in_process: bool,
}

/// How the scenarios run, the same in `run` and in each `run-one` it starts.
#[derive(clap::Args)]
struct Settings {
    /// Each scenario's `[quick]` settings: small sizes, few repetitions.
    #[arg(long)]
    quick: bool,
    /// Worker thread counts for the thread sweep, e.g. `1,2,8,32,128`.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    threads: Option<Vec<usize>>,
    /// Set a knob for every variant that does not set it: `--set worker.threads=16`.
    #[arg(long = "set", value_name = "KNOB=VALUE")]
    set: Vec<String>,
}

/// `flowbench run-one` (hidden): what `run` starts once per scenario and database. Runs one
/// scenario on one database, writes its result as JSON to `--result`, and reports progress
/// on stdout, one line an event, for the parent's progress bars.
#[derive(clap::Args)]
pub struct OneArgs {
    /// The scenario id.
    scenario: String,
    /// The database, already resolved and provisioned; none for a database-free scenario.
    #[arg(long = "db", value_name = "URL")]
    db: Option<String>,
    #[command(flatten)]
    settings: Settings,
    /// The scenario's scratch folder, made by the parent.
    #[arg(long, value_name = "DIR")]
    scratch: PathBuf,
    /// Where to write the scenario's result (JSON).
    #[arg(long, value_name = "FILE")]
    result: PathBuf,
}

pub fn run(
    args: Args,
    all: &[Scenario],
    alloc: Option<&'static CountingAllocator>,
) -> anyhow::Result<ExitCode> {
    let selected = select(all, &args.scenarios)?;
    for s in &selected {
        for note in s.repetition_notes(args.settings.quick) {
            eprintln!("note: {note}");
        }
    }
    let mut knobs = Knobs::default();
    knobs.apply(&args.settings.set)?;
    if let Some(t) = &args.settings.threads {
        anyhow::ensure!(
            !t.is_empty() && t.iter().all(|n| *n > 0),
            "--threads takes positive counts, e.g. 1,2,8"
        );
    }
    let dbs: Vec<Database> = if args.dbs.is_empty() {
        vec![Database::parse("sqlite").expect("sqlite is a database")]
    } else {
        args.dbs
            .iter()
            .map(|u| {
                Database::parse(u).with_context(|| {
                    format!(
                        "`{}` names no database: use sqlite, sqlite://PATH, postgres://, mysql:// or mssql://",
                        redact_url(u)
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let _profile = match &args.heap_profile {
        Some(path) => Some(harness::measure::heap_profile::start(path.clone())?),
        None => None,
    };

    let started_at = jiff::Timestamp::now();
    let git_sha = suite::git_sha();
    let run_id = format!(
        "{}-{}",
        started_at.strftime("%Y%m%dT%H%M%SZ"),
        git_sha.as_deref().map_or("nogit", |s| &s[..s.len().min(7)])
    );
    let (out_dir, is_default_out) = match &args.out {
        Some(d) => (d.clone(), false),
        None => (Path::new("target/flowbench").join(&run_id), true),
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Held to the end of the run: dropping one removes its container.
    let (dbs, _servers) = runtime.block_on(provision(dbs, args.provision))?;
    let cancel = CancellationToken::new();
    let (scenarios, backend_versions) = runtime.block_on(run_all(
        &selected,
        &dbs,
        &knobs,
        &args,
        alloc,
        cancel.clone(),
    ))?;
    // Components still draining after Ctrl-C must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(5));

    let results = Results {
        schema_version: SCHEMA_VERSION,
        run: RunMetadata {
            run_id,
            git_sha,
            started_at,
            finished_at: jiff::Timestamp::now(),
            host: suite::host(),
            backend_versions,
            knobs: knobs.to_map(),
            quick: args.settings.quick,
            database_urls: dbs.iter().map(|d| redact_url(&d.url)).collect(),
        },
        scenarios,
    };
    let file = out_dir.join("results.json");
    results.save(&file)?;
    if is_default_out {
        point_latest(&out_dir)?;
    }
    if let Some(history) = &args.history {
        History::append(history, &HistoryRecord::from_results(&results))?;
    }
    let failed = print_summary(&results);
    eprintln!("results: {}", file.display());
    Ok(if cancel.is_cancelled() {
        ExitCode::from(130)
    } else if failed > 0 {
        ExitCode::from(EXIT_SCENARIO_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--provision`: starts the server of each `--db postgres|mysql|mssql` and points it at the
/// container's URL. Other databases are refused, as the orchestrator's `--provision` does.
async fn provision(
    dbs: Vec<Database>,
    how: Option<orchestrator::provision::Provision>,
) -> anyhow::Result<(Vec<Database>, Vec<orchestrator::provision::Provisioned>)> {
    let Some(how) = how else {
        // Without --provision, `postgres` / `mysql` / `mssql` name the server in
        // FLOWBENCH_POSTGRES_URL / FLOWBENCH_MYSQL_URL / FLOWBENCH_MSSQL_URL.
        let resolved = dbs
            .into_iter()
            .map(|db| {
                let url = orchestrator::repository::resolve_shorthand(&db.url)?;
                Ok(Database { url, ..db })
            })
            .collect::<anyhow::Result<_>>()?;
        return Ok((resolved, Vec::new()));
    };
    let mut servers = Vec::new();
    let mut provisioned = Vec::with_capacity(dbs.len());
    for db in dbs {
        let server = orchestrator::provision::provision(how, &db.url).await?;
        eprintln!(
            "provisioned {} at {}",
            server.backend.name(),
            redact_url(&server.url)
        );
        provisioned.push(Database {
            url: server.url.clone(),
            backend: db.backend,
        });
        servers.push(server);
    }
    Ok((provisioned, servers))
}

fn select(all: &[Scenario], ids: &[String]) -> anyhow::Result<Vec<Scenario>> {
    if ids.is_empty() {
        return Ok(all.to_vec());
    }
    ids.iter()
        .map(|id| match all.iter().find(|s| &s.id == id) {
            Some(s) => Ok(s.clone()),
            None => {
                let known: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
                bail!("no scenario `{id}`; known: {}", known.join(", "))
            }
        })
        .collect()
}

/// `target/flowbench/latest` → the run folder.
fn point_latest(out_dir: &Path) -> anyhow::Result<()> {
    let latest = Path::new("target/flowbench/latest");
    if latest.symlink_metadata().is_ok() {
        std::fs::remove_file(latest).with_context(|| format!("replacing {}", latest.display()))?;
    }
    let target = out_dir.file_name().map(PathBuf::from).unwrap_or_default();
    std::os::unix::fs::symlink(&target, latest)
        .with_context(|| format!("linking {}", latest.display()))
}

async fn run_all(
    scenarios: &[Scenario],
    dbs: &[Database],
    knobs: &Knobs,
    args: &Args,
    alloc: Option<&'static CountingAllocator>,
    cancel: CancellationToken,
) -> anyhow::Result<(Vec<ScenarioResult>, BTreeMap<String, String>)> {
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing the current run, then writing results");
                cancel.cancel();
            }
        });
    }
    let scratch = tempfile::Builder::new()
        .prefix("flowbench-")
        .tempdir()
        .context("creating a scratch folder")?;

    // Which databases answer, and their versions, before any scenario runs.
    let mut available: Vec<Result<(), String>> = Vec::new();
    let mut versions = BTreeMap::new();
    for (i, db) in dbs.iter().enumerate() {
        let url = if db.url == "sqlite" {
            format!(
                "sqlite://{}",
                scratch.path().join(format!("probe-{i}.db")).display()
            )
        } else {
            db.url.clone()
        };
        match orchestrator::repository::connect(&url, knobs).await {
            Ok(store) => {
                if let Ok(v) = store.version().await {
                    versions.insert(db.backend_name().to_string(), v);
                }
                available.push(Ok(()));
            }
            Err(e) => available.push(Err(format!("{:#}", anyhow::Error::from(e)))),
        }
    }

    // One entry per (scenario, database); a database-free scenario runs once.
    let mut plan: Vec<(&Scenario, Option<usize>)> = Vec::new();
    for s in scenarios {
        if workload::uses_database(s.workload) {
            plan.extend((0..dbs.len()).map(|i| (s, Some(i))));
        } else {
            plan.push((s, None));
        }
    }

    let bars = MultiProgress::new();
    let overall = bars.add(ProgressBar::new(plan.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    overall.set_prefix("scenarios");
    let mut results = Vec::new();
    for (s, db_index) in plan {
        let scenario = if args.settings.quick {
            s.quick()
        } else {
            s.clone()
        };
        let db = db_index.map_or_else(
            || Database::parse("sqlite").expect("sqlite is a database"),
            |i| dbs[i].clone(),
        );
        let backend = if db_index.is_some() {
            db.backend_name()
        } else {
            "none"
        };
        overall.set_message(format!("{} on {backend}", s.id));
        let result = if cancel.is_cancelled() {
            suite::without_numbers(
                &scenario,
                backend,
                Status::Skipped {
                    reason: "interrupted (Ctrl-C) before it started".into(),
                },
            )
        } else if db_index.is_some() && !scenario.backends.contains(&db.backend) {
            suite::without_numbers(
                &scenario,
                backend,
                Status::Skipped {
                    reason: format!("the scenario does not apply to {backend}"),
                },
            )
        } else if let Some(Err(e)) = db_index.map(|i| &available[i]) {
            suite::without_numbers(
                &scenario,
                backend,
                Status::Skipped {
                    reason: format!("{backend} is not available: {e}"),
                },
            )
        } else {
            let bar = bars.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
                    .expect("template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(s.id.clone());
            let dir = scratch.path().join(format!("{}-{backend}", s.id));
            std::fs::create_dir_all(&dir).context("creating a scratch folder")?;
            let result = if args.in_process || args.heap_profile.is_some() {
                let (result, warning) = run_here(
                    &scenario,
                    db,
                    backend,
                    knobs.clone(),
                    args.settings.threads.clone(),
                    alloc,
                    &Bar(bar.clone()),
                    cancel.clone(),
                    dir.clone(),
                    args.settings.quick,
                )
                .await;
                if let Some(w) = warning {
                    overall.suspend(|| eprintln!("warning: {w}"));
                }
                result
            } else {
                let db = db_index.map(|_| &db);
                run_in_child(s, db, args, &dir, &bar, &cancel)
                    .await
                    .unwrap_or_else(|e| {
                        suite::without_numbers(
                            &scenario,
                            backend,
                            Status::Failed {
                                error: format!("{e:#}"),
                            },
                        )
                    })
            };
            bar.finish_and_clear();
            // Database files can be large; free the space before the next scenario.
            let _ = std::fs::remove_dir_all(&dir);
            result
        };
        overall.suspend(|| eprintln!("{}", one_line(&result)));
        overall.inc(1);
        results.push(result);
    }
    overall.finish_and_clear();
    Ok((results, versions))
}

/// Runs one scenario on one database in this process: the body of both `--in-process` runs
/// and `flowbench run-one`. Returns the result and, when a server database it created could
/// not be dropped, a warning (the numbers still stand).
#[allow(clippy::too_many_arguments)]
async fn run_here(
    scenario: &Scenario,
    db: Database,
    backend: &str,
    base_knobs: Knobs,
    threads: Option<Vec<usize>>,
    alloc: Option<&'static CountingAllocator>,
    progress: &dyn Progress,
    cancel: CancellationToken,
    scratch: PathBuf,
    quick: bool,
) -> (ScenarioResult, Option<String>) {
    let server_dbs = workload::ServerDatabases::new(&db.url, db.backend);
    let env = Env {
        scenario,
        server_dbs,
        db,
        base_knobs,
        threads,
        alloc,
        progress,
        cancel,
        scratch,
        quick,
    };
    let outcome = workload::run(&env).await;
    let warning = match &env.server_dbs {
        Some(dbs) => dbs.drop_all().await.err().map(|e| e.to_string()),
        None => None,
    };
    let result = match outcome {
        Ok(rec) => suite::analyse(scenario, backend, &rec, &GatePolicy::default()),
        Err(e) => suite::without_numbers(scenario, backend, suite::status_of(&e)),
    };
    (result, warning)
}

/// Runs one scenario on one database in a child `flowbench run-one`, showing its progress
/// on `bar`; on Ctrl-C (`cancel`) the child is interrupted too, and ends the way an
/// in-process run does. A child that dies without writing its result (a crash, a kill) fails
/// this scenario only.
async fn run_in_child(
    s: &Scenario,
    db: Option<&Database>,
    args: &Args,
    scratch: &Path,
    bar: &ProgressBar,
    cancel: &CancellationToken,
) -> anyhow::Result<ScenarioResult> {
    use tokio::io::AsyncBufReadExt;

    let exe = std::env::current_exe().context("finding the flowbench binary to run")?;
    let result_file = scratch.join("result.json");
    let mut cmd = tokio::process::Command::new(exe);
    if let Some(dir) = s.dir.parent() {
        cmd.arg("--scenarios-dir").arg(dir);
    }
    cmd.arg("run-one")
        .arg(&s.id)
        .arg("--scratch")
        .arg(scratch)
        .arg("--result")
        .arg(&result_file);
    if let Some(db) = db {
        cmd.arg("--db").arg(&db.url);
    }
    if args.settings.quick {
        cmd.arg("--quick");
    }
    if let Some(t) = &args.settings.threads {
        let list: Vec<String> = t.iter().map(usize::to_string).collect();
        cmd.arg("--threads").arg(list.join(","));
    }
    for set in &args.settings.set {
        cmd.arg("--set").arg(set);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the process for scenario `{}`", s.id))?;
    let pid = child.id();
    let stdout = child.stdout.take().context("the child's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut interrupted = false;
    loop {
        tokio::select! {
            line = lines.next_line() => match line.context("reading the child's progress")? {
                Some(line) => ChildProgress::apply(&line, bar),
                None => break,
            },
            () = cancel.cancelled(), if !interrupted => {
                interrupted = true;
                if let Some(pid) = pid {
                    interrupt(pid);
                }
            }
        }
    }
    let status = child.wait().await.context("waiting for the child")?;
    match std::fs::read(&result_file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading {}", result_file.display())),
        Err(_) => {
            // A killed child could not drop the server databases it made; drop them here.
            if let (Some(db), Some(pid)) = (db, pid)
                && let Some(server) = workload::ServerDatabases::new(&db.url, db.backend)
                && let Err(e) = server.drop_left_by(pid).await
            {
                eprintln!("warning: {e}");
            }
            bail!(
                "its process ({}) ended with {status} without writing a result; its error, if any, is printed above",
                s.id
            )
        }
    }
}

/// Sends SIGINT to a child, as Ctrl-C in a terminal would.
#[allow(unsafe_code)]
fn interrupt(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
}

/// `flowbench run-one`: one scenario on one database in this process, its result written to
/// `--result`, its progress to stdout.
pub fn run_one(
    args: OneArgs,
    all: &[Scenario],
    alloc: Option<&'static CountingAllocator>,
) -> anyhow::Result<ExitCode> {
    let s = select(all, std::slice::from_ref(&args.scenario))?.remove(0);
    let scenario = if args.settings.quick { s.quick() } else { s };
    let mut knobs = Knobs::default();
    knobs.apply(&args.settings.set)?;
    let (db, backend) = match &args.db {
        Some(url) => {
            let db = Database::parse(url)
                .with_context(|| format!("`{}` names no database", redact_url(url)))?;
            let backend = db.backend_name();
            (db, backend)
        }
        None => (
            Database::parse("sqlite").expect("sqlite is a database"),
            "none",
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let cancel = CancellationToken::new();
    let (result, warning) = runtime.block_on(async {
        {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.cancel();
                }
            });
        }
        run_here(
            &scenario,
            db,
            backend,
            knobs,
            args.settings.threads,
            alloc,
            &ChildProgress,
            cancel.clone(),
            args.scratch,
            args.settings.quick,
        )
        .await
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let json = serde_json::to_vec(&result).context("encoding the result")?;
    std::fs::write(&args.result, json)
        .with_context(|| format!("writing {}", args.result.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Progress of a `run-one` child: one line an event on stdout, which the parent reads back
/// onto its bar (`runs\tN`, `run\tVARIANT\tLABEL`, `done`).
struct ChildProgress;

impl ChildProgress {
    fn emit(line: std::fmt::Arguments<'_>) {
        use std::io::Write;
        // A parent that went away stops reading; the run still finishes and writes its file.
        let _ = writeln!(std::io::stdout(), "{line}");
    }

    /// Applies one line a child printed to the parent's bar; other lines are ignored.
    fn apply(line: &str, bar: &ProgressBar) {
        let mut parts = line.splitn(3, '\t');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("runs"), Some(n), None) => {
                if let Ok(n) = n.parse() {
                    Bar(bar.clone()).runs(n);
                }
            }
            (Some("run"), Some(variant), Some(label)) => Bar(bar.clone()).run(variant, label),
            (Some("done"), None, None) => Bar(bar.clone()).done(),
            _ => {}
        }
    }
}

impl Progress for ChildProgress {
    fn runs(&self, total: u64) {
        Self::emit(format_args!("runs\t{total}"));
    }
    fn run(&self, variant: &str, label: &str) {
        // Tabs and newlines would break the line protocol; labels are short prose.
        let clean = |t: &str| t.replace(['\t', '\n'], " ");
        Self::emit(format_args!("run\t{}\t{}", clean(variant), clean(label)));
    }
    fn done(&self) {
        Self::emit(format_args!("done"));
    }
}

/// Progress through an indicatif bar.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn runs(&self, total: u64) {
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn run(&self, variant: &str, label: &str) {
        self.0.set_message(format!("{variant} · {label}"));
    }
    fn done(&self) {
        self.0.inc(1);
    }
}

fn one_line(r: &ScenarioResult) -> String {
    let head = format!("{}/{}", r.id, r.backend);
    match &r.status {
        Status::Ok => {
            let claim = match r.claim_comparison() {
                Some(c) => format!(
                    "{} {} vs {}: {:.3}× [{:.3}, {:.3}] {} — {}",
                    c.metric,
                    c.head_variant,
                    c.base_variant,
                    c.ratio,
                    c.ci_low,
                    c.ci_high,
                    c.verdict,
                    r.claim_outcome().map_or("not judged", |o| o.text())
                ),
                None => "no claim comparison".into(),
            };
            format!("{head:<28} ok      {claim}")
        }
        Status::Failed { error } => format!("{head:<28} FAILED  {error}"),
        Status::Skipped { reason } => format!("{head:<28} skipped {reason}"),
    }
}

/// Prints how the scenario runs ended, naming each failed and skipped one; returns how
/// many failed.
fn print_summary(results: &Results) -> usize {
    let named = |pick: fn(&Status) -> bool| -> Vec<String> {
        results
            .scenarios
            .iter()
            .filter(|s| pick(&s.status))
            .map(|s| format!("{}/{}", s.id, s.backend))
            .collect()
    };
    let failed = named(|s| matches!(s, Status::Failed { .. }));
    let skipped = named(|s| matches!(s, Status::Skipped { .. }));
    let ok = results.scenarios.len() - failed.len() - skipped.len();
    eprintln!(
        "{} scenario runs: {ok} ok, {} failed, {} skipped",
        results.scenarios.len(),
        failed.len(),
        skipped.len()
    );
    if !skipped.is_empty() {
        eprintln!(
            "skipped (not applicable or not reachable): {}",
            skipped.join(", ")
        );
    }
    if !failed.is_empty() {
        eprintln!(
            "FAILED: {} (exit {EXIT_SCENARIO_FAILED}; the results file records why)",
            failed.join(", ")
        );
    }
    failed.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a `run-one` child prints is what the parent's bar shows.
    #[test]
    fn child_progress_lines_drive_the_parent_bar() {
        let bar = ProgressBar::hidden();
        ChildProgress::apply("runs\t6", &bar);
        assert_eq!(bar.length(), Some(6));
        ChildProgress::apply("run\tbefore\trepetition 1/5", &bar);
        assert_eq!(bar.message(), "before · repetition 1/5");
        ChildProgress::apply("done", &bar);
        ChildProgress::apply("done", &bar);
        assert_eq!(bar.position(), 2);
        // Anything else (a stray print) leaves the bar alone.
        ChildProgress::apply("runs\tmany", &bar);
        ChildProgress::apply("hello", &bar);
        assert_eq!((bar.length(), bar.position()), (Some(6), 2));
    }
}
