//! The `state.*` tasks' states, kept as KV entries of the flow's namespace.
//!
//! This follows Kestra's `core/src/main/java/io/kestra/core/storages/StateStore.java` as
//! `RunContext.stateStore()` builds it (task-run values hashed) and
//! `plugin/core/state/AbstractState.java` (commit 58c1ca2d):
//!
//! * a state is the KV entry `{flow slug}_states_tasks-states_{name}_{hash}` of the flow's
//!   namespace, without the flow part when it is shared by the namespace (`namespace: true`)
//!   and without the hash outside a loop or with `taskrunValue: false`; the hash is Guava's
//!   128-bit Murmur3 of the task run's value, in hex;
//! * its value is the state map as JSON bytes, stored as an Ion blob, with no metadata;
//! * `state.Set` merges its data into the stored map as Kestra's `MapUtils.merge` does.
//!
//! Kestra also refuses a state left in its pre-0.18 state store (`MigrationRequiredException`);
//! flowbench never had one.

use serde_json::{Map, Value as Json};

use super::{KvError, KvStore, Result, StoredValue};
use crate::fileserde::Value as Ion;

/// A flow's view of its namespace's states.
#[derive(Debug, Clone)]
pub struct StateStore {
    kv: KvStore,
    flow_id: String,
}

/// Which state a task names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateName<'a> {
    /// The task's `name` (Kestra's default is `default`).
    pub name: &'a str,
    /// `false` when the task sets `namespace: true`: the state is shared by every flow of
    /// the namespace.
    pub flow_scoped: bool,
    /// The task run's value, unless the task sets `taskrunValue: false`.
    pub task_run_value: Option<&'a str>,
}

impl StateStore {
    /// The states of the flow `flow_id`, in its namespace's KV store `kv`.
    pub fn new(kv: KvStore, flow_id: &str) -> Self {
        StateStore {
            kv,
            flow_id: flow_id.to_owned(),
        }
    }

    /// The KV key of a state (`StateStore.statePrefix` with `_` separators).
    pub fn key(&self, state: &StateName<'_>) -> String {
        let mut key = String::new();
        if state.flow_scoped {
            key.push_str(&slugify(&self.flow_id));
            key.push('_');
        }
        key.push_str("states_tasks-states_");
        key.push_str(state.name);
        if let Some(value) = state.task_run_value {
            key.push('_');
            key.push_str(&murmur3_128_hex(value.as_bytes()));
        }
        key
    }

    /// The stored map, or `None` when there is none (`AbstractState.get`).
    pub fn get(&self, state: &StateName<'_>) -> Result<Option<Map<String, Json>>> {
        let key = self.key(state);
        let Some(value) = self.kv.get_value(&key)? else {
            return Ok(None);
        };
        let corrupt = |message: String| KvError::Corrupt {
            path: self.kv.uri(&key).into(),
            message,
        };
        let bytes = value
            .bytes()
            .ok_or_else(|| corrupt("a state is a string or a blob of JSON".into()))?;
        serde_json::from_slice(bytes)
            .map(Some)
            .map_err(|e| corrupt(format!("a state is a JSON object: {e}")))
    }

    /// Merges `data` into the stored map and stores the result (`AbstractState.merge`);
    /// returns the state's key and the merged map.
    pub fn merge(
        &self,
        state: &StateName<'_>,
        data: Map<String, Json>,
    ) -> Result<(String, Map<String, Json>)> {
        let current = self.get(state)?.unwrap_or_default();
        let merged = merge(current, data);
        let key = self.key(state);
        let bytes = serde_json::to_vec(&merged).expect("a JSON map serializes");
        self.kv
            .put_without_metadata(&key, &StoredValue(Ion::Blob(bytes)))?;
        Ok((key, merged))
    }

    /// Deletes a state; whether there was one.
    pub fn delete(&self, state: &StateName<'_>) -> Result<bool> {
        self.kv.delete(&self.key(state))
    }
}

/// Kestra's `MapUtils.merge`: `b` over `a`, maps merged deeply, lists concatenated, a null
/// in `b` keeping `a`'s value.
pub fn merge(mut a: Map<String, Json>, b: Map<String, Json>) -> Map<String, Json> {
    for (key, value) in b {
        let merged = match (a.remove(&key), value) {
            (original, Json::Null) => original.unwrap_or(Json::Null),
            (Some(Json::Object(original)), Json::Object(value)) => {
                Json::Object(merge(original, value))
            }
            (Some(Json::Array(mut original)), Json::Array(value)) => {
                original.extend(value);
                Json::Array(original)
            }
            (_, value) => value,
        };
        a.insert(key, merged);
    }
    a
}

/// Kestra's `Slugify.of` on a flow id: spaces to `-`, anything but `[A-Za-z0-9_-]` dropped,
/// `_` to `-`, runs of `-` collapsed and trimmed, lower case. (Its NFD normalization changes
/// nothing here: a flow id is ASCII.)
fn slugify(text: &str) -> String {
    let kept: String = text
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .map(|c| if c == '_' { '-' } else { c })
        .collect();
    let mut slug = String::with_capacity(kept.len());
    for c in kept.chars() {
        if !(c == '-' && slug.ends_with('-')) {
            slug.push(c);
        }
    }
    slug.trim_matches('-').to_ascii_lowercase()
}

/// Guava's `Hashing.murmur3_128()` (seed 0) `.toString()`: MurmurHash3 x64 128-bit, its two
/// halves in little-endian bytes, in hex. Kestra's `Hashing.hashToString`.
fn murmur3_128_hex(data: &[u8]) -> String {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    fn fmix(mut k: u64) -> u64 {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
    let mix_k1 = |k: u64| k.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    let mix_k2 = |k: u64| k.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);

    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let k1 = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
        let k2 = u64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
        h1 ^= mix_k1(k1);
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= mix_k2(k2);
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let word = |bytes: &[u8]| {
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    if tail.len() > 8 {
        h2 ^= mix_k2(word(&tail[8..]));
    }
    if !tail.is_empty() {
        h1 ^= mix_k1(word(&tail[..tail.len().min(8)]));
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    let mut hex = String::with_capacity(32);
    for byte in h1.to_le_bytes().into_iter().chain(h2.to_le_bytes()) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use serde_json::json;

    #[test]
    fn murmur3_matches_guava() {
        // Each expected hash is what Guava 31's Hashing.murmur3_128().hashString(s, UTF_8)
        // printed: every tail length and a full block are covered.
        let cases = [
            ("", "00000000000000000000000000000000"),
            ("a", "897859f6655555855a890e51483ab5e6"),
            ("b", "eed1d3b157a9987ae9944e541e132efa"),
            ("hello", "029bbd41b3a7d8cb191dae486a901e5b"),
            (
                "The quick brown fox jumps over the lazy dog",
                "6c1b07bc7bbc4be347939ac4a93c437a",
            ),
            ("0123456789abcdef", "a7d14acf946de04bda08a7635c5bc387"),
            ("0123456789abcdefX", "f7d670b5acd2ebcd274b10829711728f"),
            ("é", "e863d411a47a18c93f7ecadf6bc7657e"),
        ];
        for (text, hash) in cases {
            assert_eq!(murmur3_128_hex(text.as_bytes()), hash, "{text:?}");
        }
    }

    #[test]
    fn keys_follow_kestras_state_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::new(&Storage::new(dir.path()).unwrap(), "io.kestra.tests");
        let states = StateStore::new(kv, "My_Flow");
        let name = |flow_scoped, task_run_value| StateName {
            name: "each",
            flow_scoped,
            task_run_value,
        };
        assert_eq!(
            states.key(&name(true, None)),
            "my-flow_states_tasks-states_each"
        );
        assert_eq!(
            states.key(&name(false, Some("a"))),
            "states_tasks-states_each_897859f6655555855a890e51483ab5e6"
        );
        assert_eq!(slugify(" a__b.c "), "a-bc");
    }

    #[test]
    fn set_merges_get_reads_and_delete_removes() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::new(&Storage::new(dir.path()).unwrap(), "io.kestra.tests");
        let states = StateStore::new(kv.clone(), "state");
        let s = StateName {
            name: "default",
            flow_scoped: true,
            task_run_value: None,
        };
        assert_eq!(states.get(&s).unwrap(), None);
        let first = json!({"test": "1", "list": [1], "map": {"a": 1}});
        let (key, merged) = states
            .merge(&s, first.as_object().cloned().unwrap())
            .unwrap();
        assert_eq!(key, "state_states_tasks-states_default");
        assert_eq!(merged.len(), 3);
        let second = json!({"test": "2", "test2": "3", "list": [2], "map": {"b": 2}, "gone": null});
        let (_, merged) = states
            .merge(&s, second.as_object().cloned().unwrap())
            .unwrap();
        assert_eq!(
            Json::Object(merged),
            json!({"test": "2", "list": [1, 2], "map": {"a": 1, "b": 2}, "test2": "3", "gone": null})
        );
        assert_eq!(
            states.get(&s).unwrap().unwrap()["map"],
            json!({"a": 1, "b": 2})
        );
        // Kestra keeps a state as JSON bytes in an Ion blob, with no metadata file.
        let file = dir
            .path()
            .join("io/kestra/tests/_kv")
            .join(format!("{key}.ion"));
        assert!(std::fs::read_to_string(&file).unwrap().starts_with("{{"));
        assert!(!file.with_extension("ion.metadata").exists());
        assert!(states.delete(&s).unwrap());
        assert!(!states.delete(&s).unwrap());
        assert_eq!(states.get(&s).unwrap(), None);
    }
}
