//! Kestra's key-value store: one per namespace, kept in internal storage.
//!
//! This follows Kestra at commit 58c1ca2d (`core/src/main/java/io/kestra/core/storages/kv/`,
//! `services/KVStoreService.java`, `storage-local/.../LocalStorage.java`):
//!
//! * each key is one Ion file, `kestra:///{namespace as folders}/_kv/{key}.ion`, holding the
//!   value as Jackson's Ion mapper writes it (`"some-value"`, `{field: "value"}`, a blob for
//!   a state); its expiration, when it has a TTL, is in a sidecar
//!   `{key}.ion.metadata`, an Ion struct `{expirationDate: "2024-…Z"}`;
//! * a key starts with a letter or digit and holds only letters, digits, `.`, `_` and `-`;
//! * an expired entry is gone from listings and from `exists`, so `overwrite: false` may
//!   replace it; reading its value deletes it and fails once with Kestra's
//!   "The requested value has expired", after which it reads as absent;
//! * a flow reaches its own namespace's store and its parents' freely; any other namespace
//!   must exist, that is hold a flow (Kestra's `NamespaceService`) or a KV entry
//!   (`KVStoreService.get`). OSS Kestra allows every namespace otherwise.
//!
//! flowbench writes a value to a temporary file and renames it over the key, so a reader
//! never sees half a value; Kestra's `LocalStorage` writes in place. A key's creation date is
//! therefore that of its latest write, and deleting a key deletes its metadata file too
//! (Kestra's leaves it behind, unread).
//!
//! # Primary types
//!
//! * [`KvStore`] (`store.rs`): one namespace's store (Kestra's `InternalKVStore`).
//! * [`KvService`] (`service.rs`): opens a store for a flow, with Kestra's namespace rules
//!   (`KVStoreService`); the renderer and the KV tasks share it.
//! * [`KvValue`] and [`KvType`] ([`value`]): what an entry holds, and how `kv.Set` types it.
//! * [`StateStore`] ([`state`]): the `state.*` tasks' states, kept as KV entries.
//! * [`KvError`]: why an operation failed, with Kestra's messages.
//!
//! # Example
//!
//! ```
//! use orchestrator::kv::{KvStore, KvValue};
//! use orchestrator::storage::Storage;
//! use serde_json::json;
//!
//! let dir = tempfile::tempdir()?;
//! let storage = Storage::new(dir.path())?;
//! let kv = KvStore::new(&storage, "company.team");
//! kv.put("my-key", &json!({"field": "value"}).into(), None, true)?;
//! assert_eq!(kv.uri("my-key"), "kestra:///company/team/_kv/my-key.ion");
//! let value = kv.get_value("my-key")?.unwrap();
//! assert_eq!(value.to_output(), json!({"field": "value"}));
//! assert!(kv.put("my-key", &json!(1).into(), None, false).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod service;
pub mod state;
mod store;
pub mod value;

use std::io;
use std::path::PathBuf;

pub use service::{FlowNamespaces, KvService};
pub use state::StateStore;
pub use store::{KvEntry, KvStore, StoredValue};
pub use value::{KvType, KvValue};

/// Why a KV operation failed. The messages of the variants a flow can meet are Kestra's.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The key is empty (`KVStore.validateKey`).
    #[error("Key cannot be null or empty")]
    EmptyKey,
    /// The key has a character Kestra's `KEY_VALIDATOR_PATTERN` refuses.
    #[error(
        "Key must start with an alphanumeric character (uppercase or lowercase) and can contain alphanumeric characters (uppercase or lowercase), dots (.), underscores (_), and hyphens (-) only."
    )]
    InvalidKey { key: String },
    /// `overwrite: false` and the key holds a live value.
    #[error(
        "Cannot set value for key '{key}'. Key already exists and `overwrite` is set to `false`."
    )]
    Exists { key: String },
    /// The entry's TTL has passed; it was deleted by this read.
    #[error("The requested value has expired")]
    Expired { key: String },
    /// The namespace holds no flow and no KV entry, and is not a parent of the caller's.
    #[error("Cannot access the KV store. The namespace '{namespace}' does not exist.")]
    NamespaceNotFound { namespace: String },
    /// A value or its metadata could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A stored value or metadata file is not what Kestra writes.
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
}

pub type Result<T, E = KvError> = std::result::Result<T, E>;

/// Checks a key as Kestra's `KVStore.validateKey`: `[a-zA-Z0-9][a-zA-Z0-9._-]*`.
pub fn validate_key(key: &str) -> Result<()> {
    let mut chars = key.chars();
    match chars.next() {
        None => Err(KvError::EmptyKey),
        Some(first)
            if first.is_ascii_alphanumeric()
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
        {
            Ok(())
        }
        Some(_) => Err(KvError::InvalidKey { key: key.into() }),
    }
}
