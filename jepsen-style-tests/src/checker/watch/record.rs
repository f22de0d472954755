//! What the watch checker reads: the store's authoritative event history, and what
//! each watcher received.
//!
//! These mirror etcd's `mvccpb.Event` and `WatchResponse` closely enough that a
//! recorder copies fields across one by one. Values are text because watch workloads
//! write text; the checker compares them only for equality.

use serde::{Deserialize, Serialize};

/// A put or a delete, as in `mvccpb.Event.EventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted (explicitly, or by lease expiry).
    Delete,
}

/// One change to one key at one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// The key changed.
    pub key: String,
    /// Put or delete.
    pub kind: EventKind,
    /// The value put; `None` for deletes.
    #[serde(default)]
    pub value: Option<String>,
    /// The revision of the change (`kv.mod_revision`).
    pub mod_revision: i64,
}

/// Every event of one store revision: the ground truth, read back after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionRecord {
    /// The revision.
    pub revision: i64,
    /// Its events, all with `mod_revision == revision`.
    pub events: Vec<WatchEvent>,
}

/// The keys a watch covers, with etcd's `key`/`range_end` meanings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum KeyRange {
    /// One key (`range_end` empty).
    Key {
        /// The key.
        key: String,
    },
    /// Every key starting with `prefix` (`range_end` = prefix end).
    Prefix {
        /// The prefix.
        prefix: String,
    },
    /// Keys from `start` (inclusive) to `end` (exclusive), bytewise.
    Interval {
        /// First key covered.
        start: String,
        /// First key not covered.
        end: String,
    },
    /// Every key from `start` on (`range_end` = `"\0"`).
    From {
        /// First key covered.
        start: String,
    },
}

impl KeyRange {
    /// True when a watch on this range must deliver changes to `key`.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            KeyRange::Key { key: watched } => key == watched,
            KeyRange::Prefix { prefix } => key.starts_with(prefix.as_str()),
            KeyRange::Interval { start, end } => start.as_str() <= key && key < end.as_str(),
            KeyRange::From { start } => start.as_str() <= key,
        }
    }
}

/// One `WatchResponse` as a watcher received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchResponseRecord {
    /// The server's id for the watch.
    pub watch_id: i64,
    /// `header.revision`: for a progress notification, the revision the watcher is
    /// known to be up to date with.
    pub header_revision: i64,
    /// The watch was just created.
    #[serde(default)]
    pub created: bool,
    /// The watch was canceled by the server.
    #[serde(default)]
    pub canceled: bool,
    /// Non-zero when the watch was canceled because its start revision was compacted.
    #[serde(default)]
    pub compact_revision: i64,
    /// More fragments of the same response follow.
    #[serde(default)]
    pub fragment: bool,
    /// The events delivered.
    #[serde(default)]
    pub events: Vec<WatchEvent>,
    /// When the watcher received it, from the runner's monotonic clock.
    #[serde(default)]
    pub time_ns: u64,
}

impl WatchResponseRecord {
    /// True for a progress notification (a bookmark), with etcd client's definition: no
    /// events, not a creation, cancellation or compaction notice.
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
            && !self.created
            && !self.canceled
            && self.compact_revision == 0
            && self.header_revision != 0
    }
}

/// One watch request and what it received until it ended (cancellation, disconnect,
/// end of the run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchSession {
    /// The revision requested; 0 means "from now".
    pub start_revision: i64,
    /// The keys watched.
    pub range: KeyRange,
    /// The responses, in the order received.
    pub responses: Vec<WatchResponseRecord>,
}

/// One logical watcher: its first session and every resumption after a reconnect, in
/// order. All sessions watch the same range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherLog {
    /// A name for reports.
    pub watcher: String,
    /// The sessions, in order.
    pub sessions: Vec<WatchSession>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ranges_follow_etcd_range_end_rules() {
        let prefix = KeyRange::Prefix {
            prefix: "app/".to_string(),
        };
        assert!(prefix.contains("app/a"));
        assert!(!prefix.contains("apq"));
        let interval = KeyRange::Interval {
            start: "b".to_string(),
            end: "d".to_string(),
        };
        assert!(interval.contains("b") && interval.contains("cz") && !interval.contains("d"));
        let from = KeyRange::From {
            start: "m".to_string(),
        };
        assert!(from.contains("z") && !from.contains("a"));
    }

    #[test]
    fn only_an_empty_plain_response_is_a_progress_notification() {
        let bookmark = WatchResponseRecord {
            watch_id: 1,
            header_revision: 9,
            created: false,
            canceled: false,
            compact_revision: 0,
            fragment: false,
            events: Vec::new(),
            time_ns: 0,
        };
        assert!(bookmark.is_progress_notify());
        let created = WatchResponseRecord {
            created: true,
            ..bookmark.clone()
        };
        assert!(!created.is_progress_notify());
    }
}
