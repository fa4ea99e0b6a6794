use crate::flow::Task;

/// `io.kestra.plugin.core.flow.Sequential`: runs its children one after the other.
#[derive(Debug, Clone)]
pub struct Sequential {
    pub tasks: Vec<Task>,
}
