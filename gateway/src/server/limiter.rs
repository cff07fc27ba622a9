//! Admission control at accept time: total and per-source connection caps.
//!
//! Owns the counts; a `Permit` held by the connection task gives its slot
//! back on drop, so a panicking or aborted task cannot leak a slot. IPv6
//! sources are grouped by /64 (one customer, one allocation) and
//! IPv4-mapped addresses count as IPv4, so one host cannot multiply its
//! quota by cycling addresses.

use super::metrics::Rejection;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_source: HashMap<IpAddr, u32>,
}

/// Connection counts of one listener.
#[derive(Debug, Default)]
pub struct ConnectionLimiter {
    counts: Mutex<Counts>,
}

/// One admitted connection's slot.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<ConnectionLimiter>,
    source: IpAddr,
}

impl ConnectionLimiter {
    /// Admits a connection from `ip` if both caps allow it.
    pub fn try_acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: u32,
        max_per_source: u32,
    ) -> Result<Permit, Rejection> {
        let source = source_key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= max_total {
            return Err(Rejection::MaxConnections);
        }
        let n = counts.per_source.entry(source).or_insert(0);
        if *n >= max_per_source {
            return Err(Rejection::MaxConnectionsPerIp);
        }
        *n += 1;
        counts.total += 1;
        Ok(Permit {
            limiter: self.clone(),
            source,
        })
    }

    /// Connections currently admitted.
    pub fn current(&self) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                counts.per_source.remove(&self.source);
            }
        }
    }
}

/// The address a per-source cap is counted against.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_source_and_frees_on_drop() {
        let l = Arc::new(ConnectionLimiter::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "192.0.2.2".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let p1 = l.try_acquire(a, 3, 2).expect("first");
        let _p2 = l.try_acquire(a, 3, 2).expect("second");
        assert_eq!(
            l.try_acquire(a, 3, 2).err(),
            Some(Rejection::MaxConnectionsPerIp)
        );
        let _p3 = l.try_acquire(b, 3, 2).expect("other source");
        assert_eq!(
            l.try_acquire(b, 3, 2).err(),
            Some(Rejection::MaxConnections)
        );
        drop(p1);
        assert_eq!(l.current(), 2);
        assert!(l.try_acquire(a, 3, 2).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let l = Arc::new(ConnectionLimiter::default());
        let x: IpAddr = "2001:db8:1:2::1"
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let y: IpAddr = "2001:db8:1:2::ffff"
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let _p = l.try_acquire(x, 10, 1).expect("first");
        assert_eq!(
            l.try_acquire(y, 10, 1).err(),
            Some(Rejection::MaxConnectionsPerIp)
        );
        let v4: IpAddr = "192.0.2.9".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let mapped: IpAddr = "::ffff:192.0.2.9"
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let _q = l.try_acquire(v4, 10, 1).expect("v4");
        assert_eq!(
            l.try_acquire(mapped, 10, 1).err(),
            Some(Rejection::MaxConnectionsPerIp)
        );
    }
}
