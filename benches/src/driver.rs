//! The measured phase: one tokio task per client, each taking tickets from the shared
//! [`Schedule`], waiting until a ticket is due (open loop), executing its workload's
//! operation and recording the outcome in its own [`Recording`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::BenchError;
use crate::outcome::Completed;
use crate::recording::Recording;
use crate::schedule::Schedule;

/// One client's workload: what one request (or one CAS, with its retries) does. Each client
/// owns its operation, so an operation keeps per-client state (random generator, open
/// streams) without sharing.
pub trait Operation: Send + 'static {
    /// Sends one operation and reports how it ended.
    fn execute(&mut self) -> impl Future<Output = Completed> + Send;
}

/// What the measured phase produced.
#[derive(Debug)]
pub struct Measured<O> {
    /// The operations, handed back so a workload can read the state they gathered.
    pub operations: Vec<O>,
    /// Every client's measurements, merged.
    pub recording: Recording,
    /// From the start of the schedule until the last client stopped.
    pub elapsed: Duration,
}

/// Runs one client per operation until `schedule` runs out of tickets.
pub async fn drive_clients<O: Operation>(
    operations: Vec<O>,
    schedule: Arc<Schedule>,
    start: Instant,
) -> Result<Measured<O>, BenchError> {
    let empty_recording = Recording::new()?;
    let clients: Vec<_> = operations
        .into_iter()
        .map(|operation| {
            let schedule = Arc::clone(&schedule);
            let recording = empty_recording.clone();
            tokio::spawn(run_request_loop(operation, schedule, recording))
        })
        .collect();

    let mut operations = Vec::with_capacity(clients.len());
    let mut recording = empty_recording;
    for client in clients {
        let (operation, client_recording) = client.await?;
        recording.merge(&client_recording)?;
        operations.push(operation);
    }
    Ok(Measured {
        operations,
        recording,
        elapsed: start.elapsed(),
    })
}

async fn run_request_loop<O: Operation>(
    mut operation: O,
    schedule: Arc<Schedule>,
    mut recording: Recording,
) -> (O, Recording) {
    while let Some(ticket) = schedule.next_ticket(Instant::now()) {
        let measured_from = match ticket.due_at {
            // Not due yet: the client is idle and waits. The timer wakes it up to a
            // millisecond late, which is the client's doing, so latency runs from the send.
            Some(due_at) if due_at > Instant::now() => {
                tokio::time::sleep_until(due_at).await;
                Instant::now()
            }
            // Overdue: the client was held up by earlier slow requests, so the wait since
            // the due time is the server's doing and counts.
            Some(due_at) => due_at,
            None => Instant::now(),
        };
        let completed = operation.execute().await;
        recording.record(&completed, measured_from.elapsed());
    }
    (operation, recording)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::OperationKind;

    /// An operation that takes a fixed time and counts its calls.
    struct Sleeper {
        service_time: Duration,
        calls: u64,
    }

    impl Operation for Sleeper {
        async fn execute(&mut self) -> Completed {
            tokio::time::sleep(self.service_time).await;
            self.calls += 1;
            Completed::new(OperationKind::Put, Ok(()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_runs_every_ticket_once_across_clients() {
        let start = Instant::now();
        let schedule = Arc::new(Schedule::new(start, None, Some(100), None));
        let operations = (0..4)
            .map(|_| Sleeper {
                service_time: Duration::from_millis(1),
                calls: 0,
            })
            .collect();
        let measured = drive_clients(operations, schedule, start).await.unwrap();
        let calls: u64 = measured
            .operations
            .iter()
            .map(|operation| operation.calls)
            .sum();
        assert_eq!(calls, 100);
        assert_eq!(
            measured.recording.latencies[&OperationKind::Put].count(),
            100
        );
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_latency_includes_time_spent_waiting_behind_a_slow_request() {
        // One client, 1000 ops/s, each request takes 10 ms: request i is due at i ms but can
        // only start at 10*i ms, so its latency grows, instead of staying at 10 ms as a
        // closed-loop tool would report.
        let start = Instant::now();
        let schedule = Arc::new(Schedule::new(start, None, Some(10), Some(1_000.0)));
        let operations = vec![Sleeper {
            service_time: Duration::from_millis(10),
            calls: 0,
        }];
        let measured = drive_clients(operations, schedule, start).await.unwrap();
        let summary = measured.recording.latencies[&OperationKind::Put].summary();
        assert!(summary.min_us >= 10_000, "{summary:?}");
        // The last request, due at 9 ms, finishes at 100 ms.
        assert!(summary.max_us >= 90_000, "{summary:?}");
    }
}
