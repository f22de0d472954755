//! Exactly-once client sessions.
//!
//! A client that retries a write cannot know whether its first attempt committed. With a
//! session it numbers its requests; the state machine remembers each result until the
//! client says it has received it (`acked_below`), and answers a retried request with
//! the remembered result instead of applying it again. A session is identified by the
//! log index of the entry that opened it and expires after `ttl_ms` of log time without
//! a request; a request from an expired session is refused, never applied a second time.
//! Sessions whose clients went away without closing them are forgotten when another
//! session opens, so a crashed client's results do not stay on disk for good.

use prost::Message;
use vane_proto::raft::{Command, CommandResult};
use vane_proto::storage::Session;

use crate::db::{BatchView, Cf, Reader};
use crate::error::{Result, StoreError};
use crate::mvcc::keys::{id_end, id_key, id_suffix_key};

/// Most results a session keeps for requests the client has not acknowledged: a bound
/// on the memory and disk one client can hold, and on how far ahead it may number.
pub const SESSION_UNACKED_MAX: u64 = 4096;

/// Shortest and longest idle time a session may ask for.
pub const SESSION_TTL_MIN_MS: i64 = 1_000;
/// See [`SESSION_TTL_MIN_MS`].
pub const SESSION_TTL_MAX_MS: i64 = 24 * 3600 * 1000;

/// What to do with a command that names a session.
pub(crate) enum Admission {
    /// Not seen before: apply it and remember the result.
    Fresh(Session),
    /// Seen before: answer with what it answered then.
    Duplicate(CommandResult),
}

fn load(reader: &dyn Reader, id: u64) -> Result<Option<Session>> {
    reader
        .get(Cf::Sessions, &id_key(id))?
        .map(|b| Session::decode(b.as_slice()).map_err(|e| StoreError::decode("session", e)))
        .transpose()
}

fn result_key(id: u64, sequence: u64) -> Vec<u8> {
    id_suffix_key(id, &sequence.to_be_bytes())
}

/// Most expired sessions one open forgets, bounding the work of one apply; opens are
/// rare next to writes, and each one sweeps again.
const EXPIRED_SWEEP_MAX: usize = 64;

/// Opens a session whose id is `log_index`, owned by `principal`, after forgetting up to
/// [`EXPIRED_SWEEP_MAX`] sessions that expired by log time `now_ms`.
pub(crate) fn open(
    view: &mut BatchView<'_>,
    log_index: u64,
    ttl_ms: i64,
    now_ms: i64,
    principal: &str,
) -> Result<u64> {
    let mut expired = Vec::new();
    view.scan(Cf::Sessions, &[], None, &mut |_, value| {
        let session = Session::decode(value).map_err(|e| StoreError::decode("session", e))?;
        if session.last_active_ms.saturating_add(session.ttl_ms) < now_ms {
            expired.push(session.id);
        }
        Ok(expired.len() < EXPIRED_SWEEP_MAX)
    })?;
    for id in expired {
        close(view, id)?;
    }
    let session = Session {
        id: log_index,
        ttl_ms: ttl_ms.clamp(SESSION_TTL_MIN_MS, SESSION_TTL_MAX_MS),
        last_active_ms: now_ms,
        acked_below: 1,
        principal: principal.to_string(),
    };
    view.put(Cf::Sessions, &id_key(log_index), session.encode_to_vec());
    Ok(log_index)
}

/// Forgets a session and everything it remembered.
pub(crate) fn close(view: &mut BatchView<'_>, id: u64) -> Result<()> {
    if load(view, id)?.is_none() {
        return Err(StoreError::SessionExpired { session_id: id });
    }
    view.delete(Cf::Sessions, &id_key(id));
    view.delete_range_at_commit(Cf::SessionResults, id_key(id).to_vec(), id_end(id));
    Ok(())
}

/// Decides what to do with `command` from session `command.session_id` at log time
/// `now_ms`. An expired session is forgotten here, and its command refused.
pub(crate) fn admit(view: &mut BatchView<'_>, command: &Command, now_ms: i64) -> Result<Admission> {
    let id = command.session_id;
    let Some(session) = load(view, id)? else {
        return Err(StoreError::SessionExpired { session_id: id });
    };
    if session.last_active_ms.saturating_add(session.ttl_ms) < now_ms {
        close(view, id)?;
        return Err(StoreError::SessionExpired { session_id: id });
    }
    let sequence = command.sequence;
    if sequence == 0 {
        return Err(StoreError::InvalidArgument(
            "vane: a request in a session must carry a sequence number from 1".into(),
        ));
    }
    if command.acked_below > sequence {
        return Err(StoreError::InvalidArgument(format!(
            "vane: request {sequence} claims every request below {} was acknowledged, itself included",
            command.acked_below
        )));
    }
    if sequence < session.acked_below {
        return Err(StoreError::SessionSequence(format!(
            "request {sequence} of session {id} was already acknowledged to the client; it is not applied again"
        )));
    }
    if let Some(bytes) = view.get(Cf::SessionResults, &result_key(id, sequence))? {
        let result = CommandResult::decode(bytes.as_slice())
            .map_err(|e| StoreError::decode("session result", e))?;
        return Ok(Admission::Duplicate(result));
    }
    let acked_below = session.acked_below.max(command.acked_below);
    if sequence >= acked_below.saturating_add(SESSION_UNACKED_MAX) {
        return Err(StoreError::SessionSequence(format!(
            "session {id} has {SESSION_UNACKED_MAX} unacknowledged requests; acknowledge results before sending more"
        )));
    }
    Ok(Admission::Fresh(Session {
        acked_below,
        last_active_ms: now_ms,
        ..session
    }))
}

/// Records the result of a fresh command and the session's new state, dropping results
/// the client has acknowledged.
pub(crate) fn remember(
    view: &mut BatchView<'_>,
    before: &Session,
    after: &Session,
    sequence: u64,
    result: &CommandResult,
) {
    if after.acked_below > before.acked_below {
        view.delete_range_at_commit(
            Cf::SessionResults,
            result_key(after.id, before.acked_below),
            result_key(after.id, after.acked_below),
        );
    }
    view.put(
        Cf::SessionResults,
        &result_key(after.id, sequence),
        result.encode_to_vec(),
    );
    view.put(Cf::Sessions, &id_key(after.id), after.encode_to_vec());
}

/// The stored state of a session, for inspection.
pub(crate) fn get(reader: &dyn Reader, id: u64) -> Result<Option<Session>> {
    load(reader, id)
}
