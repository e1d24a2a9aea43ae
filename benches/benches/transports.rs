//! Criterion groups: cross-process and in-process throughput of ringfile and its baselines.
//! `cargo bench -p benches` (HTML reports under target/criterion). The side-by-side report with
//! ratios, latency and the chart is `cargo run --release -p benches --bin report`.

use benches::inprocess::{two_threads, Queue};
use benches::{cross_process, Stop, Transport};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::time::Duration;

const CAPACITY: u64 = 8 << 20;

fn cross(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_process");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for size in [8usize, 64, 1024, 65536] {
        group.throughput(Throughput::Elements(1));
        for t in [
            Transport::Ringfile,
            Transport::RingfilePerMessage,
            Transport::Floor,
            Transport::Pipe,
            Transport::UnixStream,
        ] {
            group.bench_with_input(BenchmarkId::new(t.name(), size), &size, |b, &size| {
                // Time measured by the receiving process, first message to end of stream.
                b.iter_custom(|iters| {
                    cross_process(t, size, CAPACITY, Stop::Count(iters.max(64))).elapsed
                })
            });
        }
    }
    group.finish();
}

fn in_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("in_process");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for size in [8usize, 64, 1024] {
        group.throughput(Throughput::Elements(1));
        for q in Queue::ALL {
            group.bench_with_input(BenchmarkId::new(q.name(), size), &size, |b, &size| {
                b.iter_custom(|iters| {
                    two_threads(q, size, CAPACITY, Stop::Count(iters.max(64))).elapsed
                })
            });
        }
    }
    group.finish();
}

fn main() {
    // This binary is also the receiving process of cross-process runs.
    if benches::child_main() {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    cross(&mut c);
    in_process(&mut c);
    c.final_summary();
}
