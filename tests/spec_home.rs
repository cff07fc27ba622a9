//! `~/` in a spec's paths is the caller's home folder, handed in through
//! the spec's inputs: the resolver itself reads no environment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use xfed::spec::{self, MapInputs, Source};

const BASE: &str = include_str!("fixtures/base.yaml");

fn load(text: &str, home: Option<&str>) -> xfed::spec::Spec {
    let mut i = MapInputs::default();
    i.env.insert("PDNS_API_KEY".into(), "pdns-test-key".into());
    i.home = home.map(PathBuf::from);
    match spec::load(&Source::new("spec.yaml", text), Arc::new(i)) {
        Ok(loaded) => loaded.spec,
        Err(e) => panic!("the fixture loads: {e}"),
    }
}

#[test]
fn a_tilde_path_is_under_the_home_the_caller_gives() {
    let text = BASE.replacen(
        "known_hosts: /keys/known_hosts",
        "known_hosts: ~/.ssh/lab_known_hosts",
        1,
    );
    let spec = load(&text, Some("/home/ops"));
    let server = spec.servers().next().expect("a server");
    assert_eq!(
        server.ssh.known_hosts,
        Path::new("/home/ops/.ssh/lab_known_hosts")
    );
}

#[test]
fn the_default_known_hosts_is_in_the_home_the_caller_gives() {
    let text = BASE.replacen("  known_hosts: /keys/known_hosts\n", "", 1);
    assert_ne!(text, BASE);
    let spec = load(&text, Some("/home/ops"));
    let server = spec.servers().next().expect("a server");
    assert_eq!(
        server.ssh.known_hosts,
        Path::new("/home/ops/.ssh/known_hosts")
    );
}

#[test]
fn without_a_home_a_tilde_path_is_left_as_written() {
    let text = BASE.replacen(
        "known_hosts: /keys/known_hosts",
        "known_hosts: ~/.ssh/lab_known_hosts",
        1,
    );
    let spec = load(&text, None);
    let server = spec.servers().next().expect("a server");
    assert_eq!(server.ssh.known_hosts, Path::new("~/.ssh/lab_known_hosts"));
}
