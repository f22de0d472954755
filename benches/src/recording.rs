//! What the clients of a run measured: latencies per operation kind, errors per label, CAS
//! contention. Each client fills its own `Recording` without locks; the run merges them
//! once every client has stopped.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::BenchError;
use crate::histogram::LatencyHistogram;
use crate::outcome::{Completed, OperationKind, Outcome};

/// Measurements of one client, or of a whole run once merged.
#[derive(Debug, Clone)]
pub struct Recording {
    empty_histogram: LatencyHistogram,
    /// Latencies of successful operations, by kind.
    pub latencies: BTreeMap<OperationKind, LatencyHistogram>,
    /// Failed operations by failure label.
    pub errors: BTreeMap<String, u64>,
    /// Failed CAS compares (each one retried).
    pub cas_conflicts: u64,
    /// CAS operations that gave up after their last attempt conflicted.
    pub cas_abandoned: u64,
}

impl Recording {
    /// An empty recording.
    pub fn new() -> Result<Self, BenchError> {
        Ok(Recording {
            empty_histogram: LatencyHistogram::new()?,
            latencies: BTreeMap::new(),
            errors: BTreeMap::new(),
            cas_conflicts: 0,
            cas_abandoned: 0,
        })
    }

    /// Records a finished operation that took `latency`.
    pub fn record(&mut self, completed: &Completed, latency: Duration) {
        self.cas_conflicts += completed.cas_conflicts;
        match &completed.outcome {
            Outcome::Succeeded => self.record_latency(completed.kind, latency),
            Outcome::Failed(failure) => *self.errors.entry(failure.label()).or_default() += 1,
            Outcome::Abandoned => self.cas_abandoned += 1,
        }
    }

    /// Records the latency of one successful operation of `kind`.
    pub fn record_latency(&mut self, kind: OperationKind, latency: Duration) {
        self.histogram_mut(kind).record(latency);
    }

    /// Records a latency measured in microseconds (watch delivery, computed from a
    /// timestamp carried in the value).
    pub fn record_latency_micros(&mut self, kind: OperationKind, latency_us: u64) {
        self.histogram_mut(kind).record_micros(latency_us);
    }

    /// Counts one failure under `label` that is not tied to a timed operation.
    pub fn record_error(&mut self, label: String) {
        *self.errors.entry(label).or_default() += 1;
    }

    /// Adds everything `other` recorded.
    pub fn merge(&mut self, other: &Recording) -> Result<(), BenchError> {
        for (kind, histogram) in &other.latencies {
            self.histogram_mut(*kind).merge(histogram)?;
        }
        for (label, count) in &other.errors {
            *self.errors.entry(label.clone()).or_default() += count;
        }
        self.cas_conflicts += other.cas_conflicts;
        self.cas_abandoned += other.cas_abandoned;
        Ok(())
    }

    fn histogram_mut(&mut self, kind: OperationKind) -> &mut LatencyHistogram {
        self.latencies
            .entry(kind)
            .or_insert_with(|| self.empty_histogram.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Failure;

    #[test]
    fn outcomes_land_in_latencies_errors_or_cas_counts() {
        let mut recording = Recording::new().unwrap();
        let latency = Duration::from_micros(250);
        recording.record(&Completed::new(OperationKind::Put, Ok(())), latency);
        recording.record(
            &Completed::new(
                OperationKind::Put,
                Err(Failure::Status(tonic::Code::Unavailable)),
            ),
            latency,
        );
        recording.record(
            &Completed {
                kind: OperationKind::Cas,
                outcome: Outcome::Abandoned,
                cas_conflicts: 3,
            },
            latency,
        );
        assert_eq!(recording.latencies[&OperationKind::Put].count(), 1);
        assert!(!recording.latencies.contains_key(&OperationKind::Cas));
        assert_eq!(recording.errors["Unavailable"], 1);
        assert_eq!((recording.cas_conflicts, recording.cas_abandoned), (3, 1));
    }

    #[test]
    fn merging_sums_every_field() {
        let mut first = Recording::new().unwrap();
        let mut second = Recording::new().unwrap();
        first.record_latency(OperationKind::Get, Duration::from_micros(10));
        second.record_latency(OperationKind::Get, Duration::from_micros(20));
        second.record_latency(OperationKind::Put, Duration::from_micros(30));
        first.record_error("Unavailable".into());
        second.record_error("Unavailable".into());
        second.cas_conflicts = 2;
        first.merge(&second).unwrap();
        assert_eq!(first.latencies[&OperationKind::Get].count(), 2);
        assert_eq!(first.latencies[&OperationKind::Put].count(), 1);
        assert_eq!(first.errors["Unavailable"], 2);
        assert_eq!(first.cas_conflicts, 2);
    }
}
