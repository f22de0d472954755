//! Micro-benchmarks of the state machine on real RocksDB: applying batches of puts (the
//! apply path of every write) and point and range reads (the read path), so a
//! regression shows up locally before it shows up in `make bench-compare`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vane_proto::etcdserverpb::{PutRequest, RangeRequest};
use vane_proto::raft::command::Op;
use vane_proto::raft::{Command, LogId};
use vane_raft_store::{ApplyItem, ApplyPayload, DataDir, Limits, StateMachine};

struct Bench {
    _dir: tempfile::TempDir,
    sm: StateMachine,
    next_index: u64,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = Arc::new(DataDir::open(dir.path()).expect("data dir"));
        let sm = StateMachine::open(data, Limits::default()).expect("state machine");
        Bench {
            _dir: dir,
            sm,
            next_index: 1,
        }
    }

    fn puts(&mut self, count: u64, key_space: u64, value_bytes: usize) -> Vec<ApplyItem> {
        puts(&mut self.next_index, count, key_space, value_bytes)
    }
}

fn puts(next_index: &mut u64, count: u64, key_space: u64, value_bytes: usize) -> Vec<ApplyItem> {
    {
        (0..count)
            .map(|_| {
                let index = *next_index;
                *next_index += 1;
                ApplyItem {
                    log_id: LogId {
                        term: 1,
                        node_id: 1,
                        index,
                    },
                    payload: ApplyPayload::Command(Command {
                        proposed_at_ms: index as i64,
                        op: Some(Op::Put(PutRequest {
                            key: format!("/config/service-{:06}", index % key_space).into_bytes(),
                            value: vec![b'x'; value_bytes],
                            ..Default::default()
                        })),
                        ..Default::default()
                    }),
                }
            })
            .collect()
    }
}

fn apply_batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_puts");
    for batch in [1u64, 16, 256] {
        let bench = Bench::new();
        let mut next_index = 1;
        group.throughput(Throughput::Elements(batch));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_batched(
                || puts(&mut next_index, batch, 100_000, 256),
                |items| black_box(bench.sm.apply(&items).expect("apply")),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let mut bench = Bench::new();
    for _ in 0..100 {
        let items = bench.puts(1_000, 10_000, 256);
        bench.sm.apply(&items).expect("seed");
    }
    let mut group = c.benchmark_group("read");
    let mut i = 0u64;
    group.bench_function("point_get_current", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            let key = format!("/config/service-{i:06}").into_bytes();
            black_box(
                bench
                    .sm
                    .range(&RangeRequest {
                        key,
                        ..Default::default()
                    })
                    .expect("get"),
            )
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("range_100_current", |b| {
        b.iter(|| {
            black_box(
                bench
                    .sm
                    .range(&RangeRequest {
                        key: b"/config/service-004000".to_vec(),
                        range_end: b"/config/service-004100".to_vec(),
                        ..Default::default()
                    })
                    .expect("range"),
            )
        })
    });
    let old = bench.sm.revisions().expect("revisions").current - 50_000;
    group.throughput(Throughput::Elements(1));
    group.bench_function("point_get_history", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            let key = format!("/config/service-{i:06}").into_bytes();
            black_box(
                bench
                    .sm
                    .range(&RangeRequest {
                        key,
                        revision: old,
                        ..Default::default()
                    })
                    .expect("get at revision"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, apply_batches, reads);
criterion_main!(benches);
