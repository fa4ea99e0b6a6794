//! `summary.md`: the claims and the largest changes, for a CI job summary or a
//! pull-request comment.

use minijinja::Environment;

use super::view::ReportView;
use crate::error::{Error, Result};

const TEMPLATE: &str = include_str!("../../templates/summary.md.j2");

pub(crate) fn render(view: &ReportView) -> Result<String> {
    let mut env = Environment::new();
    env.add_filter("cell", cell);
    let name = "summary.md";
    let template_error = |source| Error::Template {
        template: name.to_string(),
        source,
    };
    env.add_template(name, TEMPLATE).map_err(template_error)?;
    env.get_template(name)
        .and_then(|t| t.render(view))
        .map_err(template_error)
}

/// Makes text safe inside a Markdown table cell: a `|` would end the cell and a
/// newline the row.
fn cell(text: String) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(super::cell("a|b\nc".into()), "a\\|b c");
    }
}
