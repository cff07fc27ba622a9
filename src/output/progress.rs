//! The one printer that owns stderr during a run (colmena's JobMonitor):
//! hosts work in parallel, but each line is written whole, prefixed with
//! its host, and scrubbed of secrets. The commands also hand it the
//! providers' retry notices, so every retry is shown.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::secret::Redactor;

#[derive(Clone)]
pub struct Progress {
    inner: Arc<Mutex<()>>,
    redactor: Redactor,
    quiet: bool,
    start: Instant,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("quiet", &self.quiet)
            .finish()
    }
}

impl Progress {
    pub fn new(redactor: Redactor, quiet: bool) -> Progress {
        Progress {
            inner: Arc::new(Mutex::new(())),
            redactor,
            quiet,
            start: Instant::now(),
        }
    }

    pub fn line(&self, host: &str, msg: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        let text = self.redactor.redact(msg.as_ref());
        let _guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let t = self.start.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        if host.is_empty() {
            let _ = writeln!(err, "[{t:6.2}s] {text}");
        } else {
            let _ = writeln!(err, "[{t:6.2}s] {host}: {text}");
        }
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}
