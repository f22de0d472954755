//! A watch that survives member failures: [`Watcher`] delivers every revision in its
//! range exactly once, in order, with all events of a revision in one response, while
//! the members serving it crash and restart underneath.
//!
//! The whole mechanism is one number, the resume point: the first revision not yet fully
//! delivered. It advances only past revisions the caller has received in full (the last
//! event's revision of a complete response, fragments reassembled first), or to a
//! progress notification's revision, which the server sends only when it has nothing
//! older left to send. When the stream breaks, the watch is created again on another
//! member with `start_revision` = the resume point, so nothing is skipped (history is
//! replayed from there) and nothing repeats (everything before it was delivered). A
//! compaction past the resume point is the one thing that cannot be bridged: it ends the
//! watch with [`Error::Compacted`].

use std::sync::Arc;
use std::time::Instant;

use crate::auth::token_refusal_in_cancel_reason;
use crate::members::Conn;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use vane_proto::etcdserverpb::watch_client::WatchClient;
use vane_proto::etcdserverpb::watch_request::RequestUnion;
use vane_proto::etcdserverpb::{
    WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use vane_proto::mvccpb::Event;

use crate::client::{Client, Inner};
use crate::error::{COMPACTED_MESSAGE, Error, Failure};
use crate::kv::RESPONSE_BYTES_MAX;
use crate::members::Route;
use crate::retry::Backoff;

/// Requests (create, cancel, progress) queued towards one member: a watcher sends a
/// handful in its life.
const WATCH_REQUESTS_QUEUED_MAX: usize = 4;
/// etcd's watch id on responses that concern the whole stream (progress answers).
const STREAM_WATCH_ID: i64 = -1;

fn watch_client(channel: Conn) -> WatchClient<Conn> {
    WatchClient::new(channel).max_decoding_message_size(RESPONSE_BYTES_MAX)
}

/// The watch's stream on one member.
struct Connection {
    url: String,
    requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
    /// The id this member gave the watch.
    server_watch_id: i64,
}

/// Why (re)creating the watch did not work.
enum CreateError {
    /// The watch cannot go on anywhere (compacted start, invalid request).
    Terminal(Error),
    /// This member failed; another may do.
    Failed(Failure),
}

/// What a response from the member means for the caller.
enum Absorbed {
    /// Hand this to the caller.
    Deliver(WatchResponse),
    /// Nothing for the caller (a fragment, a confirmation).
    Nothing,
    /// The watch has ended for good.
    Terminal(Error),
    /// The member ended the watch; the caller asked for it.
    Ended,
    /// The member dropped the watch without a reason: resume elsewhere.
    Resume,
}

/// A watch that resumes on another member after failures; see the module comment for
/// its guarantees. Dropping it (or [`Watcher::cancel`]) ends the watch on the server.
pub struct Watcher {
    inner: Arc<Inner>,
    /// The request as the caller made it; `start_revision` is replaced on resume.
    template: WatchCreateRequest,
    /// The id reported to the caller: the first member's, kept across resumes.
    watch_id: Option<i64>,
    /// The resume point and any half-received response.
    delivery: Delivery,
    connection: Option<Connection>,
    /// A terminal error found while creating the watch, reported by the first `next`.
    pending_error: Option<Error>,
    finished: bool,
    cancel_requested: bool,
    /// The member that failed last, avoided by the next attempt.
    avoid: Option<String>,
    /// Since when every attempt to resume has failed.
    failing_since: Option<Instant>,
    backoff: Backoff,
}

impl Client {
    /// etcd's Watch, resumable: creates the watch on some member (waiting for its
    /// confirmation, so "from now" is a definite revision) and returns the [`Watcher`]
    /// that delivers its responses. A request the server refuses outright (no key) fails
    /// here; a compacted `start_revision` is reported by the first
    /// [`Watcher::next`] as [`Error::Compacted`].
    pub async fn watch(&self, req: WatchCreateRequest) -> Result<Watcher, Error> {
        let mut watcher = Watcher {
            inner: self.inner.clone(),
            delivery: Delivery {
                resume_revision: req.start_revision.max(0),
                fragments: Vec::new(),
            },
            template: req,
            watch_id: None,
            connection: None,
            pending_error: None,
            finished: false,
            cancel_requested: false,
            avoid: None,
            failing_since: None,
            backoff: Backoff::default(),
        };
        match watcher.resume().await {
            Ok(()) => Ok(watcher),
            Err(CreateError::Terminal(error @ Error::Compacted { .. })) => {
                watcher.pending_error = Some(error);
                Ok(watcher)
            }
            Err(CreateError::Terminal(error)) => Err(error),
            Err(CreateError::Failed(failure)) => Err(failure.into_error()),
        }
    }
}

impl Watcher {
    /// The next response: events of one or more whole revisions, or a progress
    /// notification (no events; its header revision is the point the watch has seen
    /// everything up to). `Err(Error::Compacted)` and refusals end the watch (`None`
    /// follows); `Err(Error::Unavailable)` says no member could resume it for
    /// `request_timeout` and is not final: calling `next` again keeps trying.
    pub async fn next(&mut self) -> Option<Result<WatchResponse, Error>> {
        if let Some(error) = self.pending_error.take() {
            self.finish();
            return Some(Err(error));
        }
        if self.finished {
            return None;
        }
        loop {
            if self.connection.is_none() {
                match self.resume().await {
                    Ok(()) => {}
                    Err(CreateError::Terminal(error)) => {
                        self.finish();
                        return Some(Err(error));
                    }
                    Err(CreateError::Failed(failure)) => return Some(Err(failure.into_error())),
                }
            }
            let connection = self.connection.as_mut()?;
            let received = connection.responses.message().await;
            match received {
                Ok(Some(response)) => match self.delivery.absorb(
                    response,
                    connection.server_watch_id,
                    self.watch_id.unwrap_or(connection.server_watch_id),
                    self.cancel_requested,
                ) {
                    Absorbed::Deliver(response) => return Some(Ok(response)),
                    Absorbed::Nothing => {}
                    Absorbed::Terminal(error) => {
                        self.finish();
                        return Some(Err(error));
                    }
                    Absorbed::Ended => {
                        self.finish();
                        return None;
                    }
                    Absorbed::Resume => self.lose_connection(None),
                },
                Ok(None) => self.lose_connection(None),
                Err(status) => self.lose_connection(Some(Failure::of(&status))),
            }
        }
    }

    /// The watch as a [`Stream`] of what [`Watcher::next`] returns.
    pub fn into_stream(self) -> impl Stream<Item = Result<WatchResponse, Error>> + Send {
        futures::stream::unfold(self, |mut watcher| async move {
            watcher.next().await.map(|item| (item, watcher))
        })
    }

    /// Ends the watch: tells the member, and makes [`Watcher::next`] return `None`.
    pub async fn cancel(&mut self) {
        self.cancel_requested = true;
        if let Some(connection) = self.connection.take() {
            let cancel = WatchRequest {
                request_union: Some(RequestUnion::CancelRequest(WatchCancelRequest {
                    watch_id: connection.server_watch_id,
                })),
            };
            // Best effort: dropping the stream below ends the watch on the member anyway.
            let _ = connection.requests.send(cancel).await;
        }
        self.finish();
    }

    /// Asks the member for a progress notification (answered once the watch is up to
    /// date). Fails when the watch is between members.
    pub async fn request_progress(&self) -> Result<(), Error> {
        let Some(connection) = &self.connection else {
            return Err(Error::Unavailable {
                message: "watch: not attached to a member right now".to_string(),
            });
        };
        let progress = WatchRequest {
            request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})),
        };
        connection
            .requests
            .send(progress)
            .await
            .map_err(|_| Error::Unavailable {
                message: "watch: the stream to the member has closed".to_string(),
            })
    }

    /// The id responses carry (the one the first member gave the watch).
    pub fn watch_id(&self) -> i64 {
        self.watch_id.unwrap_or(self.template.watch_id)
    }

    /// The first revision not yet delivered in full: where the watch resumes after a
    /// failure.
    pub fn resume_revision(&self) -> i64 {
        self.delivery.resume_revision
    }

    /// The client URL of the member serving the watch now, if any.
    pub fn endpoint(&self) -> Option<&str> {
        self.connection.as_ref().map(|c| c.url.as_str())
    }

    fn finish(&mut self) {
        self.finished = true;
        self.connection = None;
        self.delivery.fragments.clear();
    }

    /// The stream broke: drop it and what it half-delivered; the next `next` resumes.
    fn lose_connection(&mut self, failure: Option<Failure>) {
        if let Some(connection) = self.connection.take() {
            tracing::debug!(
                member = %connection.url,
                resume_revision = self.delivery.resume_revision,
                error = ?failure.as_ref().map(|f| f.clone().into_error()),
                "watch stream lost; resuming"
            );
            if failure.as_ref().is_none_or(Failure::member_unreachable) {
                self.inner.pool.mark_unreachable(&connection.url);
            }
            self.avoid = Some(connection.url);
        }
        self.delivery.fragments.clear();
    }

    /// Creates the watch on some member, trying members with backoff for up to
    /// `request_timeout`.
    async fn resume(&mut self) -> Result<(), CreateError> {
        loop {
            let pick = self.inner.pool.pick(Route::Read, self.avoid.as_deref());
            match self.create_on(pick.url.clone(), pick.channel).await {
                Ok(connection) => {
                    self.connection = Some(connection);
                    self.failing_since = None;
                    self.backoff = Backoff::default();
                    return Ok(());
                }
                Err(CreateError::Terminal(error))
                | Err(CreateError::Failed(Failure::Final(error))) => {
                    // A refusal (permission, credentials) that another member would repeat.
                    return Err(CreateError::Terminal(error));
                }
                Err(CreateError::Failed(failure)) => {
                    if failure.member_unreachable() {
                        self.inner.pool.mark_unreachable(&pick.url);
                    }
                    self.avoid = Some(pick.url.clone());
                    let since = *self.failing_since.get_or_insert_with(Instant::now);
                    let timeout = self.inner.config.request_timeout;
                    if since.elapsed() >= timeout {
                        self.failing_since = None;
                        return Err(CreateError::Failed(Failure::Unknown(Error::Unavailable {
                            message: format!(
                                "watch: no member could resume the watch at revision {} within \
                                 {} ms; last error from {}: {}",
                                self.delivery.resume_revision,
                                timeout.as_millis(),
                                pick.url,
                                failure.into_error()
                            ),
                        })));
                    }
                    tokio::time::sleep(self.backoff.next_pause()).await;
                }
            }
        }
    }

    /// Creates the watch on one member, from the resume point, and waits for the
    /// confirmation.
    async fn create_on(&mut self, url: String, channel: Conn) -> Result<Connection, CreateError> {
        let attempt_timeout = self.inner.config.attempt_timeout;
        let timed_out = || {
            CreateError::Failed(Failure::Unknown(Error::Timeout {
                message: format!(
                    "watch: {url} did not confirm the watch within {} ms",
                    attempt_timeout.as_millis()
                ),
            }))
        };
        let create = WatchCreateRequest {
            start_revision: self.delivery.resume_revision,
            ..self.template.clone()
        };
        let (requests, outbound) = mpsc::channel(WATCH_REQUESTS_QUEUED_MAX);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(create)),
        };
        if requests.send(create).await.is_err() {
            return Err(CreateError::Failed(Failure::Unknown(Error::Unavailable {
                message: "watch: request queue closed".to_string(),
            })));
        }
        let token_generation = self.inner.token.generation();
        let opened = tokio::time::timeout(
            attempt_timeout,
            watch_client(channel).watch(ReceiverStream::new(outbound)),
        )
        .await;
        let mut responses = match opened {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                let failure = self.inner.stream_failure(&status, token_generation).await;
                return Err(CreateError::Failed(failure));
            }
            Err(_) => return Err(timed_out()),
        };
        let confirmation = match tokio::time::timeout(attempt_timeout, responses.message()).await {
            Ok(Ok(Some(response))) => response,
            Ok(Ok(None)) => {
                return Err(CreateError::Failed(Failure::Unknown(Error::Unavailable {
                    message: format!("watch: {url} closed the stream before confirming"),
                })));
            }
            Ok(Err(status)) => {
                let failure = self.inner.stream_failure(&status, token_generation).await;
                return Err(CreateError::Failed(failure));
            }
            Err(_) => return Err(timed_out()),
        };
        if confirmation.canceled {
            if let Some(status) = token_refusal_in_cancel_reason(&confirmation.cancel_reason) {
                let failure = self.inner.stream_failure(&status, token_generation).await;
                return Err(CreateError::Failed(failure));
            }
            return Err(CreateError::Terminal(cancellation_error(&confirmation)));
        }
        if !confirmation.created {
            return Err(CreateError::Failed(Failure::Unknown(Error::Unavailable {
                message: format!("watch: {url} answered a create without confirming it"),
            })));
        }
        if self.delivery.resume_revision <= 0 {
            // "From now": the member's head at creation is what the caller has seen.
            let head = confirmation.header.as_ref().map_or(0, |h| h.revision);
            self.delivery.resume_revision = head + 1;
        }
        if self.watch_id.is_none() {
            self.watch_id = Some(confirmation.watch_id);
        }
        Ok(Connection {
            url,
            requests,
            responses,
            server_watch_id: confirmation.watch_id,
        })
    }
}

/// The watch's resume point and its half-received response: the part of a watcher that
/// decides what reaches the caller, apart from the network so its rules stand alone.
#[derive(Debug, Default)]
struct Delivery {
    /// First revision not yet fully delivered; 0 until the first member said where "now"
    /// is.
    resume_revision: i64,
    /// Events of a fragmented response whose last fragment has not arrived.
    fragments: Vec<Event>,
}

impl Delivery {
    /// Folds one response from the member into the watch's state. `server_watch_id` is the id the current member gave the watch, `watch_id` the one
    /// the caller knows.
    fn absorb(
        &mut self,
        mut response: WatchResponse,
        server_watch_id: i64,
        watch_id: i64,
        cancel_requested: bool,
    ) -> Absorbed {
        if response.watch_id != server_watch_id && response.watch_id != STREAM_WATCH_ID {
            return Absorbed::Nothing;
        }
        if response.canceled {
            if response.compact_revision > 0 || !response.cancel_reason.is_empty() {
                return Absorbed::Terminal(cancellation_error(&response));
            }
            if cancel_requested {
                return Absorbed::Ended;
            }
            return Absorbed::Resume;
        }
        if response.created {
            return Absorbed::Nothing;
        }
        if response.fragment {
            self.fragments.append(&mut response.events);
            return Absorbed::Nothing;
        }
        if response.events.is_empty() {
            // A progress notification: the member has sent everything up to its head.
            // Its revision counts only if no fragmented response is half delivered.
            let Some(header) = &response.header else {
                return Absorbed::Nothing;
            };
            if !self.fragments.is_empty() {
                return Absorbed::Nothing;
            }
            self.resume_revision = self.resume_revision.max(header.revision + 1);
            return Absorbed::Deliver(WatchResponse {
                watch_id,
                fragment: false,
                ..response
            });
        }
        let mut events = std::mem::take(&mut self.fragments);
        events.append(&mut response.events);
        // Never hand out a revision twice, whatever a member sends.
        let resume_revision = self.resume_revision;
        events.retain(|e| {
            e.kv.as_ref()
                .is_none_or(|kv| kv.mod_revision >= resume_revision)
        });
        if events.is_empty() {
            return Absorbed::Nothing;
        }
        let last = events
            .iter()
            .filter_map(|e| e.kv.as_ref().map(|kv| kv.mod_revision))
            .max()
            .unwrap_or(0);
        self.resume_revision = self.resume_revision.max(last + 1);
        Absorbed::Deliver(WatchResponse {
            watch_id,
            events,
            fragment: false,
            ..response
        })
    }
}

/// The error a member's cancellation of the watch means.
fn cancellation_error(response: &WatchResponse) -> Error {
    if response.compact_revision > 0 {
        let message = if response.cancel_reason.is_empty() {
            COMPACTED_MESSAGE.to_string()
        } else {
            response.cancel_reason.clone()
        };
        return Error::Compacted {
            compact_revision: response.compact_revision,
            message,
        };
    }
    let reason = if response.cancel_reason.is_empty() {
        "watch canceled by the server".to_string()
    } else {
        response.cancel_reason.clone()
    };
    if reason.contains("permission denied") {
        Error::Permission { message: reason }
    } else {
        Error::Invalid { message: reason }
    }
}

#[cfg(test)]
mod tests {
    use vane_proto::etcdserverpb::ResponseHeader;
    use vane_proto::mvccpb::KeyValue;

    use super::*;

    const SERVER_ID: i64 = 3;
    const CALLER_ID: i64 = 0;

    fn event(revision: i64, key: &str) -> Event {
        Event {
            kv: Some(KeyValue {
                key: key.into(),
                mod_revision: revision,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn response(head: i64, events: Vec<Event>, fragment: bool) -> WatchResponse {
        WatchResponse {
            header: Some(ResponseHeader {
                revision: head,
                ..Default::default()
            }),
            watch_id: SERVER_ID,
            events,
            fragment,
            ..Default::default()
        }
    }

    fn delivered(absorbed: Absorbed) -> WatchResponse {
        match absorbed {
            Absorbed::Deliver(response) => response,
            _ => panic!("expected a delivery"),
        }
    }

    fn revisions(response: &WatchResponse) -> Vec<i64> {
        response
            .events
            .iter()
            .map(|e| e.kv.as_ref().map_or(0, |kv| kv.mod_revision))
            .collect()
    }

    #[test]
    fn events_advance_the_resume_point_past_their_last_revision_only() {
        let mut delivery = Delivery {
            resume_revision: 5,
            ..Default::default()
        };
        // The header says head 40, but only revisions up to 7 were sent.
        let out = delivered(delivery.absorb(
            response(40, vec![event(5, "a"), event(7, "a"), event(7, "b")], false),
            SERVER_ID,
            CALLER_ID,
            false,
        ));
        assert_eq!(revisions(&out), vec![5, 7, 7]);
        assert_eq!(out.watch_id, CALLER_ID, "the caller's id survives resumes");
        assert_eq!(delivery.resume_revision, 8);
    }

    #[test]
    fn fragments_are_delivered_whole_and_a_progress_waits_for_them() {
        let mut delivery = Delivery {
            resume_revision: 10,
            ..Default::default()
        };
        let first = delivery.absorb(
            response(10, vec![event(10, "a")], true),
            SERVER_ID,
            CALLER_ID,
            false,
        );
        assert!(matches!(first, Absorbed::Nothing));
        assert_eq!(
            delivery.resume_revision, 10,
            "half a revision is not delivered"
        );
        let progress = delivery.absorb(response(10, vec![], false), SERVER_ID, CALLER_ID, false);
        assert!(matches!(progress, Absorbed::Nothing));
        assert_eq!(delivery.resume_revision, 10);
        let last = delivered(delivery.absorb(
            response(10, vec![event(10, "b")], false),
            SERVER_ID,
            CALLER_ID,
            false,
        ));
        assert_eq!(revisions(&last), vec![10, 10]);
        assert!(!last.fragment);
        assert_eq!(delivery.resume_revision, 11);
    }

    #[test]
    fn a_progress_notification_moves_the_resume_point_forward_never_back() {
        let mut delivery = Delivery {
            resume_revision: 20,
            ..Default::default()
        };
        let out =
            delivered(delivery.absorb(response(30, vec![], false), SERVER_ID, CALLER_ID, false));
        assert!(out.events.is_empty());
        assert_eq!(delivery.resume_revision, 31);
        // A lagging member's progress (head 25) must not move it back.
        delivered(delivery.absorb(response(25, vec![], false), SERVER_ID, CALLER_ID, false));
        assert_eq!(delivery.resume_revision, 31);
    }

    #[test]
    fn revisions_already_delivered_are_never_delivered_again() {
        let mut delivery = Delivery {
            resume_revision: 12,
            ..Default::default()
        };
        let stale = delivery.absorb(
            response(12, vec![event(11, "a")], false),
            SERVER_ID,
            CALLER_ID,
            false,
        );
        assert!(matches!(stale, Absorbed::Nothing));
        let mixed = delivered(delivery.absorb(
            response(13, vec![event(11, "a"), event(12, "b")], false),
            SERVER_ID,
            CALLER_ID,
            false,
        ));
        assert_eq!(revisions(&mixed), vec![12]);
    }

    #[test]
    fn cancellations_end_or_resume_the_watch() {
        let mut delivery = Delivery::default();
        let compacted = WatchResponse {
            canceled: true,
            compact_revision: 9,
            ..response(20, vec![], false)
        };
        match delivery.absorb(compacted, SERVER_ID, CALLER_ID, false) {
            Absorbed::Terminal(Error::Compacted {
                compact_revision,
                message,
            }) => {
                assert_eq!(compact_revision, 9);
                assert_eq!(message, COMPACTED_MESSAGE);
            }
            _ => panic!("a compaction ends the watch"),
        }
        let silent = WatchResponse {
            canceled: true,
            ..response(20, vec![], false)
        };
        assert!(matches!(
            delivery.absorb(silent.clone(), SERVER_ID, CALLER_ID, false),
            Absorbed::Resume
        ));
        assert!(matches!(
            delivery.absorb(silent, SERVER_ID, CALLER_ID, true),
            Absorbed::Ended
        ));
        let other_watch = WatchResponse {
            watch_id: SERVER_ID + 1,
            ..response(20, vec![event(20, "x")], false)
        };
        assert!(matches!(
            delivery.absorb(other_watch, SERVER_ID, CALLER_ID, false),
            Absorbed::Nothing
        ));
    }
}
