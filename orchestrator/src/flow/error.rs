/// Why a flow could not be loaded. Every variant names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The text is not valid YAML.
    #[error("{origin}: invalid YAML{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Yaml {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    /// A flow-level property is missing or wrong.
    #[error("{origin}: flow `{flow}`: {message}")]
    Flow {
        origin: String,
        flow: String,
        message: String,
    },
    /// A task is wrong: unknown type, missing or unknown property, bad expression…
    #[error("{origin}: flow `{flow}`, task `{task}` ({kind}): {message}")]
    Task {
        origin: String,
        flow: String,
        task: String,
        kind: String,
        message: String,
    },
}
