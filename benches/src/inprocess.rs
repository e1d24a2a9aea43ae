//! In-process, two-thread throughput: ringfile (memfd ring), `crossbeam-channel` (bounded, one
//! `Vec<u8>` per message, as bytes are usually sent through a channel) and `rtrb` (a byte ring:
//! each message written and read as a chunk of bytes).

use crate::{pin, ringfile_receive, ringfile_send, End, Measured, Stop};
use std::time::{Duration, Instant};

/// An in-process queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// ringfile over a memfd, batches of 64.
    Ringfile,
    /// crossbeam-channel, bounded to 4096 messages.
    Crossbeam,
    /// rtrb, a `RingBuffer<u8>` of the same capacity as ringfile's.
    Rtrb,
}

impl Queue {
    /// All of them.
    pub const ALL: [Queue; 3] = [Queue::Ringfile, Queue::Crossbeam, Queue::Rtrb];

    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Queue::Ringfile => "ringfile (threads)",
            Queue::Crossbeam => "crossbeam-channel",
            Queue::Rtrb => "rtrb",
        }
    }
}

/// Streams `size`-byte messages from one thread (core 0) to another (core 1) until `stop`.
pub fn two_threads(queue: Queue, size: usize, capacity: u64, stop: Stop) -> Measured {
    let msg = vec![0x5au8; size];
    let receiver: Box<dyn FnOnce() -> (u64, Option<Instant>) + Send>;
    let sender: Box<dyn FnOnce() + Send>;
    match queue {
        Queue::Ringfile => {
            let ring = ringfile::Ring::memfd(capacity).unwrap();
            let mut producer = ring.producer().unwrap();
            let mut consumer = ring.consumer().unwrap();
            sender = Box::new(move || {
                let _ = ringfile_send(&mut producer, &msg, stop);
                producer.close().unwrap();
            });
            receiver = Box::new(move || ringfile_receive(&mut consumer, false));
        }
        Queue::Crossbeam => {
            let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(4096);
            sender = Box::new(move || {
                let (mut sent, start) = (0, Instant::now());
                while stop.more(sent, start) {
                    tx.send(msg.clone()).unwrap();
                    sent += 1;
                }
            });
            receiver = Box::new(move || {
                let (mut n, mut first) = (0, None);
                while let Ok(m) = rx.recv() {
                    first.get_or_insert_with(Instant::now);
                    std::hint::black_box(m[0]);
                    n += 1;
                }
                (n, first)
            });
        }
        Queue::Rtrb => {
            let (mut tx, mut rx) = rtrb::RingBuffer::<u8>::new(capacity as usize);
            sender = Box::new(move || {
                let (mut sent, start) = (0, Instant::now());
                while stop.more(sent, start) {
                    loop {
                        if let Ok(mut chunk) = tx.write_chunk(size) {
                            let (a, b) = chunk.as_mut_slices();
                            let a_len = a.len();
                            a.copy_from_slice(&msg[..a_len]);
                            b.copy_from_slice(&msg[a_len..]);
                            chunk.commit_all();
                            break;
                        }
                        std::hint::spin_loop();
                    }
                    sent += 1;
                }
            });
            receiver = Box::new(move || {
                let (mut n, mut first) = (0, None);
                loop {
                    let available = rx.slots() / size * size;
                    if available == 0 {
                        if rx.is_abandoned() && rx.slots() < size {
                            return (n, first);
                        }
                        std::hint::spin_loop();
                        continue;
                    }
                    let chunk = rx.read_chunk(available).unwrap();
                    first.get_or_insert_with(Instant::now);
                    std::hint::black_box(chunk.as_slices().0.first());
                    chunk.commit_all();
                    n += (available / size) as u64;
                }
            });
        }
    }
    let send_thread = std::thread::spawn(move || {
        pin(End::Sender);
        sender()
    });
    pin(End::Receiver);
    let (n, first) = receiver();
    let elapsed = first.map_or(Duration::ZERO, |f| f.elapsed());
    send_thread.join().unwrap();
    Measured {
        messages: n,
        bytes: n * size as u64,
        elapsed,
    }
}
