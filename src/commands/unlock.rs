//! `xfed unlock SPEC LOCK_ID`: removes an apply lock that an apply which
//! died left behind.

use std::path::PathBuf;

use clap::Args;

use super::error::Result;
use super::run::prepared;
use super::{ExitStatus, RunArgs};
use crate::apply;

#[derive(Args, Debug)]
pub struct UnlockArgs {
    pub spec: PathBuf,
    /// The lock id shown in the error.
    pub lock_id: String,
    #[command(flatten)]
    pub run: RunArgs,
}

pub async fn run(args: &UnlockArgs) -> Result<ExitStatus> {
    let p = prepared(&args.spec, &args.run).await?;
    apply::unlock_all(&p, &args.lock_id).await;
    println!(
        "Lock {} removed from {} host(s) where it was held.",
        args.lock_id,
        p.hosts.len()
    );
    Ok(ExitStatus::Success)
}
