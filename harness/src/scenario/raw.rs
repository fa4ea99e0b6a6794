//! The file's shape as serde reads it, and its validation into a [`Scenario`].
//!
//! Fields that a rule may reject are `Spanned`, so the error can give their line.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::catalogue::{KNOBS, KnobValues, is_known_metric, knob};
use super::{
    Backend, Claim, ExpectedChange, LoadTool, Metric, ParamValue, Quick, RepetitionFloor, Scenario,
    ScenarioError, Variant, Workload,
};
use crate::gate::{Direction, GateOverride, GatePolicy, MetricKind};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    id: Spanned<String>,
    title: String,
    workload: Workload,
    claim: RawClaim,
    #[serde(rename = "variant")]
    variants: Spanned<Vec<RawVariant>>,
    #[serde(default)]
    params: BTreeMap<String, ParamValue>,
    #[serde(default)]
    sweep: BTreeMap<String, Spanned<Vec<ParamValue>>>,
    #[serde(rename = "metric")]
    metrics: Spanned<Vec<RawMetric>>,
    repetitions: Spanned<u32>,
    warmup: u32,
    #[serde(default)]
    quick: RawQuick,
    backends: Spanned<Vec<Backend>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaim {
    text: String,
    kestra_figure: String,
    direction: ExpectedChange,
    expected_ratio: Spanned<f64>,
    metric: Option<Spanned<String>>,
    #[serde(default)]
    kestra_commit: Option<Spanned<OneOrMany>>,
    before: Option<String>,
    kestra_backends: Option<Spanned<Vec<Backend>>>,
    #[serde(default)]
    published: Vec<Spanned<RawPublished>>,
}

/// `[[claim.published]]`: one series of Kestra's published figures.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublished {
    label: String,
    x: String,
    unit: String,
    #[serde(default)]
    points: Vec<[f64; 2]>,
    ceiling: Option<f64>,
}

/// `kestra_commit = "84d845cde"` or `kestra_commit = ["9b8a1c482", "plugin-serdes 7c4a3a3"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: Spanned<String>,
    #[serde(default)]
    knobs: BTreeMap<String, Spanned<toml::Value>>,
    flow: Option<Spanned<PathBuf>>,
    load: Option<Spanned<LoadTool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: Spanned<String>,
    unit: String,
    better: Direction,
    kind: MetricKind,
    gate: Option<Spanned<GateOverride>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuick {
    repetitions: Option<Spanned<u32>>,
    warmup: Option<u32>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<ParamValue>>,
    #[serde(default)]
    sweep: BTreeMap<String, Spanned<Vec<ParamValue>>>,
}

/// Turns spans into lines and builds errors for one file.
pub(super) struct Ctx<'a> {
    pub text: &'a str,
    pub path: &'a Path,
}

impl Ctx<'_> {
    pub fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn invalid(
        &self,
        field: impl Into<String>,
        span: Range<usize>,
        message: String,
    ) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_path_buf(),
            field: field.into(),
            line: Some(self.line(span.start)),
            message,
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl RawScenario {
    pub(super) fn validate(self, ctx: &Ctx<'_>) -> Result<Scenario, ScenarioError> {
        if !is_identifier(self.id.get_ref()) {
            return Err(ctx.invalid(
                "id",
                self.id.span(),
                format!(
                    "`{}` is not an id: use lowercase letters, digits, `-` and `_`",
                    self.id.get_ref()
                ),
            ));
        }
        if *self.repetitions.get_ref() == 0 {
            return Err(ctx.invalid(
                "repetitions",
                self.repetitions.span(),
                "must be at least 1".into(),
            ));
        }
        if self.backends.get_ref().is_empty() {
            return Err(ctx.invalid(
                "backends",
                self.backends.span(),
                "name at least one backend".into(),
            ));
        }
        if let Some(dup) = first_duplicate(self.backends.get_ref().iter()) {
            return Err(ctx.invalid(
                "backends",
                self.backends.span(),
                format!("`{dup:?}` is listed twice"),
            ));
        }
        let variants = validate_variants(self.variants, self.workload, ctx)?;
        let metrics = validate_metrics(self.metrics, ctx)?;
        let claim = validate_claim(self.claim, &metrics, ctx)?;
        for (axis, values) in &self.sweep {
            if values.get_ref().is_empty() {
                return Err(ctx.invalid(
                    format!("sweep.{axis}"),
                    values.span(),
                    "a sweep needs at least one value".into(),
                ));
            }
        }
        let mut quick = validate_quick(self.quick, &self.params, &self.sweep, ctx)?;
        let mut repetitions = self.repetitions.into_inner();
        let mut floor = repetition_floor(&metrics);
        if repetitions < floor.min {
            floor.raised_full = Some(repetitions);
            repetitions = floor.min;
        }
        if let Some(r) = quick.repetitions.filter(|r| *r < floor.min) {
            floor.raised_quick = Some(r);
            quick.repetitions = Some(floor.min);
        }
        Ok(Scenario {
            id: self.id.into_inner(),
            title: self.title,
            workload: self.workload,
            claim,
            variants,
            params: self.params,
            sweep: self
                .sweep
                .into_iter()
                .map(|(k, v)| (k, v.into_inner()))
                .collect(),
            metrics,
            repetitions,
            warmup: self.warmup,
            quick,
            backends: self.backends.into_inner(),
            dir: ctx.path.parent().map(Path::to_path_buf).unwrap_or_default(),
            floor,
        })
    }
}

/// The fewest repetitions with which every timing metric in `metrics` can reach its α
/// under the default policy and its own override; nothing raised yet.
pub fn repetition_floor(metrics: &[Metric]) -> RepetitionFloor {
    let default = GatePolicy::default();
    let alpha = metrics
        .iter()
        .filter(|m| m.kind == MetricKind::Timing)
        .map(|m| m.policy(&default).alpha)
        .reduce(f64::min);
    RepetitionFloor {
        min: alpha.map_or(1, crate::stats::mann_whitney::min_repetitions),
        alpha: alpha.unwrap_or(default.alpha),
        raised_full: None,
        raised_quick: None,
    }
}

fn first_duplicate<T: Ord + Clone>(items: impl Iterator<Item = T>) -> Option<T> {
    let mut seen = BTreeSet::new();
    items.into_iter().find(|item| !seen.insert(item.clone()))
}

fn validate_variants(
    raw: Spanned<Vec<RawVariant>>,
    workload: Workload,
    ctx: &Ctx<'_>,
) -> Result<Vec<Variant>, ScenarioError> {
    let span = raw.span();
    let raw = raw.into_inner();
    if raw.is_empty() {
        return Err(ctx.invalid("variant", span, "declare at least one [[variant]]".into()));
    }
    let mut names = BTreeSet::new();
    let mut variants = Vec::with_capacity(raw.len());
    for (i, v) in raw.into_iter().enumerate() {
        if !names.insert(v.name.get_ref().clone()) {
            return Err(ctx.invalid(
                format!("variant[{i}].name"),
                v.name.span(),
                format!("variant `{}` is declared twice", v.name.get_ref()),
            ));
        }
        let mut knobs = BTreeMap::new();
        for (name, value) in v.knobs {
            let field = format!("variant[{i}].knobs.{name}");
            let Some(spec) = knob(&name) else {
                let known: Vec<&str> = KNOBS.iter().map(|k| k.name).collect();
                return Err(ctx.invalid(
                    field,
                    value.span(),
                    format!("unknown knob `{name}`; known knobs: {}", known.join(", ")),
                ));
            };
            let normalized = match (spec.values, value.get_ref()) {
                (KnobValues::OneOf(allowed), toml::Value::String(s))
                    if allowed.contains(&s.as_str()) =>
                {
                    s.clone()
                }
                (KnobValues::PositiveInteger, toml::Value::Integer(n)) if *n >= 1 => n.to_string(),
                (KnobValues::OneOf(allowed), other) => {
                    return Err(ctx.invalid(
                        field,
                        value.span(),
                        format!(
                            "`{name}` must be one of {}, not {other}",
                            allowed.join(", ")
                        ),
                    ));
                }
                (KnobValues::PositiveInteger, other) => {
                    return Err(ctx.invalid(
                        field,
                        value.span(),
                        format!("`{name}` must be a positive integer, not {other}"),
                    ));
                }
            };
            knobs.insert(name, normalized);
        }
        let flow = match v.flow {
            Some(flow) => {
                let dir = ctx.path.parent().unwrap_or(Path::new("."));
                let full = dir.join(flow.get_ref());
                if !full.is_file() {
                    return Err(ctx.invalid(
                        format!("variant[{i}].flow"),
                        flow.span(),
                        format!("no flow file at {}", full.display()),
                    ));
                }
                Some(flow.into_inner())
            }
            None => None,
        };
        let load = match v.load {
            Some(load) if workload != Workload::E2eWebhook => {
                return Err(ctx.invalid(
                    format!("variant[{i}].load"),
                    load.span(),
                    "only the `e2e-webhook` workload generates load; remove `load`".into(),
                ));
            }
            Some(load) => load.into_inner(),
            None => LoadTool::default(),
        };
        variants.push(Variant {
            name: v.name.into_inner(),
            knobs,
            flow,
            load,
        });
    }
    Ok(variants)
}

fn validate_metrics(
    raw: Spanned<Vec<RawMetric>>,
    ctx: &Ctx<'_>,
) -> Result<Vec<Metric>, ScenarioError> {
    let span = raw.span();
    let raw = raw.into_inner();
    if raw.is_empty() {
        return Err(ctx.invalid("metric", span, "declare at least one [[metric]]".into()));
    }
    let mut names = BTreeSet::new();
    let mut metrics = Vec::with_capacity(raw.len());
    for (i, m) in raw.into_iter().enumerate() {
        let name = m.name.get_ref();
        if !is_known_metric(name) {
            return Err(ctx.invalid(
                format!("metric[{i}].name"),
                m.name.span(),
                format!("unknown metric `{name}`; see harness::scenario::KNOWN_METRICS"),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(ctx.invalid(
                format!("metric[{i}].name"),
                m.name.span(),
                format!("metric `{name}` is declared twice"),
            ));
        }
        let gate = match m.gate {
            Some(gate) => {
                if let Err(e) = GatePolicy::default()
                    .with_override(gate.get_ref())
                    .validate()
                {
                    return Err(ctx.invalid(
                        format!("metric[{i}].gate.{}", e.field),
                        gate.span(),
                        e.to_string(),
                    ));
                }
                Some(gate.into_inner())
            }
            None => None,
        };
        metrics.push(Metric {
            name: m.name.into_inner(),
            unit: m.unit,
            better: m.better,
            kind: m.kind,
            gate,
        });
    }
    Ok(metrics)
}

fn validate_claim(
    raw: RawClaim,
    metrics: &[Metric],
    ctx: &Ctx<'_>,
) -> Result<Claim, ScenarioError> {
    let ratio = *raw.expected_ratio.get_ref();
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(ctx.invalid(
            "claim.expected_ratio",
            raw.expected_ratio.span(),
            format!("must be a finite ratio above 0, not {ratio}"),
        ));
    }
    if let Some(metric) = &raw.metric {
        if !metrics.iter().any(|m| &m.name == metric.get_ref()) {
            return Err(ctx.invalid(
                "claim.metric",
                metric.span(),
                format!(
                    "`{}` is not one of this scenario's [[metric]]s",
                    metric.get_ref()
                ),
            ));
        }
    }
    let kestra_commits = match raw.kestra_commit {
        None => Vec::new(),
        Some(c) => {
            let span = c.span();
            let commits = match c.into_inner() {
                OneOrMany::One(one) => vec![one],
                OneOrMany::Many(many) => many,
            };
            if commits.is_empty() || commits.iter().any(|c| c.trim().is_empty()) {
                return Err(ctx.invalid(
                    "claim.kestra_commit",
                    span,
                    "name at least one commit, and no empty one".into(),
                ));
            }
            commits
        }
    };
    let kestra_backends = match raw.kestra_backends {
        None => Vec::new(),
        Some(b) => {
            if b.get_ref().is_empty() {
                return Err(ctx.invalid(
                    "claim.kestra_backends",
                    b.span(),
                    "name at least one backend, or leave the field out when Kestra's change \
                     applies to every backend"
                        .into(),
                ));
            }
            if let Some(dup) = first_duplicate(b.get_ref().iter()) {
                return Err(ctx.invalid(
                    "claim.kestra_backends",
                    b.span(),
                    format!("`{dup:?}` is listed twice"),
                ));
            }
            b.into_inner()
        }
    };
    let mut published = Vec::with_capacity(raw.published.len());
    for (i, p) in raw.published.into_iter().enumerate() {
        let span = p.span();
        let p = p.into_inner();
        let finite = p
            .points
            .iter()
            .flatten()
            .chain(&p.ceiling)
            .all(|v| v.is_finite());
        if (p.points.is_empty() && p.ceiling.is_none()) || !finite {
            return Err(ctx.invalid(
                format!("claim.published[{i}]"),
                span,
                "give finite `points = [[x, y], …]`, a `ceiling`, or both".into(),
            ));
        }
        published.push(reports::results::PublishedSeries {
            label: p.label,
            x: p.x,
            unit: p.unit,
            points: p.points,
            ceiling: p.ceiling,
        });
    }
    Ok(Claim {
        text: raw.text,
        kestra_figure: raw.kestra_figure,
        direction: raw.direction,
        expected_ratio: ratio,
        metric: raw.metric.map(Spanned::into_inner),
        kestra_commits,
        before: raw.before,
        kestra_backends,
        published,
    })
}

fn validate_quick(
    raw: RawQuick,
    params: &BTreeMap<String, ParamValue>,
    sweep: &BTreeMap<String, Spanned<Vec<ParamValue>>>,
    ctx: &Ctx<'_>,
) -> Result<Quick, ScenarioError> {
    if let Some(reps) = &raw.repetitions {
        if *reps.get_ref() == 0 {
            return Err(ctx.invalid(
                "quick.repetitions",
                reps.span(),
                "must be at least 1".into(),
            ));
        }
    }
    for (name, value) in &raw.params {
        if !params.contains_key(name) {
            return Err(ctx.invalid(
                format!("quick.params.{name}"),
                value.span(),
                format!("overrides nothing: there is no `params.{name}`"),
            ));
        }
    }
    for (axis, values) in &raw.sweep {
        if !sweep.contains_key(axis) {
            return Err(ctx.invalid(
                format!("quick.sweep.{axis}"),
                values.span(),
                format!("overrides nothing: there is no `sweep.{axis}`"),
            ));
        }
        if values.get_ref().is_empty() {
            return Err(ctx.invalid(
                format!("quick.sweep.{axis}"),
                values.span(),
                "a sweep needs at least one value".into(),
            ));
        }
    }
    Ok(Quick {
        repetitions: raw.repetitions.map(Spanned::into_inner),
        warmup: raw.warmup,
        params: raw
            .params
            .into_iter()
            .map(|(k, v)| (k, v.into_inner()))
            .collect(),
        sweep: raw
            .sweep
            .into_iter()
            .map(|(k, v)| (k, v.into_inner()))
            .collect(),
    })
}
