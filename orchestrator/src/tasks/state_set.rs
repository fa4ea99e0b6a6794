use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};
use crate::kv::StateStore;
use crate::kv::state::StateName;

/// `io.kestra.plugin.core.state.Set`: merges `data` (rendered) into the state `name` and
/// outputs `count`, the merged state's number of properties, and `key`, its KV key
/// (Kestra's `plugin/core/state/Set.java` and `AbstractState.java`, commit 58c1ca2d).
///
/// A state belongs to the flow, or to its namespace with `namespace: true`, and to the task
/// run's loop value unless `taskrunValue: false`. See [`crate::kv::state`].
#[derive(Debug, Clone)]
pub struct StateSet {
    pub state: StateRef,
    pub data: Map<String, Value>,
}

/// What every state task names (Kestra's `AbstractState`): the state `name` (`default`), in
/// the flow or, with `namespace: true`, in its namespace, and for the task run's loop value
/// unless `taskrunValue: false`.
#[derive(Debug, Clone)]
pub struct StateRef {
    pub name: String,
    pub namespace: bool,
    pub taskrun_value: bool,
}

impl StateRef {
    pub(crate) fn parse(props: &mut TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let name = props.take::<Option<String>>("name")?;
        let namespace = props.take::<Option<bool>>("namespace")?.unwrap_or(false);
        let taskrun_value = props.take::<Option<bool>>("taskrunValue")?.unwrap_or(true);
        Ok(StateRef {
            name: name.unwrap_or_else(|| "default".into()),
            namespace,
            taskrun_value,
        })
    }

    /// Calls `f` with the task run's state store, the state's rendered name, and the state.
    pub(crate) fn with<T>(
        &self,
        ctx: &TaskContext<'_>,
        f: impl FnOnce(&StateStore, &str, &StateName<'_>) -> Result<T, TaskError>,
    ) -> Result<T, TaskError> {
        let name = ctx.render(&self.name)?;
        let tr = ctx.task_run;
        let state = StateName {
            name: &name,
            flow_scoped: !self.namespace,
            task_run_value: tr.value.as_deref().filter(|_| self.taskrun_value),
        };
        let states = StateStore::new(ctx.namespace_kv(&tr.namespace)?, &tr.flow_id);
        f(&states, &name, &state)
    }
}

impl TaskType for StateSet {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.state.Set"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.states.Set", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let state = StateRef::parse(&mut props)?;
        let data = props.take::<Option<Map<String, Value>>>("data")?;
        props.finish()?;
        Ok(StateSet {
            state,
            data: data.unwrap_or_default(),
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for StateSet {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        // Kestra's `runContext.render(map)`: keys and strings rendered, other values kept.
        let Value::Object(data) = ctx
            .renderer
            .render_value(&Value::Object(self.data.clone()), ctx.vars)?
        else {
            unreachable!("a rendered map is a map");
        };
        let (key, merged) = self
            .state
            .with(ctx, |states, _, state| Ok(states.merge(state, data)?))?;
        let mut out = Map::new();
        out.insert("count".into(), Value::from(merged.len()));
        out.insert("key".into(), Value::String(key));
        Ok(out)
    }
}
