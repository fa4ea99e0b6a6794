//! Bencher Metric Format: `{ benchmark: { measure: { value, lower_value, upper_value } } }`.
//!
//! A benchmark is one variant of one scenario on one backend at one sweep point,
//! named `scenario/backend/variant` with `[params]` appended when there are any;
//! each of its metrics is a measure, slugged (`pop_latency` → `pop-latency`).
//! `value` is the median and the bounds are its 95% confidence interval, in the
//! metric's own unit.

use serde_json::{Map, Value, json};

use super::figures::slug;
use crate::results::{Results, Status, format_params};

/// The BMF document for every metric of every scenario that ran.
///
/// Non-finite numbers are left out, since JSON cannot carry them.
pub fn bencher_json(results: &Results) -> Value {
    let mut benchmarks = Map::new();
    for s in results.scenarios.iter().filter(|s| s.status == Status::Ok) {
        for m in &s.metrics {
            let summary = &m.summary;
            if ![summary.median, summary.ci_low, summary.ci_high]
                .iter()
                .all(|v| v.is_finite())
            {
                continue;
            }
            let params = format_params(&m.params);
            let mut name = format!("{}/{}/{}", s.id, s.backend, m.variant);
            if !params.is_empty() {
                name.push_str(&format!("[{params}]"));
            }
            let measures = benchmarks
                .entry(name)
                .or_insert_with(|| Value::Object(Map::new()));
            measures
                .as_object_mut()
                .expect("inserted as object")
                .insert(
                    slug(&m.metric),
                    json!({
                        "value": summary.median,
                        "lower_value": summary.ci_low,
                        "upper_value": summary.ci_high,
                    }),
                );
        }
    }
    Value::Object(benchmarks)
}
