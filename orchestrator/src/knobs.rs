//! The optimisation switches ("knobs"). Each has two faithful code paths: the value Kestra
//! had before its 0.19/0.20 performance work, and the optimised one, which is the default.
//! Set them with `--set key=value`; the harness flips them to run A/B experiments.

use std::collections::BTreeMap;
use std::str::FromStr;

/// A knob name or value that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum KnobError {
    #[error("unknown knob `{0}` (known: {known})", known = KNOWN.join(", "))]
    Unknown(String),
    #[error("knob `{key}` does not accept `{value}` (expected {expected})")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("`{0}` is not of the form key=value")]
    Syntax(String),
}

/// Every knob name, as DESIGN.md spells them.
pub const KNOWN: &[&str] = &[
    "logs.indexing",
    "worker.task-handling",
    "worker.threads",
    "queued.index",
    "jdbc.json-mapping",
    "serde.mode",
];

macro_rules! two_way {
    ($(#[$doc:meta])* $name:ident { $before:ident = $b:literal, $after:ident = $a:literal }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name {
            /// Kestra's behaviour before the optimisation.
            $before,
            /// The optimised behaviour (the default).
            #[default]
            $after,
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    Self::$before => $b,
                    Self::$after => $a,
                }
            }
        }

        impl FromStr for $name {
            type Err = &'static str;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $b => Ok(Self::$before),
                    $a => Ok(Self::$after),
                    _ => Err(concat!("`", $b, "` or `", $a, "`")),
                }
            }
        }
    };
}

two_way!(
    /// `logs.indexing`: `sync` hands each log line to a pool of 2 × cores that commits it in
    /// its own transaction (Kestra 0.19's `emitAsync`); `batched` emits lines to the queue
    /// and the indexer writes them in batches.
    LogIndexing { Sync = "sync", Batched = "batched" }
);
two_way!(
    /// `worker.task-handling`: `mutate` copies the task through one JSON round trip and
    /// updates it with shallow `with…` copies (Kestra before 84d845cde); `immutable` borrows
    /// it and builds the result directly.
    TaskHandling { Mutate = "mutate", Immutable = "immutable" }
);
two_way!(
    /// `queued.index`: `flow` indexes `execution_queued` on (namespace, flow_id) and pops
    /// without SKIP LOCKED; `flow-date` adds the date and pops with `FOR UPDATE SKIP LOCKED`.
    QueuedIndex { Flow = "flow", FlowDate = "flow-date" }
);
two_way!(
    /// `jdbc.json-mapping`: `normalize` reads JSON as text, parses it to a generic value,
    /// re-renders it and parses that into the type; `direct` parses the column straight in.
    JsonMapping { Normalize = "normalize", Direct = "direct" }
);
/// `serde.mode`: `naive` serializes each record into a fresh buffer with 8 KiB I/O
/// buffers; `batched` reuses one streaming serializer with 32 KiB buffers.
pub use crate::fileserde::SerdeMode;

/// Kestra's worker default since 0.19: four threads per available core (kestra 81ff4e65f,
/// `AbstractServerCommand.defaultWorkerThread`).
///
/// The `worker.threads` knob's "before" value, 128, was never a code default: it is the
/// `--worker-thread=128` of Kestra's `docker-compose.yml` from 2022 (bd3db0c8a) until
/// 0.19 removed it (c32f5a550). At 0.18 the code default was 2 × cores for
/// `server worker` and max(3, cores) for `server standalone`.
pub fn default_worker_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The knob values one run uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Knobs {
    pub logs_indexing: LogIndexing,
    pub task_handling: TaskHandling,
    pub worker_threads: usize,
    pub queued_index: QueuedIndex,
    pub json_mapping: JsonMapping,
    pub serde_mode: SerdeMode,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            logs_indexing: LogIndexing::default(),
            task_handling: TaskHandling::default(),
            worker_threads: default_worker_threads(),
            queued_index: QueuedIndex::default(),
            json_mapping: JsonMapping::default(),
            serde_mode: SerdeMode::default(),
        }
    }
}

impl Knobs {
    /// Applies one `key=value`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), KnobError> {
        fn parse<T: FromStr<Err = &'static str>>(key: &str, value: &str) -> Result<T, KnobError> {
            value.parse().map_err(|expected| KnobError::BadValue {
                key: key.into(),
                value: value.into(),
                expected,
            })
        }
        match key {
            "logs.indexing" => self.logs_indexing = parse(key, value)?,
            "worker.task-handling" => self.task_handling = parse(key, value)?,
            "queued.index" => self.queued_index = parse(key, value)?,
            "jdbc.json-mapping" => self.json_mapping = parse(key, value)?,
            "serde.mode" => {
                self.serde_mode = value.parse().map_err(|_| KnobError::BadValue {
                    key: key.into(),
                    value: value.into(),
                    expected: "`naive` or `batched`",
                })?
            }
            "worker.threads" => {
                self.worker_threads =
                    value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| KnobError::BadValue {
                            key: key.into(),
                            value: value.into(),
                            expected: "a positive whole number",
                        })?
            }
            other => return Err(KnobError::Unknown(other.into())),
        }
        Ok(())
    }

    /// Applies every `key=value` of `--set`, in order.
    pub fn apply<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<(), KnobError> {
        for a in assignments {
            let a = a.as_ref();
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| KnobError::Syntax(a.into()))?;
            self.set(k.trim(), v.trim())?;
        }
        Ok(())
    }

    /// Every knob with its value, as results files record them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("logs.indexing".into(), self.logs_indexing.as_str().into()),
            (
                "worker.task-handling".into(),
                self.task_handling.as_str().into(),
            ),
            ("worker.threads".into(), self.worker_threads.to_string()),
            ("queued.index".into(), self.queued_index.as_str().into()),
            (
                "jdbc.json-mapping".into(),
                self.json_mapping.as_str().into(),
            ),
            ("serde.mode".into(), self.serde_mode.to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_optimised_values() {
        let k = Knobs::default();
        assert_eq!(k.logs_indexing, LogIndexing::Batched);
        assert_eq!(k.task_handling, TaskHandling::Immutable);
        assert_eq!(k.queued_index, QueuedIndex::FlowDate);
        assert_eq!(k.json_mapping, JsonMapping::Direct);
        assert_eq!(k.serde_mode, SerdeMode::Batched);
        assert_eq!(k.worker_threads, default_worker_threads());
    }

    #[test]
    fn set_parses_and_rejects_clearly() {
        let mut k = Knobs::default();
        k.apply(&["logs.indexing=sync", "worker.threads=128"])
            .unwrap();
        assert_eq!(k.logs_indexing, LogIndexing::Sync);
        assert_eq!(k.worker_threads, 128);
        let e = k.apply(&["logs.indexing=fast"]).unwrap_err().to_string();
        assert!(e.contains("`sync` or `batched`"), "{e}");
        assert!(matches!(k.set("nope", "1"), Err(KnobError::Unknown(_))));
        assert!(matches!(k.apply(&["noequals"]), Err(KnobError::Syntax(_))));
        assert!(k.set("worker.threads", "0").is_err());
    }
}
