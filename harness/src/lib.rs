//! placeholder
pub mod changepoint;
pub mod gate;
pub mod measure;
pub mod stats;
