use crate::flow::Task;

/// `io.kestra.plugin.core.flow.If`: runs `then` when `condition` renders true, else `else`.
#[derive(Debug, Clone)]
pub struct IfTask {
    pub condition: String,
    pub then: Vec<Task>,
    pub else_: Vec<Task>,
}
