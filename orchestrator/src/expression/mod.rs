//! Kestra (Pebble-style) `{{ … }}` expressions, rendered with minijinja.
//!
//! Flows carry expressions such as `{{ inputs.name }}`, `{{ outputs.task.value ?? 'none' }}` or
//! `{{ range(1, 10) }}`. Kestra renders them with Pebble plus its own extension
//! (`io.kestra.core.runners.pebble.Extension`); this module reproduces Kestra 0.20's behaviour on
//! top of minijinja:
//!
//! * undefined variables and attributes are errors naming the missing variable
//!   (Pebble `strictVariables(true)`), see [`ExpressionError::Undefined`];
//! * maps and lists printed inside `{{ }}` are JSON, `null` prints nothing (Kestra `JsonWriter`);
//! * `??` / `???` coalescing, and Pebble's ternary, `equals` and `contains` ([`coalesce`]);
//! * inclusive `range`, `json`/`toJson`, `fromJson`, `jq`, `is json`, `date`, `now()` and the
//!   other Kestra filters ([`pebble`], [`jq`]);
//! * `kv()`, which reads namespace KV stores ([`kv`]);
//! * `render()`, which renders a value that holds an expression ([`render`]).
//!
//! # Primary type
//!
//! [`Renderer`] is built once and shared by every worker thread. Strings without `{{`, `{%` or
//! `{#` are returned without touching minijinja; compiled templates are cached (bounded).
//! [`Renderer::with_kv`] gives it the KV stores `kv()` reads; [`Renderer::new`] has none, and
//! `kv()` says so.
//!
//! # Example
//!
//! ```
//! use orchestrator::expression::Renderer;
//! use serde_json::json;
//!
//! let renderer = Renderer::new();
//! let vars = json!({"inputs": {"name": "World"}, "outputs": {}});
//! assert_eq!(renderer.render("Hello {{ inputs.name }}", &vars).unwrap(), "Hello World");
//! assert_eq!(renderer.render("{{ outputs.t.value ?? 'none' }}", &vars).unwrap(), "none");
//! assert!(renderer.render_condition("{{ inputs.name == 'World' }}", &vars).unwrap());
//! assert_eq!(renderer.render_list(&json!("{{ range(1, 3) }}"), &vars).unwrap().len(), 3);
//! ```

mod coalesce;
mod date;
mod error_logs;
mod files;
mod jq;
mod kv;
mod pebble;
mod render;

pub use error_logs::WorkerScope;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::kv::KvService;

/// Templates kept compiled before the cache is emptied (Kestra's `kestra.variables.cache-size`).
const CACHE_CAPACITY: usize = 1000;

/// Results of [`TruthUtils.isTruthy`] that mean false; anything else is true.
const FALSE_VALUES: [&str; 4] = ["false", "0", "-0", ""];

/// Why an expression could not be rendered. Each variant carries the template text.
#[derive(Debug, thiserror::Error)]
pub enum ExpressionError {
    /// The template is not valid syntax (caught by [`Renderer::check_syntax`] at load time).
    #[error("invalid expression '{template}'{}{}: {message}", at_line(*.line), at_column(*.column))]
    Syntax {
        template: String,
        message: String,
        line: Option<usize>,
        /// The column (in characters, from 1) where the template stops being readable.
        column: Option<usize>,
    },
    /// A variable or attribute the template uses does not exist; `name` is its path.
    #[error("Missing variable: '{name}' on '{template}'{}", at_line(*.line))]
    Undefined {
        template: String,
        name: String,
        line: Option<usize>,
    },
    /// Rendering failed otherwise: a bad filter argument, a jq error, a date that won't parse…
    #[error("cannot render '{template}'{}: {message}", at_line(*.line))]
    Render {
        template: String,
        message: String,
        line: Option<usize>,
    },
    /// A value that must be a list (ForEach `values`) is not one.
    #[error("expected a list from '{template}', got '{rendered}'")]
    NotAList { template: String, rendered: String },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

fn at_column(column: Option<usize>) -> String {
    column.map(|c| format!(", column {c}")).unwrap_or_default()
}

/// The column (in characters, from 1) of byte `offset` of `translated` (the template after
/// [`coalesce::translate`]) in `template`. Translation rewrites only inside `{{ … }}` and
/// `{% … %}` and adds none, so an offset in a rewritten template is taken back to the start
/// of the block it falls in: the block of the same rank in `template`.
fn column_of(template: &str, translated: &str, offset: usize) -> Option<usize> {
    let offset = if template == translated {
        offset
    } else {
        let opener = |t: &str, end: usize| -> Vec<usize> {
            t.get(..end)
                .unwrap_or(t)
                .match_indices('{')
                .map(|(i, _)| i)
                .filter(|&i| matches!(t.as_bytes().get(i + 1), Some(b'{' | b'%')))
                .collect()
        };
        let rank = opener(translated, offset).len();
        *opener(template, template.len()).get(rank.checked_sub(1)?)?
    };
    let before = template.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Some(before[line_start..].chars().count() + 1)
}

impl ExpressionError {
    /// The template (or value) whose rendering failed.
    pub fn template(&self) -> &str {
        match self {
            Self::Syntax { template, .. }
            | Self::Undefined { template, .. }
            | Self::Render { template, .. }
            | Self::NotAList { template, .. } => template,
        }
    }

    /// The line in the template where minijinja stopped, when it knows.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. }
            | Self::Undefined { line, .. }
            | Self::Render { line, .. } => *line,
            Self::NotAList { .. } => None,
        }
    }
}

/// What the cache keeps per template besides minijinja's compiled form.
struct TemplateMeta {
    /// Variable paths the template reads (`inputs.name`, `outputs`), from minijinja.
    paths: Vec<String>,
    /// The same paths as a tree, used to convert only the part of the variables it reads.
    tree: PathTree,
}

#[derive(Default)]
struct PathTree {
    children: BTreeMap<String, PathTree>,
    /// The whole value at this node is read (or indexed dynamically), so convert all of it.
    whole: bool,
}

impl PathTree {
    fn insert(&mut self, path: &str) {
        let mut node = self;
        for part in path.split('.') {
            node = node.children.entry(part.to_owned()).or_default();
        }
        node.whole = true;
    }

    /// Converts the parts of `json` this tree names into a minijinja value.
    fn select(&self, json: &Json) -> Value {
        match json {
            Json::Object(map) if !self.whole => Value::from_iter(
                self.children
                    .iter()
                    .filter_map(|(k, sub)| map.get(k).map(|v| (k.as_str(), sub.select(v)))),
            ),
            _ => Value::from_serialize(json),
        }
    }
}

/// Renders Kestra expressions. Build once, share across threads (`Send + Sync`).
pub struct Renderer {
    /// minijinja environment whose loader compiles a template named by its own source, so
    /// minijinja's template cache is our compiled-template cache. Written only to empty it.
    env: RwLock<Environment<'static>>,
    meta: RwLock<HashMap<String, Arc<TemplateMeta>>>,
    /// The namespace KV stores `kv()` reads, which the KV and state tasks use too.
    kv: Option<KvService>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.meta.read().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("Renderer").field("cached", &cached).finish()
    }
}

impl Renderer {
    /// Builds the environment with Kestra's filters, functions, tests and output rules, and
    /// no KV stores: `kv()` fails, saying so.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A renderer whose `kv()` reads the namespace KV stores of `kv`.
    pub fn with_kv(kv: KvService) -> Self {
        Self::build(Some(kv))
    }

    /// The KV stores this renderer reads, if it has them.
    pub fn kv(&self) -> Option<&KvService> {
        self.kv.as_ref()
    }

    fn build(kv: Option<KvService>) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Pebble keeps the text exactly: no newline trimming, no escaping (Kestra's factory).
        env.set_keep_trailing_newline(true);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_debug(false);
        env.set_formatter(write_value);
        env.set_loader(|source| Ok(Some(coalesce::translate(source).into_owned())));
        pebble::register(&mut env);
        jq::register(&mut env);
        kv::register(&mut env, kv.clone());
        error_logs::register(&mut env);
        render::register(&mut env);
        files::register(&mut env, kv.as_ref().map(|k| k.storage().clone()));
        Renderer {
            env: RwLock::new(env),
            meta: RwLock::new(HashMap::new()),
            kv,
        }
    }

    /// Renders one string. Strings without `{{`, `{%` or `{#` are returned as they are.
    pub fn render(&self, template: &str, vars: &Json) -> Result<String, ExpressionError> {
        if !is_template(template) {
            return Ok(template.to_owned());
        }
        let meta = self.meta(template)?;
        let ctx = meta.tree.select(vars);
        let env = self.env.read().unwrap_or_else(|e| e.into_inner());
        env.get_template(template)
            .and_then(|t| t.render(ctx))
            .map_err(|e| undefined_or(e, template, &meta, vars))
    }

    /// Renders one string as Kestra's `renderTyped` does (its `TypedObjectWriter`): a string
    /// that is exactly one `{{ … }}` gives the expression's value, typed (a map, a number, a
    /// boolean, `null`); any other string renders to text.
    pub fn render_typed(&self, template: &str, vars: &Json) -> Result<Json, ExpressionError> {
        let Some(inner) = single_expression(template) else {
            return self.render(template, vars).map(Json::String);
        };
        let meta = self.meta(template)?;
        let ctx = meta.tree.select(vars);
        // Pebble's operators are translated inside `{{ … }}`, which the translation keeps.
        let translated = coalesce::translate(template);
        let expression = translated[2..translated.len() - 2].to_owned();
        let env = self.env.read().unwrap_or_else(|e| e.into_inner());
        let value = env
            .compile_expression_owned(expression)
            .and_then(|expr| expr.eval(ctx))
            .map_err(|e| undefined_or(e, template, &meta, vars))?;
        if value.is_undefined() {
            return Err(ExpressionError::Undefined {
                template: template.to_owned(),
                name: meta
                    .paths
                    .first()
                    .cloned()
                    .unwrap_or_else(|| inner.trim().into()),
                line: None,
            });
        }
        serde_json::to_value(&value).map_err(|e| ExpressionError::Render {
            template: template.to_owned(),
            message: e.to_string(),
            line: None,
        })
    }

    /// Renders every string (and map key) inside `value`; other values are kept as they are.
    pub fn render_value(&self, value: &Json, vars: &Json) -> Result<Json, ExpressionError> {
        Ok(match value {
            Json::String(s) => Json::String(self.render(s, vars)?),
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v, vars))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, v) in map {
                    // Kestra's VariableRenderer renders keys too, first one wins.
                    let key = self.render(k, vars)?;
                    let v = self.render_value(v, vars)?;
                    out.entry(key).or_insert(v);
                }
                Json::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Renders a condition and reads it as Kestra's `TruthUtils.isTruthy` does: false for
    /// `false`, `0`, `-0` and the empty string (after trimming), true for anything else.
    pub fn render_condition(&self, template: &str, vars: &Json) -> Result<bool, ExpressionError> {
        let rendered = self.render(template, vars)?;
        Ok(!FALSE_VALUES.contains(&rendered.trim()))
    }

    /// Renders ForEach `values`: a YAML list (each string rendered), or a string that renders
    /// to a JSON array, as Kestra's `FlowableUtils.resolveEachTasks` reads them.
    pub fn render_list(&self, value: &Json, vars: &Json) -> Result<Vec<Json>, ExpressionError> {
        match value {
            Json::Array(items) => items.iter().map(|v| self.render_value(v, vars)).collect(),
            Json::String(s) => {
                let rendered = self.render(s, vars)?;
                match serde_json::from_str::<Json>(&rendered) {
                    Ok(Json::Array(items)) => Ok(items),
                    _ => Err(ExpressionError::NotAList {
                        template: s.clone(),
                        rendered,
                    }),
                }
            }
            other => Err(ExpressionError::NotAList {
                template: other.to_string(),
                rendered: other.to_string(),
            }),
        }
    }

    /// Checks syntax only, without variables: for flow validation at load time.
    pub fn check_syntax(&self, template: &str) -> Result<(), ExpressionError> {
        if !is_template(template) {
            return Ok(());
        }
        let translated = coalesce::translate(template);
        let env = self.env.read().unwrap_or_else(|e| e.into_inner());
        env.template_from_str(&translated).map(drop).map_err(|e| {
            let at = e
                .range()
                .and_then(|r| column_of(template, &translated, r.start));
            let mut error = convert(e, template);
            if let ExpressionError::Syntax { column, .. } = &mut error {
                *column = at;
            }
            error
        })
    }

    /// Returns the cached metadata of `template`, compiling it on first use.
    fn meta(&self, template: &str) -> Result<Arc<TemplateMeta>, ExpressionError> {
        if let Some(meta) = self
            .meta
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(template)
        {
            return Ok(meta.clone());
        }
        let paths: Vec<String> = {
            let env = self.env.read().unwrap_or_else(|e| e.into_inner());
            let compiled = env
                .get_template(template)
                .map_err(|e| convert(e, template))?;
            compiled.undeclared_variables(true).into_iter().collect()
        };
        let mut tree = PathTree::default();
        for path in &paths {
            tree.insert(path);
        }
        if template.contains(pebble::PRINT_CONTEXT) || template.contains(render::RENDER_CALL) {
            // It prints every variable, or renders a value that may read any of them.
            tree.whole = true;
        }
        if template.contains(pebble::CURRENT_EACH_OUTPUT) {
            // It reads the loop position from the context, not from its argument.
            tree.insert("taskrun");
            tree.insert("parents");
        }
        if files::CALLS.iter().any(|c| template.contains(c)) {
            // They check the file belongs to the execution, or to the one that started it.
            for path in [
                "flow.namespace",
                "flow.id",
                "execution.id",
                "trigger.namespace",
                "trigger.flowId",
                "trigger.executionId",
            ] {
                tree.insert(path);
            }
        }
        if template.contains(error_logs::ERROR_LOGS_CALL) {
            // It reads the execution's id from the context.
            tree.insert("execution.id");
        }
        if template.contains(kv::KV_CALL) {
            // It reads the flow's namespace from the context.
            tree.insert("flow.namespace");
        }
        let meta = Arc::new(TemplateMeta { paths, tree });
        let mut cache = self.meta.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            // Coarse bound: start over. Flows use a fixed set of templates, so this is rare.
            cache.clear();
            self.env
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .clear_templates();
        }
        cache.insert(template.to_owned(), meta.clone());
        Ok(meta)
    }
}

/// Whether `s` holds an expression, a tag or a comment, that is, whether rendering can
/// change it.
pub(crate) fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression of a string that is one `{{ … }}` and nothing else.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?;
    let end = coalesce::find_block_end(s, 2, false)?;
    (end + 2 == s.len() && !inner.starts_with('-')).then(|| &s[2..end])
}

/// Prints a value the way Kestra's `JsonWriter` does: maps and lists as JSON, null as nothing.
fn write_value(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if value.is_undefined() {
        return Err(minijinja::Error::from(ErrorKind::UndefinedError));
    }
    if value.is_none() {
        return Ok(());
    }
    match value.kind() {
        minijinja::value::ValueKind::Map | minijinja::value::ValueKind::Seq => {
            let json = serde_json::to_string(value)
                .map_err(|e| minijinja::Error::new(ErrorKind::BadSerialization, e.to_string()))?;
            std::fmt::Write::write_str(out, &json)
                .map_err(|_| minijinja::Error::from(ErrorKind::WriteFailure))
        }
        // minijinja prints Python's `True`; Java prints `true`.
        minijinja::value::ValueKind::Bool => {
            let text = if value.is_true() { "true" } else { "false" };
            std::fmt::Write::write_str(out, text)
                .map_err(|_| minijinja::Error::from(ErrorKind::WriteFailure))
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

fn convert(e: minijinja::Error, template: &str) -> ExpressionError {
    let message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    let line = e.line();
    let template = template.to_owned();
    match e.kind() {
        ErrorKind::SyntaxError | ErrorKind::UnknownFilter | ErrorKind::UnknownTest => {
            ExpressionError::Syntax {
                template,
                message,
                line,
                column: None,
            }
        }
        ErrorKind::UndefinedError => ExpressionError::Undefined {
            template,
            name: "unknown".into(),
            line,
        },
        _ => ExpressionError::Render {
            template,
            message,
            line,
        },
    }
}

/// Converts a render error, naming the missing variable when the error is an undefined one.
fn undefined_or(
    e: minijinja::Error,
    template: &str,
    meta: &TemplateMeta,
    vars: &Json,
) -> ExpressionError {
    if e.kind() != ErrorKind::UndefinedError {
        return convert(e, template);
    }
    // The missing paths the template reads (checked against the variables), narrowed to the
    // one whose last segment is in the span minijinja reports; the span itself otherwise.
    let translated = coalesce::translate(template);
    let span = e
        .range()
        .and_then(|r| translated.get(r))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let missing: Vec<String> = meta
        .paths
        .iter()
        .filter_map(|p| first_missing(vars, p))
        .collect();
    let last_segment = |m: &String| m.rsplit('.').next().unwrap_or(m).to_owned();
    let name = missing
        .iter()
        .find(|m| span.is_some_and(|s| s.contains(&last_segment(m))))
        .or_else(|| missing.first())
        .cloned()
        .or_else(|| span.map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    ExpressionError::Undefined {
        template: template.to_owned(),
        name,
        line: e.line(),
    }
}

/// The shortest prefix of `path` that does not exist in `vars`, if any.
fn first_missing(vars: &Json, path: &str) -> Option<String> {
    let mut node = vars;
    let mut end = 0;
    for part in path.split('.') {
        end += part.len() + usize::from(end > 0);
        match node.get(part) {
            Some(next) => node = next,
            None => return Some(path[..end].to_owned()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Json {
        json!({
            "inputs": {"name": "World", "count": 3, "ratio": 1.5, "flag": true, "nothing": null},
            "outputs": {
                "first": {"value": "one", "vars": {"n": 42}},
                "json_text": {"value": "{\"a\": [1, 2]}"}
            },
            "task": {"id": "log", "type": "io.kestra.plugin.core.log.Log"},
            "taskrun": {"id": "tr1", "value": "v1", "startDate": "2024-03-05T07:08:09.5Z",
                        "attemptsCount": 0, "parentId": "tr0"},
            "parent": {"taskrun": {"value": "pv"}, "outputs": {"x": 1}},
            "parents": [{"taskrun": {"value": "p0"}}, {"taskrun": {"value": "p1"}}],
            "flow": {"id": "hello", "namespace": "company.team", "revision": 2},
            "execution": {"id": "ex1", "startDate": "2024-03-05T07:08:09Z", "originalId": "ex0"},
            "labels": {"env": "prod"},
            "trigger": {"body": {"event": "push"}, "headers": {"X-Id": ["7"]}},
            "vars": {"greeting": "hi"}
        })
    }

    fn render(template: &str) -> String {
        Renderer::new().render(template, &vars()).unwrap()
    }

    fn render_err(template: &str) -> ExpressionError {
        Renderer::new().render(template, &vars()).unwrap_err()
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column() {
        let r = Renderer::new();
        for (template, at) in [
            ("hello {{ inputs.x + }} there", "at line 1, column "),
            ("one\ntwo {{ a ( }}\n", "at line 2, column "),
            // Rewritten by the Pebble translation: the column of the block's start.
            ("x {{ a ? b : }}", "at line 1, column 3:"),
        ] {
            let e = r.check_syntax(template).unwrap_err().to_string();
            assert!(e.contains(at), "{template:?}: {e}");
        }
        let e = r
            .check_syntax("hello {{ inputs.x + }} there")
            .unwrap_err()
            .to_string();
        let column: usize = e
            .split(", column ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{e}"));
        assert!((17..=21).contains(&column), "{e}");
    }

    /// Kestra's `FetchContextFunctionTest.fromString`.
    #[test]
    fn print_context_prints_every_variable() {
        let rendered = Renderer::new()
            .render(
                "{{ printContext() }}",
                &json!({"test": "value", "array": ["a", "b", "c"]}),
            )
            .unwrap();
        let map: Json = serde_json::from_str(&rendered).unwrap();
        assert_eq!(map["test"], "value");
        assert_eq!(map["array"], json!(["a", "b", "c"]));
        assert!(map.get("range").is_none(), "{rendered}");
    }

    /// Kestra's `RenderFunctionTest` and `VariablesTest.recursiveVars` (`variables.yaml`).
    #[test]
    fn render_renders_a_value_that_holds_an_expression() {
        let r = Renderer::new();
        let vars = json!({
            "vars": {"first": "1", "second": "{{vars.first}} > 2", "third": "{{vars.second}} > 3"},
            "list": ["{{ vars.first }}", 2],
        });
        // Without render(), a variable's value is printed as written.
        assert_eq!(
            r.render("{{ vars.third }}", &vars).unwrap(),
            "{{vars.second}} > 3"
        );
        assert_eq!(
            r.render("{{ render(vars.third) }}", &vars).unwrap(),
            "1 > 2 > 3"
        );
        assert_eq!(
            r.render("{{ render(vars.third, recursive=false) }}", &vars)
                .unwrap(),
            "{{vars.first}} > 2 > 3"
        );
        assert_eq!(
            r.render("{{ render(toRender=vars.second) }}", &vars)
                .unwrap(),
            "1 > 2"
        );
        assert_eq!(r.render("{{ render(list) }}", &vars).unwrap(), r#"["1",2]"#);
        assert_eq!(r.render("{{ render(42) }}", &vars).unwrap(), "42");
        let e = r
            .render("{{ render(vars.first, recursive='yes') }}", &vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("argument 'recursive' with type boolean"), "{e}");
        let e = r
            .render("{{ render('{{ nothing }}') }}", &vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nothing"), "{e}");
    }

    /// A value that renders to a new expression every time stops after Kestra's 100 passes.
    #[test]
    fn render_stops_a_rendering_that_never_settles() {
        let vars = json!({"again": "{{ '{{' }} again {{ '}}' }}x"});
        let e = Renderer::new()
            .render("{{ render(again) }}", &vars)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Too many rendering attempts"), "{e}");
    }

    #[test]
    fn error_logs_works_only_on_a_worker() {
        let e = Renderer::new()
            .render("{{ errorLogs() }}", &json!({"execution": {"id": "e"}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("can only be used in the Worker"), "{e}");
    }

    #[test]
    fn renderer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Renderer>();
    }

    #[test]
    fn every_variable_family_renders() {
        let cases = [
            ("{{ inputs.name }}", "World"),
            ("{{ outputs.first.value }}", "one"),
            ("{{ outputs.first.vars.n }}", "42"),
            (
                "{{ task.id }}/{{ task.type }}",
                "log/io.kestra.plugin.core.log.Log",
            ),
            (
                "{{ taskrun.id }} {{ taskrun.value }} {{ taskrun.attemptsCount }}",
                "tr1 v1 0",
            ),
            ("{{ taskrun.parentId }}", "tr0"),
            ("{{ parent.taskrun.value }} {{ parent.outputs.x }}", "pv 1"),
            ("{{ parents[1].taskrun.value }}", "p1"),
            (
                "{{ flow.namespace }}.{{ flow.id }} r{{ flow.revision }}",
                "company.team.hello r2",
            ),
            ("{{ execution.id }} {{ execution.originalId }}", "ex1 ex0"),
            ("{{ labels.env }}", "prod"),
            (
                "{{ trigger.body.event }} {{ trigger.headers['X-Id'] | first }}",
                "push 7",
            ),
            ("{{ vars.greeting }}", "hi"),
        ];
        for (template, expected) in cases {
            assert_eq!(render(template), expected, "{template}");
        }
    }

    #[test]
    fn render_typed_keeps_the_type_of_a_lone_expression() {
        let r = Renderer::new();
        let typed = |t: &str| r.render_typed(t, &vars()).unwrap();
        assert_eq!(typed("{{ outputs.first.vars }}"), json!({"n": 42}));
        assert_eq!(typed("{{ inputs.count }}"), json!(3));
        assert_eq!(typed("{{ inputs.flag }}"), json!(true));
        assert_eq!(typed("{{ inputs.nothing }}"), json!(null));
        assert_eq!(typed("{{ {'a': {'b': 1}} }}"), json!({"a": {"b": 1}}));
        assert_eq!(typed("{{ inputs.missing ?? 'd' }}"), json!("d"));
        // Anything around the expression makes it text, as does a plain string.
        assert_eq!(typed("n={{ inputs.count }}"), json!("n=3"));
        assert_eq!(typed("{{ inputs.count }} "), json!("3 "));
        assert_eq!(typed("plain"), json!("plain"));
        assert!(matches!(
            r.render_typed("{{ inputs.missing }}", &vars()),
            Err(ExpressionError::Undefined { .. })
        ));
    }

    #[test]
    fn plain_strings_are_returned_as_is() {
        let r = Renderer::new();
        let s = "no expression { here } %}";
        assert_eq!(r.render(s, &Json::Null).unwrap(), s);
        // and they never reach the cache
        assert!(r.meta.read().unwrap().is_empty());
    }

    #[test]
    fn values_print_like_kestra() {
        assert_eq!(
            render("{{ inputs.count }} {{ inputs.ratio }} {{ inputs.flag }}"),
            "3 1.5 true"
        );
        assert_eq!(render("[{{ inputs.nothing }}]"), "[]");
        assert_eq!(render("{{ outputs.first.vars }}"), r#"{"n":42}"#);
        assert_eq!(render("{{ parents | length }}"), "2");
        assert_eq!(render("{{ [1, 'a'] }}"), r#"[1,"a"]"#);
        assert_eq!(render("line\n{{ inputs.name }}\n"), "line\nWorld\n");
    }

    #[test]
    fn range_is_inclusive() {
        assert_eq!(render("{{ range(1, 5) }}"), "[1,2,3,4,5]");
        assert_eq!(render("{{ range(1, 100) | length }}"), "100");
        assert_eq!(
            render("{% for i in range(0, 4, 2) %}{{ i }},{% endfor %}"),
            "0,2,4,"
        );
    }

    #[test]
    fn json_filters_functions_and_test() {
        assert_eq!(
            render("{{ outputs.first | json }}"),
            r#"{"value":"one","vars":{"n":42}}"#
        );
        assert_eq!(render("{{ inputs.name | toJson }}"), r#""World""#);
        assert_eq!(render("{{ fromJson(outputs.json_text.value).a[1] }}"), "2");
        assert_eq!(
            render("{{ json(outputs.json_text.value).a | length }}"),
            "2"
        );
        assert_eq!(render("{{ outputs.json_text.value is json }}"), "true");
        assert_eq!(render("{{ inputs.name is json }}"), "false");
    }

    #[test]
    fn jq_returns_a_list() {
        assert_eq!(render("{{ outputs | jq('.first.value') }}"), r#"["one"]"#);
        assert_eq!(render("{{ outputs | jq('.first.vars.n') | first }}"), "42");
        assert_eq!(
            render("{{ outputs.json_text.value | jq('.a[]') }}"),
            "[1,2]"
        );
        assert!(matches!(
            render_err("{{ outputs | jq('.[') }}"),
            ExpressionError::Render { .. }
        ));
    }

    #[test]
    fn null_coalescing() {
        assert_eq!(render("{{ inputs.missing ?? 'default' }}"), "default");
        assert_eq!(render("{{ inputs.name ?? 'default' }}"), "World");
        assert_eq!(
            render("{{ outputs.nope.value ?? outputs.first.value }}"),
            "one"
        );
        assert_eq!(render("{{ nope.a ?? also.missing ?? 'third' }}"), "third");
        assert_eq!(render("{{ inputs.nothing ?? 'was null' }}"), "was null");
        assert_eq!(render("[{{ inputs.nothing ??? 'only undefined' }}]"), "[]");
        // Pebble's `null` literal, as Kestra's kv.yaml uses it.
        assert_eq!(render("[{{ inputs.missing ?? null }}]"), "[]");
        assert_eq!(render("{{ inputs.nothing == null }}"), "true");
        assert_eq!(render("{{ inputs.missing ?? 'a' | upper }}"), "A");
        assert_eq!(render("{{ 'x ?? y' }} ?? {{ \"??\" }}"), "x ?? y ?? ??");
        assert_eq!(render("{{ outputs[inputs.name].value ?? 0 }}"), "0");
        assert_eq!(render("{{ inputs.count ?? 0 }}"), "3");
        // Only the left side is protected, as in Kestra.
        assert!(matches!(
            render_err("{{ missing ?? missing2 }}"),
            ExpressionError::Undefined { .. }
        ));
    }

    #[test]
    fn pebble_operators() {
        assert_eq!(
            render("{{ taskrun.attemptsCount == 0 ? 'first' : 'retry' }}"),
            "first"
        );
        assert_eq!(
            render("{{ inputs.flag ? inputs.count ? 'both' : 'flag' : 'none' }}"),
            "both"
        );
        assert_eq!(
            render("{{ inputs.missing ?? false ? 'set' : 'unset' }}"),
            "unset"
        );
        assert_eq!(render("{{ inputs.name equals 'World' }}"), "true");
        assert_eq!(render("{{ inputs.name contains 'orl' }}"), "true");
        assert_eq!(
            render("{{ parents contains 'x' or not inputs.name contains 'z' }}"),
            "true"
        );
        assert_eq!(render("{{ inputs.missing is defined }}"), "false");
        assert_eq!(render("{{ inputs.nothing is null }}"), "true");
        assert_eq!(render("{{ inputs.name ~ '!' ~ inputs.count }}"), "World!3");
        assert_eq!(render("{{ 'a ? b : c' }}"), "a ? b : c");
    }

    #[test]
    fn current_each_output_follows_the_loop_values() {
        let vars = json!({
            "outputs": {"t": {"outer": {"inner": {"value": "found"}}}},
            "taskrun": {"value": "inner"},
            "parents": [{"taskrun": {"value": null}}, {"taskrun": {"value": "outer"}}],
        });
        let r = Renderer::new();
        assert_eq!(
            r.render("{{ currentEachOutput(outputs.t).value }}", &vars)
                .unwrap(),
            "found"
        );
    }

    #[test]
    fn a_missing_secret_is_kestras_error() {
        // The positive case needs the variable in the environment: `tests/cli.rs` runs the
        // binary with one.
        let r = Renderer::new();
        let missing = r.render("{{ secret('FLOWBENCH_TEST_NOPE') }}", &json!({}));
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .contains("Cannot find secret for key 'FLOWBENCH_TEST_NOPE'.")
        );
    }

    #[test]
    fn undefined_is_an_error_naming_the_variable() {
        match render_err("Hello {{ inputs.nope }}") {
            ExpressionError::Undefined {
                name,
                template,
                line,
            } => {
                assert_eq!(name, "inputs.nope");
                assert_eq!(template, "Hello {{ inputs.nope }}");
                assert_eq!(line, Some(1));
            }
            other => panic!("unexpected {other:?}"),
        }
        match render_err("a\n{{ outputs.missing.value }}") {
            ExpressionError::Undefined { name, line, .. } => {
                assert_eq!(name, "outputs.missing");
                assert_eq!(line, Some(2));
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = render_err("{{ nothere }}");
        assert!(
            err.to_string().contains("Missing variable: 'nothere'"),
            "{err}"
        );
    }

    #[test]
    fn malformed_expressions_are_syntax_errors() {
        let r = Renderer::new();
        for bad in ["{{ foo( }}", "{% if x %}", "{{ a | }}"] {
            assert!(
                matches!(r.check_syntax(bad), Err(ExpressionError::Syntax { .. })),
                "{bad}"
            );
            assert!(
                matches!(r.render(bad, &vars()), Err(ExpressionError::Syntax { .. })),
                "{bad}"
            );
        }
        assert!(
            r.check_syntax("{{ inputs.x ?? 'a' }} {{ undefined_is_fine_here }}")
                .is_ok()
        );
        assert!(r.check_syntax("plain").is_ok());
    }

    #[test]
    fn render_value_recurses_and_keeps_other_values() {
        let value = json!({
            "msg": "{{ inputs.name }}",
            "{{ flow.id }}": [1, "{{ inputs.count }}", {"deep": "{{ labels.env }}"}],
            "n": 2.5, "b": false, "z": null
        });
        let out = Renderer::new().render_value(&value, &vars()).unwrap();
        assert_eq!(
            out,
            json!({"msg": "World", "hello": [1, "3", {"deep": "prod"}], "n": 2.5, "b": false, "z": null})
        );
    }

    #[test]
    fn render_list_accepts_lists_json_strings_and_expressions() {
        let r = Renderer::new();
        let v = vars();
        assert_eq!(
            r.render_list(&json!(["a", "{{ inputs.name }}", 3]), &v)
                .unwrap(),
            vec![json!("a"), json!("World"), json!(3)]
        );
        assert_eq!(
            r.render_list(&json!(r#"["x", {"k": 1}]"#), &v).unwrap(),
            vec![json!("x"), json!({"k": 1})]
        );
        assert_eq!(
            r.render_list(&json!("{{ range(1, 3) }}"), &v).unwrap(),
            vec![json!(1), json!(2), json!(3)]
        );
        assert_eq!(
            r.render_list(
                &json!("{{ outputs.json_text.value | jq('.a') | first }}"),
                &v
            )
            .unwrap()
            .len(),
            2
        );
        assert!(matches!(
            r.render_list(&json!("{{ inputs.name }}"), &v),
            Err(ExpressionError::NotAList { .. })
        ));
        assert!(matches!(
            r.render_list(&json!(5), &v),
            Err(ExpressionError::NotAList { .. })
        ));
    }

    #[test]
    fn conditions_follow_truth_utils() {
        let r = Renderer::new();
        let v = vars();
        for (template, expected) in [
            ("{{ inputs.flag }}", true),
            ("{{ not inputs.flag }}", false),
            ("{{ inputs.count > 5 }}", false),
            ("{{ inputs.count - 3 }}", false),
            ("-0", false),
            ("", false),
            ("{{ inputs.nothing }}", false),
            ("  false\n", false),
            ("{{ inputs.name }}", true),
            ("no", true),
            ("{{ inputs.name == 'World' }}", true),
        ] {
            assert_eq!(
                r.render_condition(template, &v).unwrap(),
                expected,
                "{template:?}"
            );
        }
        assert!(r.render_condition("{{ inputs.nope }}", &v).is_err());
    }

    #[test]
    fn pebble_filters_used_by_flows() {
        let cases = [
            ("{{ inputs.missing | default('d') }}", "d"),
            ("{{ inputs.nothing | default('d') }}", "d"),
            ("{{ '' | default('d') }}", "d"),
            ("{{ ' Ab ' | trim | upper }}{{ 'C' | lower }}", "ABc"),
            ("{{ outputs.first | keys }}", r#"["value","vars"]"#),
            ("{{ outputs.first.vars | values }}", "[42]"),
            (
                "{{ parents | first | json }}",
                r#"{"taskrun":{"value":"p0"}}"#,
            ),
            (
                "{{ ['a', 'b'] | join('-') }}{{ ['a', 'b'] | last }}",
                "a-bb",
            ),
            ("{{ 'a,b,c' | split(',') | length }}", "3"),
            (
                "{{ 'I like %this%' | replace({'%this%': inputs.name}) }}",
                "I like World",
            ),
            ("{{ -3 | abs }}", "3"),
            ("{{ '42' | number + 1 }}", "43"),
            (
                "{{ execution.startDate | date('yyyy-MM-dd HH:mm:ss') }}",
                "2024-03-05 07:08:09",
            ),
            ("{{ taskrun.startDate | date('yyyy-MM-dd') }}", "2024-03-05"),
            ("{{ 'Hello World!' | slugify }}", "hello-world"),
            ("{{ flow.namespace | startsWith('company') }}", "true"),
            ("{{ flow.namespace | endsWith('x') }}", "false"),
            ("{{ 'a.b.c' | substringAfterLast('.') }}", "c"),
            ("{{ [1, 1, 2] | distinct }}", "[1,2]"),
            ("{{ inputs.nothing is null }}", "true"),
            ("{{ max(1, 5, 3) }}", "5"),
        ];
        for (template, expected) in cases {
            assert_eq!(render(template), expected, "{template}");
        }
        let now = render("{{ now() }}");
        assert!(now.len() >= 20 && now.ends_with('Z'), "{now}");
        assert_eq!(render("{{ now(format='yyyy') | length }}"), "4");
    }

    #[test]
    fn cache_is_bounded() {
        let r = Renderer::new();
        for i in 0..CACHE_CAPACITY + 5 {
            assert_eq!(
                r.render(&format!("{{{{ {i} }}}}"), &Json::Null).unwrap(),
                i.to_string()
            );
        }
        assert!(r.meta.read().unwrap().len() <= CACHE_CAPACITY);
        // still renders correctly after the cache was emptied
        assert_eq!(r.render("{{ 7 }}", &Json::Null).unwrap(), "7");
    }

    #[test]
    fn only_the_variables_a_template_reads_are_converted() {
        let mut tree = PathTree::default();
        tree.insert("outputs.first.value");
        let selected = tree.select(&vars());
        assert_eq!(
            serde_json::to_string(&selected).unwrap(),
            r#"{"outputs":{"first":{"value":"one"}}}"#
        );
    }
}
