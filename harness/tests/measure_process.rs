//! Measurement of the current process's peak RSS and of child processes.
//!
//! One test function for the in-process part: peak RSS is process-wide, so a concurrent
//! test allocating would blur what this one checks.

use std::process::Command;
use std::time::Duration;

use harness::measure::{current_rss_kib, measure, measure_command, peak_rss_kib, reset_peak_rss};

const MIB_IN_KIB: u64 = 1024;

#[test]
fn peak_rss_follows_a_touched_buffer_and_resets() {
    let before = current_rss_kib().unwrap();
    let (len, m) = measure(|| {
        // vec![1; n] writes every byte, so every page becomes resident.
        let buf = std::hint::black_box(vec![1u8; 64 << 20]);
        buf.len()
    })
    .unwrap();
    assert_eq!(len, 64 << 20);
    let peak = m.peak_rss_kib.unwrap();
    assert!(
        peak >= before + 60 * MIB_IN_KIB,
        "peak {peak} KiB, before {before} KiB"
    );

    // The 64 MiB buffer was freed (a large block goes back to the OS); after a reset the
    // high-water mark must drop back near the current RSS.
    if reset_peak_rss().is_err() {
        eprintln!("skipped: /proc/self/clear_refs is not writable here, no peak reset");
        return;
    }
    assert!(m.peak_rss_reset);
    let after_reset = peak_rss_kib().unwrap();
    assert!(
        after_reset + 30 * MIB_IN_KIB < peak,
        "peak after reset {after_reset} KiB, before {peak} KiB"
    );
}

#[test]
fn child_exit_status_is_kept() {
    let run = measure_command(Command::new("sh").args(["-c", "exit 3"])).unwrap();
    assert_eq!(run.status.code(), Some(3));
    let run = measure_command(&mut Command::new("true")).unwrap();
    assert!(run.status.success());
}

#[test]
fn child_peak_rss_and_cpu_are_its_own() {
    // dd allocates its 64 MiB block buffer and fills it from /dev/zero.
    let run = measure_command(
        Command::new("dd")
            .args(["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
            .stderr(std::process::Stdio::null()),
    )
    .unwrap();
    assert!(run.status.success());
    let peak = run.measurement.peak_rss_kib.unwrap();
    assert!(peak >= 60 * MIB_IN_KIB, "child peak {peak} KiB");

    // A shell busy loop spends user CPU in the child, which wait4 attributes to it.
    let run = measure_command(
        Command::new("sh").args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"]),
    )
    .unwrap();
    assert!(run.status.success());
    assert!(
        run.measurement.cpu() > Duration::ZERO,
        "{:?}",
        run.measurement
    );
    assert!(run.measurement.wall > Duration::ZERO);
}
