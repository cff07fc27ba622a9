//! Providers: the outside services xfed talks to over their own APIs, each
//! behind a trait so the core stays free of I/O (design.md §3). Today: DNS
//! (PowerDNS); ACME and internal CAs come with the certificate issue.
//! [`retry`] is the one policy by which their flaky answers are retried.

pub mod dns;
pub mod retry;
