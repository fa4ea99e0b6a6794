//! `CountingAllocator` installed as the global allocator, as the `flowbench` binary does.
//!
//! One test function only: the counters are process-wide, and libtest's own threads
//! allocate when tests finish, which would leak into another test's counted span.

use harness::measure::CountingAllocator;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator::new();

#[test]
fn counts_allocations_bytes_and_reallocations() {
    // A box of a u64: exactly one allocation of 8 bytes, and its release.
    let (boxed, d) = GLOBAL.count(|| Box::new(std::hint::black_box(7u64)));
    assert_eq!(
        (d.allocations, d.bytes_allocated, d.deallocations),
        (1, 8, 0)
    );
    let (_, d) = GLOBAL.count(|| drop(boxed));
    assert_eq!((d.deallocations, d.bytes_deallocated), (1, 8));

    // Nothing allocated, nothing counted.
    let (sum, d) = GLOBAL.count(|| (1..=100u32).sum::<u32>());
    assert_eq!(sum, 5050);
    assert_eq!(d.alloc_count(), 0);

    // Growing a Vec one push at a time: one allocation, then reallocations as it doubles
    // (4 → 8 → … → 1024 elements of u32: 8 reallocations), and 1024·4 bytes at the end.
    let (v, d) = GLOBAL.count(|| {
        let mut v: Vec<u32> = Vec::new();
        for i in 0..1024 {
            v.push(std::hint::black_box(i));
        }
        v
    });
    assert_eq!(v.capacity(), 1024);
    assert_eq!(d.allocations, 1);
    assert_eq!(d.reallocations, 8);
    assert_eq!(d.alloc_count(), 9);
    assert_eq!(d.net_bytes(), 4096);

    // A large zeroed buffer goes through alloc_zeroed and is counted in full.
    let (buf, d) = GLOBAL.count(|| vec![0u8; 1 << 20]);
    assert_eq!(buf.len(), 1 << 20);
    assert_eq!((d.allocations, d.bytes_allocated), (1, 1 << 20));

    // Snapshots only ever grow.
    let a = GLOBAL.snapshot();
    drop(v);
    let b = GLOBAL.snapshot();
    assert!(b.deallocations > a.deallocations && b.allocations >= a.allocations);
}
