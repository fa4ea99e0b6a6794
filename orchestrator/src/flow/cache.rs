use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::{Flow, FlowError, parse_flow};
use crate::repository::{self, Store};

/// Why a flow could not be found for an execution or a request.
#[derive(Debug, thiserror::Error)]
pub enum FlowLookupError {
    /// No flow with this namespace and id is stored.
    #[error("flow `{namespace}.{id}` not found")]
    NotFound { namespace: String, id: String },
    #[error(transparent)]
    Repository(#[from] repository::Error),
    /// The stored source no longer parses (it was valid when stored).
    #[error(transparent)]
    Invalid(#[from] FlowError),
}

/// Parsed flows by key, so the executor parses each revision once, not once per message.
pub struct FlowCache {
    store: Arc<dyn Store>,
    flows: RwLock<HashMap<String, Arc<Flow>>>,
    /// How many deployments this process made: the executor reads the deployed Flow
    /// triggers again when it changes.
    deployments: AtomicU64,
}

impl FlowCache {
    pub fn new(store: Arc<dyn Store>) -> Self {
        FlowCache {
            store,
            flows: RwLock::new(HashMap::new()),
            deployments: AtomicU64::new(0),
        }
    }

    pub fn insert(&self, flow: Arc<Flow>) {
        self.flows
            .write()
            .expect("flow cache lock")
            .insert(flow.key(), flow);
    }

    /// Keeps a flow this process has just stored, and counts the deployment.
    pub fn deployed(&self, flow: Arc<Flow>) {
        self.insert(flow);
        self.deployments.fetch_add(1, Ordering::AcqRel);
    }

    /// How many deployments this process has made.
    pub fn deployments(&self) -> u64 {
        self.deployments.load(Ordering::Acquire)
    }

    /// The flow at `revision`, or the latest stored one (flowbench keeps one revision per
    /// flow; an execution created before an update runs the updated flow).
    pub async fn get(
        &self,
        namespace: &str,
        id: &str,
        revision: i32,
    ) -> Result<Arc<Flow>, FlowLookupError> {
        let key = super::flow_key(namespace, id);
        if let Some(f) = self.flows.read().expect("flow cache lock").get(&key)
            && f.revision >= revision
        {
            return Ok(f.clone());
        }
        self.latest(namespace, id).await
    }

    /// Reads the latest revision from the database.
    pub async fn latest(&self, namespace: &str, id: &str) -> Result<Arc<Flow>, FlowLookupError> {
        let Some((revision, source)) = self.store.flow(namespace, id).await? else {
            return Err(FlowLookupError::NotFound {
                namespace: namespace.into(),
                id: id.into(),
            });
        };
        let mut flow = parse_flow(&source, &format!("stored flow {namespace}.{id}"))?;
        flow.revision = revision;
        let flow = Arc::new(flow);
        self.insert(flow.clone());
        Ok(flow)
    }
}
