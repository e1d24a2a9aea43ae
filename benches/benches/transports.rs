//! Criterion groups: cross-process and in-process throughput of ringfile and its baselines
//! (iceoryx2 and ipc-channel among them), and the cross-process round trip. Pinned to cores 0
//! and 1, or to `RINGFILE_BENCH_CORES=A,B`.
//! `cargo bench -p benches` (HTML reports under target/criterion). The side-by-side report with
//! ratios, latency and the chart is `cargo run --release -p benches --bin report`.

use benches::inprocess::{two_threads, Queue};
use benches::latency::{round_trips, PingPong};
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
            Transport::RingfileRead,
            Transport::FloorRead,
            Transport::Pipe,
            Transport::UnixStream,
            Transport::Iceoryx2,
            Transport::IpcChannel,
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

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for kind in PingPong::ALL {
        group.bench_function(BenchmarkId::new(kind.name(), 8), |b| {
            // Each sample: that many round trips after a warm-up, timed one by one.
            b.iter_custom(|iters| {
                let h = round_trips(kind, 8, iters.max(1));
                Duration::from_nanos((h.mean() * h.len() as f64) as u64)
            })
        });
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
    round_trip(&mut c);
    c.final_summary();
}
