//! What one message costs the processor, with no other core involved: one thread sends a
//! run of messages into a ring, then receives them all, and again, with the ring small
//! enough to stay in this core's caches. No cache line moves between cores, so the figure
//! is the work of the code path alone (framing, checks, publishing, releasing), steady from
//! run to run even on a machine whose cross-core transfers are not; the cross-process rows
//! add the transfers to it.

use crate::floor::FloorRing;
use std::hint::black_box;
use std::time::Instant;

/// Ring capacity: small enough to stay in L2 with room to spare.
const CAPACITY: u64 = 256 << 10;

/// Whose code path is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The floor ring (copy in, publish per run; read, release per run).
    Floor,
    /// ringfile's batch API: `batch().send` and `recv_batch`, one publish and one release per
    /// 64 messages.
    Batched,
    /// ringfile's plain API: one `send` and one `recv` per message.
    PerMessage,
    /// As [`Batched`](Self::Batched), each message's length drawn at random between half the
    /// size and the size (a receiver cannot guess where the next record starts).
    BatchedMixed,
}

impl Path {
    /// All of them, floor first.
    pub const ALL: [Path; 4] = [
        Path::Floor,
        Path::Batched,
        Path::PerMessage,
        Path::BatchedMixed,
    ];

    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Path::Floor => "floor (bare ring)",
            Path::Batched => "ringfile, batched",
            Path::PerMessage => "ringfile, per message",
            Path::BatchedMixed => "ringfile, batched, random lengths from ½ size to size",
        }
    }
}

/// Nanoseconds of one thread's time per message sent and received through `path`, over
/// `messages` messages of `size` bytes (the median of `runs`).
pub fn per_message_ns(path: Path, size: usize, messages: u64, runs: usize) -> f64 {
    let mut all: Vec<f64> = (0..runs).map(|_| once(path, size, messages)).collect();
    crate::median_f64(&mut all)
}

fn once(path: Path, size: usize, messages: u64) -> f64 {
    let msg = vec![crate::FILL; size];
    // Runs of 64 messages; as many runs at once as fill half the ring.
    let record = (size as u64 + 8).next_multiple_of(8);
    let per_fill = (CAPACITY / 2 / record / 64).max(1) * 64;
    let fills = messages.div_ceil(per_fill);
    let start;
    match path {
        Path::Floor => {
            let file = tempfile_in_shm();
            let ring = FloorRing::create(&file, CAPACITY);
            let _ = std::fs::remove_file(&file);
            let (mut tx, mut rx) = (ring.sender(), ring.receiver());
            start = Instant::now();
            for _ in 0..fills {
                for _ in 0..per_fill / 64 {
                    for _ in 0..64 {
                        tx.send(&msg);
                    }
                    tx.publish();
                }
                let mut got = 0;
                while got < per_fill {
                    got += rx
                        .recv(size, |m| {
                            black_box(m[0]);
                        })
                        .unwrap();
                }
            }
        }
        Path::Batched | Path::PerMessage | Path::BatchedMixed => {
            // Lengths for the mixed path (xorshift; drawn before the clock starts).
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let lens: Vec<usize> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match path {
                        Path::BatchedMixed => size / 2 + (x % (size as u64 / 2 + 1)) as usize,
                        _ => size,
                    }
                })
                .collect();
            let ring = ringfile::Ring::memfd(CAPACITY).unwrap();
            let mut producer = ring.producer().unwrap();
            let mut consumer = ring.consumer().unwrap();
            start = Instant::now();
            for _ in 0..fills {
                if path != Path::PerMessage {
                    for run in 0..per_fill / 64 {
                        let mut batch = producer.batch();
                        for i in 0..64 {
                            // The fixed-size row sends `msg` as the floor does, with no
                            // table lookup per message.
                            let len = if path == Path::BatchedMixed {
                                lens[(run * 64 + i) as usize % lens.len()]
                            } else {
                                size
                            };
                            batch.send(&msg[..len]).unwrap();
                        }
                    }
                    let mut got = 0;
                    while got < per_fill {
                        let mut batch = consumer.try_recv_batch().unwrap();
                        while let Some(m) = batch.next().unwrap() {
                            black_box(m[0]);
                            got += 1;
                        }
                    }
                } else {
                    for _ in 0..per_fill {
                        producer.send(&msg).unwrap();
                    }
                    for _ in 0..per_fill {
                        let m = consumer.try_recv().unwrap().unwrap();
                        black_box(m[0]);
                    }
                }
            }
        }
    }
    start.elapsed().as_nanos() as f64 / (fills * per_fill) as f64
}

/// A fresh path in /dev/shm for a floor ring (removed once mapped).
fn tempfile_in_shm() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::path::PathBuf::from(format!(
        "/dev/shm/ringfile-bench-cost-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}
