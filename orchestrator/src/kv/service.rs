//! Which namespace stores a flow may open: Kestra's `KVStoreService` and the part of
//! `NamespaceService` it asks.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use super::{KvError, KvStore, Result};
use crate::storage::Storage;

/// The namespaces that hold flows: what Kestra's `NamespaceService.isNamespaceExists` asks
/// the flow repository. Filled when the orchestrator connects (from the flows table) and on
/// every deploy through it; a process does not see a flow another process deployed after it
/// connected, until that flow's namespace holds a KV entry or the process reconnects.
#[derive(Debug, Default)]
pub struct FlowNamespaces(RwLock<BTreeSet<String>>);

impl FlowNamespaces {
    pub fn insert(&self, namespace: &str) {
        let mut set = self.0.write().unwrap_or_else(|e| e.into_inner());
        if !set.contains(namespace) {
            set.insert(namespace.to_owned());
        }
    }

    /// Whether a flow's namespace is `namespace` or starts with it (Kestra compares the
    /// text: `ns.startsWith(namespace)`).
    pub fn exists(&self, namespace: &str) -> bool {
        let set = self.0.read().unwrap_or_else(|e| e.into_inner());
        set.range(namespace.to_owned()..)
            .next()
            .is_some_and(|ns| ns.starts_with(namespace))
    }
}

/// Opens namespace KV stores with Kestra's rules (`KVStoreService`): the KV tasks, the state
/// tasks and the `kv()` function all go through it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KvService {
    storage: Storage,
    namespaces: Arc<FlowNamespaces>,
}

impl KvService {
    /// The internal storage the stores are in.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn new(storage: Storage, namespaces: Arc<FlowNamespaces>) -> Self {
        KvService {
            storage,
            namespaces,
        }
    }

    /// The namespaces known to hold flows.
    pub fn namespaces(&self) -> &FlowNamespaces {
        &self.namespaces
    }

    /// The store of `namespace`, reached from a flow of `from` (`KVStoreService.get`). A
    /// namespace that is not `from` or a parent of it (by text prefix, as Kestra compares)
    /// must hold a flow or a KV entry.
    pub fn store(&self, namespace: &str, from: Option<&str>) -> Result<KvStore> {
        let store = KvStore::new(&self.storage, namespace);
        let is_parent_or_same = from.is_some_and(|from| from.starts_with(namespace));
        if !is_parent_or_same && !self.namespaces.exists(namespace) && store.list()?.is_empty() {
            return Err(KvError::NamespaceNotFound {
                namespace: namespace.into(),
            });
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use serde_json::json;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_flow_reaches_its_namespace_its_parents_and_namespaces_that_exist() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path()).unwrap();
        let namespaces = Arc::new(FlowNamespaces::default());
        namespaces.insert("io.kestra.unittest");
        let service = KvService::new(storage.clone(), namespaces);
        let from = Some("io.kestra.test");
        service.store("io.kestra.test", from).unwrap();
        service.store("io.kestra", from).unwrap();
        // KVStoreServiceTest: a namespace with flows exists, and so does one of its parents.
        service.store("io.kestra.unittest", None).unwrap();
        service.store("io.kestra.unit", from).unwrap();
        let err = service.store("not-found", from).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot access the KV store. The namespace 'not-found' does not exist."
        );
        assert!(service.store("io.kestra.unittest.unknown", None).is_err());
        // A namespace without flows exists once it holds a KV entry.
        KvStore::new(&storage, "system")
            .put("key", &json!("value").into(), Some(HOUR), true)
            .unwrap();
        service.store("system", None).unwrap();
    }
}
