//! Renderers for CI systems: a JUnit report (one test case per resource,
//! a failure per change) and GitHub Actions annotations (one per change,
//! at the spec line it comes from). Pure: strings in, strings out.

use std::path::Path;

use super::render::summary_line;
use crate::plan::{Action, Plan};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The plan as a JUnit test suite: a change is a failure.
pub fn junit(plan: &Plan, spec: &Path) -> String {
    let failures = plan.changes.iter().filter(|c| c.action.is_change()).count();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"xfed drift {}\" tests=\"{}\" failures=\"{failures}\">\n",
        xml_escape(&spec.display().to_string()),
        plan.changes.len()
    );
    for c in &plan.changes {
        s.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(&c.host),
            xml_escape(&c.address)
        ));
        if c.action.is_change() {
            let body = c.diff.clone().unwrap_or_default();
            s.push_str(&format!(
                ">\n    <failure message=\"{}: {}\">{}</failure>\n  </testcase>\n",
                c.action.verb(),
                xml_escape(&c.reason),
                xml_escape(&body)
            ));
        } else {
            s.push_str("/>\n");
        }
    }
    s.push_str("</testsuite>\n");
    s
}

/// A workflow command's message: `%`, CR and LF are escaped, as the
/// runner expects, so a reason with a newline stays one annotation.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as data, and `:` and `,` too.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The plan as GitHub Actions workflow commands: a resource to create is a
/// warning, anything else an error, each at its spec line.
pub fn github(plan: &Plan) -> String {
    let mut s = String::new();
    for c in plan.changes.iter().filter(|c| c.action.is_change()) {
        let (file, line) = c.origin.rsplit_once(':').unwrap_or((&c.origin, "1"));
        let level = if c.action == Action::Create {
            "warning"
        } else {
            "error"
        };
        let message = format!("{} {}: {}", c.address, c.action.verb(), c.reason);
        s.push_str(&format!(
            "::{level} file={},line={},title=xfed drift::{}\n",
            escape_property(file),
            escape_property(line),
            escape_data(&message)
        ));
    }
    s.push_str(&format!("{}\n", summary_line(plan.summary())));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_annotation_stays_one_line_whatever_the_reason_holds() {
        assert_eq!(escape_data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
