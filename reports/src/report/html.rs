//! `index.html`: one self-contained page.

use minijinja::Environment;

use super::view::ReportView;
use crate::error::{Error, Result};

const TEMPLATE: &str = include_str!("../../templates/index.html.j2");

pub(crate) fn render(view: &ReportView) -> Result<String> {
    let mut env = Environment::new();
    // The name ends in .html so that minijinja escapes every value by default;
    // only the SVG, which we render ourselves, is marked safe in the template.
    let name = "index.html";
    let template_error = |source| Error::Template {
        template: name.to_string(),
        source,
    };
    env.add_template(name, TEMPLATE).map_err(template_error)?;
    env.get_template(name)
        .and_then(|t| t.render(view))
        .map_err(template_error)
}
