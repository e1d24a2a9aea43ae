//! The send and receive hot paths in one thread, for counting instructions per message with
//! `valgrind --tool=callgrind` (deterministic, unlike timings on a shared machine):
//!
//! ```text
//! cargo build --release -p ringfile --example hot_path
//! valgrind --tool=callgrind target/release/examples/hot_path 64
//! ```
//!
//! Prints the number of messages; divide the instruction count by it.

fn main() {
    let size: usize = std::env::args()
        .nth(1)
        .map_or(64, |s| s.parse().expect("a message size in bytes"));
    let ring = ringfile::Ring::memfd(1 << 20).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    let msg = vec![7u8; size];
    let per_round = (256 * 1024 / (size + 8)).max(1);
    let mut received = 0u64;
    let mut sum = 0u64;
    for _ in 0..200 {
        let mut batch = producer.batch();
        for _ in 0..per_round {
            batch.try_send(&msg).unwrap();
        }
        drop(batch);
        let mut batch = consumer.try_recv_batch().unwrap();
        while let Some(m) = batch.next().unwrap() {
            sum += u64::from(m[0]);
            received += 1;
        }
    }
    std::hint::black_box(sum);
    println!("{received}");
}
