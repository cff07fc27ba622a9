//! `xfed schema`: the JSON Schema of the spec format, for editors.

use super::ExitStatus;
use crate::spec;

pub fn run() -> ExitStatus {
    println!(
        "{}",
        serde_json::to_string_pretty(&spec::json_schema()).unwrap_or_default()
    );
    ExitStatus::Success
}
