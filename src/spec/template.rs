//! Rendering of spec string values as minijinja templates over `vars`.
//!
//! Strict undefined behaviour (a typo is an error, never an empty string),
//! no auto-escaping, and exactly two ways to bring a secret in: `env("NAME")`
//! and `file("PATH")`. Both go through [`Inputs`], so the core stays free of
//! I/O in tests; both mark the rendered value sensitive and register it with
//! the [`Redactor`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

use crate::secret::Redactor;

/// Where `env()` and `file()` read from, and the home folder `~/` stands
/// for: everything the resolution reads from outside comes through here,
/// so the resolver itself does no I/O.
pub trait Inputs: Send + Sync {
    fn env(&self, name: &str) -> Option<String>;
    fn file(&self, path: &Path) -> std::io::Result<String>;
    /// The user's home folder, for `~/` in paths (`None`: left as written).
    fn home(&self) -> Option<PathBuf>;
}

/// The process environment and the file system, relative to the spec's folder.
#[derive(Debug, Clone)]
pub struct SystemInputs;

impl Inputs for SystemInputs {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn home(&self) -> Option<PathBuf> {
        std::env::var_os("HOME").map(PathBuf::from)
    }
}

/// Fixed inputs for tests.
#[derive(Debug, Clone, Default)]
pub struct MapInputs {
    pub env: BTreeMap<String, String>,
    pub files: BTreeMap<PathBuf, String>,
    pub home: Option<PathBuf>,
}

impl Inputs for MapInputs {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    fn file(&self, path: &Path) -> std::io::Result<String> {
        self.files.get(path).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory")
        })
    }

    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }
}

/// A rendered value and whether a secret went into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub value: String,
    pub sensitive: bool,
}

/// Why a value did not render, phrased for a spec author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub message: String,
    pub hint: Option<String>,
}

pub struct Renderer {
    env: Environment<'static>,
    vars: Value,
    var_names: Vec<String>,
    used_secret: Arc<Mutex<bool>>,
    redactor: Redactor,
    /// Secrets asked for but not there, when they may be missing
    /// ([`MissingSecrets::Warn`]): what, in order; taken by the caller.
    missing: Arc<Mutex<Vec<String>>>,
}

/// What a secret that cannot be read (`env()` of an unset variable,
/// `file()` of a missing file) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingSecrets {
    /// An error at the field: `plan`, `apply` and `validate --strict`.
    #[default]
    Refuse,
    /// A placeholder value and a warning: `validate` in a CI lint job,
    /// which has no production secrets.
    Warn,
}

/// What stands for a secret that is not there under
/// [`MissingSecrets::Warn`]; never sent anywhere (only `validate` runs so).
pub const UNSET_SECRET: &str = "xfed-unset-secret";

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("vars", &self.var_names)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// `base_dir` is the spec's folder: `file("x")` reads `base_dir/x`.
    pub fn new(inputs: Arc<dyn Inputs>, base_dir: PathBuf, redactor: Redactor) -> Renderer {
        Renderer::with_missing_secrets(inputs, base_dir, redactor, MissingSecrets::Refuse)
    }

    /// As [`Renderer::new`], saying what a secret that is not there means.
    pub fn with_missing_secrets(
        inputs: Arc<dyn Inputs>,
        base_dir: PathBuf,
        redactor: Redactor,
        missing_secrets: MissingSecrets,
    ) -> Renderer {
        let lenient = missing_secrets == MissingSecrets::Warn;
        let missing = Arc::new(Mutex::new(Vec::new()));
        let used_secret = Arc::new(Mutex::new(false));
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_debug(true);

        let (inp, used, red, miss) = (
            inputs.clone(),
            used_secret.clone(),
            redactor.clone(),
            missing.clone(),
        );
        env.add_function("env", move |name: String| -> Result<String, Error> {
            let value = match inp.env(&name) {
                Some(v) => v,
                None if lenient => {
                    push(&miss, format!("environment variable `{name}` is not set"));
                    UNSET_SECRET.to_string()
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("environment variable `{name}` is not set"),
                    ));
                }
            };
            mark_secret(&used, &red, &value);
            Ok(value)
        });
        let (inp, used, red, miss) = (
            inputs,
            used_secret.clone(),
            redactor.clone(),
            missing.clone(),
        );
        env.add_function("file", move |path: String| -> Result<String, Error> {
            let full = base_dir.join(&path);
            let value = match inp.file(&full) {
                Ok(v) => v,
                Err(e) if lenient => {
                    push(&miss, format!("cannot read file `{}`: {e}", full.display()));
                    UNSET_SECRET.to_string()
                }
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("cannot read file `{}`: {e}", full.display()),
                    ));
                }
            };
            mark_secret(&used, &red, &value);
            // Secret files (keys, API tokens) usually end in a newline that
            // is not part of the value.
            Ok(value.trim_end_matches(['\n', '\r']).to_string())
        });

        Renderer {
            env,
            vars: Value::from(()),
            var_names: Vec::new(),
            used_secret,
            redactor,
            missing,
        }
    }

    /// The secrets found missing since the last call (only ever non-empty
    /// under [`MissingSecrets::Warn`]).
    pub fn take_missing(&self) -> Vec<String> {
        self.missing
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }

    /// Sets the variables every template sees. String variables are
    /// themselves rendered, in order, so `vars` may build on each other and
    /// may hold secrets (which stay marked wherever they are used).
    pub fn set_vars(
        &mut self,
        vars: &[(String, serde_yaml::Value)],
    ) -> Result<(), (String, RenderError)> {
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        for (name, value) in vars {
            self.vars = Value::from(map.clone());
            let v = match value {
                serde_yaml::Value::String(s) => {
                    Value::from(self.render(s).map_err(|e| (name.clone(), e))?.value)
                }
                other => Value::from(minijinja::value::Serde(other.clone())),
            };
            map.insert(name.clone(), v);
        }
        self.var_names = map.keys().cloned().collect();
        self.vars = Value::from(map);
        Ok(())
    }

    /// The redactor every secret rendered here was registered with.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Renders one string value. Strings without template syntax are
    /// returned as they are (fast, and `{` in plain text stays plain).
    pub fn render(&self, template: &str) -> Result<Rendered, RenderError> {
        if !template.contains("{{") && !template.contains("{%") {
            return Ok(Rendered {
                value: template.to_string(),
                sensitive: self.redactor.contains_secret(template),
            });
        }
        if let Ok(mut used) = self.used_secret.lock() {
            *used = false;
        }
        let value = self
            .env
            .render_str(template, self.vars.clone())
            .map_err(|e| self.explain(&e))?;
        let used = self.used_secret.lock().map(|u| *u).unwrap_or(true);
        let sensitive = used || self.redactor.contains_secret(&value);
        Ok(Rendered { value, sensitive })
    }

    fn explain(&self, e: &Error) -> RenderError {
        match e.kind() {
            ErrorKind::UndefinedError => {
                let name = undefined_name(e);
                let hint = match &name {
                    Some(n) => super::diagnostic::did_you_mean(
                        n,
                        self.var_names.iter().map(String::as_str),
                    )
                    .or_else(|| Some(format!("define `{n}` under `vars:`"))),
                    None => None,
                };
                RenderError {
                    message: match name {
                        Some(n) => format!("template variable `{n}` is not defined"),
                        None => "template uses an undefined value".to_string(),
                    },
                    hint,
                }
            }
            ErrorKind::SyntaxError => RenderError {
                message: format!(
                    "template syntax error: {}",
                    e.detail().unwrap_or("invalid syntax")
                ),
                hint: Some("string values are minijinja templates; write `{{ name }}`".into()),
            },
            _ => RenderError {
                message: e.detail().map_or_else(|| e.to_string(), str::to_string),
                hint: None,
            },
        }
    }
}

fn push(list: &Mutex<Vec<String>>, what: String) {
    if let Ok(mut l) = list.lock() {
        l.push(what);
    }
}

fn mark_secret(used: &Mutex<bool>, redactor: &Redactor, value: &str) {
    if let Ok(mut u) = used.lock() {
        *u = true;
    }
    redactor.add(value);
}

/// minijinja says "undefined value" without the name; the template source
/// line holds the expression, and its first identifier is what was missing.
fn undefined_name(e: &Error) -> Option<String> {
    let detail = e.detail().unwrap_or_default();
    if let Some(start) = detail.find('`') {
        let rest = &detail[start + 1..];
        if let Some(end) = rest.find('`') {
            return Some(
                rest[..end]
                    .split('.')
                    .next()
                    .unwrap_or(&rest[..end])
                    .to_string(),
            );
        }
    }
    let src = e.template_source()?;
    let span = e.range()?;
    let expr = src.get(span)?;
    let ident: String = expr
        .trim_start_matches(['{', ' ', '-'])
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty()).then_some(ident)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer(env: &[(&str, &str)]) -> Renderer {
        let inputs = MapInputs {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            files: [(
                PathBuf::from("/spec/key.txt"),
                "file-secret-value\n".to_string(),
            )]
            .into(),
            home: None,
        };
        let mut r = Renderer::new(Arc::new(inputs), "/spec".into(), Redactor::default());
        r.set_vars(&[
            (
                "domain".into(),
                serde_yaml::Value::String("contoso.example".into()),
            ),
            (
                "sip".into(),
                serde_yaml::Value::String("sip.{{ domain }}".into()),
            ),
        ])
        .expect("vars");
        r
    }

    #[test]
    fn renders_vars_and_chained_vars() {
        let r = renderer(&[]);
        assert_eq!(
            r.render("{{ sip }}").map(|x| x.value),
            Ok("sip.contoso.example".into())
        );
        assert_eq!(r.render("plain").map(|x| x.sensitive), Ok(false));
    }

    #[test]
    fn env_and_file_are_secret_and_registered() {
        let r = renderer(&[("PDNS_KEY", "s3cr3t-key")]);
        let v = r.render("{{ env('PDNS_KEY') }}").expect("render");
        assert!(v.sensitive);
        assert_eq!(r.redactor.redact("k=s3cr3t-key"), "k=(sensitive)");
        let f = r.render("{{ file('key.txt') }}").expect("render");
        assert_eq!(f.value, "file-secret-value");
        assert!(f.sensitive);
        // A later plain use of the same value is still sensitive.
        assert!(r.render("file-secret-value").expect("render").sensitive);
    }

    #[test]
    fn undefined_variable_names_it_and_suggests() {
        let r = renderer(&[]);
        let e = r.render("{{ domian }}").expect_err("undefined");
        assert_eq!(e.message, "template variable `domian` is not defined");
        assert_eq!(e.hint.as_deref(), Some("did you mean `domain`?"));
    }

    #[test]
    fn missing_env_is_an_error() {
        let r = renderer(&[]);
        let e = r.render("{{ env('NOPE') }}").expect_err("missing");
        assert_eq!(e.message, "environment variable `NOPE` is not set");
    }
}
