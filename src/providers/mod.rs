//! Providers: the outside services xfed talks to over their own APIs, each
//! behind a small trait or entry point so the core stays free of I/O:
//! `dns` (a zone's records through PowerDNS's HTTP API; the resolver used to
//! check them) and `issuer` (certificates from a CSR file, an internal CA
//! signing in memory, or ACME with DNS-01 through the DNS provider).
//! [`retry`] is the one policy by which their flaky answers are retried.
//!
//! A provider reads and writes what it is told; it decides nothing.

pub mod dns;
pub mod issuer;
pub mod retry;
