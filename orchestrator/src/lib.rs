//! Reference orchestrator.
pub mod expression;
