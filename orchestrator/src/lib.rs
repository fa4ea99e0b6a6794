//! Reference orchestrator.
