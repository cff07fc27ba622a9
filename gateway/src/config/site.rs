//! `[[sites]]`: which users are homed on which site, so a `site:NAME`
//! policy knows whom it applies to, and (`internal_server`) which internal
//! XMPP server holds them, so the relay delivers a partner's stanza to the
//! recipient's own server when the organisation runs one per site.
//!
//! xfed renders this section from its spec; the gateway only reads it.
//! Optional: without it no user has a home site and site policies apply
//! to nobody. Each user is homed on one site at most, which is checked
//! across sections in `config/mod.rs`; a site with users but no policy of
//! its own is fine (its users get the global policy).

use super::grant::our_user;
use super::name::check_name;
use super::problem::Problem;
use super::reader::Fields;
use crate::config::{BareJid, ServerAddress};

/// One site and the users homed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The site's name, as in the identity `site:NAME` of its policy
    /// (compared exactly, like the policies' site names).
    pub name: String,
    /// The users homed here, each once.
    pub users: Vec<BareJid>,
    /// The S2S address of the XMPP server these users are on; the relay
    /// delivers stanzas for them there instead of `relay.internal_server`.
    pub internal_server: Option<ServerAddress>,
}

impl Site {
    /// Whether `name` may name a site (`config::check_name`), as a problem
    /// of the field `name` with the fix in its hint. Public so the spec
    /// that renders `[[sites]]` refuses what this would.
    pub fn check_name(name: &str) -> Result<(), Problem> {
        check_name(name, "site name").map_err(|message| {
            Problem::new("name", message)
                .hint("write the NAME of the site's policy `site:NAME`, e.g. \"hq\"")
        })
    }

    /// Reads one site; `domains` are the fronted domains a user must belong to.
    pub(crate) fn read(
        mut f: Fields<'_>,
        domains: &[String],
        out: &mut Vec<Problem>,
    ) -> Option<Site> {
        let name = f.required_string("name", out).filter(|name| {
            Site::check_name(name)
                .map_err(|p| {
                    out.push(Problem {
                        field: f.path_of(&p.field),
                        ..p
                    })
                })
                .is_ok()
        });
        let mut users: Vec<BareJid> = Vec::new();
        for (i, raw) in f
            .string_list("users", out)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let field = format!("{}[{i}]", f.path_of("users"));
            match our_user(raw, domains) {
                Ok(jid) if users.contains(&jid) => {
                    out.push(Problem::new(field, format!("`{jid}` is listed twice")));
                }
                Ok(jid) => users.push(jid),
                Err(e) => out.push(Problem::new(field, e)),
            }
        }
        let internal_server = f.string("internal_server", out).and_then(|raw| {
            ServerAddress::parse(&raw)
                .map_err(|e| {
                    out.push(Problem::new(f.path_of("internal_server"), e).hint(
                        "write the S2S address of the site's internal XMPP server, e.g. \"10.0.2.10:5269\"",
                    ))
                })
                .ok()
        });
        f.finish(out);
        Some(Site {
            name: name?,
            users,
            internal_server,
        })
    }
}
