//! Where the providers' retry notices go. A provider retries an ACME
//! `badNonce` or a PowerDNS 503 deep inside a run; it reports through one
//! process-wide hook (`providers::retry`), which this points at the run's
//! progress printer, so every retry is shown — redacted, and not at all
//! under `--quiet`.

use std::sync::Arc;

use crate::output::Progress;
use crate::providers::retry;

/// Shows every retry from now on through `progress`.
pub fn show_retries(progress: &Progress) {
    let printer = progress.clone();
    retry::set_reporter(Arc::new(move |n| printer.line(n.host, n.to_string())));
}
