//! `worker-threads`: throughput, latency, memory and CPU use across worker thread
//! counts, for CPU-bound, sleep-bound and mixed task runs (Kestra: 4 × cores by default
//! since 0.19; the 128 it is compared with was Kestra's old docker-compose setting,
//! `--worker-thread=128`, not a code default, which was 2 × cores at 0.18).
//!
//! For each task kind of `sweep.task` (a flow file `flows/<task>.yaml`, a ForEach over
//! `params.iterations` values), the thread counts of `sweep.threads` (or `--threads`)
//! are run interleaved: 1 8 128 1 8 128 … Each run starts a worker with that many
//! threads on a fresh database and runs one execution. Results are recorded twice:
//! under the variant `sweep` at `{task, threads}` for the sweep charts, and, at the
//! thread counts the scenario's variants set (`worker.threads = 128`, and the default
//! 4 × cores), under those variants at `{task}`, so the two are compared as A/B.
//!
//! When the scenario declares the `idle_thread_*` metrics, it also measures what one idle
//! worker thread costs this process ([`idle`]), under the variant `idle-threads`: the
//! explanation of the peak RSS ratio, measured rather than guessed.

use std::collections::BTreeMap;

use orchestrator::service::Components;
use reports::results::{ParamValue as Pv, VariantResult};
use serde_json::{Map, Value};

use super::driver::{LatencyUnit, Observed, drive_variants};
use super::{Env, Probe, Recorder, Result, WorkloadError, flows};
use crate::latency::LatencyHistogram;
use crate::scenario::{ParamValue, Variant};

/// The variant name the sweep points are recorded under.
pub const SWEEP_VARIANT: &str = "sweep";

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let iterations = env.int_param("iterations")?.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads: Vec<usize> = match &env.threads {
        Some(t) => t.clone(),
        None => env
            .sweep("threads")?
            .iter()
            .map(|v| match v {
                ParamValue::Integer(n) if *n > 0 => Ok(*n as usize),
                ParamValue::Text(t) if t == "4x-cores" => Ok(4 * cores),
                other => Err(WorkloadError::Failed(format!(
                    "sweep.threads: {other:?} is neither a positive integer nor \"4x-cores\""
                ))),
            })
            .collect::<Result<_>>()?,
    };
    // The A/B variants' thread counts must be measured even if the sweep omits them.
    let mut variant_threads = BTreeMap::new();
    for v in &s.variants {
        let n = env.knobs(v)?.worker_threads;
        variant_threads.insert(v.name.clone(), n);
        threads.push(n);
    }
    threads.sort_unstable();
    threads.dedup();
    rec.add_variant(VariantResult {
        name: SWEEP_VARIANT.into(),
        knobs: Default::default(),
        params: Default::default(),
    });

    let tasks: Vec<String> = env
        .sweep("task")?
        .iter()
        .map(|v| match v {
            ParamValue::Text(t) => Ok(t.clone()),
            other => Err(WorkloadError::Failed(format!(
                "sweep.task: {other:?} is not a name"
            ))),
        })
        .collect::<Result<_>>()?;
    let idle_counts = idle::counts(&variant_threads);
    let measure_idle = idle::METRICS.iter().any(|m| s.metric(m).is_some());
    // The thread counts run as variants of their own, interleaved: 1 8 128 1 8 128 …
    let counts: Vec<Variant> = threads
        .iter()
        .map(|n| Variant {
            name: format!("{n} threads"),
            knobs: [("worker.threads".to_string(), n.to_string())].into(),
            flow: None,
            load: Default::default(),
        })
        .collect();
    for task in &tasks {
        let source = flows::read(env, std::path::Path::new(&format!("flows/{task}.yaml")))?;
        drive_variants(env, rec, task, &counts, async |slot| {
            let count = threads[slot.variant_index];
            let mut knobs = env.base_knobs.clone();
            knobs.worker_threads = count;
            let o = env
                .boot(
                    &knobs,
                    &format!("threads-{task}-{}", slot.ordinal),
                    Components::ALL,
                )
                .await?;
            let flow = flows::deploy(&o, &source, task).await?;
            let mut inputs = Map::new();
            inputs.insert("iterations".into(), Value::from(iterations));
            let probe = Probe::start(env.alloc);
            let done = async {
                let created = o
                    .create_execution(&flow.namespace, &flow.id, inputs, vec![], None)
                    .await
                    .map_err(|e| WorkloadError::failed("creating an execution", e))?;
                let done = tokio::select! {
                    _ = env.cancel.cancelled() => return Err(WorkloadError::Interrupted),
                    r = o.wait_terminal(&created.id, flows::EXECUTION_TIMEOUT) => r,
                }
                .map_err(|e| WorkloadError::failed("waiting for the execution", e))?;
                flows::expect_success(&done)?;
                Ok(done)
            }
            .await;
            let sample = probe.finish();
            o.shutdown().await;
            let done = done?;
            // Task runs of runnable tasks (not the ForEach itself): created → ended,
            // so the wait for a free thread counts, as a user sees it.
            let mut h = LatencyHistogram::new();
            for tr in done.task_run_list.iter().filter(|tr| tr.value.is_some()) {
                h.record(tr.state.duration().unsigned_abs());
            }
            let task_runs = h.len() as f64;
            let mut metrics = sample.metrics();
            metrics.push(("task_runs_per_s", task_runs / sample.wall.as_secs_f64()));
            metrics.push(("throughput_per_s", task_runs / sample.wall.as_secs_f64()));
            let summary = h.summary();
            metrics.push(("latency_p50_ms", summary.p50_us as f64 / 1000.0));
            metrics.push(("latency_p99_ms", summary.p99_us as f64 / 1000.0));
            let sweep_point = super::params([
                ("task", Pv::Text(task.clone())),
                ("threads", (count as i64).into()),
            ]);
            let mut seen = Observed::default();
            seen.record_all_as(SWEEP_VARIANT, &sweep_point, &metrics);
            let ab_point = super::params([("task", Pv::Text(task.clone()))]);
            for (name, _) in variant_threads.iter().filter(|(_, t)| **t == count) {
                seen.record_all_as(name, &ab_point, &metrics);
            }
            seen.latency_as(
                SWEEP_VARIANT,
                &sweep_point,
                "latency_p99_ms",
                h,
                LatencyUnit::Millis,
            );
            Ok(seen)
        })
        .await?;
    }
    if measure_idle {
        idle::measure(env, rec, idle_counts).await?;
    }
    Ok(())
}

/// What an idle worker thread costs here.
///
/// The orchestrator's own worker is started with no task to run, once with one thread and
/// once with the most any variant uses (128), interleaved, `repetitions` times. Each time,
/// after the database pool is up and before the worker starts, and again once all its
/// threads exist, `VmRSS` and `VmSize` are read from `/proc/self/status`. What the extra
/// threads add, divided by their number, is one idle thread's cost; the fixed cost of a
/// worker (its poller and writer tasks) cancels out.
///
/// * `idle_thread_rss_kib`: resident memory: the stack pages a thread has touched, its
///   TLS and glibc's thread descriptor.
/// * `idle_thread_vsz_kib`: address space, mostly the reserved stack. glibc keeps up to
///   40 MiB of exited threads' stacks for reuse, so in a process that ran threads before,
///   this delta can fall short of the reservation.
/// * `idle_thread_stack_kib`: the reservation itself, immune to that cache: the size of
///   the memory mapping (and guard page) holding each idle worker thread's stack pointer,
///   read from `/proc/self/task/<tid>/syscall` and `/proc/self/smaps`.
pub mod idle {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use orchestrator::service::Components;
    use reports::results::VariantResult;

    use super::super::driver::{Observed, drive_variants};
    use super::super::{Env, Recorder, Result, WorkloadError};
    use crate::scenario::Variant;

    /// The variant the figures are recorded under.
    pub const VARIANT: &str = "idle-threads";
    /// The metrics this measures; the scenario declares the ones it wants.
    pub const METRICS: [&str; 3] = [
        "idle_thread_rss_kib",
        "idle_thread_vsz_kib",
        "idle_thread_stack_kib",
    ];
    /// How long the worker's threads may take to appear.
    const START_TIMEOUT: Duration = Duration::from_secs(20);
    /// Lets the worker's poll loop settle before memory is read.
    const SETTLE: Duration = Duration::from_millis(300);
    /// The worker names its threads `worker-thread-N` (`comm` keeps 15 bytes of it).
    const THREAD_PREFIX: &str = "worker-thread";

    /// One thread, and the most any variant runs.
    pub fn counts(variant_threads: &BTreeMap<String, usize>) -> Vec<usize> {
        let most = variant_threads.values().copied().max().unwrap_or(1);
        if most > 1 { vec![1, most] } else { vec![] }
    }

    pub async fn measure(env: &Env<'_>, rec: &mut Recorder, counts: Vec<usize>) -> Result<()> {
        let [small, large] = counts[..] else {
            return Ok(());
        };
        rec.add_variant(VariantResult {
            name: VARIANT.into(),
            knobs: Default::default(),
            params: super::super::params([("threads", (large as i64).into())]),
        });
        let no_params = Default::default();
        // The two counts run as a pair of variants, small then large in each round; the
        // large run records what its extra threads added over the small run of its round.
        let pair: Vec<Variant> = [small, large]
            .iter()
            .map(|n| Variant {
                name: format!("idle, {n} threads"),
                knobs: Default::default(),
                flow: None,
                load: Default::default(),
            })
            .collect();
        let mut small_run = None;
        drive_variants(env, rec, "idle", &pair, async |slot| {
            let count = [small, large][slot.variant_index];
            let added = started_worker(env, count, slot.ordinal).await?;
            let mut seen = Observed::default();
            match small_run.take() {
                None => small_run = Some(added),
                Some(a) => {
                    let extra = (large - small) as f64;
                    seen.record_all_as(
                        VARIANT,
                        &no_params,
                        &[
                            ("idle_thread_rss_kib", (added.rss - a.rss) / extra),
                            ("idle_thread_vsz_kib", (added.vsz - a.vsz) / extra),
                            ("idle_thread_stack_kib", added.stack_per_thread),
                        ],
                    );
                }
            }
            Ok(seen)
        })
        .await
    }

    /// What starting an idle worker with `count` threads added.
    #[derive(Debug, Clone, Copy)]
    struct Added {
        rss: f64,
        vsz: f64,
        stack_per_thread: f64,
    }

    async fn started_worker(env: &Env<'_>, count: usize, round: usize) -> Result<Added> {
        let mut knobs = env.base_knobs.clone();
        knobs.worker_threads = count;
        let label = format!("idle-{count}-{round}");
        let o = env.boot(&knobs, &label, Components::NONE).await?;
        tokio::time::sleep(SETTLE).await;
        let before = status()?;
        o.start(Components {
            worker: true,
            ..Components::NONE
        });
        let started = Instant::now();
        let stacks = loop {
            let stacks = thread_stacks(THREAD_PREFIX).map_err(io_failed)?;
            if stacks.len() >= count {
                break stacks;
            }
            if started.elapsed() > START_TIMEOUT {
                o.shutdown().await;
                return Err(WorkloadError::Failed(format!(
                    "the worker started {} of its {count} threads within {START_TIMEOUT:?}",
                    stacks.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        tokio::time::sleep(SETTLE).await;
        let after = status()?;
        o.shutdown().await;
        Ok(Added {
            rss: after.0 - before.0,
            vsz: after.1 - before.1,
            stack_per_thread: stacks.iter().sum::<u64>() as f64 / stacks.len() as f64,
        })
    }

    fn io_failed(e: std::io::Error) -> WorkloadError {
        WorkloadError::failed("reading /proc/self", e)
    }

    /// (`VmRSS`, `VmSize`) of this process, in KiB.
    fn status() -> Result<(f64, f64)> {
        let text = std::fs::read_to_string("/proc/self/status").map_err(io_failed)?;
        let field = |name: &str| {
            status_kib(&text, name).ok_or_else(|| {
                WorkloadError::Failed(format!("/proc/self/status has no {name} line"))
            })
        };
        Ok((field("VmRSS")? as f64, field("VmSize")? as f64))
    }

    fn status_kib(status: &str, field: &str) -> Option<u64> {
        status.lines().find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().strip_suffix("kB")?.trim().parse().ok()
        })
    }

    /// For each thread of this process whose name starts with `prefix` and that is
    /// blocked in a system call, the KiB of the mapping holding its stack pointer plus
    /// the guard page below it. Threads that are running have no stack pointer to read
    /// and are left out.
    pub fn thread_stacks(prefix: &str) -> std::io::Result<Vec<u64>> {
        let maps = mappings(&std::fs::read_to_string("/proc/self/smaps")?);
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc/self/task")? {
            let dir = entry?.path();
            let (Ok(comm), Ok(syscall)) = (
                std::fs::read_to_string(dir.join("comm")),
                std::fs::read_to_string(dir.join("syscall")),
            ) else {
                continue; // the thread ended meanwhile
            };
            if !comm.trim_end().starts_with(prefix) {
                continue;
            }
            if let Some(kib) = stack_pointer(&syscall).and_then(|sp| stack_kib(&maps, sp)) {
                out.push(kib);
            }
        }
        Ok(out)
    }

    /// The stack pointer in a `/proc/<pid>/task/<tid>/syscall` line: `nr args×6 sp pc`
    /// for a thread in a system call, `-1 sp pc` for one blocked outside, `running`
    /// otherwise (proc(5)).
    pub fn stack_pointer(syscall: &str) -> Option<u64> {
        let fields: Vec<&str> = syscall.split_whitespace().collect();
        if fields.len() < 3 {
            return None;
        }
        u64::from_str_radix(fields[fields.len() - 2].strip_prefix("0x")?, 16).ok()
    }

    /// One mapping of `/proc/self/smaps`: its range, permissions and size in KiB.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Mapping {
        pub start: u64,
        pub end: u64,
        pub perms: String,
        pub size_kib: u64,
    }

    /// The mappings of an smaps text, in address order.
    pub fn mappings(smaps: &str) -> Vec<Mapping> {
        let mut out: Vec<Mapping> = Vec::new();
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let Some(first) = fields.next() else { continue };
            if let Some(kib) = first
                .strip_prefix("Size:")
                .map(|_| fields.next().and_then(|v| v.parse().ok()))
            {
                if let (Some(m), Some(kib)) = (out.last_mut(), kib) {
                    m.size_kib = kib;
                }
                continue;
            }
            let (Some((start, end)), Some(perms)) = (first.split_once('-'), fields.next()) else {
                continue;
            };
            let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            else {
                continue; // a `Key: value` line
            };
            out.push(Mapping {
                start,
                end,
                perms: perms.to_string(),
                size_kib: (end - start) / 1024,
            });
        }
        out
    }

    /// KiB of the mapping holding `sp`, plus the inaccessible guard mapping just below it.
    pub fn stack_kib(maps: &[Mapping], sp: u64) -> Option<u64> {
        let i = maps.iter().position(|m| m.start <= sp && sp < m.end)?;
        let guard = i
            .checked_sub(1)
            .map(|g| &maps[g])
            .filter(|g| g.end == maps[i].start && g.perms.starts_with("---"))
            .map_or(0, |g| g.size_kib);
        Some(maps[i].size_kib + guard)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reads_the_stack_pointer_of_a_blocked_thread() {
            let line = "202 0x7f00 0x80 0x0 0x0 0x0 0x0 0x7fabc000 0x7f123456\n";
            assert_eq!(stack_pointer(line), Some(0x7fabc000));
            assert_eq!(stack_pointer("-1 0x7fff1000 0x401000\n"), Some(0x7fff1000));
            assert_eq!(stack_pointer("running\n"), None);
        }

        #[test]
        fn a_stack_is_its_mapping_and_the_guard_below() {
            let smaps = "\
7f0000000000-7f0000001000 ---p 00000000 00:00 0 
Size:                  4 kB
Rss:                   0 kB
7f0000001000-7f0000201000 rw-p 00000000 00:00 0 
Size:               2048 kB
Rss:                  16 kB
7f0000300000-7f0000301000 r--p 00000000 08:01 42    /usr/lib/libc.so.6
Size:                  4 kB
";
            let maps = mappings(smaps);
            assert_eq!(maps.len(), 3);
            assert_eq!(stack_kib(&maps, 0x7f0000200000), Some(2052));
            // No guard below a file mapping; an address outside every mapping has no stack.
            assert_eq!(stack_kib(&maps, 0x7f0000300800), Some(4));
            assert_eq!(stack_kib(&maps, 0x10), None);
        }

        /// Threads spawned as the worker spawns them (std's default stack) and blocked on
        /// a channel, as idle worker threads are: each is found, with a stack at least as
        /// large as std's minimum.
        #[test]
        fn finds_the_stacks_of_blocked_threads() {
            let (txs, handles): (Vec<_>, Vec<_>) = (0..4)
                .map(|n| {
                    let (tx, rx) = std::sync::mpsc::channel::<()>();
                    let h = std::thread::Builder::new()
                        .name(format!("stkprobe-{n}"))
                        .spawn(move || while rx.recv().is_ok() {})
                        .unwrap();
                    (tx, h)
                })
                .unzip();
            let started = Instant::now();
            let stacks = loop {
                let stacks = thread_stacks("stkprobe-").unwrap();
                if stacks.len() == 4 || started.elapsed() > Duration::from_secs(10) {
                    break stacks;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            drop(txs);
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(stacks.len(), 4, "{stacks:?}");
            // std's default is 2 MiB unless RUST_MIN_STACK says otherwise; any real
            // stack is far above the 4 KiB a wrong mapping (a guard page) would give.
            assert!(stacks.iter().all(|&kib| kib >= 64), "{stacks:?}");
        }
    }
}
