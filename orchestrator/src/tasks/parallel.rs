use crate::flow::Task;

/// `io.kestra.plugin.core.flow.Parallel`: starts its children together, at most
/// `concurrent` at once (0: no limit).
#[derive(Debug, Clone)]
pub struct Parallel {
    pub tasks: Vec<Task>,
    pub concurrent: u32,
}
