//! A counting global allocator: the deterministic allocation counters (`alloc_count`,
//! `alloc_bytes`) that CI can gate on even on a noisy machine.
//!
//! [`CountingAllocator`] wraps [`std::alloc::System`] and counts every call with relaxed
//! atomics: the counters only need to be exact, not ordered with other memory, and a
//! relaxed `fetch_add` is the cheapest exact counter there is. A global allocator can be
//! set once per binary, so the `flowbench` binary installs it:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: harness::measure::CountingAllocator = harness::measure::CountingAllocator::new();
//!
//! let (rows, delta) = GLOBAL.count(|| load_rows());
//! println!("{} allocations, {} bytes", delta.alloc_count(), delta.bytes_allocated);
//! ```
//!
//! Counts are process-wide: allocations by other threads during the counted span are
//! included, as they are part of the cost of the code under test.
//!
//! A `realloc` is counted apart (`reallocations`) and, in bytes, as the new size allocated
//! and the old size freed; [`AllocDelta::alloc_count`] adds allocations and reallocations,
//! as each is a call into the allocator that may copy.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A [`GlobalAlloc`] that forwards to [`System`] and counts calls and bytes.
#[derive(Debug, Default)]
pub struct CountingAllocator {
    allocations: AtomicU64,
    deallocations: AtomicU64,
    reallocations: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_deallocated: AtomicU64,
}

/// The counters at one instant, since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocSnapshot {
    /// `alloc` and `alloc_zeroed` calls.
    pub allocations: u64,
    /// `dealloc` calls.
    pub deallocations: u64,
    /// `realloc` calls.
    pub reallocations: u64,
    /// Bytes requested by allocations plus the new sizes of reallocations.
    pub bytes_allocated: u64,
    /// Bytes released by deallocations plus the old sizes of reallocations.
    pub bytes_deallocated: u64,
}

/// The counters' change between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocDelta {
    /// `alloc` and `alloc_zeroed` calls.
    pub allocations: u64,
    /// `dealloc` calls.
    pub deallocations: u64,
    /// `realloc` calls.
    pub reallocations: u64,
    /// Bytes allocated (including reallocations' new sizes).
    pub bytes_allocated: u64,
    /// Bytes freed (including reallocations' old sizes).
    pub bytes_deallocated: u64,
}

impl AllocSnapshot {
    /// The change from `earlier` to this snapshot.
    pub fn since(&self, earlier: &AllocSnapshot) -> AllocDelta {
        AllocDelta {
            allocations: self.allocations.wrapping_sub(earlier.allocations),
            deallocations: self.deallocations.wrapping_sub(earlier.deallocations),
            reallocations: self.reallocations.wrapping_sub(earlier.reallocations),
            bytes_allocated: self.bytes_allocated.wrapping_sub(earlier.bytes_allocated),
            bytes_deallocated: self
                .bytes_deallocated
                .wrapping_sub(earlier.bytes_deallocated),
        }
    }
}

impl AllocDelta {
    /// Calls that obtained memory: allocations plus reallocations (metric `alloc_count`).
    pub fn alloc_count(&self) -> u64 {
        self.allocations + self.reallocations
    }

    /// Bytes still held at the end that were not held at the start (negative if more was
    /// freed than allocated).
    pub fn net_bytes(&self) -> i64 {
        self.bytes_allocated as i64 - self.bytes_deallocated as i64
    }

    /// The values under the scenario metric names `alloc_count` and `alloc_bytes`.
    pub fn metrics(&self) -> [(&'static str, f64); 2] {
        [
            ("alloc_count", self.alloc_count() as f64),
            ("alloc_bytes", self.bytes_allocated as f64),
        ]
    }
}

impl CountingAllocator {
    /// A fresh allocator with zeroed counters; `const` so it can initialise a static.
    pub const fn new() -> Self {
        Self {
            allocations: AtomicU64::new(0),
            deallocations: AtomicU64::new(0),
            reallocations: AtomicU64::new(0),
            bytes_allocated: AtomicU64::new(0),
            bytes_deallocated: AtomicU64::new(0),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> AllocSnapshot {
        AllocSnapshot {
            allocations: self.allocations.load(Ordering::Relaxed),
            deallocations: self.deallocations.load(Ordering::Relaxed),
            reallocations: self.reallocations.load(Ordering::Relaxed),
            bytes_allocated: self.bytes_allocated.load(Ordering::Relaxed),
            bytes_deallocated: self.bytes_deallocated.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` and returns what it allocated (process-wide, see the module docs).
    pub fn count<T>(&self, f: impl FnOnce() -> T) -> (T, AllocDelta) {
        let before = self.snapshot();
        let value = f();
        (value, self.snapshot().since(&before))
    }

    fn record_alloc(&self, size: usize) {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        self.bytes_allocated
            .fetch_add(size as u64, Ordering::Relaxed);
    }
}

// The one place the harness implements an unsafe trait: `GlobalAlloc` has no safe form.
#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.record_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.record_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with this layout.
        unsafe { System.dealloc(ptr, layout) };
        self.deallocations.fetch_add(1, Ordering::Relaxed);
        self.bytes_deallocated
            .fetch_add(layout.size() as u64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the rest.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            self.reallocations.fetch_add(1, Ordering::Relaxed);
            self.bytes_allocated
                .fetch_add(new_size as u64, Ordering::Relaxed);
            self.bytes_deallocated
                .fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_subtracts_field_by_field() {
        let a = AllocSnapshot {
            allocations: 10,
            deallocations: 4,
            reallocations: 1,
            bytes_allocated: 1000,
            bytes_deallocated: 300,
        };
        let b = AllocSnapshot {
            allocations: 15,
            deallocations: 9,
            reallocations: 3,
            bytes_allocated: 1600,
            bytes_deallocated: 1000,
        };
        let d = b.since(&a);
        assert_eq!((d.allocations, d.deallocations, d.reallocations), (5, 5, 2));
        assert_eq!(d.alloc_count(), 7);
        assert_eq!(d.net_bytes(), -100);
        assert_eq!(d.metrics(), [("alloc_count", 7.0), ("alloc_bytes", 600.0)]);
    }

    /// Not installed as the global allocator here (integration test `alloc_counting` does
    /// that); calling it directly still exercises the counting.
    #[test]
    #[allow(unsafe_code)]
    fn direct_calls_are_counted() {
        let a = CountingAllocator::new();
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: a non-zero-size layout; the pointers are freed with the allocator and
        // layout they came from.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            let p = a.realloc(p, layout, 128);
            assert!(!p.is_null());
            a.dealloc(p, Layout::from_size_align(128, 8).unwrap());
            let z = a.alloc_zeroed(layout);
            assert_eq!(*z, 0);
            a.dealloc(z, layout);
        }
        let s = a.snapshot();
        assert_eq!((s.allocations, s.reallocations, s.deallocations), (2, 1, 2));
        assert_eq!(s.bytes_allocated, 64 + 128 + 64);
        assert_eq!(s.bytes_deallocated, 64 + 128 + 64);
    }
}
