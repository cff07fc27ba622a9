//! Module manifests: `modules/NAME/module.yaml`, what a module puts on
//! which hosts. Parsed strictly (unknown fields are errors), like the spec.

use serde::Deserialize;

use crate::plan::{Notify, Phase};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    /// Which servers: `frontend` or `edge`.
    pub role: ManifestRole,
    /// Edge modules: only pools with XMPP federation on.
    #[serde(default)]
    pub only_xmpp_pools: bool,
    /// Front-end modules: only pools whose XMPP server xfed manages
    /// (`xmpp_server.managed`).
    #[serde(default)]
    pub only_managed_xmpp: bool,
    /// Phase of this module's files and binaries.
    pub phase: Phase,
    pub resources: Vec<ManifestResource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestRole {
    Frontend,
    Edge,
}

/// `restart gateway` / `reload gateway`: which handler, how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyRule {
    pub how: Notify,
    pub handler: String,
}

impl<'de> Deserialize<'de> for NotifyRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (how, handler) = s.split_once(' ').ok_or_else(|| {
            serde::de::Error::custom(format!("`{s}`: expected `restart NAME` or `reload NAME`"))
        })?;
        let how = match how {
            "restart" => Notify::Restart,
            "reload" => Notify::Reload,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "`{other}`: expected `restart` or `reload`"
                )));
            }
        };
        Ok(NotifyRule {
            how,
            handler: handler.trim().to_string(),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ManifestResource {
    /// A system user the module's service runs as (`{{ gateway.user }}`),
    /// created before the files that name its group.
    User {
        name: String,
        /// Its home directory in the passwd entry (not created).
        home: String,
    },
    File {
        /// Template of the remote path.
        path: String,
        /// Template file in the module's folder.
        template: String,
        #[serde(default = "default_file_mode")]
        mode: String,
        /// Template of the owner's name.
        #[serde(default = "root")]
        owner: String,
        /// Template of the group's name (`{{ gateway.user }}`).
        #[serde(default = "root")]
        group: String,
        notify: Option<NotifyRule>,
        /// Expression over the template context; the file exists only
        /// where it is true (`when: ca.partner`).
        when: Option<String>,
        /// The consumer's own loader, run on the rendered text before the
        /// file is planned (`check: gateway_config`).
        check: Option<FileCheck>,
        /// Whose rule says which changes of this file its service's
        /// reload applies (`reload_applies: gateway_config`); such a
        /// change asks for a reload even where `notify` says restart.
        reload_applies: Option<crate::plan::ReloadScope>,
        /// Rendered from a secret: its content is never shown in a plan,
        /// a diff or a log. A file whose rendered text holds a secret of
        /// the spec is sensitive whether or not this says so.
        #[serde(default)]
        sensitive: bool,
    },
    Binary {
        path: String,
        /// Name of a local build artifact (`gateway`).
        artifact: String,
        #[serde(default = "default_binary_mode")]
        mode: String,
        notify: Option<NotifyRule>,
    },
    Service {
        /// Handler name other resources notify.
        handler: String,
        /// Service name (systemd unit name without `.service`).
        name: String,
        exec: Vec<String>,
        pid_file: String,
        log_file: String,
        /// Template of the systemd unit, installed where systemd runs.
        unit_template: String,
        /// Path of the binary the service runs (to spot a stale process).
        binary: Option<String>,
        /// Template of the user it runs as; root when absent.
        user: Option<String>,
    },
    ListenerCheck {
        /// `external`, `internal` or `admin`; anything else is refused
        /// when the manifest is read.
        name: crate::plan::ListenerKind,
        address: String,
        port: String,
        /// Handler of the service that listens.
        service: String,
    },
}

/// Which consumer's loader checks a rendered file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileCheck {
    /// `xfed-gateway`'s configuration loader, on the main file; the
    /// `policy_file` it names is read from the files rendered for the same
    /// host.
    GatewayConfig,
}

fn default_file_mode() -> String {
    "0644".into()
}

fn default_binary_mode() -> String {
    "0755".into()
}

fn root() -> String {
    "root".into()
}
