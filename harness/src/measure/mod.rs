//! Per-run measurement: wall time, CPU time (user and sys) and peak RSS.
//!
//! This is the bottom layer of the harness (**measurement** → statistics → gate). It
//! produces one [`Measurement`] per run, either
//!
//! * for work inside this process, with [`measure`]: `getrusage(RUSAGE_SELF)` deltas and
//!   the `VmHWM` high-water mark of `/proc/self/status`, reset first through
//!   `/proc/self/clear_refs` so it covers the closure rather than the whole process life;
//! * or for a child process, with [`measure_command`] or [`wait_child`]: `wait4`, which
//!   returns that child's own rusage, `ru_maxrss` included.
//!
//! `RUSAGE_SELF` covers every thread of the process, so in-process CPU figures include
//! whatever else the process runs meanwhile (a tokio runtime, a database pool): that is
//! the cost the orchestrator pays, which is what the scenarios compare.
//!
//! Allocation counters live in [`alloc`] ([`CountingAllocator`]) and the optional dhat
//! heap profile in [`heap_profile`].
//!
//! ```
//! let (sum, m) = harness::measure::measure(|| (0..1_000u64).sum::<u64>()).unwrap();
//! assert_eq!(sum, 499_500);
//! assert!(m.wall >= std::time::Duration::ZERO);
//! ```

pub mod alloc;
pub mod heap_profile;

pub use alloc::{AllocDelta, AllocSnapshot, CountingAllocator};

use std::fs;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What one run cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// Elapsed wall-clock time.
    pub wall: Duration,
    /// CPU time in user mode.
    pub cpu_user: Duration,
    /// CPU time in the kernel on the run's behalf.
    pub cpu_sys: Duration,
    /// Peak resident set size in KiB; `None` where the OS does not report it.
    pub peak_rss_kib: Option<u64>,
    /// Whether the peak covers only this run. For in-process runs, `false` means the reset
    /// through `/proc/self/clear_refs` failed and the peak is the process's since start;
    /// a child's peak always covers only the child.
    pub peak_rss_reset: bool,
}

impl Measurement {
    /// User plus sys CPU time.
    pub fn cpu(&self) -> Duration {
        self.cpu_user + self.cpu_sys
    }

    /// The values under the scenario metric names `wall_ms`, `cpu_user_ms`, `cpu_sys_ms`,
    /// `cpu_ms` and, when known, `peak_rss_kib`.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut out = vec![
            ("wall_ms", ms(self.wall)),
            ("cpu_user_ms", ms(self.cpu_user)),
            ("cpu_sys_ms", ms(self.cpu_sys)),
            ("cpu_ms", ms(self.cpu())),
        ];
        if let Some(kib) = self.peak_rss_kib {
            out.push(("peak_rss_kib", kib as f64));
        }
        out
    }
}

/// User and sys CPU time, as `getrusage` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Time in user mode.
    pub user: Duration,
    /// Time in the kernel.
    pub sys: Duration,
}

/// A child process's exit status and cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildRun {
    /// How the child ended.
    pub status: ExitStatus,
    /// Its wall time (from the `started` instant given), CPU times and peak RSS.
    pub measurement: Measurement,
}

/// Runs `f` and measures it. Fails only if the OS refuses `getrusage`.
pub fn measure<T>(f: impl FnOnce() -> T) -> io::Result<(T, Measurement)> {
    let peak_rss_reset = reset_peak_rss().is_ok();
    let before = self_cpu_times()?;
    let started = Instant::now();
    let value = f();
    let wall = started.elapsed();
    let after = self_cpu_times()?;
    Ok((
        value,
        Measurement {
            wall,
            cpu_user: after.user.saturating_sub(before.user),
            cpu_sys: after.sys.saturating_sub(before.sys),
            peak_rss_kib: peak_rss_kib().ok(),
            peak_rss_reset,
        },
    ))
}

/// Spawns `cmd`, waits for it and measures it. The command's stdio is used as configured;
/// piped stdout or stderr must not be left unread by a chatty child, or it blocks.
pub fn measure_command(cmd: &mut Command) -> io::Result<ChildRun> {
    let started = Instant::now();
    let child = cmd.spawn()?;
    wait_child(child, started)
}

/// Waits for `child` with `wait4` and returns its status and own resource usage. Its
/// stdin, if piped, is closed first so a child reading it sees end of file. `started` is
/// when the caller spawned it, for the wall time.
pub fn wait_child(mut child: Child, started: Instant) -> io::Result<ChildRun> {
    drop(child.stdin.take());
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    let (raw_status, usage) = wait4(pid)?;
    let wall = started.elapsed();
    // `child` was reaped by wait4; dropping it only closes its pipes (std never waits on drop).
    drop(child);
    Ok(ChildRun {
        status: ExitStatus::from_raw(raw_status),
        measurement: Measurement {
            wall,
            cpu_user: timeval(usage.ru_utime),
            cpu_sys: timeval(usage.ru_stime),
            // Linux reports ru_maxrss in KiB.
            peak_rss_kib: u64::try_from(usage.ru_maxrss).ok(),
            peak_rss_reset: true,
        },
    })
}

/// CPU times of this whole process so far (`getrusage(RUSAGE_SELF)`).
pub fn self_cpu_times() -> io::Result<CpuTimes> {
    rusage(libc::RUSAGE_SELF).map(|u| CpuTimes {
        user: timeval(u.ru_utime),
        sys: timeval(u.ru_stime),
    })
}

/// CPU times of this process's terminated and waited-for children
/// (`getrusage(RUSAGE_CHILDREN)`).
pub fn children_cpu_times() -> io::Result<CpuTimes> {
    rusage(libc::RUSAGE_CHILDREN).map(|u| CpuTimes {
        user: timeval(u.ru_utime),
        sys: timeval(u.ru_stime),
    })
}

/// This process's peak RSS in KiB since start or since the last [`reset_peak_rss`]
/// (`VmHWM` in `/proc/self/status`).
pub fn peak_rss_kib() -> io::Result<u64> {
    proc_status_kib("VmHWM")
}

/// This process's current RSS in KiB (`VmRSS` in `/proc/self/status`).
pub fn current_rss_kib() -> io::Result<u64> {
    proc_status_kib("VmRSS")
}

/// Resets the peak RSS to the current RSS by writing `5` to `/proc/self/clear_refs`
/// (Linux ≥ 4.0, see proc(5)). Fails where `/proc` is missing or read-only.
///
/// First hands the memory the allocator holds free back to the kernel (glibc's
/// `malloc_trim`), so that the new mark starts from the memory in use rather than from what
/// earlier work in this process left cached in malloc's arenas. Without it, a scenario that
/// runs after others in one process measured their leftovers: both variants of B3 showed the
/// same peak, 128–143 MiB from one run to the next, whatever the variant did.
pub fn reset_peak_rss() -> io::Result<()> {
    release_free_memory();
    fs::write("/proc/self/clear_refs", "5")
}

/// Returns the allocator's free memory to the kernel where the allocator can (glibc).
#[allow(unsafe_code)]
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free pages; it takes the arenas' locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn proc_status_kib(field: &str) -> io::Result<u64> {
    let status = fs::read_to_string("/proc/self/status")?;
    parse_status_kib(&status, field).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no `{field}` line in /proc/self/status"),
        )
    })
}

/// Finds `field:   1234 kB` in a `/proc/<pid>/status` text.
fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}

#[allow(unsafe_code)]
fn rusage(who: libc::c_int) -> io::Result<libc::rusage> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory of the right size; getrusage only writes it.
    let rc = unsafe { libc::getrusage(who, usage.as_mut_ptr()) };
    if rc == 0 {
        // SAFETY: getrusage succeeded, so it filled the struct (and it was zeroed anyway).
        Ok(unsafe { usage.assume_init() })
    } else {
        Err(io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn wait4(pid: libc::pid_t) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: both pointers are valid for writes; wait4 fills them for the reaped child.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
        if rc == pid {
            // SAFETY: wait4 returned the child, so it filled the rusage (zeroed anyway).
            return Ok((status, unsafe { usage.assume_init() }));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status_lines() {
        let status = "Name:\tcat\nVmPeak:\t  8000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t     999 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(1234));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(999));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(parse_status_kib("VmHWM:\tlots", "VmHWM"), None);
    }

    #[test]
    fn measure_returns_the_value_and_counts_cpu() {
        // Burn CPU in a way the optimiser can't remove; rusage must see some of it.
        let (x, m) = measure(|| {
            let mut x = 0u64;
            for i in 0..5_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            x
        })
        .unwrap();
        assert_ne!(x, 0);
        assert!(m.cpu() > Duration::ZERO, "{m:?}");
        assert_eq!(m.cpu(), m.cpu_user + m.cpu_sys);
        assert!(m.peak_rss_kib.is_some_and(|k| k > 0));
        let names: Vec<&str> = m.metrics().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "wall_ms",
                "cpu_user_ms",
                "cpu_sys_ms",
                "cpu_ms",
                "peak_rss_kib"
            ]
        );
    }

    #[test]
    fn timeval_converts_seconds_and_micros() {
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 500_000,
        };
        assert_eq!(timeval(tv), Duration::from_millis(2500));
    }
}
