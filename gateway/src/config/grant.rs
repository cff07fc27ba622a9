//! `[[grants]]`: which users a policy applies to.
//!
//! Loaded and checked against the policies and fronted domains; enforced
//! with stanza relaying in a later release.

use super::problem::Problem;
use super::reader::Fields;

/// Who a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantees {
    /// Every user of the fronted domains.
    All,
    /// These bare JIDs (`local@domain`, lowercase domain).
    Users(Vec<String>),
}

/// One grant of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The granted policy's `identity`.
    pub policy: String,
    /// Who it is granted to.
    pub grantees: Grantees,
}

impl Grant {
    /// Reads one grant; `domains` are the fronted domains a user must belong to.
    pub(crate) fn read(
        mut f: Fields<'_>,
        domains: &[String],
        out: &mut Vec<Problem>,
    ) -> Option<Grant> {
        let policy = f.required_string("policy", out);
        let users = f.string_list("users", out);
        let all = f.bool("all", out);
        let grantees = match (users, all) {
            (Some(_), Some(true)) => {
                out.push(
                    Problem::new(f.path_of("users"), "cannot be combined with `all = true`")
                        .hint("keep one of `users` and `all`"),
                );
                None
            }
            (Some(users), _) => {
                let mut jids = Vec::with_capacity(users.len());
                for (i, user) in users.iter().enumerate() {
                    match bare_jid(user, domains) {
                        Ok(jid) => jids.push(jid),
                        Err(e) => out.push(Problem::new(format!("{}[{i}]", f.path_of("users")), e)),
                    }
                }
                if jids.is_empty() && users.is_empty() {
                    out.push(
                        Problem::new(f.path_of("users"), "is empty")
                            .hint("list users or set `all = true`"),
                    );
                }
                Some(Grantees::Users(jids))
            }
            (None, Some(true)) => Some(Grantees::All),
            (None, _) => {
                out.push(
                    Problem::new(f.path_of("users"), "is required unless `all = true`").hint(
                        "list bare JIDs such as \"alice@contoso.example\", or set `all = true`",
                    ),
                );
                None
            }
        };
        f.finish(out);
        Some(Grant {
            policy: policy?,
            grantees: grantees?,
        })
    }
}

fn bare_jid(raw: &str, domains: &[String]) -> Result<String, String> {
    let Some((local, domain)) = raw.split_once('@') else {
        return Err(format!(
            "`{raw}` is not a bare JID (expected `user@domain`)"
        ));
    };
    if local.is_empty() || local.contains(['/', '@', ' ', '"', '\'', '<', '>', '&', ':']) {
        return Err(format!("`{raw}` has an invalid local part"));
    }
    let domain = domain.to_ascii_lowercase();
    if !domains.contains(&domain) {
        return Err(format!("`{raw}` is not in a fronted domain (`domains`)"));
    }
    Ok(format!("{local}@{domain}"))
}
