//! The deployed flows that hold a `Flow` trigger, as the executor reads them to start the
//! executions a state change triggers (Kestra's `JdbcExecutor` keeps `allFlows` for the
//! same purpose, refreshed by the flow queue).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::flow::{Flow, FlowCache, parse_flow};
use crate::repository::Store;

/// How often the flows are read again at least, for flows deployed by other processes; a
/// deployment through this process is seen at once.
const EVERY: Duration = Duration::from_secs(2);

/// The deployed flows with a Flow trigger.
#[derive(Default)]
pub(super) struct Listeners {
    /// Each stored source seen at the last reading, and its flow when it has a Flow
    /// trigger; only a source not seen before is parsed.
    sources: HashMap<String, Option<Arc<Flow>>>,
    flows: Arc<Vec<Arc<Flow>>>,
    /// When they were read, and the flow cache's deployment count then.
    read: Option<(Instant, u64)>,
}

impl Listeners {
    /// The flows, read again when this process deployed a flow since, or every [`EVERY`].
    pub(super) async fn current(
        &mut self,
        store: &dyn Store,
        cache: &FlowCache,
    ) -> anyhow::Result<Arc<Vec<Arc<Flow>>>> {
        let deployments = cache.deployments();
        let fresh = self
            .read
            .is_some_and(|(at, d)| d == deployments && at.elapsed() < EVERY);
        if !fresh {
            self.reload(store).await?;
            self.read = Some((Instant::now(), deployments));
        }
        Ok(self.flows.clone())
    }

    async fn reload(&mut self, store: &dyn Store) -> anyhow::Result<()> {
        let sources = store.flows().await?;
        let mut seen = HashMap::with_capacity(sources.len());
        for source in sources {
            if let Some(flow) = self.sources.remove(&source) {
                seen.insert(source, flow);
                continue;
            }
            // Kestra's `…trigger.Flow` and its alias `…triggers.types.Flow`: a source
            // without either holds no Flow trigger and is not worth a parse.
            if !source.contains("trigger.Flow") && !source.contains("types.Flow") {
                seen.insert(source, None);
                continue;
            }
            let flow = match parse_flow(&source, "stored flow") {
                Ok(flow) => flow,
                Err(e) => {
                    tracing::warn!("executor: a stored flow does not load: {e}");
                    seen.insert(source, None);
                    continue;
                }
            };
            if flow.flow_triggers().next().is_none() {
                seen.insert(source, None);
                continue;
            }
            let mut flow = flow;
            if let Some((revision, _)) = store.flow(&flow.namespace, &flow.id).await? {
                flow.revision = revision;
            }
            seen.insert(source, Some(Arc::new(flow)));
        }
        let mut flows: Vec<Arc<Flow>> = seen.values().flatten().cloned().collect();
        flows.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
        self.flows = Arc::new(flows);
        self.sources = seen;
        Ok(())
    }
}
