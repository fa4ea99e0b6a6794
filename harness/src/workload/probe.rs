//! Measuring one run that spans awaits: [`crate::measure::measure`] takes a closure, but a
//! workload's run is async, so a [`Probe`] takes the same readings at its start and end.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::measure::{
    AllocDelta, AllocSnapshot, CountingAllocator, peak_rss_kib, reset_peak_rss, self_cpu_times,
};

/// Readings taken at the start of a run.
pub struct Probe {
    started: Instant,
    cpu: crate::measure::CpuTimes,
    alloc: Option<(&'static CountingAllocator, AllocSnapshot)>,
    rss_reset: bool,
}

/// What one run cost the process.
#[derive(Debug, Clone, Copy)]
pub struct RunSample {
    pub wall: Duration,
    pub cpu_user: Duration,
    pub cpu_sys: Duration,
    /// Peak RSS since the start of the run, when the kernel let us reset the mark.
    pub peak_rss_kib: Option<u64>,
    pub alloc: Option<AllocDelta>,
}

impl Probe {
    /// Starts measuring: resets the RSS high-water mark, reads CPU times and counters.
    pub fn start(alloc: Option<&'static CountingAllocator>) -> Probe {
        let rss_reset = reset_peak_rss().is_ok();
        Probe {
            alloc: alloc.map(|a| (a, a.snapshot())),
            cpu: self_cpu_times().unwrap_or_default(),
            started: Instant::now(),
            rss_reset,
        }
    }

    /// Stops measuring.
    pub fn finish(self) -> RunSample {
        let wall = self.started.elapsed();
        let cpu = self_cpu_times().unwrap_or_default();
        RunSample {
            wall,
            cpu_user: cpu.user.saturating_sub(self.cpu.user),
            cpu_sys: cpu.sys.saturating_sub(self.cpu.sys),
            // Without a reset the mark covers the whole process life: not this run's.
            peak_rss_kib: if self.rss_reset {
                peak_rss_kib().ok()
            } else {
                None
            },
            alloc: self.alloc.map(|(a, before)| a.snapshot().since(&before)),
        }
    }
}

impl RunSample {
    /// The values under the scenario metric names: `wall_ms`, `cpu_user_ms`,
    /// `cpu_sys_ms`, `cpu_ms`, `cpu_utilisation`, and when known `peak_rss_kib`,
    /// `alloc_count`, `alloc_bytes`.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let cpu = self.cpu_user + self.cpu_sys;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let mut out = vec![
            ("wall_ms", ms(self.wall)),
            ("cpu_user_ms", ms(self.cpu_user)),
            ("cpu_sys_ms", ms(self.cpu_sys)),
            ("cpu_ms", ms(cpu)),
        ];
        if self.wall > Duration::ZERO {
            out.push((
                "cpu_utilisation",
                cpu.as_secs_f64() / (self.wall.as_secs_f64() * cores),
            ));
        }
        if let Some(kib) = self.peak_rss_kib {
            out.push(("peak_rss_kib", kib as f64));
        }
        if let Some(a) = self.alloc {
            out.push(("alloc_count", a.alloc_count() as f64));
            out.push(("alloc_bytes", a.bytes_allocated as f64));
        }
        out
    }
}

/// CPU time spent so far by every thread the orchestrator's worker owns: the task threads
/// (`worker-thread-N`) and the worker runtime (`worker-rt`: the poller that decodes each
/// `WorkerTask`, the writer that serialises results and queues them, the heartbeat, and
/// `logs.indexing=sync`'s log pool), read from `/proc/self/task/*/schedstat` (nanoseconds),
/// or from `stat` in clock ticks where schedstat is missing.
///
/// Left out: the executor and indexer (the main runtime's threads), and SQLite's connection
/// threads (`sqlx-sqlite-worker-*`), which every component shares. On PostgreSQL and
/// MariaDB the client side of the worker's queries runs on `worker-rt`, the server's share
/// in another process.
pub fn worker_cpu() -> io::Result<Duration> {
    threads_cpu(WORKER_THREADS)
}

/// CPU time spent so far by the worker's task threads (`worker-thread-N`) only: running
/// tasks and building their results, without polling, decoding or writing.
pub fn task_threads_cpu() -> io::Result<Duration> {
    threads_cpu(TASK_THREADS)
}

/// Prefixes of the thread names (Linux keeps 15 bytes of them) the worker gives its
/// threads: `worker-thread-N` and `worker-rt`.
const WORKER_THREADS: &str = "worker-";
const TASK_THREADS: &str = "worker-thread";

fn threads_cpu(prefix: &str) -> io::Result<Duration> {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let dir = entry?.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        total += thread_cpu(&dir).unwrap_or_default();
    }
    Ok(total)
}

fn thread_cpu(dir: &Path) -> io::Result<Duration> {
    if let Ok(text) = std::fs::read_to_string(dir.join("schedstat")) {
        if let Some(ns) = text
            .split_whitespace()
            .next()
            .and_then(|s| s.parse::<u64>().ok())
        {
            if ns > 0 {
                return Ok(Duration::from_nanos(ns));
            }
        }
    }
    // Fields 14 and 15 (utime, stime) after the parenthesised command name.
    let stat = std::fs::read_to_string(dir.join("stat"))?;
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|s| s.parse::<u64>().ok());
    let (Some(u), Some(s)) = (ticks(11), ticks(12)) else {
        return Err(io::Error::other("unexpected /proc stat format"));
    };
    // Linux reports USER_HZ = 100 ticks per second to user space.
    Ok(Duration::from_millis((u + s) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < d {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn the_worker_prefixes_match_the_orchestrators_thread_names() {
        assert!(orchestrator::worker::RUNTIME_THREAD_NAME.starts_with(WORKER_THREADS));
        assert!(!orchestrator::worker::RUNTIME_THREAD_NAME.starts_with(TASK_THREADS));
        assert!(
            orchestrator::worker::RUNTIME_THREAD_NAME.len() <= 15,
            "Linux cuts it"
        );
    }

    #[test]
    fn worker_thread_cpu_counts_only_named_threads() {
        let before = task_threads_cpu().unwrap();
        std::thread::Builder::new()
            .name("not-a-worker".into())
            .spawn(|| spin(Duration::from_millis(30)))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(
            task_threads_cpu().unwrap(),
            before,
            "other threads are left out"
        );
        // A named thread's CPU shows up while it lives (it leaves /proc when it ends);
        // spin until it does, as a loaded machine may give the thread little CPU.
        let seen = std::thread::Builder::new()
            .name("worker-thread-0".into())
            .spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    spin(Duration::from_millis(10));
                    if task_threads_cpu().unwrap() >= before + Duration::from_millis(20)
                        && worker_cpu().unwrap() >= Duration::from_millis(20)
                    {
                        return true;
                    }
                }
                false
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(seen, "the worker thread's CPU time was never counted");
    }

    #[test]
    fn a_probe_reports_the_declared_metric_names() {
        let p = Probe::start(None);
        let s = p.finish();
        let names: Vec<&str> = s.metrics().iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"wall_ms") && names.contains(&"cpu_ms"));
        assert!(!names.contains(&"alloc_count"), "no allocator, no counts");
        for n in names {
            assert!(crate::scenario::is_known_metric(n), "{n}");
        }
    }
}
