//! The lab's partner organisations (tests/lab/README.md, "Partners") as
//! integration tests reach them: real XMPP servers outside the
//! organisation, `fabrikam.example` on Prosody and `litware.example` on
//! ejabberd, each with its own users, DNS zone and partner-CA certificate.
//!
//! Owns: the partner entries of a lab's `inventory.json`; sending a chat
//! message as a partner user through the partner's own server; reading what
//! a partner user received from that server's own store (Prosody's offline
//! files, ejabberd's SQLite spool), never from xfed's output. Does not
//! start, stop or configure partners: `tests/lab/lab up` does.
//!
//! ```ignore
//! let fabrikam = lab.partner("fabrikam");
//! let litware = lab.partner("litware");
//! fabrikam.send("carol", "dave@litware.example", "hello");
//! let got = litware.wait_received("dave", "hello");
//! assert_eq!(got.from, "carol@fabrikam.example");
//! ```

use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How long a message gets to arrive in a partner's store.
const WAIT: Duration = Duration::from_secs(30);

/// Which XMPP server a partner runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Prosody 0.12 (Debian): offline messages in `<store>/<domain>/offline/<user>.list`.
    Prosody,
    /// ejabberd 23.01 (Debian): offline messages in the SQLite table `spool` of `<store>`.
    Ejabberd,
}

/// One account on a partner's server.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// `carol@fabrikam.example`
    pub jid: String,
    /// Mode 0600; see [`User::password`].
    pub password_file: PathBuf,
}

impl User {
    /// The part before `@`.
    pub fn local(&self) -> &str {
        self.jid.split('@').next().unwrap_or_default()
    }

    /// The account's password (for a client logging in).
    pub fn password(&self) -> String {
        fs::read_to_string(&self.password_file)
            .unwrap_or_else(|e| panic!("read `{}`: {e}", self.password_file.display()))
            .trim()
            .to_string()
    }
}

/// A message as the receiving server stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The `from` of the stanza (a full or bare JID).
    pub from: String,
    /// The text of its `<body/>`.
    pub body: String,
}

/// One partner organisation, as `inventory.json` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Partner {
    /// `fabrikam`, `litware`
    pub name: String,
    /// The XMPP domain it serves: `fabrikam.example`.
    pub domain: String,
    /// Its server's name, target of its SRV records: `xmpp.fabrikam.example`.
    pub fqdn: String,
    pub kind: Kind,
    pub netns: String,
    /// Its only address, on the external network (198.51.100.0/24).
    pub external: String,
    /// The server, the partner's PID 1, as seen from the machine.
    pub pid: u32,
    /// The partner's state dir.
    pub dir: PathBuf,
    /// The partner CA (PEM) that issued every partner's certificate.
    pub ca: PathBuf,
    /// What the partners trust: the partner CA and any PEM in `partners/trust.d/`.
    pub trust: PathBuf,
    /// Its certificate (PEM) for `domain`.
    pub cert: PathBuf,
    /// The server's configuration file.
    pub config: PathBuf,
    /// Prosody's data dir, or ejabberd's SQLite database.
    pub store: PathBuf,
    /// The server's log.
    pub log: PathBuf,
    pub users: Vec<User>,
}

impl Partner {
    /// The account `local@domain`; panics if the partner has none.
    pub fn user(&self, local: &str) -> &User {
        self.users
            .iter()
            .find(|u| u.local() == local)
            .unwrap_or_else(|| panic!("{} has no user `{local}`", self.domain))
    }

    /// `program`, to run inside the partner: its network, mount and UTS
    /// namespaces, so it sees the partner's `/etc/resolv.conf` and reaches
    /// the server's local control channels (ejabberd's Erlang node).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--target={}", self.pid))
            .args(["--net", "--mount", "--uts", "--"])
            .arg(program);
        c
    }

    /// Has the partner's server send a chat message from its user `from`
    /// to `to`, as that user's client would: the server routes it, over
    /// S2S when `to` is elsewhere.
    pub fn send(&self, from: &str, to: &str, body: &str) {
        let from = self.user(from).jid.clone();
        let out = match self.kind {
            // The admin shell runs Lua in the server: post the stanza as if
            // the user's session had sent it.
            Kind::Prosody => Command::new(super::prosody::PROSODYCTL)
                .arg("--config")
                .arg(&self.config)
                .arg("shell")
                .arg(format!(
                    ">prosody.core_post_stanza(prosody.hosts[{}], require'util.stanza'.message({{from={},to={},type='chat'}}):text_tag('body',{}))",
                    lua_str(&self.domain),
                    lua_str(&from),
                    lua_str(to),
                    lua_str(body)
                ))
                .output(),
            Kind::Ejabberd => self
                .command("ejabberdctl")
                .args(["send_message", "chat", &from, to, "", body])
                .output(),
        }
        .unwrap_or_else(|e| panic!("{}: cannot run its control tool: {e}", self.domain));
        let text = output_text(&out);
        assert!(
            out.status.success() && !text.contains("Error") && !text.contains("error:"),
            "{}: sending as {from} failed ({}):\n{text}",
            self.domain,
            out.status
        );
    }

    /// Every message the server holds for its user `local` (offline
    /// storage: partner users have no client online), oldest first.
    pub fn received(&self, local: &str) -> Vec<Stored> {
        match self.kind {
            Kind::Prosody => self.prosody_offline(local),
            Kind::Ejabberd => self.ejabberd_spool(local),
        }
    }

    /// Waits (bounded) until `local` has a stored message whose body
    /// contains `needle`; returns it. Panics with the server's log tail.
    pub fn wait_received(&self, local: &str, needle: &str) -> Stored {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(m) = self
                .received(local)
                .into_iter()
                .find(|m| m.body.contains(needle))
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{local}@{} never received {needle:?} within {WAIT:?}; its server's log ends:\n{}",
                self.domain,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The server's whole log ("" if there is none yet).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Prosody keeps a user's offline messages as a Lua file of `item{…}`
    /// calls; Lua itself reads it, printing from and body per message.
    fn prosody_offline(&self, local: &str) -> Vec<Stored> {
        let file = self
            .store
            .join(self.domain.replace('.', "%2e"))
            .join("offline")
            .join(format!("{local}.list"));
        if !file.exists() {
            return Vec::new();
        }
        let reader = r#"
            function item(st)
                local body = ""
                for _, child in ipairs(st) do
                    if type(child) == "table" and child.name == "body" then body = child[1] or "" end
                end
                io.write(((st.attr or {}).from or ""), "\t", (body:gsub("[\t\n]", " ")), "\n")
            end
            dofile(arg[1])"#;
        let out = Command::new("lua5.4")
            .args(["-e", reader])
            .arg(&file)
            .output()
            .expect("lua5.4 (installed with prosody)");
        if !out.status.success() {
            // written while we read it: the next poll sees it whole
            return Vec::new();
        }
        tab_separated(&String::from_utf8_lossy(&out.stdout))
    }

    /// ejabberd keeps a user's offline messages as XML rows of `spool`.
    fn ejabberd_spool(&self, local: &str) -> Vec<Stored> {
        let out = Command::new("sqlite3")
            .arg("-readonly")
            .arg(&self.store)
            .arg(format!(
                "SELECT xml FROM spool WHERE username = '{}' ORDER BY seq",
                local.replace('\'', "''")
            ))
            .output()
            .expect("sqlite3");
        if !out.status.success() {
            return Vec::new(); // locked by a write in progress: the next poll reads it
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(message_from_xml)
            .collect()
    }
}

/// A Lua string literal for any text.
pub fn lua_str(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\{}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn tab_separated(text: &str) -> Vec<Stored> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(from, body)| Stored {
            from: from.to_string(),
            body: body.to_string(),
        })
        .collect()
}

/// `from` of the `<message>` start tag and the text of its `<body>`, from
/// one serialised stanza as ejabberd writes it (attributes in single or
/// double quotes, the five predefined entities).
fn message_from_xml(xml: &str) -> Option<Stored> {
    let start = &xml[xml.find("<message")?..];
    let tag = &start[..start.find('>')?];
    let from = attribute(tag, "from")?;
    let body = start
        .find("<body>")
        .and_then(|i| {
            let rest = &start[i + "<body>".len()..];
            rest.find("</body>").map(|j| &rest[..j])
        })
        .unwrap_or_default();
    Some(Stored {
        from: unescape(from),
        body: unescape(body),
    })
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    for quote in ['\'', '"'] {
        let key = format!(" {name}={quote}");
        if let Some(i) = tag.find(&key) {
            let rest = &tag[i + key.len()..];
            return rest.find(quote).map(|j| &rest[..j]);
        }
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
