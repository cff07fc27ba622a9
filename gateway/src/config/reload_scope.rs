//! Which changes to the main configuration file a reload (SIGHUP) applies
//! completely, so that whoever deploys the file may ask for a reload
//! instead of a restart.
//!
//! A reload builds a whole new generation from the file, but open streams
//! keep the settings they were accepted under and the listeners stay bound
//! where they are; only the sections named here take full effect for every
//! stream that starts after the reload, whatever was open before. The
//! dialback secrets are such a section: a key is made and checked with the
//! current generation's secrets at the moment it is needed. This module
//! only compares texts; it reads no file and never logs a value.

/// Top-level sections of the main file a reload applies in full.
pub const RELOADED_SECTIONS: [&str; 1] = ["dialback"];

/// True when `before` and `after` (two versions of the main file) differ
/// at most in [`RELOADED_SECTIONS`]; false when either is not TOML, so an
/// unreadable file is never taken for a reloadable one.
pub fn reload_applies(before: &str, after: &str) -> bool {
    let parse = |text: &str| {
        toml::from_str::<toml::Table>(text).ok().map(|mut table| {
            for section in RELOADED_SECTIONS {
                table.remove(section);
            }
            table
        })
    };
    match (parse(before), parse(after)) {
        (Some(before), Some(after)) => before == after,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::reload_applies;

    const BASE: &str =
        "domains = [\"contoso.example\"]\n\n[external]\naddress = \"0.0.0.0:5269\"\n";

    #[test]
    fn dialback_sections_added_changed_or_removed_are_reloaded() {
        let with = |dialback: &str| format!("{BASE}\n[dialback]\n{dialback}");
        let current = with("secret_file = \"/etc/xfed/dialback.secret\"\n");
        let rotating = with(
            "secret_file = \"/etc/xfed/dialback.secret\"\nprevious_secret_file = \"/etc/xfed/dialback.previous\"\n",
        );
        assert!(reload_applies(&current, &rotating));
        assert!(reload_applies(&rotating, &current));
        assert!(reload_applies(BASE, &current));
        assert!(reload_applies(&current, BASE));
        // Comments and layout are not settings.
        assert!(reload_applies(BASE, &format!("# managed\n{BASE}\n")));
    }

    #[test]
    fn any_other_change_is_not() {
        let moved = BASE.replace("5269", "5270");
        assert!(!reload_applies(BASE, &moved));
        let both = format!("{moved}\n[dialback]\nsecret_file = \"/a\"\n");
        assert!(!reload_applies(BASE, &both));
        assert!(!reload_applies(BASE, "domains = ["));
        assert!(!reload_applies("domains = [", BASE));
        // A setting outside the section, beside a change inside it.
        assert!(!reload_applies(
            BASE,
            &format!("log_level = \"debug\"\n{BASE}")
        ));
    }
}
