//! Decisions: desired state + observed facts → a [`Change`], one pure
//! function per resource kind (facts are read first, by the engine;
//! deciding is pure).
//!
//! No I/O and no clock: the same inputs always give the same change, which
//! is what lets `plan` be trusted and tested from fixtures.

use similar::TextDiff;

use super::action::Action;
use super::change::{AttrChange, Change, ServiceOp};
use super::resource::{
    BinarySpec, Desired, FileFact, FileSpec, ListenerFact, Notify, Observed, Resource, ServiceFact,
    ServiceSpec, UserFact, UserSpec,
};
use crate::secret::MASK;

/// Why a service must act, collected from the resources that notify it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notifications {
    pub restart: Vec<String>,
    pub reload: Vec<String>,
    /// Listeners of this service that are not listening.
    pub silent_listeners: Vec<String>,
    /// A restart the operator asked for (`--replace gateway:…`).
    pub requested: Option<String>,
}

impl Notifications {
    pub fn add(&mut self, how: Notify, what: String) {
        match how {
            Notify::Restart => self.restart.push(what),
            Notify::Reload => self.reload.push(what),
        }
    }
}

pub use crate::digest::sha256_hex;

fn fingerprint<T: serde::Serialize>(value: &T) -> String {
    sha256_hex(serde_json::to_string(value).unwrap_or_default().as_bytes())
}

fn base(
    r: &Resource,
    observed: &Observed,
    desired_fp: String,
    action: Action,
    reason: impl Into<String>,
) -> Change {
    Change {
        address: r.address.clone(),
        host: r.host.clone(),
        pool: r.pool.clone(),
        phase: r.phase,
        kind: r.desired.kind(),
        action,
        reason: reason.into(),
        diff: None,
        attrs: Vec::new(),
        service_op: None,
        origin: r.origin.to_string(),
        observed: fingerprint(observed),
        desired: desired_fp,
    }
}

/// Decides one resource. `notes` matters for services only.
pub fn decide(r: &Resource, observed: &Observed, notes: &Notifications) -> Change {
    match (&r.desired, observed) {
        (Desired::Gone(_), _) => base(
            r,
            observed,
            String::new(),
            Action::Delete,
            "no longer in the spec",
        ),
        (Desired::File(spec), Observed::File(fact)) => {
            decide_file(r, spec, fact.as_ref(), observed)
        }
        (Desired::Binary(spec), Observed::Binary(fact)) => {
            decide_binary(r, spec, fact.as_ref(), observed)
        }
        (Desired::Service(spec), Observed::Service(fact)) => decide_service(r, spec, fact, notes),
        (Desired::Listener(_), Observed::Listener(fact)) => decide_listener(r, fact, observed),
        (Desired::Certificate(spec), Observed::Certificate(fact)) => {
            super::certificate::decide_certificate(r, spec, fact)
        }
        (Desired::User(spec), Observed::User(fact)) => decide_user(r, spec, fact, observed),
        (d, o) => base(
            r,
            observed,
            String::new(),
            Action::NoOp,
            format!("internal error: {} observed as {o:?}", d.kind()),
        ),
    }
}

fn mode_str(mode: u32) -> String {
    format!("{mode:04o}")
}

fn ownership_attrs(mode: u32, owner: &str, group: &str, fact: &FileFact) -> Vec<AttrChange> {
    let mut attrs = Vec::new();
    if fact.mode != mode {
        attrs.push(AttrChange {
            name: "mode".into(),
            before: mode_str(fact.mode),
            after: mode_str(mode),
        });
    }
    if fact.owner != owner {
        attrs.push(AttrChange {
            name: "owner".into(),
            before: fact.owner.clone(),
            after: owner.into(),
        });
    }
    if fact.group != group {
        attrs.push(AttrChange {
            name: "group".into(),
            before: fact.group.clone(),
            after: group.into(),
        });
    }
    attrs
}

fn decide_file(
    r: &Resource,
    spec: &FileSpec,
    fact: Option<&FileFact>,
    observed: &Observed,
) -> Change {
    let desired_sha = sha256_hex(spec.content.as_bytes());
    let desired_fp = fingerprint(&(&desired_sha, spec.mode, &spec.owner, &spec.group));
    let label = format!("{}:{}", r.host, spec.path);
    let Some(fact) = fact else {
        let mut c = base(r, observed, desired_fp, Action::Create, "absent");
        c.diff = Some(text_diff(
            "",
            &spec.content,
            &format!("{label} (absent)"),
            spec.sensitive,
        ));
        c.attrs = vec![AttrChange {
            name: "mode".into(),
            before: String::new(),
            after: mode_str(spec.mode),
        }];
        return c;
    };
    let attrs = ownership_attrs(spec.mode, &spec.owner, &spec.group, fact);
    let content_differs = fact.sha256 != desired_sha;
    if !content_differs && attrs.is_empty() {
        return base(
            r,
            observed,
            desired_fp,
            Action::NoOp,
            "content, mode and owner match",
        );
    }
    let reason = match (content_differs, attrs.is_empty()) {
        (true, true) => "content differs".to_string(),
        (true, false) => format!("content and {} differ", attr_names(&attrs)),
        (false, _) => format!(
            "{} differ{}",
            attr_names(&attrs),
            if attrs.len() == 1 { "s" } else { "" }
        ),
    };
    let mut c = base(r, observed, desired_fp, Action::Update, reason);
    if content_differs {
        let before = fact.content.as_deref().unwrap_or("");
        c.diff = Some(text_diff(
            before,
            &spec.content,
            &label,
            spec.sensitive || fact.content.is_none(),
        ));
    }
    c.attrs = attrs;
    c
}

fn attr_names(attrs: &[AttrChange]) -> String {
    attrs
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Unified diff, context 3, labelled `host:path` → `desired`. Sensitive
/// content is never shown, only that it changes.
pub fn text_diff(before: &str, after: &str, label: &str, sensitive: bool) -> String {
    if sensitive {
        return format!("--- {label}\n+++ desired\n{MASK} content changes\n");
    }
    TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(label, "desired")
        .to_string()
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

fn decide_binary(
    r: &Resource,
    spec: &BinarySpec,
    fact: Option<&FileFact>,
    observed: &Observed,
) -> Change {
    let desired_fp = fingerprint(&(&spec.sha256, spec.mode));
    let Some(fact) = fact else {
        let mut c = base(r, observed, desired_fp, Action::Create, "absent");
        c.attrs = vec![AttrChange {
            name: "sha256".into(),
            before: String::new(),
            after: short(&spec.sha256),
        }];
        return c;
    };
    let mut attrs = Vec::new();
    if fact.sha256 != spec.sha256 {
        attrs.push(AttrChange {
            name: "sha256".into(),
            before: short(&fact.sha256),
            after: short(&spec.sha256),
        });
    }
    if fact.mode != spec.mode {
        attrs.push(AttrChange {
            name: "mode".into(),
            before: mode_str(fact.mode),
            after: mode_str(spec.mode),
        });
    }
    if attrs.is_empty() {
        return base(r, observed, desired_fp, Action::NoOp, "sha256 matches");
    }
    let reason = if fact.sha256 != spec.sha256 {
        "sha256 differs"
    } else {
        "mode differs"
    };
    let mut c = base(r, observed, desired_fp, Action::Update, reason);
    c.attrs = attrs;
    c
}

/// A user that exists is left alone, whatever its id: files are owned by
/// name on the host, and renumbering a user is not xfed's business.
fn decide_user(r: &Resource, spec: &UserSpec, fact: &UserFact, observed: &Observed) -> Change {
    let desired_fp = fingerprint(&spec.name);
    match fact.uid {
        Some(uid) => base(
            r,
            observed,
            desired_fp,
            Action::NoOp,
            format!("exists (uid {uid})"),
        ),
        None => {
            let mut c = base(
                r,
                observed,
                desired_fp,
                Action::Create,
                "no such user".to_string(),
            );
            c.attrs = vec![AttrChange {
                name: "system user".into(),
                before: String::new(),
                after: spec.name.clone(),
            }];
            c
        }
    }
}

fn decide_service(
    r: &Resource,
    spec: &ServiceSpec,
    fact: &ServiceFact,
    notes: &Notifications,
) -> Change {
    let desired_fp = fingerprint(&(&spec.exec, &spec.name));
    // The pid changes with every restart, by us or anyone; it is not state.
    let observed_fp = Observed::Service(ServiceFact {
        pid: None,
        ..fact.clone()
    });
    let with = |action: Action, op: Option<ServiceOp>, reason: String| {
        let mut c = base(r, &observed_fp, desired_fp.clone(), action, reason);
        c.service_op = op;
        c
    };
    if !fact.running {
        return with(Action::Create, Some(ServiceOp::Start), "not running".into());
    }
    if let Some(why) = &notes.requested {
        return with(Action::Update, Some(ServiceOp::Restart), why.clone());
    }
    // Only a service that names its user is held to it: a daemon started
    // as root may drop to a user of its own choosing (Prosody does).
    if let Some(wanted_user) = &spec.user
        && let Some(running) = &fact.running_user
        && running != wanted_user
    {
        let mut c = with(
            Action::Update,
            Some(ServiceOp::Restart),
            format!("runs as `{running}`, not as `{wanted_user}`"),
        );
        c.attrs = vec![AttrChange {
            name: "user".into(),
            before: running.clone(),
            after: wanted_user.clone(),
        }];
        return c;
    }
    if !notes.restart.is_empty() {
        return with(
            Action::Update,
            Some(ServiceOp::Restart),
            format!("{} changed", notes.restart.join(", ")),
        );
    }
    if let (Some(running), Some(installed)) = (&fact.running_sha256, &spec.binary)
        && running != installed
    {
        let mut c = with(
            Action::Update,
            Some(ServiceOp::Restart),
            "the running program is not the installed binary".into(),
        );
        c.attrs = vec![AttrChange {
            name: "running sha256".into(),
            before: short(running),
            after: short(installed),
        }];
        return c;
    }
    if !notes.silent_listeners.is_empty() {
        return with(
            Action::Update,
            Some(ServiceOp::Restart),
            format!("{} not listening", notes.silent_listeners.join(", ")),
        );
    }
    if !notes.reload.is_empty() {
        return with(
            Action::Update,
            Some(ServiceOp::Reload),
            format!("{} changed", notes.reload.join(", ")),
        );
    }
    with(Action::NoOp, None, "running".into())
}

fn decide_listener(r: &Resource, fact: &ListenerFact, observed: &Observed) -> Change {
    // A listener is checked, never changed: a silent one makes its
    // service restart (see `Notifications::silent_listeners`).
    let reason = if fact.listening {
        "listening"
    } else {
        "not listening"
    };
    base(r, observed, String::new(), Action::NoOp, reason)
}
