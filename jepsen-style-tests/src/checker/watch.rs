//! The watch checker: etcd's six watch guarantees, judged against the store's final
//! history of revisions.
//!
//! From etcd's API guarantees: events are **ordered** by revision and never go
//! backwards; **unique**, never delivered twice (across resumptions too); **reliable**,
//! with no event of the watched range missing between the first and last revision the
//! watcher covered, unless a compaction cancelled the watch; **atomic**, all of one
//! revision's events in one response unless the response is marked as a fragment;
//! **resumable**, a watch from revision `r` delivers from exactly `r`; and
//! **bookmarkable**, a progress notification at `R` promises no event at or below `R`
//! is still to come. One more property underlies them all and is reported as
//! **truthful**: every event delivered exists in the final history, in the watched
//! range, with the same kind and value.
//!
//! A watcher's coverage runs from the start of its first session to the highest
//! revision any of its sessions reached through an event or a progress notification.
//! Events missing at the very start of a session that asked for an explicit revision are
//! resumability violations; every other gap is a reliability violation.

mod record;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::error::JepsenError;

pub use record::{
    EventKind, KeyRange, RevisionRecord, WatchEvent, WatchResponseRecord, WatchSession, WatcherLog,
};

/// The property a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchGuarantee {
    /// Revisions went backwards within a watcher.
    Ordered,
    /// An event arrived twice.
    Unique,
    /// An event within the covered revisions never arrived.
    Reliable,
    /// One revision's events were split across responses not marked as fragments.
    Atomic,
    /// A session asking for revision `r` did not deliver from exactly `r`.
    Resumable,
    /// An event at or below a progress notification's revision arrived after it.
    Bookmarkable,
    /// A delivered event is not in the final history as delivered.
    Truthful,
}

/// One broken guarantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchViolation {
    /// The watcher's name.
    pub watcher: String,
    /// Which of its sessions (0-based).
    pub session: usize,
    /// What was broken.
    pub guarantee: WatchGuarantee,
    /// The revision of the event concerned.
    pub revision: i64,
    /// The key of the event concerned.
    pub key: Option<String>,
    /// What happened, for a human.
    pub detail: String,
}

/// What the watch checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchReport {
    /// Watchers examined.
    pub watchers_checked: usize,
    /// Events received, over every watcher and session.
    pub events_delivered: usize,
    /// Every broken guarantee, per watcher in delivery order.
    pub violations: Vec<WatchViolation>,
}

impl WatchReport {
    /// True when every guarantee held for every watcher.
    pub fn is_valid(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The final history, indexed for the questions the checker asks.
struct FinalHistory<'a> {
    events_by_revision: BTreeMap<i64, Vec<&'a WatchEvent>>,
    event_at: HashMap<(i64, &'a str), &'a WatchEvent>,
}

impl<'a> FinalHistory<'a> {
    fn new(revisions: &'a [RevisionRecord]) -> Self {
        let mut events_by_revision: BTreeMap<i64, Vec<&WatchEvent>> = BTreeMap::new();
        let mut event_at = HashMap::new();
        for record in revisions {
            for event in &record.events {
                events_by_revision
                    .entry(record.revision)
                    .or_default()
                    .push(event);
                event_at.insert((record.revision, event.key.as_str()), event);
            }
        }
        Self {
            events_by_revision,
            event_at,
        }
    }

    /// Events in `range` with revisions from `first` to `last`, inclusive.
    fn events_between(
        &self,
        range: &'a KeyRange,
        first: i64,
        last: i64,
    ) -> impl Iterator<Item = &'a WatchEvent> + '_ {
        let revisions = if first <= last {
            self.events_by_revision.range(first..=last)
        } else {
            self.events_by_revision.range(0..0)
        };
        revisions
            .flat_map(|(_, events)| events.iter().copied())
            .filter(move |event| range.contains(&event.key))
    }
}

/// Checks every watcher's sessions against the final history of revisions, which must
/// cover every revision the watchers reached.
pub fn check_watches(
    revisions: &[RevisionRecord],
    watchers: &[WatcherLog],
) -> Result<WatchReport, JepsenError> {
    let history = FinalHistory::new(revisions);
    let mut report = WatchReport {
        watchers_checked: watchers.len(),
        ..WatchReport::default()
    };
    for watcher in watchers {
        let Some(first_session) = watcher.sessions.first() else {
            continue;
        };
        if watcher
            .sessions
            .iter()
            .any(|session| session.range != first_session.range)
        {
            return Err(JepsenError::WatcherRangeChanged {
                watcher: watcher.watcher.clone(),
            });
        }
        let mut check = WatcherCheck::new(&watcher.watcher, &first_session.range, &history);
        for (session_index, session) in watcher.sessions.iter().enumerate() {
            check.check_session(session_index, session);
        }
        check.check_coverage(watcher.sessions.len().saturating_sub(1));
        report.events_delivered += check.events_delivered;
        report.violations.extend(check.violations);
    }
    Ok(report)
}

/// The running state of one watcher's check, across its sessions.
struct WatcherCheck<'a> {
    watcher: &'a str,
    range: &'a KeyRange,
    history: &'a FinalHistory<'a>,
    violations: Vec<WatchViolation>,
    events_delivered: usize,
    delivered: HashSet<(i64, String)>,
    last_event_revision: Option<i64>,
    covered_from: Option<i64>,
    covered_to: Option<i64>,
    /// Revision intervals a compaction excused, inclusive.
    compacted: Vec<(i64, i64)>,
    /// Missing events already reported, so a gap is reported once.
    reported_missing: HashSet<(i64, String)>,
}

impl<'a> WatcherCheck<'a> {
    fn new(watcher: &'a str, range: &'a KeyRange, history: &'a FinalHistory<'a>) -> Self {
        Self {
            watcher,
            range,
            history,
            violations: Vec::new(),
            events_delivered: 0,
            delivered: HashSet::new(),
            last_event_revision: None,
            covered_from: None,
            covered_to: None,
            compacted: Vec::new(),
            reported_missing: HashSet::new(),
        }
    }

    fn violation(
        &mut self,
        session: usize,
        guarantee: WatchGuarantee,
        revision: i64,
        key: Option<&str>,
        detail: String,
    ) {
        self.violations.push(WatchViolation {
            watcher: self.watcher.to_string(),
            session,
            guarantee,
            revision,
            key: key.map(str::to_string),
            detail,
        });
    }

    fn is_compacted(&self, revision: i64) -> bool {
        self.compacted
            .iter()
            .any(|&(first, last)| first <= revision && revision <= last)
    }

    /// The first revision a session covers: the one it asked for, or for a "from now"
    /// watch the revision after its creation.
    fn effective_start(session: &WatchSession) -> Option<i64> {
        if session.start_revision > 0 {
            return Some(session.start_revision);
        }
        session
            .responses
            .iter()
            .find(|response| response.created)
            .map(|response| response.header_revision + 1)
            .or_else(|| {
                session
                    .responses
                    .iter()
                    .flat_map(|response| response.events.first())
                    .map(|event| event.mod_revision)
                    .next()
            })
    }

    fn check_session(&mut self, session_index: usize, session: &WatchSession) {
        let Some(start) = Self::effective_start(session) else {
            return;
        };
        self.covered_from = Some(self.covered_from.map_or(start, |from| from.min(start)));
        let mut bookmark: Option<i64> = None;
        let mut first_delivered: Option<i64> = None;
        let mut session_covered_to: Option<i64> = None;
        // Responses chained by `fragment` form one logical response.
        let mut logical_response = 0usize;
        let mut logical_response_of_revision: HashMap<i64, usize> = HashMap::new();
        let mut split_revisions_reported: HashSet<i64> = HashSet::new();

        for response in &session.responses {
            if response.canceled && response.compact_revision > 0 {
                self.compacted.push((start, response.compact_revision - 1));
            }
            if response.is_progress_notify() {
                bookmark = bookmark.max(Some(response.header_revision));
                session_covered_to = session_covered_to.max(Some(response.header_revision));
            }
            for event in &response.events {
                let revision = event.mod_revision;
                let key = event.key.as_str();
                self.events_delivered += 1;
                first_delivered.get_or_insert(revision);
                session_covered_to = session_covered_to.max(Some(revision));

                self.check_truthful(session_index, event);
                if revision < start {
                    self.violation(
                        session_index,
                        WatchGuarantee::Resumable,
                        revision,
                        Some(key),
                        format!("delivered revision {revision} but the session asked to start at {start}"),
                    );
                }
                if let Some(last) = self.last_event_revision
                    && revision < last
                {
                    self.violation(
                        session_index,
                        WatchGuarantee::Ordered,
                        revision,
                        Some(key),
                        format!("revision {revision} delivered after revision {last}"),
                    );
                }
                self.last_event_revision = self.last_event_revision.max(Some(revision));
                if !self.delivered.insert((revision, key.to_string())) {
                    self.violation(
                        session_index,
                        WatchGuarantee::Unique,
                        revision,
                        Some(key),
                        format!(
                            "the event of key {key:?} at revision {revision} was delivered twice"
                        ),
                    );
                }
                if let Some(bookmark_revision) = bookmark
                    && revision <= bookmark_revision
                {
                    self.violation(
                        session_index,
                        WatchGuarantee::Bookmarkable,
                        revision,
                        Some(key),
                        format!(
                            "revision {revision} arrived after a progress notification at revision {bookmark_revision}"
                        ),
                    );
                }
                let first_response = *logical_response_of_revision
                    .entry(revision)
                    .or_insert(logical_response);
                if first_response != logical_response && split_revisions_reported.insert(revision) {
                    self.violation(
                        session_index,
                        WatchGuarantee::Atomic,
                        revision,
                        Some(key),
                        format!(
                            "the events of revision {revision} were split across responses not marked as fragments"
                        ),
                    );
                }
            }
            if !response.fragment {
                logical_response += 1;
            }
        }

        // Events owed before the first one delivered (or, with none delivered, up to a
        // progress notification) were skipped at the session's start.
        let owed_through = match first_delivered {
            Some(first) => Some(first - 1),
            None => session_covered_to,
        };
        if let Some(owed_through) = owed_through {
            let guarantee = if session.start_revision > 0 {
                WatchGuarantee::Resumable
            } else {
                WatchGuarantee::Reliable
            };
            let skipped: Vec<&WatchEvent> = self
                .history
                .events_between(self.range, start, owed_through)
                .filter(|event| !self.is_missing_excused(event))
                .collect();
            for event in skipped {
                self.reported_missing
                    .insert((event.mod_revision, event.key.clone()));
                self.violation(
                    session_index,
                    guarantee,
                    event.mod_revision,
                    Some(&event.key),
                    format!(
                        "the session started at revision {start} but never delivered the event of key {:?} at revision {}",
                        event.key, event.mod_revision
                    ),
                );
            }
        }
        self.covered_to = self.covered_to.max(session_covered_to);
    }

    fn is_missing_excused(&self, event: &WatchEvent) -> bool {
        let identity = (event.mod_revision, event.key.clone());
        self.delivered.contains(&identity)
            || self.reported_missing.contains(&identity)
            || self.is_compacted(event.mod_revision)
    }

    fn check_truthful(&mut self, session_index: usize, event: &WatchEvent) {
        let revision = event.mod_revision;
        let key = event.key.as_str();
        let detail = if !self.range.contains(key) {
            format!("key {key:?} is outside the watched range")
        } else {
            match self.history.event_at.get(&(revision, key)) {
                None => {
                    format!("no event of key {key:?} at revision {revision} in the final history")
                }
                Some(actual) if actual.kind != event.kind || actual.value != event.value => {
                    format!(
                        "delivered {:?} {:?} but the final history has {:?} {:?}",
                        event.kind, event.value, actual.kind, actual.value
                    )
                }
                Some(_) => return,
            }
        };
        self.violation(
            session_index,
            WatchGuarantee::Truthful,
            revision,
            Some(key),
            detail,
        );
    }

    /// Every event of the range between the first and last covered revision must have
    /// been delivered by some session.
    fn check_coverage(&mut self, last_session: usize) {
        let (Some(from), Some(to)) = (self.covered_from, self.covered_to) else {
            return;
        };
        let missing: Vec<&WatchEvent> = self
            .history
            .events_between(self.range, from, to)
            .filter(|event| !self.is_missing_excused(event))
            .collect();
        for event in missing {
            self.violation(
                last_session,
                WatchGuarantee::Reliable,
                event.mod_revision,
                Some(&event.key),
                format!(
                    "the event of key {:?} at revision {} was never delivered though the watcher covered revisions {from} to {to}",
                    event.key, event.mod_revision
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, revision: i64) -> WatchEvent {
        WatchEvent {
            key: key.to_string(),
            kind: EventKind::Put,
            value: Some(format!("{key}@{revision}")),
            mod_revision: revision,
        }
    }

    fn history() -> Vec<RevisionRecord> {
        vec![
            RevisionRecord {
                revision: 2,
                events: vec![put("a", 2)],
            },
            RevisionRecord {
                revision: 3,
                events: vec![put("a", 3), put("b", 3)],
            },
            RevisionRecord {
                revision: 4,
                events: vec![put("z", 4)],
            },
            RevisionRecord {
                revision: 5,
                events: vec![put("b", 5)],
            },
        ]
    }

    fn response(events: Vec<WatchEvent>) -> WatchResponseRecord {
        WatchResponseRecord {
            watch_id: 1,
            header_revision: events.last().map_or(0, |event| event.mod_revision),
            created: false,
            canceled: false,
            compact_revision: 0,
            fragment: false,
            events,
            time_ns: 0,
        }
    }

    fn watcher(start_revision: i64, responses: Vec<WatchResponseRecord>) -> WatcherLog {
        WatcherLog {
            watcher: "w".to_string(),
            sessions: vec![WatchSession {
                start_revision,
                range: KeyRange::Interval {
                    start: "a".to_string(),
                    end: "c".to_string(),
                },
                responses,
            }],
        }
    }

    fn guarantees(watchers: &[WatcherLog]) -> Vec<WatchGuarantee> {
        check_watches(&history(), watchers)
            .unwrap()
            .violations
            .iter()
            .map(|violation| violation.guarantee)
            .collect()
    }

    #[test]
    fn a_complete_in_order_delivery_keeps_every_guarantee() {
        let log = watcher(
            2,
            vec![
                response(vec![put("a", 2)]),
                response(vec![put("a", 3), put("b", 3)]),
                response(vec![put("b", 5)]),
            ],
        );
        assert_eq!(guarantees(&[log]), vec![]);
    }

    #[test]
    fn a_revision_split_by_fragments_is_atomic() {
        let mut first_fragment = response(vec![put("a", 3)]);
        first_fragment.fragment = true;
        let log = watcher(3, vec![first_fragment, response(vec![put("b", 3)])]);
        assert_eq!(guarantees(&[log]), vec![]);
    }

    #[test]
    fn a_changed_or_invented_event_is_not_truthful() {
        let mut changed = put("a", 2);
        changed.value = Some("other".to_string());
        let log = watcher(
            2,
            vec![
                response(vec![changed]),
                response(vec![put("a", 3), put("b", 3)]),
                response(vec![put("b", 5)]),
                response(vec![put("a", 9)]),
            ],
        );
        assert_eq!(
            guarantees(&[log]),
            vec![WatchGuarantee::Truthful, WatchGuarantee::Truthful]
        );
    }

    #[test]
    fn a_compaction_cancel_excuses_the_compacted_revisions() {
        let mut log = watcher(
            2,
            vec![WatchResponseRecord {
                canceled: true,
                compact_revision: 4,
                ..response(Vec::new())
            }],
        );
        log.sessions.push(WatchSession {
            start_revision: 4,
            range: log.sessions[0].range.clone(),
            responses: vec![response(vec![put("b", 5)])],
        });
        assert_eq!(guarantees(&[log]), vec![]);
    }

    #[test]
    fn sessions_of_one_watcher_must_watch_one_range() {
        let mut log = watcher(2, Vec::new());
        log.sessions.push(WatchSession {
            start_revision: 3,
            range: KeyRange::Key {
                key: "a".to_string(),
            },
            responses: Vec::new(),
        });
        assert!(matches!(
            check_watches(&history(), &[log]),
            Err(JepsenError::WatcherRangeChanged { .. })
        ));
    }
}
