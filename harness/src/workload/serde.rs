//! `serde`: FileSerde read/write/convert, `serde.mode=naive` vs `batched`.
//!
//! The `fileserde` module is not part of the orchestrator this harness is built against,
//! so there is nothing to measure: the scenario is recorded as skipped with that reason
//! rather than with invented numbers. When the module lands, this file drives its
//! reader, writer and converters for each format and records `records_per_s`,
//! `mb_per_s` and the allocation counters per variant.

use super::{Env, Recorder, Result, WorkloadError};

pub async fn run(_env: &Env<'_>, _rec: &mut Recorder) -> Result<()> {
    Err(WorkloadError::Skipped("fileserde module not built".into()))
}
