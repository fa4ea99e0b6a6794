use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Kestra's `State.Type`, with the same names and the same terminal set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StateType {
    Created,
    Submitted,
    Running,
    Paused,
    Restarted,
    Killing,
    Success,
    Warning,
    Failed,
    Killed,
    Cancelled,
    Queued,
    Retrying,
    Retried,
    Skipped,
}

impl StateType {
    /// Kestra's `isTerminated()`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Success
                | Self::Warning
                | Self::Failed
                | Self::Killed
                | Self::Cancelled
                | Self::Retried
                | Self::Skipped
        )
    }

    /// Kestra's `isFailed()`.
    pub fn is_failed(self) -> bool {
        matches!(self, Self::Failed | Self::Killed)
    }

    /// States that hold a slot of a flow's concurrency limit (Kestra counts the running
    /// executions, not the created or queued ones).
    pub fn is_running(self) -> bool {
        Self::RUNNING.contains(&self)
    }

    /// Kestra's `State.Type.terminatedTypes()`: the states [`StateType::is_terminal`]
    /// accepts, in Kestra's declaration order.
    pub const TERMINATED: [StateType; 7] = [
        Self::Success,
        Self::Warning,
        Self::Failed,
        Self::Killed,
        Self::Cancelled,
        Self::Retried,
        Self::Skipped,
    ];

    /// The states [`StateType::is_running`] accepts; the repositories count these.
    pub const RUNNING: [StateType; 5] = [
        Self::Running,
        Self::Paused,
        Self::Restarted,
        Self::Killing,
        Self::Retrying,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Submitted => "SUBMITTED",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Restarted => "RESTARTED",
            Self::Killing => "KILLING",
            Self::Success => "SUCCESS",
            Self::Warning => "WARNING",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
            Self::Cancelled => "CANCELLED",
            Self::Queued => "QUEUED",
            Self::Retrying => "RETRYING",
            Self::Retried => "RETRIED",
            Self::Skipped => "SKIPPED",
        }
    }

    /// Combines the final states of children into their parent's, the way Kestra's
    /// `FlowableUtils.resolveState` does: any failure fails, else any warning warns.
    pub fn worst(self, other: StateType) -> StateType {
        fn rank(s: StateType) -> u8 {
            match s {
                StateType::Failed | StateType::Killed => 3,
                StateType::Warning => 2,
                StateType::Cancelled => 1,
                _ => 0,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl std::fmt::Display for StateType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `state.histories`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub state: StateType,
    pub date: Timestamp,
}

/// Kestra's `State`: the current type plus every transition with its date.
///
/// Serialized with Kestra's derived fields `startDate`, `endDate` (once terminal) and
/// `duration` (ISO-8601), which the `executions` table's generated columns index.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "StateRepr")]
pub struct State {
    pub current: StateType,
    pub histories: Vec<History>,
}

#[derive(Deserialize)]
struct StateRepr {
    current: StateType,
    histories: Vec<History>,
}

impl From<StateRepr> for State {
    fn from(r: StateRepr) -> Self {
        State {
            current: r.current,
            histories: r.histories,
        }
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("State", 5)?;
        st.serialize_field("current", &self.current)?;
        st.serialize_field("histories", &self.histories)?;
        st.serialize_field("startDate", &self.start_date())?;
        if let Some(end) = self.end_date() {
            st.serialize_field("endDate", &end)?;
        }
        st.serialize_field("duration", &iso_duration(self.duration()))?;
        st.end()
    }
}

impl State {
    pub fn new(at: Timestamp) -> Self {
        Self::of(StateType::Created, at)
    }

    pub fn of(current: StateType, at: Timestamp) -> Self {
        State {
            current,
            histories: vec![History {
                state: current,
                date: at,
            }],
        }
    }

    /// Moves to `next`, recording the transition. A transition to the current type is a no-op.
    pub fn transition(&mut self, next: StateType, at: Timestamp) {
        if self.current != next {
            self.current = next;
            self.histories.push(History {
                state: next,
                date: at,
            });
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.current.is_terminal()
    }

    pub fn start_date(&self) -> Timestamp {
        self.histories.first().map(|h| h.date).unwrap_or_default()
    }

    pub fn end_date(&self) -> Option<Timestamp> {
        self.current
            .is_terminal()
            .then(|| self.histories.last().map(|h| h.date))
            .flatten()
    }

    /// From the first history to the end (or to the last transition while running).
    pub fn duration(&self) -> jiff::SignedDuration {
        let last = self.histories.last().map(|h| h.date).unwrap_or_default();
        last.duration_since(self.start_date())
    }
}

/// Kestra prints durations as ISO-8601 (`PT0.123S`).
pub fn iso_duration(d: jiff::SignedDuration) -> String {
    format!("PT{}S", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_serializes_in_kestras_shape_with_derived_dates() {
        let t0: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2024-01-01T00:00:01.5Z".parse().unwrap();
        let mut s = State::new(t0);
        s.transition(StateType::Running, t0);
        s.transition(StateType::Success, t1);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["current"], "SUCCESS");
        assert_eq!(v["histories"].as_array().unwrap().len(), 3);
        assert_eq!(v["duration"], "PT1.5S");
        assert_eq!(v["endDate"], "2024-01-01T00:00:01.5Z");
        let back: State = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn worst_prefers_failure_then_warning() {
        use StateType::*;
        assert_eq!(Success.worst(Warning), Warning);
        assert_eq!(Warning.worst(Failed), Failed);
        assert_eq!(Failed.worst(Success), Failed);
    }
}
