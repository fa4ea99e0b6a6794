//! The orchestrator's standalone server as its own process: what a user deploys.
//!
//! `e2e-webhook` measures the server through its HTTP API, so it runs the real
//! `orchestrator server standalone` binary rather than an orchestrator inside the load
//! generator's process, where both would share one async runtime and one allocator. The
//! binary is the `orchestrator` beside `flowbench` (the same cargo profile), or the one
//! `FLOWBENCH_ORCHESTRATOR_BIN` names.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{Result, WorkloadError};

/// Names the orchestrator binary to run instead of the one beside `flowbench`.
pub const ORCHESTRATOR_BIN_ENV: &str = "FLOWBENCH_ORCHESTRATOR_BIN";

/// How long the server may take to migrate its database, deploy its flows and listen.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The `orchestrator` binary: `FLOWBENCH_ORCHESTRATOR_BIN`, else the one in the folder of
/// this executable (or its parent, for a test binary in `target/<profile>/deps`).
pub fn orchestrator_bin() -> Result<PathBuf> {
    let name = format!("orchestrator{}", std::env::consts::EXE_SUFFIX);
    if let Some(path) = std::env::var_os(ORCHESTRATOR_BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(WorkloadError::Failed(format!(
                "{ORCHESTRATOR_BIN_ENV}={} is not a file",
                path.display()
            )))
        };
    }
    let exe = std::env::current_exe()
        .map_err(|e| WorkloadError::failed("finding this executable's path", e))?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            WorkloadError::Failed(format!(
                "this scenario runs the orchestrator server as a process of its own, and there \
                 is no `{name}` beside {}: build it with `cargo build --release -p orchestrator` \
                 (`cargo build -p orchestrator` for a debug flowbench), or name one with \
                 {ORCHESTRATOR_BIN_ENV}",
                exe.display()
            ))
        })
}

/// What a server process is started with.
pub struct ServerSpec<'a> {
    /// The database URL, passed as `--db`.
    pub db: &'a str,
    /// Every knob, passed as `--set key=value`.
    pub knobs: &'a orchestrator::knobs::Knobs,
    /// A folder of flow files, deployed at start (`--flows`).
    pub flows: &'a Path,
    /// Internal storage (`--storage`).
    pub storage: &'a Path,
    /// Where the server's stderr goes; its tail is quoted when the server fails.
    pub log: &'a Path,
}

/// A running `orchestrator server standalone`. Dropping it kills the process; [`stop`]
/// stops it as an operator would, with SIGTERM.
///
/// [`stop`]: ServerProcess::stop
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, from the line the server prints once it listens.
    pub base: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts the server on a free loopback port and waits until it listens.
    pub async fn start(spec: &ServerSpec<'_>) -> Result<ServerProcess> {
        let bin = orchestrator_bin()?;
        let log = std::fs::File::create(spec.log).map_err(|e| {
            WorkloadError::failed(format!("creating the server log {}", spec.log.display()), e)
        })?;
        let mut cmd = Command::new(&bin);
        cmd.args(["server", "standalone", "--port", "0", "--db", spec.db])
            .arg("--flows")
            .arg(spec.flows)
            .arg("--storage")
            .arg(spec.storage);
        for (k, v) in spec.knobs.to_map() {
            cmd.arg("--set").arg(format!("{k}={v}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| WorkloadError::failed(format!("starting {}", bin.display()), e))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let listening = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(base) = line.strip_prefix("listening on ") {
                    return Some(base.trim().to_string());
                }
            }
            None
        })
        .await;
        let mut server = ServerProcess {
            child,
            base: String::new(),
            log: spec.log.to_path_buf(),
        };
        match listening {
            Ok(Some(base)) => {
                server.base = base;
                // The server prints nothing more, but a full pipe must never block it.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                Ok(server)
            }
            Ok(None) => {
                let status = server.child.wait().await.ok();
                Err(server.failure(&format!("exited before listening ({status:?})")))
            }
            Err(_) => Err(server.failure(&format!("did not listen within {START_TIMEOUT:?}"))),
        }
    }

    /// Fails when the process has ended already.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.failure(&format!("ended while serving ({status})"))),
            Err(e) => Err(WorkloadError::failed("checking the server process", e)),
        }
    }

    /// SIGTERM, then waits for a clean exit; a server that does not stop in time is killed
    /// and its run fails, as does one that exits with an error.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            terminate(pid);
        }
        let status: std::io::Result<ExitStatus> =
            match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    let _ = self.child.kill().await;
                    return Err(self.failure(&format!("did not stop within {STOP_TIMEOUT:?}")));
                }
            };
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(self.failure(&format!("stopped with {s}"))),
            Err(e) => Err(WorkloadError::failed("waiting for the server process", e)),
        }
    }

    /// A failure naming `what` the server did, with the end of its log.
    pub fn failure(&self, what: &str) -> WorkloadError {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        WorkloadError::Failed(format!(
            "the orchestrator server {what}; the end of its log {}:\n{}",
            self.log.display(),
            tail.join("\n")
        ))
    }
}

#[allow(unsafe_code)]
fn terminate(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// A `flowbench` process killed outright must not leave its server running: on Linux the
/// child gets SIGKILL when the thread that started it ends (the runtime's worker threads
/// live as long as the run).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe and touches no memory of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}
