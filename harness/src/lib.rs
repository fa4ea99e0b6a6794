//! placeholder
pub mod changepoint;
pub mod gate;
pub mod latency;
pub mod loadgen;
pub mod measure;
pub mod stats;
