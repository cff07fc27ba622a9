//! Observation: the live state of every resource on a host, read in ONE
//! round trip, and the host's facts in one more.
//!
//! The script is fixed text; paths travel as arguments (quoted once by the
//! transport), never spliced into the script. Reads never change anything.

use std::collections::HashMap;

use crate::plan::{
    Desired, FileFact, ListenerFact, Manager, Observed, Resource, ServiceFact, UserFact,
};
use crate::transport::{
    Command, FACTS_END, FACTS_SCRIPT, Facts, Transport, TransportError, parse_facts,
};

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("`{host}`: cannot read the state of `{address}`: {why}")]
    Parse {
        host: String,
        address: String,
        why: String,
    },
    #[error(transparent)]
    Panicked(#[from] super::fanout::TaskPanicked),
}

/// Reads items given as `<idx> <kind> <value> <extra>`:
/// `file PATH -`, `binary PATH -`, `pidfile PATH BINARY`, `systemd UNIT BINARY`;
/// answers one `R <idx> …` line per item, then `--xfed-listening--` and
/// the lines of `ss -tnH state listening`.
///
/// Hashing a 5 MB binary costs more than everything else a warm plan does,
/// so it is avoided where it cannot matter: apply leaves `PATH.xfed-sha256`
/// holding the file's identity (device, inode, size, mtime and ctime in ns
/// — ctime cannot be set back by hand) and its hash; a binary whose
/// identity still matches is not read again (git's index does the same).
/// A running service whose program *is* that file (same device and inode)
/// needs no hash either; only a replaced program is hashed.
/// Where the observe script's `ss` output starts.
const LISTENING: &str = "--xfed-listening--";

const SCRIPT: &str = r#"
nl='
'
set -f
# Pass 1, builtins only: every path to stat (files, binaries, the programs
# services run) and every file to hash, so each is one process in all.
sp=; hp=
collect() {
  while [ $# -ge 4 ]; do
    k=$2; v=$3; x=$4; shift 4
    case $k in
    file|secret) sp=$sp$v$nl; hp=$hp$v$nl ;;
    binary) sp=$sp$v$nl ;;
    pidfile)
      pid=
      if [ -f "$v" ]; then read -r pid < "$v" || true; fi
      case $pid in ''|0|*[!0-9]*) ;; *) sp=$sp/proc/$pid/exe$nl/proc/$pid$nl ;; esac
      [ "$x" = - ] || sp=$sp$x$nl ;;
    esac
  done
}
collect "$@"
IFS=$nl
stats=; sums=
[ -z "$sp" ] || stats=$(stat -L -c '%n|%a %U %G %s %d:%i:%s:%.9Y:%.9Z' -- $sp 2>/dev/null)
[ -z "$hp" ] || sums=$(sha256sum -- $hp 2>/dev/null)
unset IFS
stats=$nl$stats$nl; sums=$nl$sums$nl
# stat_of PATH: sets st to "MODE OWNER GROUP SIZE ID" (empty when absent)
stat_of() {
  st=${stats#*"$nl$1|"}
  if [ "$st" = "$stats" ]; then st=; else st=${st%%"$nl"*}; fi
}
# sum_of PATH: sets sum to its sha256 (empty when absent)
sum_of() {
  sum=${sums%%"  $1$nl"*}
  if [ "$sum" = "$sums" ]; then sum=; else sum=${sum##*"$nl"}; fi
}
# dev_ino ID: the device and inode of a stat id
dev_ino() { di=${1%:*:*:*}; }
while [ $# -ge 4 ]; do
  i=$1; k=$2; v=$3; x=$4; shift 4
  case $k in
  file|secret|binary)
    stat_of "$v"
    if [ -f "$v" ] && [ ! -L "$v" ] && [ -n "$st" ]; then
      id=${st##* }; st=${st% *}
      if [ "$k" != binary ]; then
        # the content only travels when it is not what is wanted, and a
        # secret's never
        sum_of "$v"
        if [ -n "$sum" ] && [ "$sum" = "$x" ]; then echo "R $i present $st $sum ="
        elif [ "$k" = secret ]; then echo "R $i present $st ${sum:--} ~"
        else b=$(base64 -w0 -- "$v"); echo "R $i present $st ${sum:--} ${b:--}"; fi
      else
        sum=
        if [ -f "$v.xfed-sha256" ]; then
          read -r cid csum < "$v.xfed-sha256" || true
          [ "$cid" = "$id" ] && sum=$csum
        fi
        [ -n "$sum" ] || { sum=$(sha256sum -- "$v"); sum=${sum%% *}; }
        echo "R $i present $st $sum -"
      fi
    elif [ -e "$v" ] || [ -L "$v" ]; then echo "R $i notfile"
    else echo "R $i absent"; fi ;;
  pidfile|systemd)
    pid=
    if [ "$k" = systemd ]; then
      systemctl is-active --quiet -- "$v" 2>/dev/null && pid=$(systemctl show -p MainPID --value -- "$v")
    elif [ -f "$v" ]; then
      read -r pid < "$v" || true
    fi
    case $pid in ''|0|*[!0-9]*) pid= ;; esac
    state=
    if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; then
      read -r line < "/proc/$pid/stat" || true
      state=${line##*) }; state=${state%% *}
    fi
    if [ -n "$state" ] && [ "$state" != Z ]; then
      e=; b=; u=
      if [ "$k" = pidfile ]; then
        stat_of "/proc/$pid/exe"; [ -z "$st" ] || { dev_ino "${st##* }"; e=$di; }
        stat_of "$x"; [ -z "$st" ] || { dev_ino "${st##* }"; b=$di; }
        # the owner of /proc/PID: the user the process runs as
        stat_of "/proc/$pid"; [ -z "$st" ] || { u=${st#* }; u=${u%% *}; }
      else
        ids=$(stat -L -c '%d:%i' -- "/proc/$pid/exe" "$x" 2>/dev/null)
        e=${ids%%"$nl"*}; b=${ids#*"$nl"}
        u=$(stat -c %U -- "/proc/$pid" 2>/dev/null) || u=
      fi
      if [ "$x" != - ] && [ -n "$e" ] && [ "$e" = "$b" ]; then
        echo "R $i running $pid same ${u:--}"
      else
        sum=$(sha256sum "/proc/$pid/exe" 2>/dev/null); sum=${sum%% *}
        echo "R $i running $pid ${sum:--} ${u:--}"
      fi
    else echo "R $i stopped"; fi ;;
  cert)
    # Certificate $v with key $x: the chain, whether the key's public half
    # is the certificate's (compared here; the key never leaves the host),
    # the issuer marker and a pending CSR beside them.
    stem=${v%.*}; c=; kp=0; m=-; iss=; csr=
    [ -f "$v" ] && c=$(base64 -w0 -- "$v")
    [ -f "$x" ] && kp=1
    if [ -f "$v" ] && [ "$kp" = 1 ] && command -v openssl >/dev/null 2>&1; then
      a=$(openssl x509 -in "$v" -noout -pubkey 2>/dev/null) || a=
      b=$(openssl pkey -in "$x" -pubout 2>/dev/null) || b=
      if [ -n "$a" ] && [ "$a" = "$b" ]; then m=yes; elif [ -n "$a" ] && [ -n "$b" ]; then m=no; fi
    fi
    [ -f "$stem.issuer" ] && iss=$(base64 -w0 -- "$stem.issuer")
    [ -f "$stem.csr" ] && [ -f "$stem.pending.key" ] && csr=$(base64 -w0 -- "$stem.csr")
    ka=; [ "$kp" = 1 ] && ka=$(stat -c '%U:%G:%a' -- "$x" 2>/dev/null)
    echo "R $i cert $(date +%s) ${c:--} $kp $m ${iss:--} ${csr:--} ${ka:--}" ;;
  user)
    # A system user: its uid, or that there is none.
    if u=$(getent passwd "$v" 2>/dev/null); then
      u=${u#*:}; u=${u#*:}; echo "R $i user ${u%%:*}"
    else echo "R $i nouser"; fi ;;
  esac
done
# Listening TCP sockets, as ss prints them, parsed by xfed (no pipe, no
# subshell). `state listening` alone, not `-l`: -l also asks for CLOSE,
# which makes the kernel walk its whole established-socket hash (shared by
# every network namespace, 262144 buckets here) on every call; so does
# reading /proc/net/tcp.
echo --xfed-listening--
ss -tnH state listening 2>/dev/null
"#;

/// Observes every resource of one host.
pub fn observe_host(
    t: &mut dyn Transport,
    resources: &[&Resource],
) -> Result<HashMap<String, Observed>, ObserveError> {
    observe(t, resources, SCRIPT).map(|(_, o)| o)
}

/// Facts and every resource of one host, in ONE round trip.
pub fn observe_host_with_facts(
    t: &mut dyn Transport,
    resources: &[&Resource],
) -> Result<(Facts, HashMap<String, Observed>), ObserveError> {
    let script = format!("{FACTS_SCRIPT}\n{SCRIPT}");
    let (text, observed) = observe(t, resources, &script)?;
    let facts = parse_facts(&text).map_err(|why| ObserveError::Parse {
        host: t.host().to_string(),
        address: "facts".into(),
        why,
    })?;
    Ok((facts, observed))
}

fn observe(
    t: &mut dyn Transport,
    resources: &[&Resource],
    script: &str,
) -> Result<(String, HashMap<String, Observed>), ObserveError> {
    let mut cmd = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("xfed-observe")
        .label("observe");
    for (i, r) in resources.iter().enumerate() {
        let (kind, value, extra): (&str, &str, String) = match &r.desired {
            // The wanted content's hash: content that has it stays there.
            // A sensitive file's content never comes back, whatever it is.
            Desired::File(f) => (
                if f.sensitive { "secret" } else { "file" },
                f.path.as_str(),
                crate::digest::sha256_hex(f.content.as_bytes()),
            ),
            Desired::Binary(b) => ("binary", b.path.as_str(), "-".into()),
            Desired::Service(s) => {
                let bin = s.binary_path.clone().unwrap_or_else(|| "-".into());
                match s.manager {
                    Manager::Direct => ("pidfile", s.pid_file.as_str(), bin),
                    Manager::Systemd => ("systemd", s.name.as_str(), bin),
                }
            }
            Desired::Certificate(c) => ("cert", c.cert_path.as_str(), c.key_path.clone()),
            Desired::User(u) => ("user", u.name.as_str(), "-".into()),
            Desired::Listener(_) | Desired::Gone(_) => continue,
        };
        cmd = cmd.arg(i.to_string()).arg(kind).arg(value).arg(extra);
    }
    let host = t.host().to_string();
    let out = t.run_ok(&cmd)?;
    let text = out.stdout_text();
    let observed = parse(
        &host,
        resources,
        text.rsplit(FACTS_END).next().unwrap_or(&text),
    )?;
    Ok((text, observed))
}

fn parse(
    host: &str,
    resources: &[&Resource],
    text: &str,
) -> Result<HashMap<String, Observed>, ObserveError> {
    let mut facts: HashMap<usize, Vec<&str>> = HashMap::new();
    // After the marker, `ss -tnH state listening` lines: Recv-Q, Send-Q,
    // the local address, the peer.
    let (text, ss) = text.split_once(LISTENING).unwrap_or((text, ""));
    let listening: Vec<String> = ss
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    for line in text.lines() {
        let mut f = line.split(' ');
        if f.next() == Some("R")
            && let Some(i) = f.next().and_then(|i| i.parse().ok())
        {
            facts.insert(i, f.collect());
        }
    }
    let mut out = HashMap::new();
    for (i, r) in resources.iter().enumerate() {
        let err = |why: String| ObserveError::Parse {
            host: host.into(),
            address: r.address.clone(),
            why,
        };
        let observed = match &r.desired {
            Desired::Listener(l) => Observed::Listener(ListenerFact {
                listening: listens(&listening, &l.address.to_string(), l.port),
            }),
            // Removal needs no reading: the manifest says xfed put it there.
            Desired::Gone(_) => Observed::File(None),
            desired => {
                let fields = facts
                    .get(&i)
                    .ok_or_else(|| err("the host gave no answer".into()))?;
                match desired {
                    Desired::File(f) => {
                        Observed::File(file_fact(fields, Some(&f.content)).map_err(err)?)
                    }
                    Desired::Binary(_) => Observed::Binary(file_fact(fields, None).map_err(err)?),
                    Desired::Service(_) => Observed::Service(service_fact(fields).map_err(err)?),
                    Desired::Certificate(_) => {
                        Observed::Certificate(cert_fact(fields).map_err(err)?)
                    }
                    Desired::User(_) => Observed::User(user_fact(fields).map_err(err)?),
                    Desired::Listener(_) | Desired::Gone(_) => unreachable!("handled above"),
                }
            }
        };
        out.insert(r.address.clone(), observed);
    }
    Ok(out)
}

/// A file's or binary's answer. For a file, `wanted` is the content the
/// spec gives: the host sends the content only when its hash differs, and
/// answers `=` when it is exactly that (then the wanted content is it).
fn file_fact(f: &[&str], wanted: Option<&str>) -> Result<Option<FileFact>, String> {
    match f {
        ["absent"] => Ok(None),
        ["notfile"] => Err("the path exists but is not a regular file".into()),
        ["present", mode, owner, group, size, sha, b64] => {
            let mut digest = sha.to_string();
            let content = match (wanted, *b64) {
                (None, _) => None,
                (Some(w), "=") => Some(w.to_string()),
                // A sensitive file that differs: withheld by the host.
                (Some(_), "~") => None,
                (Some(_), b64) => {
                    use base64::Engine as _;
                    let bytes = match b64 {
                        "-" => Vec::new(),
                        b => base64::engine::general_purpose::STANDARD
                            .decode(b)
                            .map_err(|e| format!("bad content encoding: {e}"))?,
                    };
                    if digest == "-" {
                        digest = crate::digest::sha256_hex(&bytes);
                    }
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
            };
            Ok(Some(FileFact {
                mode: u32::from_str_radix(mode, 8).map_err(|_| format!("bad mode `{mode}`"))?,
                owner: owner.to_string(),
                group: group.to_string(),
                size: size.parse().map_err(|_| format!("bad size `{size}`"))?,
                sha256: digest,
                content,
            }))
        }
        other => Err(format!("unexpected answer `{}`", other.join(" "))),
    }
}

fn service_fact(f: &[&str]) -> Result<ServiceFact, String> {
    match f {
        ["stopped"] => Ok(ServiceFact {
            running: false,
            pid: None,
            running_sha256: None,
            running_user: None,
        }),
        ["running", pid, sha, user] => Ok(ServiceFact {
            running: true,
            pid: pid.parse().ok(),
            // `same`: the process runs the installed file itself.
            running_sha256: (*sha != "-" && *sha != "same").then(|| sha.to_string()),
            running_user: (*user != "-").then(|| user.to_string()),
        }),
        other => Err(format!("unexpected answer `{}`", other.join(" "))),
    }
}

fn user_fact(f: &[&str]) -> Result<UserFact, String> {
    match f {
        ["nouser"] => Ok(UserFact { uid: None }),
        ["user", uid] => uid
            .parse()
            .map(|uid| UserFact { uid: Some(uid) })
            .map_err(|_| format!("bad uid `{uid}`")),
        other => Err(format!("unexpected answer `{}`", other.join(" "))),
    }
}

fn cert_fact(f: &[&str]) -> Result<crate::certs::CertFact, String> {
    let ["cert", now, chain, key, matches, issuer, csr, access] = f else {
        return Err(format!("unexpected answer `{}`", f.join(" ")));
    };
    let text = |b64: &str| -> Result<Option<String>, String> {
        use base64::Engine as _;
        if b64 == "-" {
            return Ok(None);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("bad encoding: {e}"))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Ok(crate::certs::CertFact {
        now_unix: now.parse().map_err(|_| format!("bad clock `{now}`"))?,
        chain: text(chain)?,
        key_present: *key == "1",
        key_matches: match *matches {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        issuer: text(issuer)?.map(|s| s.trim().to_string()),
        pending_csr: text(csr)?,
        key_access: (*access != "-").then(|| access.to_string()),
    })
}

/// Whether a socket listens on address:port (or the wildcard).
pub fn listens(sockets: &[String], address: &str, port: u16) -> bool {
    let suffix = format!(":{port}");
    sockets.iter().any(|s| {
        s.strip_suffix(&suffix).is_some_and(|a| {
            let a = a.trim_start_matches('[').trim_end_matches(']');
            a == address || a == "0.0.0.0" || a == "*" || a == "::"
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_matching() {
        let s = vec![
            "203.0.113.101:23456".to_string(),
            "0.0.0.0:22".to_string(),
            "[::]:8089".to_string(),
        ];
        assert!(listens(&s, "203.0.113.101", 23456));
        assert!(listens(&s, "198.51.100.101", 22));
        assert!(listens(&s, "203.0.113.101", 8089));
        assert!(!listens(&s, "198.51.100.101", 5269));
        assert!(!listens(&s, "203.0.113.102", 23456));
    }

    #[test]
    fn file_facts_parse() {
        assert_eq!(file_fact(&["absent"], Some("x")), Ok(None));
        let f = file_fact(
            &["present", "640", "root", "root", "3", "abc", "aGkK"],
            Some("wanted\n"),
        )
        .expect("parses");
        assert_eq!(
            f.map(|f| (f.mode, f.content)),
            Some((0o640, Some("hi\n".to_string())))
        );
        assert!(file_fact(&["notfile"], Some("x")).is_err());
    }

    /// The script itself, on this machine: a plain file that differs
    /// comes back with its content, a sensitive one only with its hash,
    /// and either, when it is what is wanted, as `=`.
    #[test]
    fn the_host_never_sends_a_sensitive_files_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, on_host: &str, wanted: &str, sensitive: bool| {
            let path = dir.path().join(name);
            std::fs::write(&path, on_host).expect("write");
            Resource {
                address: format!("edge/p/h/file:{name}"),
                host: "h".into(),
                role: crate::spec::Role::Edge,
                pool: "p".into(),
                phase: crate::plan::Phase::Edge,
                desired: Desired::File(crate::plan::FileSpec {
                    path: path.display().to_string(),
                    content: wanted.into(),
                    mode: 0o600,
                    owner: "root".into(),
                    group: "root".into(),
                    sensitive,
                    reload_scope: None,
                }),
                origin: crate::spec::Origin {
                    file: "spec.yaml".into(),
                    line: 1,
                    col: 1,
                    field: String::new(),
                },
                notifies: None,
            }
        };
        let rs = [
            file("plain", "old plain\n", "new plain\n", false),
            file("secret", "old-secret\n", "new-secret\n", true),
            file("same", "same-secret\n", "same-secret\n", true),
        ];
        let refs: Vec<&Resource> = rs.iter().collect();
        let mut t = crate::transport::LocalTransport::new();
        let seen = observe_host(&mut t, &refs).expect("observed");
        let fact = |name: &str| match &seen[&format!("edge/p/h/file:{name}")] {
            Observed::File(Some(f)) => f.clone(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(fact("plain").content.as_deref(), Some("old plain\n"));
        let secret = fact("secret");
        assert_eq!(
            (secret.content, secret.sha256),
            (None, crate::digest::sha256_hex(b"old-secret\n"))
        );
        assert_eq!(fact("same").content.as_deref(), Some("same-secret\n"));
    }

    #[test]
    fn a_sensitive_file_that_differs_comes_without_its_content() {
        let f = file_fact(
            &["present", "600", "root", "root", "33", "c0ffee", "~"],
            Some("new-secret\n"),
        )
        .expect("parses")
        .expect("present");
        assert_eq!((f.sha256.as_str(), f.content), ("c0ffee", None));
    }

    #[test]
    fn a_file_that_is_what_is_wanted_comes_without_its_content() {
        let f = file_fact(
            &["present", "644", "root", "root", "7", "c0ffee", "="],
            Some("wanted\n"),
        )
        .expect("parses")
        .expect("present");
        assert_eq!(f.sha256, "c0ffee");
        assert_eq!(f.content.as_deref(), Some("wanted\n"));
        // A binary never carries content.
        let b = file_fact(&["present", "755", "root", "root", "9", "beef", "-"], None)
            .expect("parses")
            .expect("present");
        assert_eq!(b.content, None);
    }
}
