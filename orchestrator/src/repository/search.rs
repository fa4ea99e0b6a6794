//! Kestra's execution search (`ExecutionRepositoryInterface#find`, as
//! `AbstractJdbcExecutionRepository` runs it): filters on the executions table's indexed
//! columns and the labels of the document, a sort on a named field, and a page.
//!
//! Each dialect gives its spelling of the few parts that differ ([`SearchSyntax`]: the
//! placeholders, how a bound date is compared with the date columns, how a label is found
//! in the document, how a page is cut); [`statements`] writes the two statements from it.
//! Every value the request carries is bound: the SQL text holds only the syntax's own
//! pieces and the column names of [`SortField`].

use jiff::Timestamp;

use crate::model::{Label, StateType};

/// What `GET /api/v1/executions/search` asks for. Every filter is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionSearch {
    /// The namespace and the namespaces under it (`io.kestra` also finds
    /// `io.kestra.tests`), or that namespace alone when [`ExecutionSearch::flow_id`] is set,
    /// as Kestra filters.
    pub namespace: Option<String>,
    pub flow_id: Option<String>,
    /// The current state is one of these (none: any state).
    pub states: Vec<StateType>,
    /// Started at or after.
    pub start_date: Option<Timestamp>,
    /// Ended at or before (Kestra compares `end_date`, so running executions are left out).
    pub end_date: Option<Timestamp>,
    /// Each label must be on the execution, with that value.
    pub labels: Vec<Label>,
    /// The order, first field first; the execution id breaks ties so that pages do not
    /// overlap. Empty: newest start first.
    pub sort: Vec<(SortField, Direction)>,
    /// The page, from 1, and its size.
    pub page: u64,
    pub size: u64,
}

/// A field an execution search can be sorted on: Kestra's `sortMapping()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Id,
    StartDate,
    EndDate,
    Duration,
    Namespace,
    FlowId,
    State,
}

impl SortField {
    /// Each field by the name the API takes, Kestra's.
    pub const NAMES: [(&'static str, SortField); 7] = [
        ("id", SortField::Id),
        ("state.startDate", SortField::StartDate),
        ("state.endDate", SortField::EndDate),
        ("state.duration", SortField::Duration),
        ("namespace", SortField::Namespace),
        ("flowId", SortField::FlowId),
        ("state.current", SortField::State),
    ];

    pub fn parse(name: &str) -> Option<SortField> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    fn column(self, key: &'static str) -> &'static str {
        match self {
            SortField::Id => key,
            SortField::StartDate => "start_date",
            SortField::EndDate => "end_date",
            SortField::Duration => "state_duration",
            SortField::Namespace => "namespace",
            SortField::FlowId => "flow_id",
            SortField::State => "state_current",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    fn sql(self) -> &'static str {
        match self {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        }
    }
}

/// One page of results and how many there are in all: Kestra's `ArrayListTotal`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub results: Vec<T>,
    pub total: u64,
}

/// A value bound into a search statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// How one dialect spells the parts of a search that differ.
pub(crate) struct SearchSyntax {
    /// `SELECT key, value FROM executions`, the document read as the dialect reads it.
    pub select: String,
    /// The id column, quoted.
    pub key: &'static str,
    /// `COUNT(*)`, or SQL Server's `COUNT_BIG(*)` (a `COUNT` there is an `INT`).
    pub count: &'static str,
    /// The placeholder of the `n`th bound value, from 1.
    pub placeholder: fn(usize) -> String,
    /// A bound date, from its placeholder, as the date columns compare with it.
    pub date: fn(&str) -> String,
    /// The text bound for a date.
    pub date_value: fn(Timestamp) -> String,
    /// The condition that the document has a label, from the placeholders of its key and
    /// its value.
    pub label: fn(&str, &str) -> String,
    /// The page's clause after `ORDER BY`, from the placeholders of its size and offset
    /// (bound in that order).
    pub page: fn(&str, &str) -> String,
}

/// The statements of a search, and the values each binds in order.
#[derive(Debug)]
pub(crate) struct Statements {
    /// → one row, the total.
    pub count: String,
    pub count_params: Vec<Param>,
    /// → `(key, document)` of the page's executions, in order.
    pub page: String,
    pub page_params: Vec<Param>,
}

/// The count and page statements of `search` in `syntax`.
pub(crate) fn statements(search: &ExecutionSearch, syntax: &SearchSyntax) -> Statements {
    let mut params = Vec::new();
    let placeholder = syntax.placeholder;
    let mut bind = |p: Param| {
        params.push(p);
        placeholder(params.len())
    };
    let mut conditions = Vec::new();
    if let Some(namespace) = &search.namespace {
        let equal = bind(Param::Text(namespace.clone()));
        if search.flow_id.is_some() {
            conditions.push(format!("namespace = {equal}"));
        } else {
            let under = bind(Param::Text(format!("{}.%", like_escaped(namespace))));
            conditions.push(format!(
                "(namespace = {equal} OR namespace LIKE {under} ESCAPE '!')"
            ));
        }
    }
    if let Some(flow_id) = &search.flow_id {
        conditions.push(format!("flow_id = {}", bind(Param::Text(flow_id.clone()))));
    }
    if !search.states.is_empty() {
        let states: Vec<String> = search
            .states
            .iter()
            .map(|s| bind(Param::Text(s.as_str().to_string())))
            .collect();
        conditions.push(format!("state_current IN ({})", states.join(", ")));
    }
    if let Some(start) = search.start_date {
        let at = bind(Param::Text((syntax.date_value)(start)));
        conditions.push(format!("start_date >= {}", (syntax.date)(&at)));
    }
    if let Some(end) = search.end_date {
        let at = bind(Param::Text((syntax.date_value)(end)));
        conditions.push(format!("end_date <= {}", (syntax.date)(&at)));
    }
    for label in &search.labels {
        let key = bind(Param::Text(label.key.clone()));
        let value = bind(Param::Text(label.value.clone()));
        conditions.push((syntax.label)(&key, &value));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let offset = search.page.saturating_sub(1).saturating_mul(search.size);
    let limit = bind(Param::Int(to_i64(search.size)));
    let offset = bind(Param::Int(to_i64(offset)));
    let count_params = params[..params.len() - 2].to_vec();

    let default_sort = [(SortField::StartDate, Direction::Desc)];
    let sort = if search.sort.is_empty() {
        &default_sort[..]
    } else {
        &search.sort[..]
    };
    let mut order: Vec<String> = sort
        .iter()
        .map(|(field, dir)| format!("{} {}", field.column(syntax.key), dir.sql()))
        .collect();
    if !sort.iter().any(|(f, _)| *f == SortField::Id) {
        order.push(format!("{} ASC", syntax.key));
    }
    Statements {
        count: format!("SELECT {} FROM executions{filter}", syntax.count),
        count_params,
        page: format!(
            "{}{filter} ORDER BY {} {}",
            syntax.select,
            order.join(", "),
            (syntax.page)(&limit, &offset)
        ),
        page_params: params,
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `text` with `LIKE`'s wildcards taken literally, under `ESCAPE '!'`.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question_marks() -> SearchSyntax {
        SearchSyntax {
            select: "SELECT k, v FROM executions".into(),
            key: "k",
            count: "COUNT(*)",
            placeholder: |_| "?".into(),
            date: |p| format!("D({p})"),
            date_value: |t| t.to_string(),
            label: |k, v| format!("L({k}, {v})"),
            page: |l, o| format!("LIMIT {l} OFFSET {o}"),
        }
    }

    #[test]
    fn every_value_is_bound_and_the_page_follows_the_filters() {
        let search = ExecutionSearch {
            namespace: Some("io.kes_tra".into()),
            states: vec![StateType::Success, StateType::Failed],
            start_date: Some("2024-01-01T00:00:00Z".parse().unwrap()),
            labels: vec![Label {
                key: "team".into(),
                value: "a'b".into(),
            }],
            sort: vec![(SortField::FlowId, Direction::Asc)],
            page: 3,
            size: 20,
            ..Default::default()
        };
        let s = statements(&search, &question_marks());
        assert_eq!(
            s.count,
            "SELECT COUNT(*) FROM executions WHERE (namespace = ? OR namespace LIKE ? ESCAPE '!') \
             AND state_current IN (?, ?) AND start_date >= D(?) AND L(?, ?)"
        );
        assert_eq!(
            s.count_params,
            [
                Param::Text("io.kes_tra".into()),
                Param::Text("io.kes!_tra.%".into()),
                Param::Text("SUCCESS".into()),
                Param::Text("FAILED".into()),
                Param::Text("2024-01-01T00:00:00Z".into()),
                Param::Text("team".into()),
                Param::Text("a'b".into()),
            ]
        );
        assert!(
            s.page
                .ends_with("ORDER BY flow_id ASC, k ASC LIMIT ? OFFSET ?")
        );
        assert_eq!(s.page_params[..7], s.count_params[..]);
        assert_eq!(s.page_params[7..], [Param::Int(20), Param::Int(40)]);
    }

    #[test]
    fn a_flow_id_narrows_the_namespace_to_itself_and_no_sort_is_newest_first() {
        let search = ExecutionSearch {
            namespace: Some("a".into()),
            flow_id: Some("f".into()),
            page: 1,
            size: 10,
            ..Default::default()
        };
        let mut syntax = question_marks();
        syntax.placeholder = |n| format!("${n}");
        let s = statements(&search, &syntax);
        assert_eq!(
            s.count,
            "SELECT COUNT(*) FROM executions WHERE namespace = $1 AND flow_id = $2"
        );
        assert!(
            s.page
                .ends_with("ORDER BY start_date DESC, k ASC LIMIT $3 OFFSET $4")
        );
        assert_eq!(s.page_params[2..], [Param::Int(10), Param::Int(0)]);
    }

    #[test]
    fn sort_names_are_kestras() {
        assert_eq!(
            SortField::parse("state.startDate"),
            Some(SortField::StartDate)
        );
        assert_eq!(SortField::parse("start_date"), None);
    }
}
