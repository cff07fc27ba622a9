//! The spec: YAML in, a resolved and checked [`Spec`] out.
//!
//! Two stages: [`raw`] is the YAML as written (unknown fields
//! rejected, positions kept through [`source`]); [`resolve`] renders
//! templates, merges defaults and checks every reference, collecting every
//! problem as a [`Diagnostic`]. Reading the file is the caller's business
//! ([`load_file`] is the one convenience that does it), so the rest is pure.

pub mod diagnostic;
pub mod model;
pub mod names;
pub mod raw;
pub mod resolve;
pub mod source;
pub mod template;

use std::path::Path;
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use model::*;
pub use source::Source;
pub use template::{Inputs, MapInputs, MissingSecrets, SystemInputs, UNSET_SECRET};

use crate::secret::Redactor;
use template::Renderer;

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read spec `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// The outcome of a successful load: the spec and its warnings.
#[derive(Debug)]
pub struct Loaded {
    pub spec: Spec,
    pub warnings: Diagnostics,
}

/// Reads and resolves the spec at `path`, reading `env()`/`file()` from the
/// process environment and the file system.
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    load_file_with(path, MissingSecrets::Refuse)
}

/// As [`load_file`], saying what a secret that is not there means.
pub fn load_file_with(path: &Path, missing: MissingSecrets) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    load_with(&Source::new(path, text), Arc::new(SystemInputs), missing)
}

/// Resolves spec text. Pure apart from what `inputs` does.
pub fn load(src: &Source, inputs: Arc<dyn Inputs>) -> Result<Loaded, LoadError> {
    load_with(src, inputs, MissingSecrets::Refuse)
}

/// As [`load`]; with [`MissingSecrets::Warn`] a secret that is not there is
/// a warning at its field and a placeholder value, so a spec can be checked
/// where the secrets are not (a CI lint job). Such a spec must never be
/// planned or applied.
pub fn load_with(
    src: &Source,
    inputs: Arc<dyn Inputs>,
    missing: MissingSecrets,
) -> Result<Loaded, LoadError> {
    let raw: raw::RawSpec = match serde_yaml::from_str(src.text()) {
        Ok(raw) => raw,
        Err(e) => {
            let mut d = Diagnostics::default();
            d.push(yaml_error(src, &e));
            return Err(LoadError::Invalid(d));
        }
    };
    let base = src
        .path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let home = inputs.home();
    let mut renderer = Renderer::with_missing_secrets(inputs, base, Redactor::default(), missing);
    let vars: Vec<(String, serde_yaml::Value)> = raw
        .vars
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().map_or_else(|| format!("{k:?}"), str::to_string),
                v.clone(),
            )
        })
        .collect();
    if let Err((name, e)) = renderer.set_vars(&vars) {
        let field = format!("vars.{name}");
        let mut d = Diagnostics::default();
        d.push(Diagnostic::error(src, &field, src.value_pos(&field), e.message).maybe_hint(e.hint));
        return Err(LoadError::Invalid(d));
    }
    // A secret missing in `vars` is only known to be missing here.
    let in_vars = renderer.take_missing();
    let (spec, mut diags) = resolve::Resolver::new(src, renderer, home).resolve(&raw);
    for what in in_vars {
        let d = Diagnostic::warning(
            src,
            "vars",
            src.value_pos("vars"),
            format!("{what}; `vars` needs it"),
        )
        .maybe_hint(Some(
            "`plan` and `apply` refuse to run without it; `validate --strict` makes this an error"
                .into(),
        ));
        diags.push(d);
    }
    match spec {
        Some(spec) => Ok(Loaded {
            spec,
            warnings: diags,
        }),
        None => Err(LoadError::Invalid(diags)),
    }
}

/// The JSON Schema of the spec, for editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(raw::RawSpec)).unwrap_or_default()
}

/// Turns a serde_yaml error into a diagnostic that points into the file and
/// speaks the spec's language ("expected a port number", "did you mean").
fn yaml_error(src: &Source, e: &serde_yaml::Error) -> Diagnostic {
    let full = e.to_string();
    let owned: String;
    let mut msg = full.as_str();
    if let Some(loc) = e.location() {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = msg.strip_suffix(&suffix) {
            msg = stripped;
        } else if let Some(i) = msg.find(&format!("{suffix}, ")) {
            // libyaml: "did not find X at line L column C, while parsing Y at …"
            owned = format!("{}{}", &msg[..i], &msg[i + suffix.len() + 1..]);
            msg = owned.as_str();
        }
    }
    // serde_yaml prefixes the path: `sites[0].name: invalid type: …`.
    let (path, msg) = match msg.split_once(": ") {
        Some((p, rest)) if !p.contains(' ') && !p.is_empty() => (p.to_string(), rest),
        _ => (String::new(), msg),
    };
    let pos = match e.location() {
        Some(l) if !(l.line() == 1 && l.column() == 1 && !path.is_empty()) => source::Pos {
            line: l.line(),
            col: l.column(),
        },
        _ => src.key_pos(&path),
    };

    let (message, expected) = split_expected(msg);
    let field_name = path.rsplit(['.', '[']).next().unwrap_or_default();
    let expected = expected.map(|x| friendly_expected(&x, field_name));
    let mut message = message.to_string();
    let mut hint = None;

    if let Some(name) = between(&message, "unknown field `", "`") {
        let candidates = expected
            .as_deref()
            .map(|x| {
                x.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        hint = diagnostic::did_you_mean(&name, candidates.iter().map(String::as_str));
        message = format!("unknown field `{name}`");
    } else if let Some(name) = between(&message, "unknown variant `", "`") {
        let candidates = expected
            .as_deref()
            .map(|x| {
                x.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        hint = diagnostic::did_you_mean(&name, candidates.iter().map(String::as_str));
        message = format!("unknown value `{name}`");
    } else if let Some(name) = between(&message, "missing field `", "`") {
        message = format!("missing field `{name}`");
        hint = Some(format!("add `{name}:` here"));
    } else if message.starts_with("data did not match any variant of untagged enum RawUsers") {
        message = "invalid user list".into();
        return Diagnostic::error(src, &path, pos, message)
            .expected("`all`, or a list of user addresses");
    }
    if !path.is_empty() && !message.contains('`') {
        message = format!("`{path}`: {message}");
    } else if !path.is_empty() {
        message = format!("{message} in `{path}`");
    }
    let d = Diagnostic::error(src, &path, pos, message).maybe_hint(hint);
    match expected {
        Some(x) => d.expected(x),
        None => d,
    }
}

fn split_expected(msg: &str) -> (&str, Option<String>) {
    match msg.find(", expected ") {
        Some(i) => (&msg[..i], Some(msg[i + ", expected ".len()..].to_string())),
        None => (msg, None),
    }
}

/// serde speaks Rust ("u16"); the spec speaks YAML.
fn friendly_expected(expected: &str, field: &str) -> String {
    match expected {
        "u16" if field.contains("port") => "a port number from 1 to 65535".into(),
        "u16" => "a whole number from 0 to 65535".into(),
        "u32" => "a whole number from 0 to 4294967295".into(),
        "u64" => "a whole number".into(),
        "a boolean" => "`true` or `false`".into(),
        "a sequence" => "a list".into(),
        "struct RawSpec" | "a YAML mapping" => "a mapping (`key: value` lines)".into(),
        x if x.starts_with("struct ") => "a mapping (`key: value` lines)".into(),
        x => x.to_string(),
    }
}

fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(s[i..j].to_string())
}
