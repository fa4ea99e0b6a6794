use serde_json::Value;

use crate::flow::Task;

/// `io.kestra.plugin.core.flow.ForEach`: runs `tasks` once per value, with `taskrun.value`
/// set to it. `concurrencyLimit` values run at once (1, the default, is sequential; 0 is
/// unlimited).
#[derive(Debug, Clone)]
pub struct ForEach {
    /// A list, a JSON-array string, or an expression that renders to one.
    pub values: Value,
    pub concurrency_limit: u32,
    pub tasks: Vec<Task>,
}
