//! The async API (`recv_async`) against the blocking one (`recv`, adaptive waiting), across
//! processes: a child process sends with the blocking API; this process receives one way or
//! the other. Three figures: throughput, one-way latency at a steady rate (where the
//! receiver goes to sleep between messages, so the wake-up path is what is measured), and
//! the CPU an idle receiver uses.

use crate::{pin, End, Measured};
use hdrhistogram::Histogram;
use ringfile::Ring;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// How this process receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receiving {
    /// `Consumer::recv`, default (adaptive) waiting: spins briefly, then sleeps on the futex.
    Blocking,
    /// `Consumer::recv_async` on a current-thread tokio runtime.
    Async,
}

impl Receiving {
    /// Both.
    pub const ALL: [Receiving; 2] = [Receiving::Blocking, Receiving::Async];

    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Receiving::Blocking => "blocking `recv` (adaptive)",
            Receiving::Async => "async `recv_async` (tokio)",
        }
    }
}

/// What the sending child does.
enum Sending {
    /// As fast as it can, for the given time.
    Flat(Duration),
    /// `count` messages, one every `interval`, each stamped with its send time.
    Steady { interval: Duration, count: u64 },
    /// Nothing, for the given time (the producer attached and silent), then close.
    Silent(Duration),
}

fn spawn_sender(path: &Path, size: usize, sending: &Sending) -> Child {
    let what = match sending {
        Sending::Flat(t) => format!("flat|{}|0", t.as_nanos()),
        Sending::Steady { interval, count } => format!("steady|{}|{count}", interval.as_nanos()),
        Sending::Silent(t) => format!("silent|{}|0", t.as_nanos()),
    };
    crate::spawn_ready(&format!("await-send|{}|{size}|{what}", path.display()))
}

/// The sending side, in the child process.
pub(crate) fn child(parts: &[&str]) {
    let path = PathBuf::from(parts[1]);
    let size: usize = parts[2].parse().unwrap();
    let ns: u64 = parts[4].parse().unwrap();
    let count: u64 = parts[5].parse().unwrap();
    pin(End::Receiver);
    let mut producer = Ring::open(&path).unwrap().producer().unwrap();
    let mut msg = vec![0x5au8; size.max(8)];
    println!("ready");
    match parts[3] {
        "flat" => {
            let start = Instant::now();
            let budget = Duration::from_nanos(ns);
            while start.elapsed() < budget {
                for _ in 0..256 {
                    producer.send(&msg[..size]).unwrap();
                }
            }
        }
        "steady" => {
            let start = ringfile::diagnostics::monotonic_ns();
            for i in 0..count {
                let due = start + i * ns;
                while ringfile::diagnostics::monotonic_ns() < due {
                    std::hint::spin_loop();
                }
                msg[..8].copy_from_slice(&ringfile::diagnostics::monotonic_ns().to_le_bytes());
                producer.send(&msg).unwrap();
            }
        }
        _ => std::thread::sleep(Duration::from_nanos(ns)),
    }
    producer.close().unwrap();
}

fn ring_path(tag: &str) -> PathBuf {
    PathBuf::from(format!(
        "/dev/shm/ringfile-bench-await-{tag}-{}",
        std::process::id()
    ))
}

/// Receives until the end of the stream, calling `each` with every message.
fn receive(receiving: Receiving, consumer: &mut ringfile::Consumer, mut each: impl FnMut(&[u8])) {
    match receiving {
        Receiving::Blocking => {
            while let Some(msg) = consumer.recv().unwrap() {
                each(&msg);
            }
        }
        Receiving::Async => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                while let Some(msg) = consumer.recv_async().await.unwrap() {
                    each(&msg);
                }
            });
        }
    }
}

/// Messages per second received from a sender going as fast as it can for `budget`.
pub fn throughput(receiving: Receiving, size: usize, budget: Duration) -> Measured {
    let path = ring_path("flat");
    let _ = std::fs::remove_file(&path);
    let ring = Ring::create(&path, 1 << 20).unwrap();
    pin(End::Sender);
    let mut consumer = ring.consumer().unwrap();
    let mut child = spawn_sender(&path, size, &Sending::Flat(budget));
    let (mut messages, mut bytes, mut first) = (0u64, 0u64, None);
    receive(receiving, &mut consumer, |msg| {
        first.get_or_insert_with(Instant::now);
        messages += 1;
        bytes += msg.len() as u64;
    });
    let elapsed = first.map_or(Duration::ZERO, |t| t.elapsed());
    child.wait().unwrap();
    let _ = std::fs::remove_file(&path);
    Measured {
        messages,
        bytes,
        elapsed,
    }
}

/// One-way latency (ns, send stamp to receipt) of `count` messages sent one every `interval`.
pub fn steady_latency(receiving: Receiving, interval: Duration, count: u64) -> Histogram<u64> {
    let path = ring_path("steady");
    let _ = std::fs::remove_file(&path);
    let ring = Ring::create(&path, 1 << 20).unwrap();
    pin(End::Sender);
    let mut consumer = ring.consumer().unwrap();
    let mut child = spawn_sender(&path, 64, &Sending::Steady { interval, count });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    receive(receiving, &mut consumer, |msg| {
        let sent = u64::from_le_bytes(msg[..8].try_into().unwrap());
        hist.saturating_record(
            ringfile::diagnostics::monotonic_ns()
                .saturating_sub(sent)
                .max(1),
        );
    });
    child.wait().unwrap();
    let _ = std::fs::remove_file(&path);
    hist
}

/// The CPU time this whole process (the waiting thread, and the async watcher thread) uses
/// while it waits `span` on a ring whose producer is attached and silent, as a percentage of
/// one core.
pub fn idle_cpu_percent(receiving: Receiving, span: Duration) -> f64 {
    let path = ring_path("idle");
    let _ = std::fs::remove_file(&path);
    let ring = Ring::create(&path, 1 << 20).unwrap();
    pin(End::Sender);
    let mut consumer = ring.consumer().unwrap();
    let mut child = spawn_sender(&path, 64, &Sending::Silent(span));
    let (cpu, wall) = (process_cpu(), Instant::now());
    receive(receiving, &mut consumer, |_| {});
    let used = process_cpu() - cpu;
    let wall = wall.elapsed();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&path);
    used.as_secs_f64() * 100.0 / wall.as_secs_f64()
}

/// User plus system CPU time of this process so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given, which outlives the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
