//! The watch checker on one final history and watchers that each break (or keep) one of
//! etcd's watch guarantees.

use vane_jepsen::checker::watch::{
    EventKind, KeyRange, RevisionRecord, WatchEvent, WatchGuarantee, WatchResponseRecord,
    WatchSession, WatcherLog, check_watches,
};

fn put(key: &str, revision: i64) -> WatchEvent {
    WatchEvent {
        key: key.to_string(),
        kind: EventKind::Put,
        value: Some(format!("v{revision}")),
        mod_revision: revision,
    }
}

fn delete(key: &str, revision: i64) -> WatchEvent {
    WatchEvent {
        key: key.to_string(),
        kind: EventKind::Delete,
        value: None,
        mod_revision: revision,
    }
}

/// Revisions 2..=6 under the prefix `app/`, with revision 4 a transaction over two keys,
/// and one change outside the prefix at revision 5.
fn final_history() -> Vec<RevisionRecord> {
    let record = |revision, events| RevisionRecord { revision, events };
    vec![
        record(2, vec![put("app/a", 2)]),
        record(3, vec![put("app/b", 3)]),
        record(4, vec![put("app/a", 4), delete("app/b", 4)]),
        record(5, vec![put("other", 5)]),
        record(6, vec![put("app/c", 6)]),
    ]
}

fn events(events: Vec<WatchEvent>) -> WatchResponseRecord {
    WatchResponseRecord {
        watch_id: 7,
        header_revision: events.last().map_or(0, |event| event.mod_revision),
        created: false,
        canceled: false,
        compact_revision: 0,
        fragment: false,
        events,
        time_ns: 0,
    }
}

fn progress_notify(revision: i64) -> WatchResponseRecord {
    WatchResponseRecord {
        header_revision: revision,
        ..events(Vec::new())
    }
}

fn created(revision: i64) -> WatchResponseRecord {
    WatchResponseRecord {
        created: true,
        header_revision: revision,
        ..events(Vec::new())
    }
}

fn session(start_revision: i64, responses: Vec<WatchResponseRecord>) -> WatchSession {
    WatchSession {
        start_revision,
        range: KeyRange::Prefix {
            prefix: "app/".to_string(),
        },
        responses,
    }
}

fn watcher(sessions: Vec<WatchSession>) -> WatcherLog {
    WatcherLog {
        watcher: "prefix-watcher".to_string(),
        sessions,
    }
}

fn violations(watcher: WatcherLog) -> Vec<(WatchGuarantee, i64)> {
    check_watches(&final_history(), &[watcher])
        .unwrap()
        .violations
        .into_iter()
        .map(|violation| {
            assert_eq!(violation.watcher, "prefix-watcher");
            (violation.guarantee, violation.revision)
        })
        .collect()
}

fn whole_revision_four() -> Vec<WatchEvent> {
    vec![put("app/a", 4), delete("app/b", 4)]
}

#[test]
fn a_watch_resumed_after_a_reconnect_without_gaps_keeps_every_guarantee() {
    let log = watcher(vec![
        session(
            2,
            vec![
                created(1),
                events(vec![put("app/a", 2)]),
                events(vec![put("app/b", 3)]),
            ],
        ),
        session(
            4,
            vec![
                created(5),
                events(whole_revision_four()),
                progress_notify(5),
                events(vec![put("app/c", 6)]),
            ],
        ),
    ]);
    assert_eq!(violations(log), vec![]);
}

#[test]
fn a_watch_from_now_starts_after_its_creation_revision() {
    let log = watcher(vec![session(
        0,
        vec![
            created(3),
            events(whole_revision_four()),
            events(vec![put("app/c", 6)]),
        ],
    )]);
    assert_eq!(violations(log), vec![]);
}

#[test]
fn an_event_delivered_twice_across_a_resumption_is_not_unique() {
    let log = watcher(vec![
        session(
            2,
            vec![events(vec![put("app/a", 2)]), events(vec![put("app/b", 3)])],
        ),
        session(
            3,
            vec![events(vec![put("app/b", 3)]), events(whole_revision_four())],
        ),
    ]);
    assert_eq!(violations(log), vec![(WatchGuarantee::Unique, 3)]);
}

#[test]
fn a_skipped_event_is_unreliable() {
    let log = watcher(vec![session(
        2,
        vec![
            events(vec![put("app/a", 2)]),
            events(whole_revision_four()),
            events(vec![put("app/c", 6)]),
        ],
    )]);
    assert_eq!(violations(log), vec![(WatchGuarantee::Reliable, 3)]);
}

#[test]
fn a_revision_split_across_responses_is_not_atomic() {
    let log = watcher(vec![session(
        4,
        vec![
            events(vec![put("app/a", 4)]),
            events(vec![delete("app/b", 4)]),
        ],
    )]);
    assert_eq!(violations(log), vec![(WatchGuarantee::Atomic, 4)]);
}

#[test]
fn an_event_older_than_a_bookmark_breaks_the_bookmark() {
    let log = watcher(vec![session(
        2,
        vec![
            events(vec![put("app/a", 2)]),
            progress_notify(3),
            events(vec![put("app/b", 3)]),
        ],
    )]);
    assert_eq!(violations(log), vec![(WatchGuarantee::Bookmarkable, 3)]);
}

#[test]
fn revisions_going_backwards_are_out_of_order() {
    let log = watcher(vec![session(
        2,
        vec![events(vec![put("app/b", 3)]), events(vec![put("app/a", 2)])],
    )]);
    assert_eq!(violations(log), vec![(WatchGuarantee::Ordered, 2)]);
}

#[test]
fn a_resumption_that_does_not_start_at_its_revision_is_not_resumable() {
    let skipped_start = watcher(vec![
        session(2, vec![events(vec![put("app/a", 2)])]),
        session(3, vec![events(whole_revision_four())]),
    ]);
    assert_eq!(
        violations(skipped_start),
        vec![(WatchGuarantee::Resumable, 3)]
    );

    let early_start = watcher(vec![session(
        4,
        vec![events(vec![put("app/b", 3)]), events(whole_revision_four())],
    )]);
    assert_eq!(
        violations(early_start),
        vec![(WatchGuarantee::Resumable, 3)]
    );
}

#[test]
fn a_compacted_start_excuses_the_gap_but_only_up_to_the_compact_revision() {
    let compacted = WatchResponseRecord {
        canceled: true,
        compact_revision: 4,
        ..events(Vec::new())
    };
    let log = watcher(vec![
        session(2, vec![compacted.clone()]),
        session(
            4,
            vec![events(whole_revision_four()), events(vec![put("app/c", 6)])],
        ),
    ]);
    assert_eq!(violations(log), vec![]);

    let gap_past_compaction = watcher(vec![
        session(2, vec![compacted]),
        session(4, vec![events(vec![put("app/c", 6)])]),
    ]);
    assert_eq!(
        violations(gap_past_compaction),
        vec![
            (WatchGuarantee::Resumable, 4),
            (WatchGuarantee::Resumable, 4)
        ]
    );
}
