//! The conditions a `Flow` trigger tests an execution against: Kestra's
//! `io.kestra.plugin.core.condition.*` that apply to an execution (`ExecutionStatus`,
//! `ExecutionFlow`, `ExecutionNamespace`, `Expression`, `MultipleCondition`), and the two a
//! trigger's `preconditions` are made of (`Flow.UpstreamFlowCondition` and
//! `Flow.FilterCondition`), as Kestra 58c1ca2d0 tests them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::window::TimeWindow;
use crate::expression::Renderer;
use crate::model::{Execution, StateType};

/// One condition of a trigger's `conditions`, read by its `type` (Kestra's names and the
/// aliases it still maps).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum Condition {
    /// The execution's state is among `in` and not among `notIn`.
    #[serde(
        rename = "io.kestra.plugin.core.condition.ExecutionStatus",
        alias = "io.kestra.plugin.core.condition.ExecutionStatusCondition",
        alias = "io.kestra.core.models.conditions.types.ExecutionStatusCondition"
    )]
    ExecutionStatus {
        #[serde(default, rename = "in")]
        within: Option<Vec<StateType>>,
        #[serde(default, rename = "notIn")]
        not_in: Option<Vec<StateType>>,
    },
    /// The execution is one of this flow's.
    #[serde(
        rename = "io.kestra.plugin.core.condition.ExecutionFlow",
        alias = "io.kestra.plugin.core.condition.ExecutionFlowCondition",
        alias = "io.kestra.core.models.conditions.types.ExecutionFlowCondition"
    )]
    ExecutionFlow {
        namespace: String,
        #[serde(rename = "flowId")]
        flow_id: String,
    },
    /// The execution's namespace equals, starts or ends with `namespace`.
    #[serde(
        rename = "io.kestra.plugin.core.condition.ExecutionNamespace",
        alias = "io.kestra.plugin.core.condition.ExecutionNamespaceCondition",
        alias = "io.kestra.core.models.conditions.types.ExecutionNamespaceCondition"
    )]
    ExecutionNamespace {
        namespace: String,
        #[serde(default)]
        comparison: Option<Comparison>,
        #[serde(default)]
        prefix: bool,
    },
    /// The expression renders to something other than blank or `false`.
    #[serde(
        rename = "io.kestra.plugin.core.condition.Expression",
        alias = "io.kestra.plugin.core.condition.ExpressionCondition",
        alias = "io.kestra.core.models.conditions.types.VariableCondition"
    )]
    Expression { expression: String },
    /// Named conditions that executions must meet within one time window, in any order.
    #[serde(
        rename = "io.kestra.plugin.core.condition.MultipleCondition",
        alias = "io.kestra.core.models.conditions.types.MultipleCondition"
    )]
    Multiple(Multiple),
    /// A `preconditions.flows` entry (never written as a `type`).
    #[serde(skip)]
    Upstream(UpstreamFlow),
    /// A `preconditions.where` entry (never written as a `type`).
    #[serde(skip)]
    Filter(ExecutionFilter),
}

/// `ExecutionNamespace.comparison`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Comparison {
    Equals,
    Prefix,
    Suffix,
}

/// A multiple condition: a legacy `MultipleCondition`, or a trigger's `preconditions`
/// (Kestra's `MultipleCondition` interface). Whether each named condition was met is kept
/// in `multipleconditions`, per window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "MultipleSpec")]
pub struct Multiple {
    pub id: String,
    pub window: TimeWindow,
    pub reset_on_success: bool,
    /// By name (`preconditions` name theirs `condition_1`, `condition_2_{where id}`, …).
    pub conditions: BTreeMap<String, Condition>,
}

/// `MultipleCondition` as written; `window` and `windowAdvance` are its deprecated
/// spelling of a `DURATION_WINDOW` `timeWindow`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MultipleSpec {
    id: String,
    #[serde(default)]
    time_window: Option<super::window::TimeWindowSpec>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    window_advance: Option<String>,
    #[serde(default)]
    reset_on_success: Option<bool>,
    conditions: BTreeMap<String, Condition>,
    #[serde(default, rename = "type")]
    _kind: Option<String>,
}

impl TryFrom<MultipleSpec> for Multiple {
    type Error = String;

    fn try_from(s: MultipleSpec) -> Result<Multiple, String> {
        check_id(&s.id)?;
        if s.conditions.is_empty() {
            return Err("`conditions` must hold at least one condition".into());
        }
        let mut spec = s.time_window.unwrap_or_default();
        if s.window.is_some() {
            spec.window = s.window;
        }
        if s.window_advance.is_some() {
            spec.window_advance = s.window_advance;
        }
        Ok(Multiple {
            id: s.id,
            window: TimeWindow::try_from(spec)?,
            reset_on_success: s.reset_on_success.unwrap_or(true),
            conditions: s.conditions,
        })
    }
}

impl Multiple {
    /// Kestra's `MultipleCondition#test`: every named condition met within the window,
    /// whose results are `window`.
    pub fn met(&self, window: Option<&BTreeMap<String, bool>>) -> bool {
        self.conditions
            .keys()
            .all(|name| window.and_then(|w| w.get(name)).copied() == Some(true))
    }
}

/// Kestra's `@Pattern(regexp="^[a-zA-Z0-9][a-zA-Z0-9_-]*")` on a multiple condition's id.
pub(super) fn check_id(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "id `{id}` must start with a letter or digit and hold only letters, digits, `_` and `-`"
        ))
    }
}

/// `preconditions.flows[]`: Kestra's `Flow.UpstreamFlow`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamFlow {
    pub namespace: String,
    #[serde(default)]
    pub flow_id: Option<String>,
    #[serde(default)]
    pub states: Option<Vec<StateType>>,
    #[serde(default)]
    pub labels: Option<serde_json::Map<String, Value>>,
}

/// `preconditions.where[]`: Kestra's `Flow.ExecutionFilter`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionFilter {
    pub id: String,
    #[serde(default)]
    pub operand: Operand,
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operand {
    #[default]
    And,
    Or,
}

/// One filter of a `where` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub field: Field,
    #[serde(rename = "type")]
    pub kind: FilterType,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Field {
    FlowId,
    Namespace,
    State,
    Expression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FilterType {
    EqualTo,
    NotEqualTo,
    In,
    NotIn,
    IsTrue,
    IsFalse,
    IsNull,
    IsNotNull,
    StartsWith,
    EndsWith,
    Regex,
    Contains,
}

impl Filter {
    /// Kestra's `PreconditionFilterValidation`: the value or values the type needs, and a
    /// readable regular expression or template.
    pub(super) fn check(&self, renderer: &Renderer) -> Result<(), String> {
        use FilterType::*;
        match self.kind {
            In | NotIn if self.values.is_none() => {
                return Err(format!("filter type {:?} needs `values`", self.kind));
            }
            EqualTo | NotEqualTo | StartsWith | EndsWith | Regex | Contains
                if self.value.is_none() =>
            {
                return Err(format!("filter type {:?} needs `value`", self.kind));
            }
            _ => {}
        }
        if self.field == Field::Expression {
            let value = self
                .value
                .as_deref()
                .ok_or("an EXPRESSION filter needs `value`")?;
            renderer
                .check_syntax(value)
                .map_err(|e| format!("malformed expression: {e}"))?;
        }
        if self.kind == Regex {
            let value = self.value.as_deref().unwrap_or_default();
            regex::Regex::new(value).map_err(|e| format!("bad regular expression: {e}"))?;
        }
        Ok(())
    }

    /// Kestra's `Flow.FilterCondition#evaluate`.
    fn test(&self, exec: &Execution, vars: &Value, renderer: &Renderer) -> Result<bool, String> {
        let field = match self.field {
            Field::FlowId => exec.flow_id.clone(),
            Field::Namespace => exec.namespace.clone(),
            Field::State => exec.state.current.as_str().to_string(),
            Field::Expression => renderer
                .render(self.value.as_deref().unwrap_or_default(), vars)
                .map_err(|e| e.to_string())?,
        };
        let value = self.value.as_deref().unwrap_or_default();
        let values = self.values.as_deref().unwrap_or_default();
        Ok(match self.kind {
            FilterType::EqualTo => field == value,
            FilterType::NotEqualTo => field != value,
            FilterType::In => values.contains(&field),
            FilterType::NotIn => !values.contains(&field),
            // Kestra's `TruthUtils.isTruthy`, on the text as rendered.
            FilterType::IsTrue => !["false", "0", "-0", ""].contains(&field.as_str()),
            FilterType::IsFalse => ["false", "0", "-0", ""].contains(&field.as_str()),
            // A field always has a value here (Kestra's can be null only for a null render).
            FilterType::IsNull => false,
            FilterType::IsNotNull => true,
            FilterType::StartsWith => field.starts_with(value),
            FilterType::EndsWith => field.ends_with(value),
            // Java's `String#matches`: the whole text.
            FilterType::Regex => regex::Regex::new(&format!("^(?:{value})$"))
                .map_err(|e| e.to_string())?
                .is_match(&field),
            FilterType::Contains => field.contains(value),
        })
    }
}

impl Condition {
    /// Checks at load what Kestra's validation checks: readable expressions, filters with the
    /// values their type needs, and the same of every nested condition.
    pub(super) fn check(&self, renderer: &Renderer) -> Result<(), String> {
        match self {
            Condition::Expression { expression } => renderer
                .check_syntax(expression)
                .map_err(|e| format!("malformed expression: {e}")),
            Condition::Multiple(m) => m.conditions.iter().try_for_each(|(name, c)| {
                c.check(renderer)
                    .map_err(|e| format!("condition `{name}`: {e}"))
            }),
            Condition::Filter(f) => f.filters.iter().try_for_each(|f| f.check(renderer)),
            _ => Ok(()),
        }
    }

    /// Tests the execution, as each Kestra condition's `test` does. A multiple condition
    /// reads the results kept for its window, `window`; `Err` says why it could not be
    /// tested (Kestra logs it and counts the condition false).
    pub(super) fn test(
        &self,
        exec: &Execution,
        vars: &Value,
        renderer: &Renderer,
        window: Option<&BTreeMap<String, bool>>,
    ) -> Result<bool, String> {
        let state = exec.state.current;
        Ok(match self {
            Condition::ExecutionStatus { within, not_in } => {
                within.as_ref().is_none_or(|s| s.contains(&state))
                    && !not_in.as_ref().is_some_and(|s| s.contains(&state))
            }
            Condition::ExecutionFlow { namespace, flow_id } => {
                exec.namespace == *namespace && exec.flow_id == *flow_id
            }
            Condition::ExecutionNamespace {
                namespace,
                comparison,
                prefix,
            } => match comparison.unwrap_or(if *prefix {
                Comparison::Prefix
            } else {
                Comparison::Equals
            }) {
                Comparison::Equals => exec.namespace == *namespace,
                Comparison::Prefix => exec.namespace.starts_with(namespace.as_str()),
                Comparison::Suffix => exec.namespace.ends_with(namespace.as_str()),
            },
            Condition::Expression { expression } => {
                let rendered = renderer
                    .render(expression, vars)
                    .map_err(|e| e.to_string())?;
                !(rendered.trim().is_empty() || rendered.trim() == "false")
            }
            // `MultipleCondition#test`: every named condition met within the window.
            Condition::Multiple(m) => m.met(window),
            Condition::Upstream(u) => {
                u.flow_id.as_ref().is_none_or(|f| *f == exec.flow_id)
                    && exec.namespace == u.namespace
                    && u.states.as_ref().is_none_or(|s| s.contains(&state))
                    && u.labels.as_ref().is_none_or(|labels| {
                        labels.iter().all(|(k, v)| {
                            let v = match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            exec.labels.iter().any(|l| l.key == *k && l.value == v)
                        })
                    })
            }
            Condition::Filter(f) => {
                let mut results = f.filters.iter().map(|x| x.test(exec, vars, renderer));
                match f.operand {
                    Operand::And => results.try_fold(true, |acc, r| r.map(|r| acc && r))?,
                    Operand::Or => results.try_fold(false, |acc, r| r.map(|r| acc || r))?,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::State;
    use serde_json::json;

    fn exec(namespace: &str, flow_id: &str, state: StateType) -> Execution {
        let mut e = crate::service::new_execution(
            &crate::flow::parse_flow(
                &format!("id: {flow_id}\nnamespace: {namespace}\nlabels:\n  team: data\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n"),
                "t.yaml",
            )
            .unwrap(),
            Default::default(),
            vec![],
            None,
        );
        e.state = State::new(crate::model::now());
        e.state.transition(state, crate::model::now());
        e
    }

    fn condition(v: Value) -> Condition {
        serde_json::from_value(v).unwrap()
    }

    fn holds(c: &Condition, e: &Execution) -> bool {
        let vars = json!({"labels": {"team": "data"}});
        c.test(e, &vars, &Renderer::new(), None).unwrap()
    }

    #[test]
    fn execution_conditions_test_the_state_the_flow_and_the_namespace() {
        let done = exec("company.team", "extract", StateType::Success);
        let failed = exec("company.team", "extract", StateType::Failed);
        let status = condition(json!({
            "type": "io.kestra.core.models.conditions.types.ExecutionStatusCondition",
            "in": ["SUCCESS", "FAILED"], "notIn": ["FAILED"]
        }));
        assert!(holds(&status, &done) && !holds(&status, &failed));
        let flow = condition(json!({
            "type": "io.kestra.plugin.core.condition.ExecutionFlow",
            "namespace": "company.team", "flowId": "extract"
        }));
        assert!(holds(&flow, &done));
        assert!(!holds(
            &flow,
            &exec("company.team", "load", StateType::Success)
        ));
        for (comparison, prefix, namespace, expected) in [
            (None, false, "company", false),
            (None, true, "company", true),
            (Some("SUFFIX"), false, "team", true),
            (Some("EQUALS"), true, "company", false),
        ] {
            let c = condition(json!({
                "type": "io.kestra.plugin.core.condition.ExecutionNamespace",
                "namespace": namespace, "comparison": comparison, "prefix": prefix
            }));
            assert_eq!(
                holds(&c, &done),
                expected,
                "{comparison:?} {prefix} {namespace}"
            );
        }
        let expression = condition(json!({
            "type": "io.kestra.plugin.core.condition.Expression",
            "expression": "{{ labels.team == 'data' }}"
        }));
        assert!(holds(&expression, &done));
    }

    #[test]
    fn preconditions_test_upstream_flows_and_filters() {
        let e = exec("company.team", "extract", StateType::Success);
        let upstream = |states: Value, labels: Value| {
            Condition::Upstream(
                serde_json::from_value(json!({
                    "namespace": "company.team", "flowId": "extract",
                    "states": states, "labels": labels
                }))
                .unwrap(),
            )
        };
        assert!(holds(
            &upstream(json!(["SUCCESS"]), json!({"team": "data"})),
            &e
        ));
        assert!(!holds(&upstream(json!(["FAILED"]), Value::Null), &e));
        assert!(!holds(&upstream(Value::Null, json!({"team": "ops"})), &e));
        let filter = |operand: &str| {
            Condition::Filter(
                serde_json::from_value(json!({
                    "id": "f", "operand": operand,
                    "filters": [
                        {"field": "NAMESPACE", "type": "STARTS_WITH", "value": "company"},
                        {"field": "FLOW_ID", "type": "REGEX", "value": "ext"},
                        {"field": "STATE", "type": "IN", "values": ["SUCCESS"]}
                    ]
                }))
                .unwrap(),
            )
        };
        // `REGEX` matches the whole text, as Java's `String#matches` does.
        assert!(!holds(&filter("AND"), &e));
        assert!(holds(&filter("OR"), &e));
    }

    #[test]
    fn a_multiple_condition_holds_once_every_named_condition_is_met() {
        let Condition::Multiple(m) = condition(json!({
            "type": "io.kestra.plugin.core.condition.MultipleCondition",
            "id": "both", "window": "P1D", "windowAdvance": "P0D",
            "conditions": {
                "a": {"type": "io.kestra.plugin.core.condition.ExecutionFlow", "namespace": "n", "flowId": "a"},
                "b": {"type": "io.kestra.plugin.core.condition.ExecutionFlow", "namespace": "n", "flowId": "b"}
            }
        })) else {
            panic!("not a multiple condition");
        };
        let mut results = BTreeMap::new();
        results.insert("a".to_string(), true);
        assert!(!m.met(Some(&results)) && !m.met(None));
        results.insert("b".to_string(), true);
        assert!(m.met(Some(&results)));
        assert!(m.reset_on_success);
    }
}
