//! Retrying requests to outside services that flake: which failures may be
//! tried again, how often, and how long to wait in between — and the one
//! hook through which every retry reaches the progress output.
//!
//! Owns [`RetryPolicy`], a pure decision (no clock, no I/O: callers sleep
//! and send), the [`Fault`] vocabulary the providers classify their errors
//! into, and [`RetryNotice`] with its process-wide reporter. Does not know
//! any protocol: ACME and PowerDNS decide which of their answers is which
//! fault, and whether a request of theirs may be sent twice.
//!
//! The rule that keeps retries safe: a request whose repetition would act
//! twice is sent again only when the server surely did not act on it
//! (`badNonce`, `429`, `503`); after any other
//! failure the caller must first look at the server's state
//! ([`Decision::CheckThenRetry`]).

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Why one try of a request failed, as far as retrying goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// ACME `badNonce`: the server refused the request before acting on it
    /// and sent a fresh nonce to try again with (RFC 8555 §6.5).
    BadNonce,
    /// HTTP 429 or 503: the server did not act and asks to come back,
    /// perhaps saying when (`Retry-After`).
    Busy {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Another 5xx: the server may or may not have acted.
    ServerError { status: u16 },
    /// The connection broke or timed out after the request went out: the
    /// server may or may not have acted.
    Broken,
    /// Anything else: an answer (a 4xx, a malformed body), or no server
    /// at all — a refused or unanswered connection is a wrong address or a
    /// server that is down, said at once rather than after a minute of
    /// retries. Trying again cannot help.
    Permanent,
}

impl Fault {
    /// Whether the server surely did not act on the request.
    pub fn unprocessed(&self) -> bool {
        matches!(self, Fault::BadNonce | Fault::Busy { .. })
    }
}

/// What repeating a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Sending it twice leaves the server as sending it once (reads,
    /// PowerDNS REPLACE/DELETE, ACME POST-as-GET).
    Idempotent,
    /// Sending it twice could act twice (create a zone, finalize an
    /// order): repeated blindly only when the server did not act.
    Once,
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it again after this long.
    Retry(Duration),
    /// Look at the server's state first; send it again after this long
    /// only if the first try did not take effect.
    CheckThenRetry(Duration),
    /// Stop and report the failure.
    GiveUp,
}

/// How often and how patiently a request is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before the second try; doubled for each further one.
    pub first_delay: Duration,
    /// The doubling stops here.
    pub max_delay: Duration,
    /// A server asking (`Retry-After`) to wait longer than this is not
    /// waited for: the run fails instead of hanging.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// For the services a run talks to: five tries over at most ~7.5 s of
    /// backoff, a `Retry-After` of up to a minute honoured.
    pub const STANDARD: RetryPolicy = RetryPolicy {
        attempts: 5,
        first_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(4),
        max_retry_after: Duration::from_secs(60),
    };

    /// The decision after try number `attempt` (1 for the first) failed
    /// with `fault`, for a request that replays as `replay`.
    pub fn decide(&self, attempt: u32, fault: &Fault, replay: Replay) -> Decision {
        if attempt >= self.attempts {
            return Decision::GiveUp;
        }
        let wait = match fault {
            Fault::Permanent => return Decision::GiveUp,
            // The fresh nonce came with the error: nothing to wait for.
            Fault::BadNonce => Duration::ZERO,
            Fault::Busy {
                retry_after: Some(after),
                ..
            } => {
                if *after > self.max_retry_after {
                    return Decision::GiveUp;
                }
                *after
            }
            Fault::Busy {
                retry_after: None, ..
            }
            | Fault::ServerError { .. }
            | Fault::Broken => self.backoff(attempt),
        };
        if replay == Replay::Once && !fault.unprocessed() {
            Decision::CheckThenRetry(wait)
        } else {
            Decision::Retry(wait)
        }
    }

    /// The wait after try `attempt` failed: `first_delay` doubled per try,
    /// capped at `max_delay`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        self.first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }
}

/// One retry, as the progress output shows it. Every text in it comes
/// from the provider, already free of secrets (the printer redacts again).
#[derive(Debug, Clone, Copy)]
pub struct RetryNotice<'a> {
    /// The host the work is for, or empty (the DNS phase).
    pub host: &'a str,
    /// The service: ``PowerDNS `http://…` ``, ``ACME `https://…/dir` ``.
    pub peer: &'a str,
    /// The request: ``PATCH zone `contoso.example.` ``, `finalize the order`.
    pub request: &'a str,
    /// Why the last try failed: `HTTP 503`, `badNonce: …`.
    pub why: &'a str,
    /// The try about to be made (2 for the first retry) …
    pub attempt: u32,
    /// … out of this many.
    pub attempts: u32,
    /// Whether the server's state is looked at first.
    pub checking: bool,
    pub delay: Duration,
}

impl fmt::Display for RetryNotice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} failed ({}); retry {} of {} in {:.1}s",
            self.peer,
            self.request,
            self.why,
            self.attempt - 1,
            self.attempts - 1,
            self.delay.as_secs_f64()
        )?;
        if self.checking {
            f.write_str(", after checking whether the first try took effect")?;
        }
        Ok(())
    }
}

/// Receives every retry of the process.
pub type Reporter = Arc<dyn Fn(&RetryNotice<'_>) + Send + Sync>;

/// One reporter per process: providers are made deep inside the engine,
/// far from the printer, and a retry is rare enough that a global hook
/// costs nothing. The printer installs itself when it is made.
static REPORTER: RwLock<Option<Reporter>> = RwLock::new(None);

/// Sends every later [`RetryNotice`] to `reporter` (replacing the last).
pub fn set_reporter(reporter: Reporter) {
    *REPORTER.write().unwrap_or_else(|p| p.into_inner()) = Some(reporter);
}

/// Hands `notice` to the reporter, if one is installed.
pub fn report(notice: &RetryNotice<'_>) {
    let reporter = REPORTER.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(r) = reporter {
        r(notice);
    }
}

/// Seconds or an HTTP date (RFC 9110 §10.2.3), as a wait from `now_unix`.
/// A date in the past is no wait; anything unreadable is `None`.
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
        .ok()?
        .unix_timestamp();
    Some(Duration::from_secs(
        u64::try_from(at - now_unix).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy::STANDARD;

    fn busy(retry_after: Option<u64>) -> Fault {
        Fault::Busy {
            status: 503,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let waits: Vec<u64> = (1..=6).map(|a| P.backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 4000, 4000]);
        // no overflow however far it goes
        assert_eq!(P.backoff(u32::MAX), P.max_delay);
    }

    #[test]
    fn attempts_are_bounded_for_every_fault() {
        for fault in [
            Fault::BadNonce,
            busy(None),
            Fault::ServerError { status: 500 },
            Fault::Broken,
        ] {
            for replay in [Replay::Idempotent, Replay::Once] {
                assert_ne!(P.decide(4, &fault, replay), Decision::GiveUp, "{fault:?}");
                assert_eq!(P.decide(5, &fault, replay), Decision::GiveUp, "{fault:?}");
            }
        }
    }

    #[test]
    fn bad_nonce_is_retried_at_once_even_when_not_idempotent() {
        assert_eq!(
            P.decide(1, &Fault::BadNonce, Replay::Once),
            Decision::Retry(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        assert_eq!(
            P.decide(1, &busy(Some(3)), Replay::Once),
            Decision::Retry(Duration::from_secs(3))
        );
        assert_eq!(
            P.decide(1, &busy(Some(61)), Replay::Idempotent),
            Decision::GiveUp
        );
        assert_eq!(
            P.decide(2, &busy(None), Replay::Idempotent),
            Decision::Retry(Duration::from_secs(1))
        );
    }

    #[test]
    fn a_request_that_may_have_acted_is_checked_before_it_is_repeated() {
        for fault in [Fault::ServerError { status: 502 }, Fault::Broken] {
            assert_eq!(
                P.decide(1, &fault, Replay::Once),
                Decision::CheckThenRetry(Duration::from_millis(500))
            );
            assert_eq!(
                P.decide(1, &fault, Replay::Idempotent),
                Decision::Retry(Duration::from_millis(500))
            );
        }
    }

    #[test]
    fn permanent_faults_fail_at_once() {
        assert_eq!(
            P.decide(1, &Fault::Permanent, Replay::Idempotent),
            Decision::GiveUp
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 7 ", 0), Some(Duration::from_secs(7)));
        // 1999-12-31T23:59:59Z is 946684799
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT", 946_684_789),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT", 946_684_800),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn a_notice_reads_as_a_sentence() {
        let n = RetryNotice {
            host: "",
            peer: "PowerDNS `http://127.0.0.1:8081`",
            request: "PATCH zone `contoso.example.`",
            why: "HTTP 503",
            attempt: 2,
            attempts: 5,
            checking: false,
            delay: Duration::from_millis(500),
        };
        assert_eq!(
            n.to_string(),
            "PowerDNS `http://127.0.0.1:8081`: PATCH zone `contoso.example.` failed (HTTP 503); retry 1 of 4 in 0.5s"
        );
    }
}
