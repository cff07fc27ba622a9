//! `[[grants]]`: which users a policy applies to.
//!
//! Loaded and checked against the policies and fronted domains, and
//! against each other (a user has at most one explicit grant, and at most
//! one policy is granted to all users), so `policy::PolicyIndex` never has
//! to pick between two. Resolved per user by `policy`, and enforced on
//! every relayed stanza (`policy::decide`).

use super::bare_jid::BareJid;
use super::problem::Problem;
use super::reader::Fields;

/// Who a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantees {
    /// Every user of the fronted domains.
    All,
    /// These users, each once.
    Users(Vec<BareJid>),
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
                let mut jids: Vec<BareJid> = Vec::with_capacity(users.len());
                for (i, user) in users.iter().enumerate() {
                    let field = format!("{}[{i}]", f.path_of("users"));
                    match our_user(user, domains) {
                        Ok(jid) if jids.contains(&jid) => {
                            out.push(Problem::new(field, format!("`{jid}` is listed twice")));
                        }
                        Ok(jid) => jids.push(jid),
                        Err(e) => out.push(Problem::new(field, e)),
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

/// `raw` as one of our users: a bare JID in one of `domains` (the
/// fronted domains). Public so the spec that renders grants and sites
/// refuses what this would.
pub fn our_user(raw: &str, domains: &[String]) -> Result<BareJid, String> {
    let jid = BareJid::parse(raw).map_err(|e| e.to_string())?;
    if !domains.iter().any(|d| d == jid.domain()) {
        return Err(format!("`{raw}` is not in a fronted domain (`domains`)"));
    }
    Ok(jid)
}
