//! `[[policies]]`: external access policies (Lync's ExternalAccessPolicy).
//!
//! Owns the identity rule shared with xfed's spec: `global` is the global
//! policy, `site:NAME` applies to the users homed on site NAME, and any
//! other name (without `:`) is a per-user policy given out by `[[grants]]`.
//! `scope` is optional and, when written, must agree with the identity.
//! Loaded, validated and counted in `/status`; a user's effective policy
//! (user grant over grant to all over site over global) is resolved by
//! `policy::PolicyIndex` and enforced by the relay.

use super::name::check_name;
use super::problem::Problem;
use super::reader::Fields;

/// Where a policy applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyScope {
    /// Everyone not covered by a narrower policy (identity `global`).
    Global,
    /// Users homed on the named site (identity `site:NAME`).
    Site(String),
    /// Users it is granted to with `[[grants]]` (any other identity).
    User,
}

impl PolicyScope {
    /// The `scope` value naming this scope.
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyScope::Global => "global",
            PolicyScope::Site(_) => "site",
            PolicyScope::User => "user",
        }
    }

    /// The scope an identity implies, or why the identity is not one (a
    /// problem of the field `identity`). Public so the spec that renders
    /// `[[policies]]` refuses what this would.
    pub fn of_identity(identity: &str) -> Result<PolicyScope, Problem> {
        if identity.eq_ignore_ascii_case("global") {
            return Ok(PolicyScope::Global);
        }
        if let Some((prefix, site)) = identity.split_once(':') {
            if !prefix.eq_ignore_ascii_case("site") {
                return Err(Problem::new(
                    "identity",
                    format!("`{}` is not a policy identity", identity.escape_debug()),
                )
                .hint("use `global`, `site:NAME`, or a name without `:`"));
            }
            if site.is_empty() {
                return Err(
                    Problem::new("identity", format!("`{identity}` does not name a site"))
                        .hint("write a site policy's identity as `site:NAME`, e.g. `site:hq`"),
                );
            }
            check_name(site, "site name").map_err(|message| {
                Problem::new("identity", message)
                    .hint("write a site policy's identity as `site:NAME`, e.g. `site:hq`")
            })?;
            return Ok(PolicyScope::Site(site.to_string()));
        }
        check_name(identity, "policy name").map_err(|message| {
            Problem::new("identity", message).hint(
                "name a per-user policy with letters, digits, `-`, `_` and `.`, e.g. `FedPic`",
            )
        })?;
        Ok(PolicyScope::User)
    }
}

/// One external access policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Unique name, referenced by grants.
    pub identity: String,
    /// Where it applies (implied by the identity).
    pub scope: PolicyScope,
    /// Communication with federated partners.
    pub enable_federation_access: bool,
    /// Communication with public cloud services.
    pub enable_public_cloud_access: bool,
    /// Communication with XMPP partners.
    pub enable_xmpp_access: bool,
}

impl Policy {
    pub(crate) fn read(mut f: Fields<'_>, out: &mut Vec<Problem>) -> Option<Policy> {
        let identity = f.required_string("identity", out).filter(|s| {
            let ok = !s.trim().is_empty();
            if !ok {
                out.push(Problem::new(f.path_of("identity"), "is empty"));
            }
            ok
        });
        let implied = identity
            .as_deref()
            .map(PolicyScope::of_identity)
            .and_then(|r| {
                r.map_err(|p| {
                    out.push(Problem {
                        field: f.path_of(&p.field),
                        ..p
                    })
                })
                .ok()
            });
        let written = f.string("scope", out).and_then(|s| {
            let known = ["global", "site", "user"].contains(&s.as_str());
            if !known {
                out.push(
                    Problem::new(f.path_of("scope"), format!("`{s}` is not a scope"))
                        .hint("use \"global\", \"site\" or \"user\""),
                );
            }
            known.then_some(s)
        });
        if let (Some(scope), Some(written), Some(identity)) = (&implied, &written, &identity)
            && scope.as_str() != written
        {
            out.push(
                Problem::new(
                    f.path_of("scope"),
                    format!(
                        "`{written}` does not match identity `{identity}`, which is a {} policy",
                        scope.as_str()
                    ),
                )
                .hint(
                    "identity `global` has scope \"global\", `site:NAME` has scope \"site\", \
                     any other name has scope \"user\"",
                ),
            );
        }
        let federation = f.bool("enable_federation_access", out).unwrap_or(false);
        let public_cloud = f.bool("enable_public_cloud_access", out).unwrap_or(false);
        let xmpp = f.bool("enable_xmpp_access", out).unwrap_or(false);
        f.finish(out);
        Some(Policy {
            identity: identity?,
            scope: implied?,
            enable_federation_access: federation,
            enable_public_cloud_access: public_cloud,
            enable_xmpp_access: xmpp,
        })
    }
}
