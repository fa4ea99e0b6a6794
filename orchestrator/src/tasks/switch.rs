use crate::flow::Task;

/// `io.kestra.plugin.core.flow.Switch`: runs the case whose key equals the rendered
/// `value`, else `defaults`. Cases keep their YAML order.
#[derive(Debug, Clone)]
pub struct Switch {
    pub value: String,
    pub cases: Vec<(String, Vec<Task>)>,
    pub defaults: Vec<Task>,
}
