//! The front-end's Prosody that `playbooks/lab.yaml` makes xfed deploy
//! (`xmpp_server.managed: prosody` on fe1): its accounts, its own store
//! of what arrived, its log, all read through the host's files or its
//! admin tools over the lab's ssh.

use std::time::{Duration, Instant};

use super::lab::{Host, Lab};
use super::partners::lua_str;

/// Where the module puts Prosody on a lab host (`gateway.config_dir`,
/// `gateway.state_dir` at their defaults).
pub const CONFIG: &str = "/etc/xfed/prosody/prosody.cfg.lua";
pub const PID_FILE: &str = "/var/lib/xfed/prosody/xfed-prosody.pid";
pub const LOG: &str = "/var/lib/xfed/log/prosody.log";
const DATA: &str = "/var/lib/xfed/prosody";
const WAIT: Duration = Duration::from_secs(30);

/// xfed's Prosody for `domain` on `host`.
pub struct InternalServer<'a> {
    pub lab: &'a Lab,
    pub host: &'a Host,
    pub domain: &'a str,
}

/// `s` as one word of a POSIX shell line.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl<'a> InternalServer<'a> {
    /// The lab's: fe1, contoso.example.
    pub fn of(lab: &'a Lab) -> Self {
        InternalServer {
            lab,
            host: lab.host("fe1"),
            domain: "contoso.example",
        }
    }

    /// Creates (or re-passwords) `local` and empties its offline store.
    pub fn register(&self, local: &str) {
        self.lab.ssh_ok(
            self.host,
            &format!(
                "prosodyctl --config {CONFIG} register {local} {} a-test-password && rm -f {}",
                self.domain,
                self.offline_path(local)
            ),
        );
    }

    fn offline_path(&self, local: &str) -> String {
        format!(
            "{DATA}/{}/offline/{local}.list",
            self.domain.replace('.', "%2e")
        )
    }

    /// mod_offline's store of `local`'s messages ("" if none).
    pub fn offline(&self, local: &str) -> String {
        String::from_utf8_lossy(
            &self
                .lab
                .ssh(
                    self.host,
                    &format!("cat {} 2>/dev/null", self.offline_path(local)),
                )
                .stdout,
        )
        .into_owned()
    }

    /// Waits (bounded) until `local`'s offline store holds `needle`.
    pub fn wait_offline(&self, local: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.offline(local);
            if got.contains(needle) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{local}@{} never got {needle:?} within {WAIT:?}; Prosody's log ends:\n{}",
                self.domain,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Has the server send a chat message from its user `from` (a bare
    /// JID) as that user's client would.
    pub fn send(&self, from: &str, to: &str, body: &str) {
        let lua = format!(
            ">prosody.core_post_stanza(prosody.hosts[{d}], require'util.stanza'.message({{from={f},to={t},type='chat'}}):text_tag('body',{b}))",
            d = lua_str(self.domain),
            f = lua_str(from),
            t = lua_str(to),
            b = lua_str(body)
        );
        self.lab.ssh_ok(
            self.host,
            &format!("prosodyctl --config {CONFIG} shell {}", sh_quote(&lua)),
        );
    }

    /// Its PID, from its pid file.
    pub fn pid(&self) -> String {
        self.lab
            .ssh_ok(self.host, &format!("cat {PID_FILE}"))
            .trim()
            .to_string()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        String::from_utf8_lossy(
            &self
                .lab
                .ssh(self.host, &format!("tail -n {lines} {LOG}"))
                .stdout,
        )
        .into_owned()
    }
}
