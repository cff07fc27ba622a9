//! `[dialback]`: where the organisation's dialback secret is.
//!
//! The secret keys every dialback key the gateway issues (XEP-0185) and
//! lets it answer `db:verify` for keys issued by any edge of the
//! organisation, so it is one per organisation. Only the paths are
//! configuration; the files are read (and checked non-empty) with the
//! certificates, before anything is bound, by `dialback::Secrets`, which
//! reports its problems under these field names. Their contents never
//! appear in a message.

use super::problem::Problem;
use super::reader::Fields;
use std::path::PathBuf;

/// A resolved `[dialback]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialbackConfig {
    /// The current secret (one line); new keys are made with it.
    pub secret_file: PathBuf,
    /// The secret before the last rotation, still accepted when a partner
    /// verifies a key made with it; `None` outside a rotation.
    pub previous_secret_file: Option<PathBuf>,
}

impl DialbackConfig {
    pub(crate) fn read(
        fields: Option<Fields<'_>>,
        out: &mut Vec<Problem>,
    ) -> Option<DialbackConfig> {
        let mut f = fields?;
        let secret_file = f
            .required_string("secret_file", out)
            .and_then(|raw| non_empty_path(&raw, f.path_of("secret_file"), out));
        let previous_secret_file = f
            .string("previous_secret_file", out)
            .and_then(|raw| non_empty_path(&raw, f.path_of("previous_secret_file"), out));
        if let (Some(current), Some(previous)) = (&secret_file, &previous_secret_file)
            && current == previous
        {
            out.push(
                Problem::new(
                    f.path_of("previous_secret_file"),
                    "names the same file as `secret_file`",
                )
                .hint("during a rotation the previous secret is the one the new one replaced"),
            );
        }
        f.finish(out);
        Some(DialbackConfig {
            secret_file: secret_file?,
            previous_secret_file,
        })
    }
}

fn non_empty_path(raw: &str, field: String, out: &mut Vec<Problem>) -> Option<PathBuf> {
    if raw.trim().is_empty() {
        out.push(Problem::new(field, "is empty").hint("name a file holding one line"));
        return None;
    }
    Some(PathBuf::from(raw))
}
