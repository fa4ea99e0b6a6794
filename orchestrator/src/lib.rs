//! Reference orchestrator.

pub mod fileserde;
