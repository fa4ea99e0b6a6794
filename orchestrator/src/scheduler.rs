//! The scheduler: fires the flows' `Schedule` triggers, Kestra's Scheduler component.
//!
//! Each trigger has a row in `triggers` (Kestra's `Trigger`): the tick it fired last and the
//! one it fires next. The scheduler wakes at the earliest tick it knows of, and every
//! second at least, and looks at the triggers due; for each, in one
//! transaction, it locks the row, creates an execution for every tick due (Kestra's
//! `recoverMissedSchedules: ALL`, its default) with `trigger.date`, `trigger.next` and
//! `trigger.previous`, and moves the row on. The execution and the row commit together, so
//! two schedulers never fire one tick twice (the second waits for the row, then finds the
//! tick gone), and a scheduler killed at any point neither loses a tick nor repeats one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::flow::{Flow, Trigger, parse_flow, resolve_inputs};
use crate::model::{Execution, ExecutionTrigger};
use crate::queue::{ExecutionEvent, Transaction};
use crate::repository::{Store, TriggerState};

/// Kestra's type name of the trigger, which executions it starts carry.
pub const SCHEDULE_TYPE: &str = "io.kestra.plugin.core.trigger.Schedule";

/// How often the scheduler looks for due ticks at least (Kestra's scheduler loops every
/// second); it wakes sooner for a tick it knows is due sooner.
const EVERY: Duration = Duration::from_secs(1);
/// How often it reads the flows again, for new, changed and deleted ones.
const FLOWS_EVERY: Duration = Duration::from_secs(2);
/// The most ticks one trigger fires in one transaction (a long backfill goes on in the
/// next pass).
const TICKS_PER_PASS: usize = 100;
/// The most triggers one transaction fires.
const TRIGGERS_PER_TRANSACTION: usize = 100;

/// What a scheduler that was down does with the ticks it missed (Kestra's
/// `recoverMissedSchedules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recover {
    /// Fire every missed tick (Kestra's default).
    All,
    /// Fire the last missed tick only.
    Last,
    /// Fire none; go on from the next tick.
    None,
}

/// A flow's `io.kestra.plugin.core.trigger.Schedule` trigger, as Kestra 58c1ca2d0 reads it:
/// a UNIX cron (five fields, or six `withSeconds`; `@hourly` and the other nicknames; days
/// of week 0 to 7, Sunday both 0 and 7), in `timezone` (the system's by default).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub id: String,
    pub cron: String,
    pub with_seconds: bool,
    /// An IANA name; `None`: the system's time zone.
    pub timezone: Option<String>,
    pub inputs: Map<String, Value>,
    /// `backfill.start`: the first tick is the first at or after it.
    pub backfill_start: Option<Timestamp>,
    pub recover: Recover,
    pub disabled: bool,
}

/// The Schedule properties read here. Kestra has others (`conditions`, `lateMaximumDelay`,
/// `stopAfter`, `labels`, `interval`, `logLevel`, `logToFile`, `workerGroup`); a flow that
/// sets one is refused at load by name rather than run without it.
const PROPERTIES: &[&str] = &[
    "id",
    "type",
    "description",
    "disabled",
    "cron",
    "withSeconds",
    "timezone",
    "inputs",
    "backfill",
    "recoverMissedSchedules",
];

impl Schedule {
    /// Reads the trigger's properties; the error says which one is wrong.
    pub fn parse(id: String, t: &Value) -> Result<Schedule, String> {
        crate::flow::only_properties(t, "a Schedule trigger", PROPERTIES)?;
        if let Some(Value::Object(b)) = t.get("backfill")
            && let Some(key) = b.keys().find(|k| k.as_str() != "start")
        {
            return Err(format!(
                "property `backfill.{key}` is not supported: a backfill here has a `start` only"
            ));
        }
        let cron = t
            .get("cron")
            .and_then(Value::as_str)
            .ok_or("missing required property `cron`")?
            .to_string();
        let with_seconds = t
            .get("withSeconds")
            .map(|v| {
                v.as_bool()
                    .ok_or("property `withSeconds` must be a boolean")
            })
            .transpose()?
            .unwrap_or(false);
        let timezone = t
            .get("timezone")
            .map(|v| v.as_str().ok_or("property `timezone` must be a string"))
            .transpose()?
            .map(str::to_string);
        let inputs = match t.get("inputs") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err("property `inputs` must be a map".into()),
        };
        let backfill_start = match t.get("backfill") {
            None | Some(Value::Null) => None,
            Some(b) => Some(
                b.get("start")
                    .and_then(Value::as_str)
                    .ok_or("`backfill` needs a `start` date")?
                    .parse::<Timestamp>()
                    .map_err(|e| format!("`backfill.start` is not an ISO-8601 date-time: {e}"))?,
            ),
        };
        let recover = match t.get("recoverMissedSchedules").and_then(Value::as_str) {
            None | Some("ALL") => Recover::All,
            Some("LAST") => Recover::Last,
            Some("NONE") => Recover::None,
            Some(other) => {
                return Err(format!(
                    "property `recoverMissedSchedules`: `{other}` is not ALL, LAST or NONE"
                ));
            }
        };
        let disabled = t.get("disabled").and_then(Value::as_bool).unwrap_or(false);
        let schedule = Schedule {
            id,
            cron,
            with_seconds,
            timezone,
            inputs,
            backfill_start,
            recover,
            disabled,
        };
        schedule.parsed()?;
        schedule.zone()?;
        Ok(schedule)
    }

    fn parsed(&self) -> Result<Cron, String> {
        let seconds = if self.with_seconds {
            Seconds::Required
        } else {
            Seconds::Disallowed
        };
        CronParser::builder()
            .seconds(seconds)
            .year(Year::Disallowed)
            .build()
            .parse(&self.cron)
            .map_err(|e| {
                let fields = if self.with_seconds { "six" } else { "five" };
                format!(
                    "property `cron`: `{}` is not a cron expression of {fields} fields: {e}",
                    self.cron
                )
            })
    }

    fn zone(&self) -> Result<TimeZone, String> {
        match &self.timezone {
            None => Ok(TimeZone::system()),
            Some(name) => TimeZone::get(name)
                .map_err(|e| format!("property `timezone`: `{name}` is not a time zone: {e}")),
        }
    }
}

/// A schedule ready to compute ticks.
struct Ticks {
    cron: Cron,
    zone: TimeZone,
}

impl Ticks {
    fn of(s: &Schedule) -> Result<Ticks, String> {
        Ok(Ticks {
            cron: s.parsed()?,
            zone: s.zone()?,
        })
    }

    fn find(&self, t: Timestamp, inclusive: bool, forward: bool) -> Option<Timestamp> {
        let at = t.to_zoned(self.zone.clone());
        let found = if forward {
            self.cron.find_next_occurrence(&at, inclusive)
        } else {
            self.cron.find_previous_occurrence(&at, inclusive)
        };
        found.ok().map(|z| z.timestamp())
    }

    /// The first tick strictly after `t`.
    fn after(&self, t: Timestamp) -> Option<Timestamp> {
        self.find(t, false, true)
    }

    /// The first tick at or after `t`.
    fn from(&self, t: Timestamp) -> Option<Timestamp> {
        self.find(t, true, true)
    }

    /// The last tick strictly before `t`.
    fn before(&self, t: Timestamp) -> Option<Timestamp> {
        self.find(t, false, false)
    }

    /// A date as Kestra's trigger variables carry it: ISO-8601 with the zone's offset,
    /// `Z` for UTC.
    fn format(&self, t: Timestamp) -> String {
        let z = t.to_zoned(self.zone.clone());
        if z.offset().seconds() == 0 {
            z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
        } else {
            z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
        }
    }
}

/// One schedule trigger of one deployed flow.
struct Entry {
    flow: Arc<Flow>,
    schedule: Schedule,
    ticks: Ticks,
    /// The next tick as this scheduler last read it from the row (`None`: never read).
    /// Another scheduler may have moved the row on since; the row's lock decides.
    next: Option<Timestamp>,
}

pub struct Scheduler {
    store: Arc<dyn Store>,
    entries: HashMap<String, Entry>,
    /// Each stored source as last read, with its flow's key (`None`: it has no schedule, or
    /// it does not load), so that only new and changed sources are parsed.
    sources: HashMap<String, Option<String>>,
    /// Executions this scheduler created, for tests and the harness.
    fired: u64,
}

impl Scheduler {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Scheduler {
            store,
            entries: HashMap::new(),
            sources: HashMap::new(),
            fired: 0,
        }
    }

    /// Runs until `shutdown` is cancelled. Errors (a database restart) are logged and the
    /// pass is tried again a second later; a failed pass commits nothing.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut last_flows: Option<tokio::time::Instant> = None;
        loop {
            if last_flows.is_none_or(|t| t.elapsed() >= FLOWS_EVERY) {
                match self.reload().await {
                    Ok(()) => last_flows = Some(tokio::time::Instant::now()),
                    Err(e) => tracing::warn!("scheduler: reading the flows failed: {e:#}"),
                }
            }
            let wait = match self.pass(Timestamp::now()).await {
                Ok(_) => self.until_next(Timestamp::now()),
                Err(e) => {
                    tracing::warn!("scheduler: {e:#}; retrying");
                    EVERY
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Reads the deployed flows again and keeps their enabled schedule triggers. Only a
    /// source not seen at the last reading is parsed.
    pub async fn reload(&mut self) -> anyhow::Result<()> {
        let sources = self.store.flows().await?;
        let mut seen: HashMap<String, Option<String>> = HashMap::with_capacity(sources.len());
        for source in sources {
            if let Some(key) = self.sources.remove(&source) {
                seen.insert(source, key);
                continue;
            }
            if !source.contains(".Schedule") {
                // No schedule trigger can be in it: not worth a parse (a flow with ten
                // thousand expressions costs some hundred thousand allocations to load).
                seen.insert(source, None);
                continue;
            }
            let flow = match parse_flow(&source, "stored flow") {
                Ok(flow) => flow,
                Err(e) => {
                    tracing::warn!("scheduler: a stored flow does not load: {e}");
                    seen.insert(source, None);
                    continue;
                }
            };
            let key = flow.key();
            self.entries.retain(|_, e| e.flow.key() != key);
            let stored = self.store.flow(&flow.namespace, &flow.id).await?;
            let mut flow = flow;
            flow.revision = stored.map_or(1, |(revision, _)| revision);
            let flow = Arc::new(flow);
            for trigger in flow.triggers.iter().filter(|_| !flow.disabled) {
                let Trigger::Schedule(schedule) = trigger else {
                    continue;
                };
                if schedule.disabled {
                    continue;
                }
                let ticks = match Ticks::of(schedule) {
                    Ok(ticks) => ticks,
                    Err(e) => {
                        tracing::warn!("scheduler: flow `{key}`: {e}");
                        continue;
                    }
                };
                let entry = Entry {
                    flow: flow.clone(),
                    schedule: schedule.clone(),
                    ticks,
                    next: None,
                };
                self.entries.insert(
                    TriggerState::key(&flow.namespace, &flow.id, &schedule.id),
                    entry,
                );
            }
            seen.insert(source, Some(key));
        }
        let keys: std::collections::HashSet<&String> = seen.values().flatten().collect();
        self.entries.retain(|_, e| keys.contains(&e.flow.key()));
        self.sources = seen;
        Ok(())
    }

    /// Fires every tick due at `now`; returns how many executions it created. Triggers are
    /// taken [`TRIGGERS_PER_TRANSACTION`] at a time, in key order, so that two schedulers
    /// lock their rows in one order and wait for each other rather than deadlock.
    pub async fn pass(&mut self, now: Timestamp) -> anyhow::Result<usize> {
        let mut created = 0;
        let mut keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.next.is_none_or(|n| n <= now))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        for chunk in keys.chunks(TRIGGERS_PER_TRANSACTION) {
            // The first row of each trigger that has none, in a transaction of its own.
            let mut initial = Vec::new();
            for key in chunk {
                let entry = self.entries.get_mut(key).expect("listed above");
                if entry.next.is_none() {
                    match initial_state(entry, now) {
                        Some(state) => initial.push(state),
                        None => entry.next = Some(Timestamp::MAX),
                    }
                }
            }
            if !initial.is_empty() {
                let mut tx = self.store.begin().await?;
                for state in &initial {
                    tx.trigger_insert(state).await?;
                }
                tx.commit().await?;
            }
            let mut tx = self.store.begin().await?;
            let mut n = 0;
            let mut moved = Vec::with_capacity(chunk.len());
            for key in chunk {
                let entry = self.entries.get(key).expect("listed above");
                if entry.next == Some(Timestamp::MAX) {
                    continue;
                }
                let (fired, next) = fire(&mut tx, key, entry, now).await?;
                n += fired;
                moved.push((key, next));
            }
            tx.commit().await?;
            // Only once committed: a failed transaction leaves every entry to be read again.
            for (key, next) in moved {
                self.entries.get_mut(key).expect("listed above").next = next;
            }
            created += n;
        }
        self.fired += created as u64;
        Ok(created)
    }

    /// How long to sleep before the next pass: until the earliest tick known to be due,
    /// and a second at most, so that flows deployed meanwhile and ticks another scheduler
    /// moved are seen within a second, as Kestra's scheduler sees them.
    fn until_next(&self, now: Timestamp) -> Duration {
        self.entries
            .values()
            .filter_map(|e| e.next)
            .min()
            .map_or(EVERY, |next| {
                Duration::try_from(next.duration_since(now))
                    .unwrap_or(Duration::ZERO)
                    .min(EVERY)
            })
    }

    /// How many executions this scheduler created.
    pub fn fired(&self) -> u64 {
        self.fired
    }
}

/// A trigger's first row: its first tick is the first after `now`, or the first at or
/// after `backfill.start`; `None` when the cron never fires again.
fn initial_state(entry: &Entry, now: Timestamp) -> Option<TriggerState> {
    let first = match entry.schedule.backfill_start {
        Some(start) => entry.ticks.from(start),
        None => entry.ticks.after(now),
    }?;
    Some(TriggerState {
        namespace: entry.flow.namespace.clone(),
        flow_id: entry.flow.id.clone(),
        trigger_id: entry.schedule.id.clone(),
        date: None,
        next_execution_date: first,
        execution_id: None,
    })
}

/// Under the trigger row's lock, creates an execution for each tick due at `now` and moves
/// the row on; returns how many it created and the row's next tick (`None`: read the row
/// again next pass).
async fn fire(
    tx: &mut Transaction<'_>,
    key: &str,
    entry: &Entry,
    now: Timestamp,
) -> anyhow::Result<(usize, Option<Timestamp>)> {
    let s = &entry.schedule;
    let Some(mut state) = tx.trigger_lock(key).await? else {
        // Deleted meanwhile: read it again next pass.
        return Ok((0, None));
    };
    let mut due = Vec::new();
    let mut next = Some(state.next_execution_date);
    while let Some(tick) = next.filter(|t| *t <= now) {
        due.push(tick);
        next = entry.ticks.after(tick);
        if due.len() == TICKS_PER_PASS {
            break;
        }
    }
    let due: Vec<Timestamp> = match s.recover {
        Recover::All => due,
        // Missed ticks are those before the last one due; the last one is on time.
        Recover::Last => due.last().copied().into_iter().collect(),
        // Only a tick due within this pass's period is on time.
        Recover::None => due
            .last()
            .copied()
            .filter(|t| {
                now.duration_since(*t)
                    < jiff::SignedDuration::try_from(2 * EVERY).unwrap_or_default()
            })
            .into_iter()
            .collect(),
    };
    let mut events = Vec::with_capacity(due.len());
    for tick in &due {
        let exec = scheduled_execution(&entry.flow, s, &entry.ticks, *tick)?;
        tx.save_execution(&exec).await?;
        events.push(ExecutionEvent::new(&exec.id));
        state.date = Some(*tick);
        state.execution_id = Some(exec.id);
    }
    tx.send(&events).await?;
    // A cron that never fires again keeps its row at the end of time, not at a fired tick.
    state.next_execution_date = next.unwrap_or(Timestamp::MAX);
    tx.trigger_put(&state).await?;
    Ok((due.len(), Some(state.next_execution_date)))
}

/// The execution a tick starts, as Kestra's `Schedule#evaluate` builds it: the trigger's
/// inputs, and `trigger.date`, `trigger.next`, `trigger.previous`.
fn scheduled_execution(
    flow: &Flow,
    s: &Schedule,
    ticks: &Ticks,
    tick: Timestamp,
) -> anyhow::Result<Execution> {
    let inputs = resolve_inputs(&flow.inputs, &s.inputs)
        .map_err(|e| anyhow::anyhow!("flow `{}`, trigger `{}`: {e}", flow.key(), s.id))?;
    let mut variables = Map::new();
    variables.insert("date".into(), ticks.format(tick).into());
    if let Some(next) = ticks.after(tick) {
        variables.insert("next".into(), ticks.format(next).into());
    }
    if let Some(previous) = ticks.before(tick) {
        variables.insert("previous".into(), ticks.format(previous).into());
    }
    let trigger = ExecutionTrigger {
        id: s.id.clone(),
        kind: SCHEDULE_TYPE.into(),
        variables,
    };
    Ok(crate::service::new_execution(
        flow,
        inputs,
        Vec::new(),
        Some(trigger),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schedule(t: Value) -> Result<Schedule, String> {
        Schedule::parse("s".into(), &t)
    }

    #[test]
    fn crons_read_as_kestras_unix_crons() {
        let s = schedule(json!({"cron": "0 9 * * 1", "timezone": "UTC"})).unwrap();
        let ticks = Ticks::of(&s).unwrap();
        // 2024-01-01 was a Monday: 1 is Monday, as in UNIX cron.
        let t: Timestamp = "2023-12-31T12:00:00Z".parse().unwrap();
        assert_eq!(
            ticks.format(ticks.after(t).unwrap()),
            "2024-01-01T09:00:00Z"
        );
        // 0 and 7 are both Sunday.
        for sunday in ["0 9 * * 0", "0 9 * * 7"] {
            let s = schedule(json!({"cron": sunday, "timezone": "UTC"})).unwrap();
            let ticks = Ticks::of(&s).unwrap();
            assert_eq!(
                ticks.format(ticks.after(t).unwrap()),
                "2024-01-07T09:00:00Z",
                "{sunday}"
            );
        }
        let s = schedule(json!({"cron": "@hourly", "timezone": "Europe/Paris"})).unwrap();
        let ticks = Ticks::of(&s).unwrap();
        assert_eq!(
            ticks.format(ticks.after(t).unwrap()),
            "2023-12-31T14:00:00+01:00"
        );
        // 12:00 UTC is 13:00 in Paris, a tick: the one before is strictly before.
        assert_eq!(
            ticks.format(ticks.before(t).unwrap()),
            "2023-12-31T12:00:00+01:00"
        );
        let s = schedule(json!({"cron": "*/5 * * * * *", "withSeconds": true, "timezone": "UTC"}))
            .unwrap();
        let ticks = Ticks::of(&s).unwrap();
        assert_eq!(
            ticks.format(ticks.after(t).unwrap()),
            "2023-12-31T12:00:05Z"
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        let e = schedule(json!({"cron": "every hour"})).unwrap_err();
        assert!(e.contains("`every hour` is not a cron expression"), "{e}");
        let e = schedule(json!({"cron": "* * * * * *"})).unwrap_err();
        assert!(e.contains("five fields"), "{e}");
        let e = schedule(json!({"cron": "0 0 25 * *", "timezone": "Mars/Olympus"})).unwrap_err();
        assert!(e.contains("`Mars/Olympus` is not a time zone"), "{e}");
        let e = schedule(json!({})).unwrap_err();
        assert!(e.contains("`cron`"), "{e}");
        let e =
            schedule(json!({"cron": "@daily", "backfill": {"start": "yesterday"}})).unwrap_err();
        assert!(e.contains("backfill.start"), "{e}");
    }

    #[test]
    fn kestras_schedule_properties_not_built_are_refused_by_name() {
        for key in [
            "conditions",
            "lateMaximumDelay",
            "stopAfter",
            "labels",
            "logLevel",
        ] {
            let e = schedule(json!({"cron": "@daily", key: []})).unwrap_err();
            assert!(
                e.contains(&format!(
                    "property `{key}` is not supported on a Schedule trigger"
                )),
                "{e}"
            );
        }
        let e = schedule(json!({"cron": "@daily", "backfill": {
            "start": "2024-01-01T00:00:00Z", "end": "2024-02-01T00:00:00Z"
        }}))
        .unwrap_err();
        assert!(e.contains("`backfill.end` is not supported"), "{e}");
        // What is built still reads.
        let s = schedule(json!({
            "id": "s", "type": "io.kestra.plugin.core.trigger.Schedule", "description": "d",
            "disabled": false, "cron": "@daily", "withSeconds": false, "timezone": "UTC",
            "inputs": {"a": 1}, "backfill": {"start": "2024-01-01T00:00:00Z"},
            "recoverMissedSchedules": "LAST"
        }))
        .unwrap();
        assert_eq!(s.recover, Recover::Last);
        assert_eq!(s.inputs["a"], 1);
    }
}
