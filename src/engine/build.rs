//! Building the gateway from `gateway/` for the edge servers.
//!
//! `cargo build --release --locked` in its own target directory (so the
//! reproducibility flags never invalidate the developer's builds), paths
//! remapped so the binary does not depend on where the checkout lives.
//! Incremental: cargo does nothing when nothing changed, and the artifact's
//! hash is then the same as last time.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::digest::sha256_hex;
use crate::modules::Artifact;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "cannot find the xfed workspace (a folder with Cargo.toml and gateway/) from `{0}`\nhint: run xfed from the repository, or set XFED_WORKSPACE"
    )]
    NoWorkspace(String),
    #[error(
        "cannot run cargo: {0}\nhint: install the Rust toolchain (rust-toolchain.toml names the version)"
    )]
    Cargo(std::io::Error),
    #[error("building the gateway failed:\n{0}")]
    Failed(String),
    #[error("cannot read the built gateway `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Edge servers whose C library cannot run the built gateway.
    #[error(transparent)]
    Libc(#[from] super::libc_check::LibcMismatch),
    #[error("cannot read the C library the built gateway `{path}` needs: {message}")]
    Elf { path: String, message: String },
}

/// The workspace root: `$XFED_WORKSPACE`, else the nearest ancestor of the
/// current directory (or of the spec) holding `gateway/Cargo.toml`.
pub fn workspace(spec_dir: &Path) -> Result<PathBuf, BuildError> {
    if let Some(w) = std::env::var_os("XFED_WORKSPACE") {
        return Ok(PathBuf::from(w));
    }
    let starts = [
        std::env::current_dir().unwrap_or_default(),
        spec_dir.to_path_buf(),
    ];
    for start in starts {
        let start = start.canonicalize().unwrap_or(start);
        for dir in start.ancestors() {
            if dir.join("gateway/Cargo.toml").is_file() && dir.join("Cargo.toml").is_file() {
                return Ok(dir.to_path_buf());
            }
        }
    }
    Err(BuildError::NoWorkspace(spec_dir.display().to_string()))
}

pub fn local_arch() -> &'static str {
    std::env::consts::ARCH
}

/// Builds (or finds up to date) the gateway and hashes it.
pub fn build_gateway(workspace: &Path, package: &str) -> Result<Artifact, BuildError> {
    let target = workspace.join("target/gateway");
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| {
        std::env::var("HOME")
            .map(|h| format!("{h}/.cargo"))
            .unwrap_or_else(|_| "/root/.cargo".into())
    });
    let rustflags = format!(
        "--remap-path-prefix={}=/xfed --remap-path-prefix={}=/cargo",
        workspace.display(),
        cargo_home
    );
    let path = target.join("release").join(package);
    let stamp = target
        .join("release")
        .join(format!(".{package}.xfed-stamp"));
    let inputs = inputs_fingerprint(workspace, &rustflags);
    if let Some(a) = inputs.as_deref().and_then(|f| stamped(&stamp, &path, f)) {
        return Ok(a);
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            package,
            "--target-dir",
        ])
        .arg(&target)
        .env("RUSTFLAGS", rustflags)
        .env_remove("CARGO_TARGET_DIR")
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .map_err(BuildError::Cargo)?;
    if !out.status.success() {
        return Err(BuildError::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|source| BuildError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let artifact = Artifact {
        sha256: sha256_hex(&bytes),
        size: bytes.len() as u64,
        path,
    };
    if let Some(f) = inputs {
        // Best effort: without a stamp the next run asks cargo again.
        let _ = std::fs::write(&stamp, stamp_line(&f, &artifact));
    }
    Ok(artifact)
}

/// Cargo's own no-op check loads the whole workspace and costs ~0.2 s of
/// CPU, a fifth of a warm plan of 50 hosts. When nothing that goes into the
/// release binary changed since the last build — the gateway's sources,
/// the manifests, the lock file and the toolchain pin, by path, size and
/// modification time, and the flags — the binary and its hash recorded
/// then are used as they are. Anything else asks cargo, which decides.
fn inputs_fingerprint(workspace: &Path, rustflags: &str) -> Option<String> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut files: Vec<std::path::PathBuf> = ["Cargo.toml", "Cargo.lock", "rust-toolchain.toml"]
        .iter()
        .chain(&["gateway/Cargo.toml"])
        .map(|f| workspace.join(f))
        .collect();
    walk(&workspace.join("gateway/src"), &mut files).ok()?;
    files.sort();
    let mut text = format!(
        "{rustflags}\n{}\n",
        std::env::var("CARGO").unwrap_or_default()
    );
    for f in &files {
        match std::fs::metadata(f) {
            Ok(m) => {
                let mtime = m
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                text.push_str(&format!(
                    "{} {} {}\n",
                    f.display(),
                    m.len(),
                    mtime.as_nanos()
                ));
            }
            Err(_) => text.push_str(&format!("{} absent\n", f.display())),
        }
    }
    Some(sha256_hex(text.as_bytes()))
}

/// `INPUTS SHA256 SIZE MTIME_NS` of the binary at `a.path`, as it is now.
fn stamp_line(inputs: &str, a: &Artifact) -> String {
    let (size, mtime) = std::fs::metadata(&a.path)
        .ok()
        .and_then(|m| {
            let t = m
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some((m.len(), t.as_nanos()))
        })
        .unwrap_or((0, 0));
    format!("{inputs} {} {size} {mtime}\n", a.sha256)
}

/// The recorded artifact, if the stamp is for these inputs and the binary
/// is still the one it describes (same size and modification time).
fn stamped(stamp: &Path, binary: &Path, inputs: &str) -> Option<Artifact> {
    let text = std::fs::read_to_string(stamp).ok()?;
    let mut f = text.split_whitespace();
    let (i, sha, size) = (f.next()?, f.next()?, f.next()?.parse::<u64>().ok()?);
    if i != inputs {
        return None;
    }
    let a = Artifact {
        sha256: sha.to_string(),
        size,
        path: binary.to_path_buf(),
    };
    (stamp_line(inputs, &a) == text).then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("gateway/src/stream")).expect("dirs");
        for f in [
            "Cargo.toml",
            "Cargo.lock",
            "gateway/Cargo.toml",
            "gateway/src/lib.rs",
        ] {
            std::fs::write(d.path().join(f), "x").expect("write");
        }
        std::fs::write(d.path().join("gateway/src/stream/machine.rs"), "fn a() {}").expect("w");
        d
    }

    #[test]
    fn a_stamp_stands_for_its_inputs_and_its_binary_only() {
        let ws = workspace();
        let bin = ws.path().join("xfed-gateway");
        std::fs::write(&bin, "binary").expect("bin");
        let stamp = ws.path().join("stamp");
        let inputs = inputs_fingerprint(ws.path(), "-C flags").expect("fingerprint");
        let a = Artifact {
            sha256: "ab".repeat(32),
            size: 6,
            path: bin.clone(),
        };
        std::fs::write(&stamp, stamp_line(&inputs, &a)).expect("stamp");
        assert_eq!(stamped(&stamp, &bin, &inputs), Some(a));

        // Other flags, or a source edited: cargo decides again.
        assert_ne!(
            inputs_fingerprint(ws.path(), "-C other").as_deref(),
            Some(inputs.as_str())
        );
        std::fs::write(
            ws.path().join("gateway/src/stream/machine.rs"),
            "fn b() { }",
        )
        .expect("w");
        let edited = inputs_fingerprint(ws.path(), "-C flags").expect("fingerprint");
        assert_ne!(edited, inputs);
        assert_eq!(stamped(&stamp, &bin, &edited), None);

        // A binary replaced behind the stamp's back is not the recorded one.
        std::fs::write(&bin, "another binary").expect("bin");
        assert_eq!(stamped(&stamp, &bin, &inputs), None);
    }
}
