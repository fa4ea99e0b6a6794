//! A multiple condition's `timeWindow` (Kestra's `TimeWindow`) and the window it opens at a
//! moment (Kestra's `MultipleConditionStorageInterface#getOrCreate`, 58c1ca2d0). Times are
//! UTC, the zone of Kestra's published images (Kestra uses the JVM's default zone).

use std::time::Duration;

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp, ToSpan, tz::TimeZone};

use crate::flow::task_duration as parse_duration;

/// `timeWindow` as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct TimeWindowSpec {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    pub(super) window: Option<String>,
    #[serde(default)]
    pub(super) window_advance: Option<String>,
    #[serde(default)]
    deadline: Option<String>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
}

/// The four kinds of Kestra's `TimeWindow.Type`.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeWindow {
    /// `DURATION_WINDOW` (the default): fixed windows of `window` (a day by default) from
    /// midnight, shifted by `windowAdvance`.
    Duration {
        window: Duration,
        advance: Option<Duration>,
    },
    /// `SLIDING_WINDOW`: `window` from the first execution that opens it.
    Sliding { window: Duration },
    /// `DAILY_TIME_DEADLINE`: from midnight to `deadline`.
    DailyDeadline { deadline: Time },
    /// `DAILY_TIME_WINDOW`: from `startTime` to `endTime`, each day.
    DailyWindow { start: Time, end: Time },
}

const DAY: Duration = Duration::from_secs(86_400);

impl TryFrom<TimeWindowSpec> for TimeWindow {
    type Error = String;

    /// Kestra's `TimeWindowValidation`: each type with the properties it needs.
    fn try_from(s: TimeWindowSpec) -> Result<TimeWindow, String> {
        let duration = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(|d| parse_duration(d).map_err(|e| format!("`timeWindow.{name}`: {e}")))
                .transpose()
        };
        let time = |name: &str, v: &Option<String>| {
            let text = v
                .as_deref()
                .ok_or_else(|| format!("`timeWindow.{name}` is required for this type"))?;
            text.parse::<Time>()
                .map_err(|e| format!("`timeWindow.{name}`: `{text}` is not a time: {e}"))
        };
        let window = duration("window", &s.window)?;
        let advance = duration("windowAdvance", &s.window_advance)?;
        match s.kind.as_deref().unwrap_or("DURATION_WINDOW") {
            "DURATION_WINDOW" => Ok(TimeWindow::Duration {
                window: window.unwrap_or(DAY),
                advance,
            }),
            "SLIDING_WINDOW" => Ok(TimeWindow::Sliding {
                window: window.unwrap_or(DAY),
            }),
            "DAILY_TIME_DEADLINE" => Ok(TimeWindow::DailyDeadline {
                deadline: time("deadline", &s.deadline)?,
            }),
            "DAILY_TIME_WINDOW" => Ok(TimeWindow::DailyWindow {
                start: time("startTime", &s.start_time)?,
                end: time("endTime", &s.end_time)?,
            }),
            other => Err(format!(
                "`timeWindow.type`: `{other}` is not DURATION_WINDOW, SLIDING_WINDOW, DAILY_TIME_DEADLINE or DAILY_TIME_WINDOW"
            )),
        }
    }
}

impl Default for TimeWindow {
    fn default() -> Self {
        TimeWindow::Duration {
            window: DAY,
            advance: None,
        }
    }
}

impl TimeWindow {
    /// The window a first execution at `now` opens: `(start, end)`, as Kestra's
    /// `getOrCreate` computes it, step for step.
    pub fn bounds(&self, now: Timestamp) -> (Timestamp, Timestamp) {
        // Kestra's `withNano(0)`.
        let now = Timestamp::from_second(now.as_second())
            .unwrap_or(now)
            .to_zoned(TimeZone::UTC);
        let midnight = now.start_of_day().unwrap_or_else(|_| now.clone());
        let at = |t: Time| {
            midnight.timestamp()
                + SignedDuration::from_secs(i64::from(t.hour()) * 3600)
                + SignedDuration::from_secs(i64::from(t.minute()) * 60 + i64::from(t.second()))
        };
        let signed = |d: Duration| SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
        match self {
            TimeWindow::Duration { window, advance } => {
                let secs = window.as_secs();
                let mut t = now.clone();
                if secs >= 86_400 {
                    t = t.with().hour(0).build().unwrap_or(t);
                }
                if secs >= 3_600 {
                    t = t.with().minute(0).build().unwrap_or(t);
                }
                if secs >= 60 {
                    let minutes = (secs / 60) as i64;
                    // Java reads the minute of `now` before this line sets it.
                    let minute = i64::from(t.minute());
                    let floored = t.with().second(0).minute(0).build().unwrap_or(t.clone());
                    t = floored
                        .checked_add((minutes * (minute / minutes)).minutes())
                        .unwrap_or(floored);
                }
                let start = match advance {
                    Some(a) => t.timestamp() + signed(*a),
                    None => t.timestamp(),
                };
                (
                    start,
                    start + signed(*window) - SignedDuration::from_millis(1),
                )
            }
            TimeWindow::Sliding { window } => {
                let start = now.timestamp();
                (start, start + signed(*window))
            }
            TimeWindow::DailyDeadline { deadline } => (midnight.timestamp(), at(*deadline)),
            TimeWindow::DailyWindow { start, end } => (at(*start), at(*end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_day_window_runs_from_midnight_to_the_last_millisecond() {
        let (start, end) = TimeWindow::default().bounds(ts("2024-12-03T15:42:10.5Z"));
        assert_eq!(start, ts("2024-12-03T00:00:00Z"));
        assert_eq!(end, ts("2024-12-03T23:59:59.999Z"));
    }

    #[test]
    fn a_ten_minute_window_starts_at_the_last_tenth_minute() {
        let w = TimeWindow::Duration {
            window: Duration::from_secs(600),
            advance: None,
        };
        let (start, end) = w.bounds(ts("2024-12-03T15:42:10Z"));
        assert_eq!(start, ts("2024-12-03T15:40:00Z"));
        assert_eq!(end, ts("2024-12-03T15:49:59.999Z"));
    }

    #[test]
    fn daily_windows_and_deadlines_are_times_of_today() {
        let w = TimeWindow::DailyWindow {
            start: "06:00:00".parse().unwrap(),
            end: "09:00:00".parse().unwrap(),
        };
        assert_eq!(
            w.bounds(ts("2024-12-03T07:00:00Z")),
            (ts("2024-12-03T06:00:00Z"), ts("2024-12-03T09:00:00Z"))
        );
        let d = TimeWindow::DailyDeadline {
            deadline: "09:00:00".parse().unwrap(),
        };
        assert_eq!(
            d.bounds(ts("2024-12-03T07:00:00Z")),
            (ts("2024-12-03T00:00:00Z"), ts("2024-12-03T09:00:00Z"))
        );
    }

    #[test]
    fn a_window_type_needs_its_properties() {
        let spec = TimeWindowSpec {
            kind: Some("DAILY_TIME_DEADLINE".into()),
            ..TimeWindowSpec::default()
        };
        let e = TimeWindow::try_from(spec).unwrap_err();
        assert!(e.contains("timeWindow.deadline"), "{e}");
    }
}
