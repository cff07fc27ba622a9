//! `WriteOpts`: the attributes `Transport::write_file` gives the new file.

/// Mode, owner and directory creation for an atomic file write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOpts {
    /// Permission bits (at most 0o7777).
    pub mode: u32,
    /// `user` or `user:group` (names or numbers) to `chown` the file to;
    /// `None` leaves it owned by whoever writes it (root under `become`).
    pub owner: Option<String>,
    /// Create missing parent directories (`mkdir -p`, mode from the umask).
    pub create_dirs: bool,
}

impl Default for WriteOpts {
    fn default() -> Self {
        WriteOpts {
            mode: 0o644,
            owner: None,
            create_dirs: false,
        }
    }
}

impl WriteOpts {
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    pub fn create_dirs(mut self, yes: bool) -> Self {
        self.create_dirs = yes;
        self
    }

    /// Why these options cannot be applied, if they cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.mode > 0o7777 {
            return Some(format!("mode {:o} is not a permission mode", self.mode));
        }
        if let Some(owner) = &self.owner {
            let valid = |part: &str| {
                !part.is_empty()
                    && !part.starts_with('-')
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-$".contains(&b))
            };
            let ok = match owner.split_once(':') {
                Some((user, group)) => valid(user) && valid(group),
                None => valid(owner),
            };
            if !ok {
                return Some(format!(
                    "owner `{owner}` is not `user` or `user:group` (names or numeric ids)"
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_mode_and_owner() {
        assert_eq!(WriteOpts::default().problem(), None);
        assert_eq!(WriteOpts::default().owner("xfed:xfed").problem(), None);
        assert_eq!(WriteOpts::default().owner("0:0").problem(), None);
        assert!(WriteOpts::default().mode(0o10000).problem().is_some());
        for bad in ["", ":", "a:", "-rf", "a b", "a:b:c", "$(id)"] {
            assert!(WriteOpts::default().owner(bad).problem().is_some(), "{bad}");
        }
    }
}
