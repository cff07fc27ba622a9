//! Safety checks that refuse a DNS plan before anything is written.
//!
//! - The mass-change guard (octoDNS's update/delete thresholds): a plan
//!   that updates or deletes more than `dns.max_change` (default 30%) of the
//!   records xfed manages in a zone is refused unless the user says
//!   `--allow-mass-change`. As in octoDNS, zones with fewer than
//!   [`GUARD_MIN_MANAGED`] managed RRsets are exempt: there, changing one
//!   SRV record is already a third of the zone, and the guard would trip on
//!   every ordinary edit. Creations never count.
//! - The no-target check: a plan must never leave `_xmpp-server._tcp.<d>`
//!   without a usable target (no RRset, or only the `.` "no service"
//!   target): outside servers would stop federating. Not overridable.
//!
//! Pure: no I/O.

use super::rrset::RRset;

/// Zones with fewer managed RRsets than this are not guarded (octoDNS's
/// `MIN_EXISTING_RECORDS`).
pub const GUARD_MIN_MANAGED: usize = 10;

/// `Err` with the refusal when `updated + deleted` exceeds `max_share` of
/// `managed` (RRsets xfed managed in `zone` before the plan).
pub fn mass_change_guard(
    zone: &str,
    managed: usize,
    updated: usize,
    deleted: usize,
    max_share: f64,
) -> Result<(), String> {
    if managed < GUARD_MIN_MANAGED {
        return Ok(());
    }
    let touched = updated + deleted;
    let share = touched as f64 / managed as f64;
    if share <= max_share {
        return Ok(());
    }
    Err(format!(
        "zone `{zone}`: the plan updates {updated} and deletes {deleted} of the {managed} record sets \
         xfed manages there ({:.0}%), more than the {:.0}% allowed\n  \
         hint: check the spec and the zone; if this is intended, run again with `--allow-mass-change` \
         (or raise `dns.max_change`)",
        share * 100.0,
        max_share * 100.0
    ))
}

/// `Err` when `after` — the SRV RRset `name` as it will be once the plan
/// is applied — has no usable target.
pub fn no_target_check(name: &str, after: Option<&RRset>) -> Result<(), String> {
    let usable = after.is_some_and(|r| {
        r.records
            .iter()
            .any(|c| c.split_whitespace().nth(3).is_some_and(|t| t != "."))
    });
    if usable {
        return Ok(());
    }
    Err(format!(
        "the plan would leave `{name}` SRV with no target: outside servers could no longer \
         reach this domain\n  hint: keep at least one edge pool with `xmpp_federation: true`, \
         or an explicit SRV record for it"
    ))
}
