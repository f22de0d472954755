//! The lease checker: a key attached to a lease must not vanish while the lease was
//! certainly alive.
//!
//! A lease is certainly alive up to `invoke time + TTL` of any acknowledged grant or
//! keep-alive: the server refreshed it no earlier than the request was sent, and a
//! lease never expires before its TTL runs out (Vane expires leases only through a
//! command the leader proposes after the TTL, so expiry can be late but never early).
//! A keep-alive acknowledged *after* an observation also proves the lease was alive at
//! that observation, and this rule covers it: its invocation plus TTL lies beyond.
//! Nothing is certain after a revoke was sent.
//!
//! Two observations contradict a live lease: a linearizable read that finds an attached
//! key absent, and an observer (a TTL query, a keep-alive answering TTL 0, a watch
//! seeing the keys deleted by expiry) reporting the lease gone. An observation that
//! completed while the lease was certainly alive is a violation.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::history::{Call, Outcome, PairedOperation};

const NANOSECONDS_PER_SECOND: u64 = 1_000_000_000;

/// Slack for the lease checker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseCheckOptions {
    /// Subtracted from every "certainly alive until" time: the allowed difference
    /// between how fast the runner's clock and the leader's clock advance. Zero holds
    /// both to the same rate; raise it when a fault skews clock rates.
    pub expiry_tolerance_ms: u64,
}

/// What kind of observation contradicted a live lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseViolationKind {
    /// A read found a key attached to the lease absent.
    KeyObservedAbsent,
    /// An observer reported the lease itself gone.
    LeaseObservedExpired,
}

/// One observation made while the lease was certainly alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseViolation {
    /// The lease.
    pub lease: i64,
    /// The key observed absent, for key observations.
    pub key: Option<String>,
    /// What was observed.
    pub kind: LeaseViolationKind,
    /// The observing operation's invocation index.
    pub observation_index: u64,
    /// The observing operation's completion time: it saw the loss no later than this.
    pub observed_by_ns: u64,
    /// Until when the lease was certainly alive.
    pub certainly_alive_until_ns: u64,
    /// The grant or keep-alive whose acknowledgement proves it.
    pub proof_index: u64,
}

/// What the lease checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LeaseReport {
    /// Leases with at least one acknowledged grant or keep-alive.
    pub leases_checked: usize,
    /// Observations that contradict a live lease, in history order.
    pub violations: Vec<LeaseViolation>,
}

impl LeaseReport {
    /// True when no key or lease vanished while its lease was certainly alive.
    pub fn is_valid(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The latest time a lease is known to be alive, and why.
#[derive(Debug, Clone, Copy)]
struct LifeGuarantee {
    alive_until_ns: u64,
    proof_index: u64,
    /// The first revoke sent (not known to have failed); nothing is certain from then.
    first_revoke_invoked_ns: Option<u64>,
}

impl LifeGuarantee {
    fn certainly_alive_at(&self, time_ns: u64, tolerance_ns: u64) -> bool {
        time_ns <= self.alive_until_ns.saturating_sub(tolerance_ns)
            && self
                .first_revoke_invoked_ns
                .is_none_or(|revoked_ns| time_ns < revoked_ns)
    }
}

/// Checks that no leased key or lease vanished while an acknowledged grant or
/// keep-alive still guaranteed it.
pub fn check_leases(history: &[PairedOperation], options: &LeaseCheckOptions) -> LeaseReport {
    let guarantees = life_guarantees(history);
    let mut operations_by_key: HashMap<&str, Vec<&PairedOperation>> = HashMap::new();
    for operation in history {
        if let Some(key) = &operation.key {
            operations_by_key.entry(key).or_default().push(operation);
        }
    }
    let tolerance_ns = options.expiry_tolerance_ms.saturating_mul(1_000_000);
    let mut violations = Vec::new();

    for observation in history.iter().filter(|operation| operation.is_ok()) {
        let Some(observed_by_ns) = observation.complete_time_ns else {
            continue;
        };
        let (lease, key, kind) = match &observation.call {
            Call::LeaseExpiryObserved(lease) => (
                *lease,
                observation.key.clone(),
                LeaseViolationKind::LeaseObservedExpired,
            ),
            Call::LeaseKeepAlive(keep_alive)
                if keep_alive.ttl_s.is_some_and(|ttl_s| ttl_s <= 0) =>
            {
                (
                    keep_alive.lease,
                    None,
                    LeaseViolationKind::LeaseObservedExpired,
                )
            }
            Call::Read(None) => {
                let same_key = observation
                    .key
                    .as_deref()
                    .and_then(|key| operations_by_key.get(key))
                    .map_or(&[][..], Vec::as_slice);
                let Some(lease) =
                    lease_keeping_key_present(same_key, observation, &guarantees, tolerance_ns)
                else {
                    continue;
                };
                (
                    lease,
                    observation.key.clone(),
                    LeaseViolationKind::KeyObservedAbsent,
                )
            }
            _ => continue,
        };
        let Some(guarantee) = guarantees.get(&lease) else {
            continue;
        };
        if guarantee.certainly_alive_at(observed_by_ns, tolerance_ns) {
            violations.push(LeaseViolation {
                lease,
                key,
                kind,
                observation_index: observation.invoke_index,
                observed_by_ns,
                certainly_alive_until_ns: guarantee.alive_until_ns,
                proof_index: guarantee.proof_index,
            });
        }
    }
    LeaseReport {
        leases_checked: guarantees.len(),
        violations,
    }
}

fn life_guarantees(history: &[PairedOperation]) -> BTreeMap<i64, LifeGuarantee> {
    let mut guarantees: BTreeMap<i64, LifeGuarantee> = BTreeMap::new();
    for operation in history.iter().filter(|operation| operation.is_ok()) {
        let (lease, ttl_s) = match &operation.call {
            Call::LeaseGrant(grant) => match grant.lease {
                Some(lease) => (lease, grant.ttl_s),
                None => continue,
            },
            Call::LeaseKeepAlive(keep_alive) => match keep_alive.ttl_s {
                Some(ttl_s) => (keep_alive.lease, ttl_s),
                None => continue,
            },
            _ => continue,
        };
        let Ok(ttl_s) = u64::try_from(ttl_s) else {
            continue;
        };
        if ttl_s == 0 {
            continue;
        }
        let alive_until_ns = operation
            .invoke_time_ns
            .saturating_add(ttl_s.saturating_mul(NANOSECONDS_PER_SECOND));
        let candidate = LifeGuarantee {
            alive_until_ns,
            proof_index: operation.invoke_index,
            first_revoke_invoked_ns: None,
        };
        guarantees
            .entry(lease)
            .and_modify(|current| {
                if alive_until_ns > current.alive_until_ns {
                    *current = candidate;
                }
            })
            .or_insert(candidate);
    }
    for operation in history {
        if let Call::LeaseRevoke(lease) = operation.call
            && operation.outcome != Outcome::Fail
            && let Some(guarantee) = guarantees.get_mut(&lease)
        {
            let revoked_ns = guarantee
                .first_revoke_invoked_ns
                .map_or(operation.invoke_time_ns, |earlier| {
                    earlier.min(operation.invoke_time_ns)
                });
            guarantee.first_revoke_invoked_ns = Some(revoked_ns);
        }
    }
    guarantees
}

/// For a read that found its key absent, given every operation on that key: the lease
/// that should have kept the key, if the key was certainly there before the read and
/// nothing else could have removed it.
///
/// The key was certainly there when a leased put of it was acknowledged before the read
/// was invoked. Nothing else removed it when no delete of it was sent before the read
/// completed and every leased put sent before then used a lease still certainly alive.
fn lease_keeping_key_present(
    same_key: &[&PairedOperation],
    read: &PairedOperation,
    guarantees: &BTreeMap<i64, LifeGuarantee>,
    tolerance_ns: u64,
) -> Option<i64> {
    let read_completed_ns = read.complete_time_ns?;
    let mut kept_by: Option<(u64, i64)> = None;
    for operation in same_key {
        if operation.outcome == Outcome::Fail || operation.invoke_time_ns > read_completed_ns {
            continue;
        }
        match &operation.call {
            Call::Delete => return None,
            Call::LeasePut(put) => {
                let alive = guarantees.get(&put.lease).is_some_and(|guarantee| {
                    guarantee.certainly_alive_at(read_completed_ns, tolerance_ns)
                });
                if !alive {
                    return None;
                }
                if operation.precedes_in_real_time(read) {
                    let completed_ns = operation.complete_time_ns.unwrap_or(0);
                    if kept_by.is_none_or(|(latest_ns, _)| completed_ns >= latest_ns) {
                        kept_by = Some((completed_ns, put.lease));
                    }
                }
            }
            _ => {}
        }
    }
    kept_by.map(|(_, lease)| lease)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{LeaseGrant, LeaseKeepAlive, LeasePut};

    const SECOND_NS: u64 = NANOSECONDS_PER_SECOND;

    fn operation(
        key: Option<&str>,
        call: Call,
        outcome: Outcome,
        invoke_time_ns: u64,
    ) -> PairedOperation {
        PairedOperation {
            process: invoke_time_ns,
            invoke_index: invoke_time_ns,
            complete_index: None,
            outcome,
            key: key.map(str::to_string),
            call,
            invoke_time_ns,
            complete_time_ns: (outcome != Outcome::Info).then_some(invoke_time_ns + 1_000),
            node: None,
            revision: None,
        }
    }

    fn grant(lease: i64, ttl_s: i64, at_ns: u64) -> PairedOperation {
        let call = Call::LeaseGrant(LeaseGrant {
            lease: Some(lease),
            ttl_s,
        });
        operation(None, call, Outcome::Ok, at_ns)
    }

    fn keep_alive(lease: i64, ttl_s: i64, at_ns: u64) -> PairedOperation {
        let call = Call::LeaseKeepAlive(LeaseKeepAlive {
            lease,
            ttl_s: Some(ttl_s),
        });
        operation(None, call, Outcome::Ok, at_ns)
    }

    fn put(key: &str, lease: i64, at_ns: u64) -> PairedOperation {
        operation(
            Some(key),
            Call::LeasePut(LeasePut { lease, value: 1 }),
            Outcome::Ok,
            at_ns,
        )
    }

    fn read_absent(key: &str, at_ns: u64) -> PairedOperation {
        operation(Some(key), Call::Read(None), Outcome::Ok, at_ns)
    }

    #[test]
    fn a_key_gone_after_keep_alives_stopped_is_fine() {
        let history = [
            grant(7, 2, 0),
            put("k", 7, SECOND_NS / 10),
            keep_alive(7, 2, SECOND_NS),
            read_absent("k", 10 * SECOND_NS),
        ];
        let report = check_leases(&history, &LeaseCheckOptions::default());
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.leases_checked, 1);
    }

    #[test]
    fn a_key_gone_while_kept_alive_is_a_violation() {
        let history = [
            grant(7, 2, 0),
            put("k", 7, SECOND_NS / 10),
            keep_alive(7, 2, SECOND_NS),
            read_absent("k", 2 * SECOND_NS),
            keep_alive(7, 2, 2 * SECOND_NS + SECOND_NS / 2),
        ];
        let report = check_leases(&history, &LeaseCheckOptions::default());
        assert_eq!(report.violations.len(), 1, "{report:?}");
        let violation = &report.violations[0];
        assert_eq!(violation.kind, LeaseViolationKind::KeyObservedAbsent);
        assert_eq!(violation.key.as_deref(), Some("k"));
    }

    #[test]
    fn a_revoke_or_a_delete_explains_a_missing_key() {
        let revoked = [
            grant(7, 60, 0),
            put("k", 7, SECOND_NS),
            operation(None, Call::LeaseRevoke(7), Outcome::Info, 2 * SECOND_NS),
            read_absent("k", 3 * SECOND_NS),
        ];
        assert!(check_leases(&revoked, &LeaseCheckOptions::default()).is_valid());

        let deleted = [
            grant(7, 60, 0),
            put("k", 7, SECOND_NS),
            operation(Some("k"), Call::Delete, Outcome::Ok, 2 * SECOND_NS),
            read_absent("k", 3 * SECOND_NS),
        ];
        assert!(check_leases(&deleted, &LeaseCheckOptions::default()).is_valid());
    }

    #[test]
    fn a_lease_reported_expired_before_its_ttl_is_a_violation() {
        let history = [
            grant(7, 10, 0),
            operation(
                None,
                Call::LeaseExpiryObserved(7),
                Outcome::Ok,
                5 * SECOND_NS,
            ),
            keep_alive(7, 0, 6 * SECOND_NS),
        ];
        let report = check_leases(&history, &LeaseCheckOptions::default());
        assert_eq!(report.violations.len(), 2, "{report:?}");
        assert!(
            report
                .violations
                .iter()
                .all(|violation| violation.kind == LeaseViolationKind::LeaseObservedExpired)
        );
    }

    #[test]
    fn tolerance_forgives_an_expiry_just_inside_the_ttl() {
        let history = [
            grant(7, 10, 0),
            operation(
                None,
                Call::LeaseExpiryObserved(7),
                Outcome::Ok,
                10 * SECOND_NS - 50_000_000,
            ),
        ];
        assert!(!check_leases(&history, &LeaseCheckOptions::default()).is_valid());
        let tolerant = LeaseCheckOptions {
            expiry_tolerance_ms: 100,
        };
        assert!(check_leases(&history, &tolerant).is_valid());
    }
}
