//! The lease checker end to end: a key attached to a lease that keep-alives held open
//! must not be found missing.

mod common;

use common::HistoryScript;
use vane_jepsen::checker::lease::{LeaseCheckOptions, LeaseViolationKind, check_leases};
use vane_jepsen::{Call, LeaseGrant, LeaseKeepAlive, LeasePut};

const SECOND_NS: u64 = 1_000_000_000;
const KEY: Option<&str> = Some("leased");

fn kept_alive_lease(script: &mut HistoryScript) {
    script
        .ok(
            None,
            Call::LeaseGrant(LeaseGrant {
                lease: Some(42),
                ttl_s: 3,
            }),
            0,
            SECOND_NS / 100,
        )
        .ok(
            KEY,
            Call::LeasePut(LeasePut {
                lease: 42,
                value: 1,
            }),
            SECOND_NS / 10,
            SECOND_NS / 5,
        );
    for second in 1..=5 {
        let keep_alive = Call::LeaseKeepAlive(LeaseKeepAlive {
            lease: 42,
            ttl_s: Some(3),
        });
        script.ok(
            None,
            keep_alive,
            second * SECOND_NS,
            second * SECOND_NS + SECOND_NS / 100,
        );
    }
}

#[test]
fn a_kept_alive_key_that_stays_present_is_valid() {
    let mut script = HistoryScript::new();
    kept_alive_lease(&mut script);
    script
        .ok(
            KEY,
            Call::Read(Some(1)),
            4 * SECOND_NS,
            4 * SECOND_NS + 1_000,
        )
        // Keep-alives stopped at 5 s with a 3 s TTL: gone at 12 s is expected.
        .ok(
            KEY,
            Call::Read(None),
            12 * SECOND_NS,
            12 * SECOND_NS + 1_000,
        )
        .ok(
            None,
            Call::LeaseExpiryObserved(42),
            12 * SECOND_NS,
            12 * SECOND_NS + 1_000,
        );
    let report = check_leases(&script.paired(), &LeaseCheckOptions::default());
    assert!(report.is_valid(), "{report:?}");
}

#[test]
fn a_lease_key_lost_while_kept_alive_is_a_violation() {
    let mut script = HistoryScript::new();
    kept_alive_lease(&mut script);
    script.ok(KEY, Call::Read(None), 4 * SECOND_NS, 4 * SECOND_NS + 1_000);
    let report = check_leases(&script.paired(), &LeaseCheckOptions::default());
    assert_eq!(report.violations.len(), 1, "{report:?}");
    let violation = &report.violations[0];
    assert_eq!(violation.kind, LeaseViolationKind::KeyObservedAbsent);
    assert_eq!((violation.lease, violation.key.as_deref()), (42, KEY));
    assert!(violation.certainly_alive_until_ns >= 8 * SECOND_NS);
}
