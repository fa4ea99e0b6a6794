//! placeholder
pub mod changepoint;
pub mod gate;
pub mod interleave;
pub mod latency;
pub mod loadgen;
pub mod measure;
pub mod scenario;
pub mod stats;
