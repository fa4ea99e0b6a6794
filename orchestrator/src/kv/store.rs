//! One namespace's store: Kestra's `InternalKVStore` over flowbench's internal storage,
//! one Ion file per key and its metadata sidecar.

use std::io;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{KvError, KvValue, Result, validate_key};
use crate::fileserde::{self, Format, Value as Ion};
use crate::storage::Storage;

/// One listed entry: Kestra's `KVEntry`.
#[derive(Debug, Clone, PartialEq)]
pub struct KvEntry {
    pub key: String,
    pub creation_date: jiff::Timestamp,
    pub update_date: jiff::Timestamp,
    /// When the entry expires, to the millisecond; `None` for an entry without TTL.
    pub expiration_date: Option<jiff::Timestamp>,
}

/// A value to store: the Ion value, from a rendered JSON value ([`super::value::to_ion`]) or a
/// [`super::KvType`] conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredValue(pub Ion);

impl From<serde_json::Value> for StoredValue {
    fn from(json: serde_json::Value) -> Self {
        StoredValue(super::value::to_ion(&json))
    }
}

impl From<Ion> for StoredValue {
    fn from(ion: Ion) -> Self {
        StoredValue(ion)
    }
}

/// One namespace's KV store: Kestra's `InternalKVStore` over flowbench's internal storage.
#[derive(Debug, Clone)]
pub struct KvStore {
    storage: Storage,
    namespace: String,
}

impl KvStore {
    /// The store of `namespace`, without Kestra's namespace rules (see [`super::KvService`]).
    pub fn new(storage: &Storage, namespace: &str) -> Self {
        KvStore {
            storage: storage.clone(),
            namespace: namespace.to_owned(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The store's folder: Kestra's `StorageContext.kvPrefix`, `/{a}/{b}/_kv`.
    fn prefix(&self) -> String {
        format!("kestra:///{}/_kv", self.namespace.replace('.', "/"))
    }

    /// A key's internal-storage URI (`KVStore.storageUri`).
    pub fn uri(&self, key: &str) -> String {
        format!("{}/{key}.ion", self.prefix())
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        let uri = self.uri(key);
        self.storage.path(&uri).map_err(|source| KvError::Io {
            path: PathBuf::from(uri),
            source,
        })
    }

    fn folder(&self) -> Result<PathBuf> {
        let uri = self.prefix();
        self.storage.path(&uri).map_err(|source| KvError::Io {
            path: PathBuf::from(uri),
            source,
        })
    }

    /// Stores `value` under `key` (`InternalKVStore.put`). `ttl: None` writes an empty
    /// metadata file, as `kv.Set` does through `new KVMetadata(null)`; see
    /// [`KvStore::put_without_metadata`] for the state store's writes.
    pub fn put(
        &self,
        key: &str,
        value: &StoredValue,
        ttl: Option<Duration>,
        overwrite: bool,
    ) -> Result<()> {
        self.put_at(key, value, Some(ttl), overwrite, jiff::Timestamp::now())
    }

    /// Stores `value` with no metadata at all, as Kestra's `StateStore.putState` does
    /// (`new KVValueAndMetadata(null, value)`): a metadata file already there stays.
    pub fn put_without_metadata(&self, key: &str, value: &StoredValue) -> Result<()> {
        self.put_at(key, value, None, true, jiff::Timestamp::now())
    }

    /// [`KvStore::put`] at a given instant: `ttl` counts from `now`.
    fn put_at(
        &self,
        key: &str,
        value: &StoredValue,
        metadata: Option<Option<Duration>>,
        overwrite: bool,
        now: jiff::Timestamp,
    ) -> Result<()> {
        validate_key(key)?;
        if !overwrite && self.exists_at(key, now)? {
            return Err(KvError::Exists { key: key.into() });
        }
        let path = self.path(key)?;
        write_atomically(&path, &ion_text(&value.0, &path)?)?;
        if let Some(ttl) = metadata {
            let expiration = ttl.map(|ttl| expires_at(now, ttl)).transpose()?;
            let mut fields = Vec::new();
            if let Some(at) = expiration {
                fields.push(("expirationDate".to_owned(), Ion::String(at.to_string())));
            }
            let meta_path = metadata_path(&path);
            write_atomically(&meta_path, &ion_text(&Ion::Struct(fields), &meta_path)?)?;
        }
        Ok(())
    }

    /// The value of `key`, or `None` (`InternalKVStore.getValue`). An expired entry is
    /// deleted and answered with [`KvError::Expired`].
    pub fn get_value(&self, key: &str) -> Result<Option<KvValue>> {
        self.get_value_at(key, jiff::Timestamp::now())
    }

    fn get_value_at(&self, key: &str, now: jiff::Timestamp) -> Result<Option<KvValue>> {
        validate_key(key)?;
        let path = self.path(key)?;
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(KvError::Io { path, source }),
        };
        if expiration(&path)?.is_some_and(|at| now > at) {
            self.delete(key)?;
            return Err(KvError::Expired { key: key.into() });
        }
        let ion = read_ion(&text, &path)?;
        KvValue::from_stored(ion)
            .map(Some)
            .map_err(|message| KvError::Corrupt { path, message })
    }

    /// Deletes `key`; whether there was a value (`InternalKVStore.delete`).
    pub fn delete(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        let path = self.path(key)?;
        let removed = remove(&path)?;
        remove(&metadata_path(&path))?;
        Ok(removed)
    }

    /// Every live entry, by key (`InternalKVStore.list`).
    pub fn list(&self) -> Result<Vec<KvEntry>> {
        self.list_at(jiff::Timestamp::now())
    }

    fn list_at(&self, now: jiff::Timestamp) -> Result<Vec<KvEntry>> {
        let folder = self.folder()?;
        let dir = match std::fs::read_dir(&folder) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(KvError::Io {
                    path: folder,
                    source,
                });
            }
        };
        let mut entries = Vec::new();
        for item in dir {
            let item = item.map_err(|source| KvError::Io {
                path: folder.clone(),
                source,
            })?;
            let name = item.file_name().to_string_lossy().into_owned();
            // Metadata sidecars are not entries; dot files are writes in progress (no key
            // starts with a dot).
            if name.ends_with(".metadata") || name.starts_with('.') {
                continue;
            }
            let Some(entry) = self.entry(&item.path(), &name)? else {
                continue;
            };
            if entry.expiration_date.is_none_or(|at| now < at) {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// The entry of `key`, or `None` when it is absent or expired (`InternalKVStore.get`,
    /// which deletes an expired one).
    pub fn get(&self, key: &str) -> Result<Option<KvEntry>> {
        validate_key(key)?;
        let path = self.path(key)?;
        let Some(entry) = self.entry(&path, &format!("{key}.ion"))? else {
            return Ok(None);
        };
        if entry
            .expiration_date
            .is_some_and(|at| jiff::Timestamp::now() > at)
        {
            self.delete(key)?;
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// Whether `key` has a live entry: Kestra's `KVStore.exists`, which looks it up in
    /// [`KvStore::list`].
    pub fn exists(&self, key: &str) -> Result<bool> {
        self.exists_at(key, jiff::Timestamp::now())
    }

    fn exists_at(&self, key: &str, now: jiff::Timestamp) -> Result<bool> {
        Ok(self.list_at(now)?.iter().any(|e| e.key == key))
    }

    /// The entry for the file at `path` named `name`, `None` when it is gone.
    fn entry(&self, path: &Path, name: &str) -> Result<Option<KvEntry>> {
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(KvError::Io {
                    path: path.into(),
                    source,
                });
            }
        };
        let stamp = |t: io::Result<std::time::SystemTime>| {
            t.ok()
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        };
        let update_date = stamp(meta.modified());
        let creation_date = meta.created().ok().map_or(update_date, |t| stamp(Ok(t)));
        // KVEntry.from truncates the expiration to the millisecond.
        let to_millis = jiff::TimestampRound::new()
            .smallest(jiff::Unit::Millisecond)
            .mode(jiff::RoundMode::Trunc);
        let expiration_date = expiration(path)?.map(|at| at.round(to_millis).unwrap_or(at));
        Ok(Some(KvEntry {
            // KVEntry.from: the file name with `.ion` removed.
            key: name.replace(".ion", ""),
            creation_date,
            update_date,
            expiration_date,
        }))
    }
}

fn metadata_path(value: &Path) -> PathBuf {
    let mut p = value.as_os_str().to_owned();
    p.push(".metadata");
    PathBuf::from(p)
}

/// `Instant.now().plus(ttl)`.
fn expires_at(now: jiff::Timestamp, ttl: Duration) -> Result<jiff::Timestamp> {
    jiff::SignedDuration::try_from(ttl)
        .ok()
        .and_then(|ttl| now.checked_add(ttl).ok())
        .ok_or_else(|| KvError::Corrupt {
            path: PathBuf::from("ttl"),
            message: format!("a TTL of {ttl:?} is beyond the last representable instant"),
        })
}

/// The expiration in a value's metadata file, if it has one (`KVMetadata`).
fn expiration(value: &Path) -> Result<Option<jiff::Timestamp>> {
    let path = metadata_path(value);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KvError::Io { path, source }),
    };
    let corrupt = |message: String| KvError::Corrupt {
        path: path.clone(),
        message,
    };
    match read_ion(&text, &path)?.get("expirationDate") {
        None | Some(Ion::Null) => Ok(None),
        Some(Ion::String(at)) => at
            .parse()
            .map(Some)
            .map_err(|e| corrupt(format!("expirationDate `{at}`: {e}"))),
        Some(other) => Err(corrupt(format!(
            "expirationDate is not a string: {other:?}"
        ))),
    }
}

/// One Ion value as text, as Jackson writes a single value: no trailing newline.
fn ion_text(value: &Ion, path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let corrupt = |e: fileserde::Error| KvError::Corrupt {
        path: path.into(),
        message: e.to_string(),
    };
    let mut writer = fileserde::writer(
        Format::Ion,
        &mut out,
        path,
        &Default::default(),
        Default::default(),
    )
    .map_err(corrupt)?;
    writer.write_record(value).map_err(corrupt)?;
    writer.finish().map_err(corrupt)?;
    while out.last() == Some(&b'\n') {
        out.pop();
    }
    Ok(out)
}

/// The one Ion value a value or metadata file holds (`null` when it is empty).
fn read_ion(text: &[u8], path: &Path) -> Result<Ion> {
    let corrupt = |e: fileserde::Error| KvError::Corrupt {
        path: path.into(),
        message: e.to_string(),
    };
    let mut reader = fileserde::reader(
        Format::Ion,
        text,
        path,
        &Default::default(),
        Default::default(),
    )
    .map_err(corrupt)?;
    Ok(reader.next_record().map_err(corrupt)?.unwrap_or(Ion::Null))
}

/// Writes a file whole: a temporary dot file in its folder, renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |source| KvError::Io {
        path: path.into(),
        source,
    };
    let dir = path
        .parent()
        .expect("a KV file is inside its namespace folder");
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".kv-")
        .tempfile_in(dir)
        .map_err(io_err)?;
    tmp.write_all(bytes).map_err(io_err)?;
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    Ok(())
}

/// Removes a file; whether it was there.
fn remove(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(KvError::Io {
            path: path.into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::KvType;
    use super::*;
    use serde_json::json;

    fn store(dir: &tempfile::TempDir) -> KvStore {
        KvStore::new(&Storage::new(dir.path()).unwrap(), "io.kestra.unit")
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn every_type_round_trips_through_its_ion_file() {
        let dir = tempfile::tempdir().unwrap();
        let kv = store(&dir);
        let cases = [
            (json!("some-value"), "\"some-value\""),
            (json!(42), "42"),
            (json!(1.5), "1.5e0"),
            (json!(true), "true"),
            (json!(null), "null"),
            (json!([1, "a"]), "[1, \"a\", ]"),
        ];
        for (value, text) in cases {
            kv.put("k", &value.clone().into(), None, true).unwrap();
            let file = dir.path().join("io/kestra/unit/_kv/k.ion");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), text, "{value}");
            let back = kv.get_value("k").unwrap().unwrap();
            assert_eq!(back.to_output(), value);
        }
        let nested = json!({"some": "complex", "object": {"with": "nested", "n": 1}});
        kv.put("k", &nested.clone().into(), None, true).unwrap();
        assert_eq!(kv.get_value("k").unwrap().unwrap().to_output(), nested);
        for (kv_type, text, output) in [
            (KvType::Number, "123.45", json!(123.45)),
            (KvType::Boolean, "true", json!(true)),
            (
                KvType::Datetime,
                "2023-05-02T01:02:03Z",
                json!("2023-05-02T01:02:03Z"),
            ),
            (KvType::Date, "2023-05-02T00:00:00Z", json!("2023-05-02")),
            (KvType::Duration, "P1DT5S", json!(86405.0)),
            (KvType::Json, r#"{"a":[1]}"#, json!({"a": [1]})),
            (KvType::String, "text", json!("text")),
        ] {
            let typed = kv_type.convert(text).unwrap();
            kv.put("typed", &typed.into(), None, true).unwrap();
            let back = kv.get_value("typed").unwrap().unwrap();
            assert_eq!(back.to_output(), output, "{kv_type:?}");
        }
    }

    #[test]
    fn a_value_without_ttl_has_empty_metadata_and_one_with_ttl_expires() {
        let dir = tempfile::tempdir().unwrap();
        let kv = store(&dir);
        kv.put("forever", &json!("v").into(), None, true).unwrap();
        let meta = dir.path().join("io/kestra/unit/_kv/forever.ion.metadata");
        assert_eq!(std::fs::read_to_string(meta).unwrap(), "{}");
        assert_eq!(kv.list().unwrap()[0].expiration_date, None);

        let an_hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
        let ten_minutes = Some(Duration::from_secs(600));
        kv.put_at(
            "gone",
            &json!("v").into(),
            Some(ten_minutes),
            true,
            an_hour_ago,
        )
        .unwrap();
        kv.put("live", &json!("v").into(), Some(HOUR), true)
            .unwrap();
        let keys: Vec<String> = kv.list().unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["forever", "live"], "an expired key is not listed");
        let live = kv.get("live").unwrap().unwrap();
        let left = jiff::Timestamp::now().duration_until(live.expiration_date.unwrap());
        assert!(
            left > jiff::SignedDuration::from_mins(59)
                && left <= jiff::SignedDuration::from_hours(1),
            "{left:?}"
        );

        // Kestra's getValue deletes an expired entry and refuses that one read.
        assert!(matches!(kv.get_value("gone"), Err(KvError::Expired { .. })));
        assert_eq!(kv.get_value("gone").unwrap(), None);
        assert!(!dir.path().join("io/kestra/unit/_kv/gone.ion").exists());
    }

    #[test]
    fn overwrite_false_refuses_a_live_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let kv = store(&dir);
        kv.put("k", &json!(1).into(), None, false).unwrap();
        let err = kv.put("k", &json!(2).into(), None, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot set value for key 'k'. Key already exists and `overwrite` is set to `false`."
        );
        assert_eq!(kv.get_value("k").unwrap().unwrap().to_output(), json!(1));
        // An expired key is not there for `exists`, so it may be replaced.
        let an_hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
        kv.put_at(
            "old",
            &json!(1).into(),
            Some(Some(Duration::from_secs(1))),
            true,
            an_hour_ago,
        )
        .unwrap();
        kv.put("old", &json!(2).into(), None, false).unwrap();
        assert_eq!(kv.get_value("old").unwrap().unwrap().to_output(), json!(2));
    }

    #[test]
    fn keys_are_validated_as_kestra_does_on_every_keyed_operation() {
        let dir = tempfile::tempdir().unwrap();
        let kv = store(&dir);
        let expected = "Key must start with an alphanumeric character (uppercase or lowercase) and can contain alphanumeric characters (uppercase or lowercase), dots (.), underscores (_), and hyphens (-) only.";
        for bad in ["a/b", "-a", ".hidden", "a b", "../x"] {
            assert_eq!(
                validate_key(bad).unwrap_err().to_string(),
                expected,
                "{bad}"
            );
        }
        assert_eq!(
            validate_key("").unwrap_err().to_string(),
            "Key cannot be null or empty"
        );
        validate_key("AN_UPPER.CASE-key").unwrap();
        assert!(matches!(
            kv.get_value("a/b"),
            Err(KvError::InvalidKey { .. })
        ));
        assert!(matches!(
            kv.put("a/b", &json!(1).into(), None, true),
            Err(KvError::InvalidKey { .. })
        ));
        assert!(matches!(kv.delete("a/b"), Err(KvError::InvalidKey { .. })));
        assert!(matches!(kv.get("a/b"), Err(KvError::InvalidKey { .. })));
    }

    #[test]
    fn delete_says_whether_there_was_a_value_and_keys_list_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let kv = store(&dir);
        assert!(
            kv.list().unwrap().is_empty(),
            "a namespace without folder is empty"
        );
        for key in ["test-second-key", "another-key", "test-key"] {
            kv.put(key, &json!("value").into(), Some(HOUR), true)
                .unwrap();
        }
        let keys: Vec<String> = kv.list().unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["another-key", "test-key", "test-second-key"]);
        assert!(kv.delete("test-key").unwrap());
        assert!(!kv.delete("test-key").unwrap());
        assert_eq!(kv.get_value("test-key").unwrap(), None);
        assert!(
            !dir.path()
                .join("io/kestra/unit/_kv/test-key.ion.metadata")
                .exists()
        );
        assert_eq!(kv.list().unwrap().len(), 2);
    }
}
