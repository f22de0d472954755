//! The client's side of exactly-once writes: which session it holds, the number of each
//! write in it, and which answers it has delivered.
//!
//! The server remembers the answer of every numbered write until the client says it has
//! delivered it (`vane-acked-below`), and answers a retry with the remembered answer. So
//! the client must (1) give a retried write the same number, which a [`Ticket`] carries
//! across attempts, and (2) never claim a write delivered while it may still retry it:
//! `acked_below` is the lowest number still in flight. A ticket leaves the in-flight set
//! when it is dropped, that is when its call returned or was abandoned; an abandoned write
//! is never sent again, so forgetting its answer is safe.
//!
//! The server keeps at most a window of numbers past `acked_below` (4,096), so one write
//! stuck in retries while the others go on would eventually have every new write refused.
//! When the numbers handed out run [`SESSION_WINDOW`] past the oldest write in flight, the
//! client leaves that session to its stragglers and opens another for new writes; a
//! session whose last straggler returned is closed.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tonic::metadata::{MetadataMap, MetadataValue};

/// Metadata key carrying the session id.
pub const SESSION_HEADER: &str = "vane-session";
/// Metadata key carrying the request's number in its session.
pub const SEQUENCE_HEADER: &str = "vane-sequence";
/// Metadata key carrying the lowest number whose answer the client has not delivered.
pub const ACKED_BELOW_HEADER: &str = "vane-acked-below";

/// How far past the oldest write in flight a session numbers new writes before the
/// client opens another: a quarter of the server's bound, so a session never reaches it.
pub(crate) const SESSION_WINDOW: u64 = 1024;

struct OpenSession {
    id: u64,
    next_sequence: u64,
    /// Numbers handed out whose calls have not returned.
    in_flight: BTreeSet<u64>,
}

impl OpenSession {
    /// The `acked_below` an attempt of write `sequence` sends: the oldest write in flight.
    fn acked_below(&self, sequence: u64) -> u64 {
        self.in_flight
            .first()
            .copied()
            .unwrap_or(sequence)
            .min(sequence)
    }

    /// Whether new writes should go to a fresh session: the oldest write in flight is a
    /// whole window behind.
    fn window_full(&self) -> bool {
        self.in_flight
            .first()
            .is_some_and(|oldest| self.next_sequence - oldest >= SESSION_WINDOW)
    }
}

#[derive(Default)]
struct SessionState {
    current: Option<OpenSession>,
    /// Sessions replaced because their window filled, kept until their last write returns.
    draining: Vec<OpenSession>,
    /// Drained sessions the server may forget now; the next write closes them.
    drained: Vec<u64>,
    /// The server has no Session service (an etcd, an old vaned): write without one.
    unsupported: bool,
}

/// What a write should do about its session.
pub(crate) enum Admission<'a> {
    /// Send with this ticket.
    Ticket(Ticket<'a>),
    /// No session is open: open one first.
    NeedsSession,
    /// The cluster does not offer sessions.
    Unsupported,
}

/// The session bookkeeping of one client, shared by all its clones. A std mutex guards
/// it: it is held for a few integer operations, never across an await.
#[derive(Default)]
pub(crate) struct Sessions {
    state: Mutex<SessionState>,
    /// Held while a session is being opened, so concurrent writes open one, not many.
    pub(crate) opening: tokio::sync::Mutex<()>,
}

impl Sessions {
    fn state(&self) -> std::sync::MutexGuard<'_, SessionState> {
        // Every update below leaves the state consistent before it can panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers the next write, if a session is open.
    pub(crate) fn admit(&self) -> Admission<'_> {
        let mut state = self.state();
        if state.unsupported {
            return Admission::Unsupported;
        }
        if state.current.as_ref().is_some_and(OpenSession::window_full)
            && let Some(full) = state.current.take()
        {
            state.draining.push(full);
            return Admission::NeedsSession;
        }
        let Some(open) = state.current.as_mut() else {
            return Admission::NeedsSession;
        };
        let sequence = open.next_sequence;
        open.next_sequence += 1;
        open.in_flight.insert(sequence);
        Admission::Ticket(Ticket {
            sessions: self,
            session_id: open.id,
            sequence,
        })
    }

    /// The id of the open session, if any.
    pub(crate) fn current_id(&self) -> Option<u64> {
        self.state().current.as_ref().map(|s| s.id)
    }

    /// Whether sessions are known to be unavailable on this cluster.
    pub(crate) fn unsupported(&self) -> bool {
        self.state().unsupported
    }

    /// Adopts the session the server just opened.
    pub(crate) fn install(&self, id: u64) {
        self.state().current = Some(OpenSession {
            id,
            next_sequence: 1,
            in_flight: BTreeSet::new(),
        });
    }

    /// The server forgot session `id`: the next write opens another. A no-op if another
    /// write already replaced it.
    pub(crate) fn retire(&self, id: u64) {
        let mut state = self.state();
        if state.current.as_ref().is_some_and(|s| s.id == id) {
            state.current = None;
        }
        state.draining.retain(|s| s.id != id);
    }

    /// Takes every session away (to close them), leaving none: the open one and those
    /// still draining, whose stragglers will then be refused rather than applied twice.
    pub(crate) fn take_all(&self) -> Vec<u64> {
        let mut state = self.state();
        let mut ids: Vec<u64> = state.current.take().map(|s| s.id).into_iter().collect();
        ids.extend(state.draining.drain(..).map(|s| s.id));
        ids.append(&mut state.drained);
        ids
    }

    /// Drained sessions to close now.
    pub(crate) fn take_drained(&self) -> Vec<u64> {
        std::mem::take(&mut self.state().drained)
    }

    /// Remembers that the cluster offers no sessions.
    pub(crate) fn mark_unsupported(&self) {
        let mut state = self.state();
        state.unsupported = true;
        state.current = None;
    }
}

/// One write's place in a session, kept across its attempts; dropping it marks the
/// write's answer delivered (or the write abandoned).
pub(crate) struct Ticket<'a> {
    sessions: &'a Sessions,
    /// The session the write is numbered in.
    pub(crate) session_id: u64,
    /// The write's number.
    pub(crate) sequence: u64,
}

impl Ticket<'_> {
    /// The three metadata entries of an attempt. `acked_below` is computed now, so each
    /// attempt acknowledges whatever was delivered meanwhile.
    pub(crate) fn metadata(&self) -> MetadataMap {
        let acked_below = {
            let state = self.sessions.state();
            state
                .current
                .iter()
                .chain(&state.draining)
                .find(|open| open.id == self.session_id)
                .map_or(self.sequence, |open| open.acked_below(self.sequence))
        };
        let mut metadata = MetadataMap::new();
        metadata.insert(SESSION_HEADER, MetadataValue::from(self.session_id));
        metadata.insert(SEQUENCE_HEADER, MetadataValue::from(self.sequence));
        metadata.insert(ACKED_BELOW_HEADER, MetadataValue::from(acked_below));
        metadata
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut state = self.sessions.state();
        if let Some(open) = state.current.as_mut()
            && open.id == self.session_id
        {
            open.in_flight.remove(&self.sequence);
            return;
        }
        let Some(at) = state
            .draining
            .iter()
            .position(|open| open.id == self.session_id)
        else {
            return;
        };
        state.draining[at].in_flight.remove(&self.sequence);
        if state.draining[at].in_flight.is_empty() {
            let done = state.draining.swap_remove(at);
            state.drained.push(done.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(metadata: &MetadataMap, key: &str) -> u64 {
        metadata
            .get(key)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    fn ticket(sessions: &Sessions) -> Ticket<'_> {
        match sessions.admit() {
            Admission::Ticket(t) => t,
            _ => panic!("a session is open"),
        }
    }

    #[test]
    fn acked_below_never_passes_a_write_in_flight() {
        let sessions = Sessions::default();
        assert!(matches!(sessions.admit(), Admission::NeedsSession));
        sessions.install(9);
        let first = ticket(&sessions);
        let second = ticket(&sessions);
        let third = ticket(&sessions);
        assert_eq!((first.sequence, second.sequence, third.sequence), (1, 2, 3));
        assert_eq!(header(&third.metadata(), ACKED_BELOW_HEADER), 1);
        assert_eq!(header(&third.metadata(), SESSION_HEADER), 9);
        assert_eq!(header(&third.metadata(), SEQUENCE_HEADER), 3);

        drop(second);
        assert_eq!(
            header(&third.metadata(), ACKED_BELOW_HEADER),
            1,
            "the first is still in flight"
        );
        drop(first);
        assert_eq!(header(&third.metadata(), ACKED_BELOW_HEADER), 3);
        let fourth = ticket(&sessions);
        assert_eq!(header(&fourth.metadata(), ACKED_BELOW_HEADER), 3);
        drop(third);
        assert_eq!(header(&fourth.metadata(), ACKED_BELOW_HEADER), 4);
    }

    #[test]
    fn a_retired_session_is_replaced_once() {
        let sessions = Sessions::default();
        sessions.install(5);
        let old = ticket(&sessions);
        sessions.retire(5);
        assert!(matches!(sessions.admit(), Admission::NeedsSession));
        sessions.install(8);
        sessions.retire(5);
        assert_eq!(sessions.current_id(), Some(8), "a stale retire is ignored");
        drop(old);
        let fresh = ticket(&sessions);
        assert_eq!((fresh.session_id, fresh.sequence), (8, 1));
        drop(fresh);
        sessions.mark_unsupported();
        assert!(matches!(sessions.admit(), Admission::Unsupported));
    }

    #[test]
    fn a_straggler_moves_new_writes_to_a_fresh_session_and_keeps_its_own() {
        let sessions = Sessions::default();
        sessions.install(3);
        let straggler = ticket(&sessions);
        for _ in 1..SESSION_WINDOW {
            drop(ticket(&sessions));
        }
        assert!(
            matches!(sessions.admit(), Admission::NeedsSession),
            "a whole window past the straggler, new writes need another session"
        );
        sessions.install(11);
        let fresh = ticket(&sessions);
        assert_eq!((fresh.session_id, fresh.sequence), (11, 1));
        assert_eq!(
            header(&straggler.metadata(), ACKED_BELOW_HEADER),
            1,
            "the straggler's retries still keep its own answer"
        );
        assert!(sessions.take_drained().is_empty());
        drop(straggler);
        assert_eq!(
            sessions.take_drained(),
            vec![3],
            "then its session is closed"
        );
        assert!(sessions.take_drained().is_empty());
        drop(fresh);
        assert_eq!(sessions.take_all(), vec![11]);
    }
}
