//! `orchestrator`: run one flow, or serve the components.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use orchestrator::knobs::Knobs;
use orchestrator::model::StateType;
use orchestrator::provision::{Provision, Provisioned};
use orchestrator::queue::Timing;
use orchestrator::service::{Components, Config, Orchestrator};
use orchestrator::webserver::BasicAuth;

#[derive(Parser)]
#[command(
    name = "orchestrator",
    version,
    about = "flowbench's reference orchestrator (Kestra's JDBC architecture)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Database: `sqlite` (the default), `sqlite://PATH`, a postgres://, mysql:// or mssql://
    /// URL (`?flowbench_schema=NAME` keeps PostgreSQL tables in their own schema), or
    /// `postgres` / `mysql` / `mssql` to read the URL from FLOWBENCH_POSTGRES_URL /
    /// FLOWBENCH_MYSQL_URL / FLOWBENCH_MSSQL_URL.
    #[arg(long)]
    db: Option<String>,
    /// `containers`: start the server `--db postgres|mysql|mssql` names in a container
    /// (testcontainers; needs a Docker engine and the `containers` cargo feature). It is
    /// removed when this process ends.
    #[arg(long, value_enum, value_name = "HOW")]
    provision: Option<Provision>,
    /// Worker threads (the `worker.threads` knob); default 4 × available cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Set a knob: `--set logs.indexing=sync` (repeatable).
    #[arg(long = "set", value_name = "KNOB=VALUE")]
    set: Vec<String>,
    /// Internal-storage folder.
    #[arg(long)]
    storage: Option<PathBuf>,
    /// Seconds without a heartbeat after which a worker is dead and its task runs resubmitted.
    #[arg(long, default_value_t = 10.0)]
    liveness_timeout: f64,
    /// A YAML map of variables every flow reads as `{{ globals.… }}` (Kestra's
    /// `kestra.variables.globals`).
    #[arg(long, value_name = "FILE")]
    globals: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one execution of a flow to its end and print it.
    Run {
        /// The flow's YAML file.
        flow: PathBuf,
        #[command(flatten)]
        common: Common,
        /// An input value: `--input name=value` (repeatable).
        #[arg(long = "input", value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// A folder of flows to deploy first, so that the flow's Subflow tasks find theirs.
        #[arg(long, value_name = "DIR")]
        flows: Option<PathBuf>,
        /// An execution label: `--label key=value` (repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Convert a record file between ion, json, csv and avro (FileSerde).
    Convert(orchestrator::fileserde::cli::ConvertArgs),
    /// Serve components: all of them (standalone) or one per process.
    Server {
        #[arg(value_enum)]
        role: Role,
        #[command(flatten)]
        common: Common,
        /// HTTP port (standalone and webserver); 0 picks a free one.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Deploy every *.yaml / *.yml flow of this folder at start.
        #[arg(long)]
        flows: Option<PathBuf>,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

/// The HTTP API's basic authentication (Kestra's `kestra.server.basic-auth`).
#[derive(clap::Args)]
struct AuthArgs {
    /// Basic authentication's username: with a password, every route but the health checks
    /// and the webhooks requires them.
    #[arg(long, env = "FLOWBENCH_BASIC_AUTH_USERNAME", value_name = "USER")]
    basic_auth_username: Option<String>,
    /// Basic authentication's password (best given through the environment, which the
    /// process list does not show). Never printed.
    #[arg(
        long,
        env = "FLOWBENCH_BASIC_AUTH_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    basic_auth_password: Option<String>,
    /// Serve HTTP on an address other than loopback without authentication.
    #[arg(long)]
    insecure_no_auth: bool,
}

impl AuthArgs {
    /// The credentials the HTTP API requires, if any.
    fn basic_auth(self) -> anyhow::Result<Option<BasicAuth>> {
        match (self.basic_auth_username, self.basic_auth_password) {
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!(
                "--basic-auth-username needs --basic-auth-password (or FLOWBENCH_BASIC_AUTH_PASSWORD)"
            ),
            (None, Some(_)) => anyhow::bail!(
                "--basic-auth-password needs --basic-auth-username (or FLOWBENCH_BASIC_AUTH_USERNAME)"
            ),
            (Some(user), Some(password)) => Ok(Some(BasicAuth::new(user, password)?)),
        }
    }
}

/// Whether `--bind` names a loopback address: 127.0.0.0/8, ::1 or `localhost`.
fn is_loopback(bind: &str) -> bool {
    bind.eq_ignore_ascii_case("localhost")
        || bind
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Role {
    Standalone,
    Executor,
    Worker,
    Indexer,
    /// Fires the flows' `Schedule` triggers.
    Scheduler,
    Webserver,
}

fn config(common: &Common, default_db: &str, default_storage: PathBuf) -> anyhow::Result<Config> {
    let mut knobs = Knobs::default();
    knobs.apply(&common.set)?;
    if let Some(t) = common.threads {
        knobs.set("worker.threads", &t.to_string())?;
    }
    anyhow::ensure!(
        common.liveness_timeout > 0.0,
        "--liveness-timeout must be positive"
    );
    let liveness = Duration::from_secs_f64(common.liveness_timeout);
    if let Some(path) = &common.globals {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the globals file {}", path.display()))?;
        let globals: serde_json::Map<String, serde_json::Value> = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{}: the globals must be a YAML map", path.display()))?;
        orchestrator::run_context::set_globals(globals).map_err(anyhow::Error::msg)?;
    }
    Ok(Config {
        db: common.db.clone().unwrap_or_else(|| default_db.to_string()),
        knobs,
        storage: common.storage.clone().unwrap_or(default_storage),
        timing: Timing {
            heartbeat: (liveness / 5).max(Duration::from_millis(100)),
            liveness_timeout: liveness,
            ..Timing::default()
        },
    })
}

/// `--provision`: starts the server `--db` names and points `--db` at it. The returned handle
/// keeps the server running; drop it only when the command is done.
async fn provision(common: &mut Common) -> anyhow::Result<Option<Provisioned>> {
    let Some(how) = common.provision else {
        return Ok(None);
    };
    let db = common.db.as_deref().unwrap_or("sqlite");
    let server = orchestrator::provision::provision(how, db).await?;
    eprintln!(
        "provisioned {} at {}",
        server.backend.name(),
        orchestrator::repository::redact(&server.url)
    );
    common.db = Some(server.url.clone());
    Ok(Some(server))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOWBENCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            let broken_pipe = |c: &(dyn std::error::Error + 'static)| {
                c.downcast_ref::<std::io::Error>()
                    .map(std::io::Error::kind)
                    .or_else(|| {
                        c.downcast_ref::<serde_json::Error>()
                            .and_then(serde_json::Error::io_error_kind)
                    })
                    == Some(std::io::ErrorKind::BrokenPipe)
            };
            if e.chain().any(broken_pipe) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            flow,
            common,
            inputs,
            flows,
            labels,
            output,
            timeout,
        } => run(flow, common, inputs, flows, labels, output, timeout).await,
        Command::Server {
            role,
            common,
            port,
            bind,
            flows,
            auth,
        } => server(role, common, port, bind, flows, auth).await,
        Command::Convert(args) => {
            // Conversion is blocking file I/O: keep it off the async runtime.
            tokio::task::spawn_blocking(move || orchestrator::fileserde::cli::run(args)).await??;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run(
    path: PathBuf,
    mut common: Common,
    inputs: Vec<String>,
    flows: Option<PathBuf>,
    labels: Vec<String>,
    output: Output,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    let source = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read flow file {}", path.display()))?;
    // Validate before touching any database: bad input leaves nothing behind.
    let origin = path.display().to_string();
    orchestrator::flow::parse_flow(&source, &origin)?;
    let mut given = serde_json::Map::new();
    for i in &inputs {
        let (k, v) = i
            .split_once('=')
            .with_context(|| format!("--input `{i}` is not NAME=VALUE"))?;
        given.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    let mut execution_labels = Vec::new();
    for l in &labels {
        let (key, value) = l
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .with_context(|| format!("--label `{l}` is not KEY=VALUE"))?;
        execution_labels.push(orchestrator::model::Label {
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    let _server = provision(&mut common).await?;
    let scratch = tempfile::tempdir().context("cannot create a temporary folder")?;
    // The default database lives in the same scratch folder, so nothing is left behind.
    let scratch_db = format!("sqlite://{}", scratch.path().join("flowbench.db").display());
    let config = config(&common, &scratch_db, scratch.path().join("storage"))?;
    let o = Orchestrator::connect(config).await?;
    // One execution and what it starts: no scheduler fires the flows' schedules meanwhile.
    o.start(Components {
        scheduler: false,
        ..Components::ALL
    });
    let result = async {
        if let Some(dir) = &flows {
            deploy_folder(&o, dir).await?;
        }
        let flow = o.deploy(&source, &origin).await?;
        let exec = o
            .create_execution(&flow.namespace, &flow.id, given, execution_labels, None)
            .await?;
        // The run ends once the execution and every execution it started have ended.
        let done = o.wait_tree(&exec.id, Duration::from_secs(timeout)).await?;
        o.wait_idle(Duration::from_secs(60)).await?;
        // With a `CREATE_NEW_EXECUTION` retry, the run is every attempt, the last one its end.
        let mut ran = Vec::new();
        for exec in o.attempts(&done).await? {
            let logs = o.logs(&exec.id).await?;
            ran.push((exec, logs));
        }
        anyhow::Ok(ran)
    }
    .await;
    o.shutdown().await;
    let ran = result?;
    let Some((exec, _)) = ran.last() else {
        anyhow::bail!("the execution is gone");
    };
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, exec)?;
            writeln!(out)?;
        }
        Output::Text => {
            for (exec, logs) in &ran {
                print_execution(&mut out, exec, logs)?;
            }
        }
    }
    Ok(match exec.state.current {
        StateType::Success | StateType::Warning => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// An execution as `run` prints it: its log lines, its task runs, and how it ended.
fn print_execution(
    out: &mut impl Write,
    exec: &orchestrator::model::Execution,
    logs: &[orchestrator::model::LogEntry],
) -> std::io::Result<()> {
    for l in logs {
        writeln!(
            out,
            "{} {:5} {} {}",
            l.timestamp,
            l.level.as_str(),
            l.task_id.as_deref().unwrap_or("-"),
            l.message
        )?;
    }
    for tr in &exec.task_run_list {
        let value = tr
            .value
            .as_deref()
            .map(|v| format!(" [{v}]"))
            .unwrap_or_default();
        writeln!(out, "{:<9} {}{value}", tr.state.current, tr.task_id)?;
    }
    writeln!(
        out,
        "execution {} {} in {}",
        exec.id,
        exec.state.current,
        orchestrator::model::iso_duration(exec.state.duration())
    )?;
    Ok(())
}

async fn server(
    role: Role,
    mut common: Common,
    port: u16,
    bind: String,
    flows: Option<PathBuf>,
    auth: AuthArgs,
) -> anyhow::Result<ExitCode> {
    let serves_http = matches!(role, Role::Standalone | Role::Webserver);
    let insecure_no_auth = auth.insecure_no_auth;
    let auth = auth.basic_auth()?;
    // Checked before anything starts: an open API on the network runs anyone's flows.
    if serves_http && auth.is_none() && !insecure_no_auth && !is_loopback(&bind) {
        anyhow::bail!(
            "refusing to serve the HTTP API on {bind} without authentication: give \
             --basic-auth-username and --basic-auth-password (or FLOWBENCH_BASIC_AUTH_USERNAME \
             and FLOWBENCH_BASIC_AUTH_PASSWORD), or --insecure-no-auth"
        );
    }
    let _server = provision(&mut common).await?;
    let data = PathBuf::from("flowbench-data");
    let default_db = format!("sqlite://{}", data.join("flowbench.db").display());
    if common.db.is_none() {
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
    }
    let config = config(&common, &default_db, data.join("storage"))?;
    let o = Arc::new(Orchestrator::connect(config).await?);
    if let Some(dir) = &flows {
        deploy_folder(&o, dir).await?;
    }
    let components = match role {
        Role::Standalone => Components::ALL,
        Role::Executor => Components {
            executor: true,
            ..Components::NONE
        },
        Role::Worker => Components {
            worker: true,
            ..Components::NONE
        },
        Role::Indexer => Components {
            indexer: true,
            ..Components::NONE
        },
        Role::Scheduler => Components {
            scheduler: true,
            ..Components::NONE
        },
        Role::Webserver => Components::NONE,
    };
    o.start(components);
    let stop = o.shutdown_token();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.cancel();
        }
    });
    if serves_http {
        let listener = tokio::net::TcpListener::bind((bind.as_str(), port))
            .await
            .with_context(|| format!("cannot bind {bind}:{port}"))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read this line to find the port.
        println!("listening on http://{addr}");
        let stopped = stop.clone();
        orchestrator::webserver::serve_with_auth(listener, o.clone(), auth, async move {
            stopped.cancelled().await
        })
        .await?;
    } else {
        println!("started");
        stop.cancelled().await;
    }
    o.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn deploy_folder(o: &Orchestrator, dir: &std::path::Path) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read flow folder {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    entries.sort();
    let mut sources = Vec::with_capacity(entries.len());
    for p in &entries {
        let source =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        sources.push((source, p.display().to_string()));
    }
    let sources: Vec<(&str, &str)> = sources
        .iter()
        .map(|(s, o)| (s.as_str(), o.as_str()))
        .collect();
    o.deploy_all(&sources).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_is_127_0_0_0_8_ipv6_one_and_localhost() {
        for bind in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback(bind), "{bind}");
        }
        for bind in [
            "0.0.0.0",
            "::",
            "192.168.1.10",
            "10.0.0.1",
            "example.com",
            "localhost.evil",
        ] {
            assert!(!is_loopback(bind), "{bind}");
        }
    }
}
