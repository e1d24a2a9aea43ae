//! In-process two-thread throughput: one producer thread, one consumer thread, each pinned
//! to its own core, streaming through a memfd ring. Prints messages/s and GB/s per size, for
//! per-message `send`/`recv` and for batched sends and receives.
//!
//! ```text
//! cargo run --release -p ringfile --example throughput [-- SIZE... ]
//! ```
//!
//! The cross-process benchmarks and the comparisons with other transports are in `benches/`.

use ringfile::{Ring, WaitStrategy};
use std::time::{Duration, Instant};

fn pin(core: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn run(size: usize, batched: bool, budget: Duration) -> (f64, f64) {
    let ring = Ring::memfd(8 << 20).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    producer.set_wait_strategy(WaitStrategy::Spin);
    consumer.set_wait_strategy(WaitStrategy::Spin);
    // Enough messages for about `budget`, assuming ~2 GB/s or 50 M msg/s, whichever is fewer.
    let count =
        ((budget.as_secs_f64() * 2e9 / size.max(1) as f64) as u64).clamp(10_000, 100_000_000);
    let count = count.min((budget.as_secs_f64() * 50e6) as u64);
    // Not `available_parallelism`: it honours this thread's affinity mask, which the first
    // run has already narrowed to one core.
    // SAFETY: sysconf has no preconditions.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let sender = std::thread::spawn(move || {
        pin(0);
        let msg = vec![0xabu8; size];
        if batched {
            let mut sent = 0;
            while sent < count {
                let mut batch = producer.batch();
                for _ in 0..64.min(count - sent) {
                    batch.send(&msg).unwrap();
                    sent += 1;
                }
            }
        } else {
            for _ in 0..count {
                producer.send(&msg).unwrap();
            }
        }
        producer.close().unwrap();
    });
    pin(1 % cores);
    let start = Instant::now();
    let mut received = 0u64;
    let mut bytes = 0u64;
    if batched {
        loop {
            let mut batch = consumer.recv_batch().unwrap();
            while let Some(msg) = batch.next().unwrap() {
                bytes += msg.len() as u64;
                received += 1;
            }
            if batch.is_end() {
                break;
            }
        }
    } else {
        while let Some(msg) = consumer.recv().unwrap() {
            bytes += msg.len() as u64;
            received += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    sender.join().unwrap();
    assert_eq!(received, count);
    (received as f64 / secs, bytes as f64 / secs / 1e9)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("sizes are byte counts"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![8, 64, 1024, 65536]
    } else {
        sizes
    };
    println!("| size (B) | mode | messages/s | GB/s |");
    println!("|---:|---|---:|---:|");
    for &size in &sizes {
        for batched in [false, true] {
            // Median of five runs.
            let mut runs: Vec<(f64, f64)> = (0..5)
                .map(|_| run(size, batched, Duration::from_millis(300)))
                .collect();
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (rate, gbps) = runs[2];
            let mode = if batched {
                "batch of 64"
            } else {
                "per message"
            };
            println!("| {size} | {mode} | {:.2} M | {gbps:.2} |", rate / 1e6);
        }
    }
}
