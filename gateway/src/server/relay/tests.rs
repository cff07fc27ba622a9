//! The pure parts of the relay: SRV target order, "no service", the
//! fallback without SRV, resolv.conf nameservers, and the metrics families.

use super::router::BounceReason;
use super::stats::{Leg, OutboundState, RelayStats};
use super::target::{DEFAULT_PORT, SrvRecord, nameservers, targets};
use crate::config::ListenerKind;
use crate::policy::Direction;
use crate::stream::StanzaCondition;

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port,
        target: target.to_string(),
    }
}

#[test]
fn srv_targets_are_tried_by_priority_then_weight() {
    let records = vec![
        srv(20, 0, 5270, "backup.partner.example."),
        srv(10, 1, 5269, "light.partner.example."),
        srv(10, 60, 5269, "Heavy.Partner.Example."),
    ];
    assert_eq!(
        targets("partner.example", records),
        Some(vec![
            ("heavy.partner.example".to_string(), 5269),
            ("light.partner.example".to_string(), 5269),
            ("backup.partner.example".to_string(), 5270),
        ])
    );
}

#[test]
fn no_srv_record_falls_back_to_the_domain_on_5269() {
    assert_eq!(
        targets("partner.example", Vec::new()),
        Some(vec![("partner.example".to_string(), DEFAULT_PORT)])
    );
}

#[test]
fn a_single_dot_target_means_no_service() {
    assert_eq!(targets("partner.example", vec![srv(0, 0, 0, ".")]), None);
    // Among others, a "." target is simply skipped.
    assert_eq!(
        targets(
            "partner.example",
            vec![srv(0, 0, 0, "."), srv(1, 0, 5269, "x.example.")]
        ),
        Some(vec![("x.example".to_string(), 5269)])
    );
}

#[test]
fn nameservers_are_read_from_resolv_conf() {
    let conf = "# comment\nsearch example\nnameserver 10.0.0.53\nnameserver  ::1 \noptions ndots:1\nnameserver bogus\n";
    assert_eq!(
        nameservers(conf),
        vec![
            std::net::IpAddr::from([10, 0, 0, 53]),
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        ]
    );
    assert!(nameservers("").is_empty());
}

#[test]
fn relay_metrics_count_per_direction_verdict_leg_and_listener() {
    let stats = RelayStats::default();
    stats.stanza(Direction::Inbound, true);
    stats.stanza(Direction::Outbound, false);
    stats.bounced(
        "partner.example",
        StanzaCondition::RemoteServerNotFound,
        BounceReason::RetryDelay,
        true,
    );
    stats.bounced(
        "partner.example",
        StanzaCondition::RemoteServerNotFound,
        BounceReason::RetryDelay,
        false,
    );
    stats.sasl(ListenerKind::External, true);
    stats.sasl(ListenerKind::Internal, false);
    stats.set_outbound(
        "contoso.example->partner.example",
        Leg::Partner,
        OutboundState::Connecting,
    );
    stats.set_outbound(
        "partner.example->contoso.example",
        Leg::Internal,
        OutboundState::Established,
    );
    let mut text = String::new();
    stats.render(&mut text);
    for line in [
        "xfed_gateway_stanzas_total{direction=\"inbound\",verdict=\"allowed\"} 1",
        "xfed_gateway_stanzas_total{direction=\"outbound\",verdict=\"denied\"} 1",
        "xfed_gateway_stanzas_bounced_total{condition=\"remote-server-not-found\"} 1",
        "xfed_gateway_stanzas_undelivered_total{partner=\"partner.example\",condition=\"remote-server-not-found\",reason=\"retry_delay\"} 2",
        "xfed_gateway_error_replies_dropped_total 0",
        "xfed_gateway_sasl_total{listener=\"external\",result=\"success\"} 1",
        "xfed_gateway_sasl_total{listener=\"internal\",result=\"failure\"} 1",
        "xfed_gateway_authenticated_streams{listener=\"external\"} 1",
        "xfed_gateway_outbound_streams{leg=\"partner\",state=\"connecting\"} 1",
        "xfed_gateway_outbound_streams{leg=\"internal\",state=\"established\"} 1",
        "xfed_gateway_outbound_connections_total{leg=\"internal\",result=\"established\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    stats.authenticated_closed(ListenerKind::External);
    stats.remove_outbound("contoso.example->partner.example", Leg::Partner, true);
    assert_eq!(stats.authenticated(ListenerKind::External), 0);
    assert_eq!(stats.outbound().len(), 1);
}

#[test]
fn retry_delay_doubles_from_five_seconds_to_five_minutes() {
    use super::retry::delay;
    use std::time::Duration;
    let secs: Vec<u64> = [1, 2, 3, 4, 6, 7, 100, u32::MAX]
        .into_iter()
        .map(|n| delay(n).as_secs())
        .collect();
    assert_eq!(secs, [5, 10, 20, 40, 160, 300, 300, 300]);
    assert_eq!(delay(0), Duration::from_secs(5));
}
