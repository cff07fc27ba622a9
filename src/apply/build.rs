//! Building the gateway from `gateway/` for the edge servers.
//!
//! `cargo build --release --locked` in its own target directory (so the
//! reproducibility flags never invalidate the developer's builds), paths
//! remapped so the binary does not depend on where the checkout lives.
//! Incremental: cargo does nothing when nothing changed, and the artifact's
//! hash is then the same as last time.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::modules::Artifact;
use crate::plan::diff::sha256_hex;

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
    #[error(
        "the edge server `{host}` is `{arch}`, but this machine builds only `{local}`\nhint: run xfed on a `{arch}` machine, or add that target to the build"
    )]
    Arch {
        host: String,
        arch: String,
        local: String,
    },
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
    let path = target.join("release").join(package);
    let bytes = std::fs::read(&path).map_err(|source| BuildError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Artifact {
        sha256: sha256_hex(&bytes),
        size: bytes.len() as u64,
        path,
    })
}
