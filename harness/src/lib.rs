//! placeholder
pub mod changepoint;
pub mod gate;
pub mod stats;
