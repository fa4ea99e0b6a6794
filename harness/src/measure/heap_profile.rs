//! The `--heap-profile` hook: a full dhat heap profile of a run, on request.
//!
//! Counters ([`CountingAllocator`](super::CountingAllocator)) say *how much* was
//! allocated; a dhat profile says *where*, with backtraces, viewable in dhat's viewer
//! (`dh_view.html`). It is compiled in only with the cargo feature **`dhat-heap`**, because
//! dhat must be the global allocator while it records:
//!
//! ```ignore
//! #[cfg(feature = "dhat-heap")]
//! #[global_allocator]
//! static GLOBAL: dhat::Alloc = dhat::Alloc;
//! #[cfg(not(feature = "dhat-heap"))]
//! #[global_allocator]
//! static GLOBAL: harness::measure::CountingAllocator = harness::measure::CountingAllocator::new();
//!
//! let profile = harness::measure::heap_profile::start("target/flowbench/dhat-heap.json")?;
//! run_scenario();
//! drop(profile); // writes the file
//! ```
//!
//! In a `dhat-heap` build the allocation counters therefore read zero; without the
//! feature, [`start`] returns [`HeapProfileError::NotCompiledIn`] so the CLI can say how to
//! get one.

use std::path::{Path, PathBuf};

/// Why a heap profile could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeapProfileError {
    /// The crate was built without the `dhat-heap` feature.
    #[error("heap profiling is not compiled in: rebuild with `--features dhat-heap`")]
    NotCompiledIn,
    /// dhat allows one profile per process at a time.
    #[error("a heap profile is already running")]
    AlreadyRunning,
}

/// A running heap profile; dropping it stops the profile and writes the file.
#[derive(Debug)]
pub struct HeapProfile {
    path: PathBuf,
    #[cfg(feature = "dhat-heap")]
    profiler: Option<dhat::Profiler>,
}

impl HeapProfile {
    /// Where the profile will be written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(feature = "dhat-heap")]
static RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts a dhat heap profile that is written to `path` when the returned guard drops.
#[cfg(feature = "dhat-heap")]
pub fn start(path: impl Into<PathBuf>) -> Result<HeapProfile, HeapProfileError> {
    use std::sync::atomic::Ordering;
    // dhat panics on a second concurrent profiler; refuse it with an error instead.
    if RUNNING.swap(true, Ordering::SeqCst) {
        return Err(HeapProfileError::AlreadyRunning);
    }
    let path = path.into();
    let profiler = dhat::Profiler::builder().file_name(&path).build();
    Ok(HeapProfile {
        path,
        profiler: Some(profiler),
    })
}

/// Starts a dhat heap profile; this build lacks the `dhat-heap` feature, so it always
/// fails with [`HeapProfileError::NotCompiledIn`].
#[cfg(not(feature = "dhat-heap"))]
pub fn start(_path: impl Into<PathBuf>) -> Result<HeapProfile, HeapProfileError> {
    Err(HeapProfileError::NotCompiledIn)
}

#[cfg(feature = "dhat-heap")]
impl Drop for HeapProfile {
    fn drop(&mut self) {
        // Drop the profiler (which writes the file) before allowing another to start.
        drop(self.profiler.take());
        RUNNING.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "dhat-heap"))]
    #[test]
    fn without_the_feature_start_says_how_to_enable_it() {
        let err = start("unused.json").unwrap_err();
        assert_eq!(err, HeapProfileError::NotCompiledIn);
        assert!(err.to_string().contains("--features dhat-heap"));
    }

    #[cfg(feature = "dhat-heap")]
    #[test]
    fn writes_a_dhat_file_and_refuses_a_second_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heap.json");
        let profile = start(&path).unwrap();
        assert_eq!(profile.path(), path);
        assert_eq!(
            start(dir.path().join("b.json")).unwrap_err(),
            HeapProfileError::AlreadyRunning
        );
        let v = vec![1u8; 4096];
        std::hint::black_box(&v);
        drop(profile);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("dhatFileVersion"), "{text}");
    }
}
