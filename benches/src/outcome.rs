//! What one operation of the measured phase can end as, and the per-request timeout that
//! turns a hung request into a counted `DeadlineExceeded` instead of a hung benchmark.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The kinds of operation a report breaks latencies down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperationKind {
    /// A Put.
    Put,
    /// A linearizable single-key Range.
    Get,
    /// A serializable single-key Range.
    GetSerializable,
    /// A multi-key Range.
    Range,
    /// A successful compare-and-swap, from its first Range to its winning Txn.
    Cas,
    /// A Txn that only reads several keys.
    TxnRead,
    /// One event delivered to one watcher, from the writer's send to the watcher's receipt.
    WatchEvent,
    /// One keep-alive round trip on a lease keep-alive stream.
    LeaseKeepAlive,
}

impl OperationKind {
    /// The name shown in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            OperationKind::Put => "put",
            OperationKind::Get => "get",
            OperationKind::GetSerializable => "get-serializable",
            OperationKind::Range => "range",
            OperationKind::Cas => "cas",
            OperationKind::TxnRead => "txn-read",
            OperationKind::WatchEvent => "watch-event",
            OperationKind::LeaseKeepAlive => "lease-keepalive",
        }
    }
}

/// Why an operation failed: a gRPC status from the server (or the client's timeout, as
/// `DeadlineExceeded`), or a check vane-bench made on a response that did arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The request ended with this gRPC status code.
    Status(tonic::Code),
    /// The response arrived but broke an expectation, e.g. `KeyMissing` for a Range of a
    /// pre-populated key that returned nothing.
    Check(&'static str),
}

impl Failure {
    /// The label errors are counted under in a report: the gRPC code's name
    /// (`Unavailable`, `DeadlineExceeded`, ...) or the check's name.
    pub fn label(&self) -> String {
        match self {
            Failure::Status(code) => format!("{code:?}"),
            Failure::Check(check) => (*check).to_owned(),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Failure::Status(status.code())
    }
}

/// How one operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it was meant to; its latency is recorded.
    Succeeded,
    /// It failed; counted under its failure's label.
    Failed(Failure),
    /// A CAS gave up after its attempts were all conflicts; counted apart from errors,
    /// because contention is what the `cas` workload measures, not a fault.
    Abandoned,
}

/// One finished operation, as a client's request loop records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// What the operation was, for the per-kind breakdown.
    pub kind: OperationKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Failed compares on the way (CAS only; 0 elsewhere).
    pub cas_conflicts: u64,
}

impl Completed {
    /// A finished operation without CAS conflicts.
    pub fn new(kind: OperationKind, result: Result<(), Failure>) -> Self {
        Completed {
            kind,
            outcome: match result {
                Ok(()) => Outcome::Succeeded,
                Err(failure) => Outcome::Failed(failure),
            },
            cas_conflicts: 0,
        }
    }
}

/// Runs one request (or one round trip on a stream) with the run's timeout; a request still
/// pending after `timeout` is dropped, which cancels it, and fails as `DeadlineExceeded`.
pub async fn within_timeout<T, E: Into<Failure>>(
    timeout: Duration,
    request: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => Err(error.into()),
        Err(_elapsed) => Err(Failure::Status(tonic::Code::DeadlineExceeded)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_labelled_by_grpc_code_name_or_check_name() {
        assert_eq!(
            Failure::Status(tonic::Code::Unavailable).label(),
            "Unavailable"
        );
        assert_eq!(
            Failure::Status(tonic::Code::DeadlineExceeded).label(),
            "DeadlineExceeded"
        );
        assert_eq!(Failure::Check("KeyMissing").label(), "KeyMissing");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_its_timeout_counts_as_deadline_exceeded() {
        let hung = std::future::pending::<Result<(), tonic::Status>>();
        let result = within_timeout(Duration::from_millis(10), hung).await;
        assert_eq!(result, Err(Failure::Status(tonic::Code::DeadlineExceeded)));
    }
}
