//! One stream, several readers, across processes: what the producer pays per message as
//! readers are added, and how many messages the readers get between them each second, for
//! ringfile (one ring with consumer slots, each reader a named consumer) and for iceoryx2
//! (one publisher, that many subscribers).
//!
//! Every reader is a process of its own, pinned to a core other than the producer's (all of
//! them on one core on a 2-core machine); ringfile's readers park when the ring is empty and
//! read in batches, iceoryx2's poll and yield the core when nothing is there (it has no
//! blocking receive without a wait set), so that readers sharing a core take turns.
//!
//! - [`producer_cost`]: the producer sends bursts of half a ring's worth of 64-byte messages
//!   and waits, untimed, until every reader has all of them before the next; the processor
//!   time of its thread during the bursts, per message, is its cost. It never waits for
//!   room, so what is measured is the sending itself with that many readers attached and
//!   reading at the same time: ringfile's publish (and the one wake-up call per publish that
//!   finds readers asleep, however many), iceoryx2's delivery to each subscriber's queue.
//! - [`aggregate`]: the producer streams without pause through a ring (or subscriber
//!   buffers) of the report's size; messages delivered to all readers together per second of
//!   wall time, from the first send to the last reader's end.

use crate::{online_cores, pin, pin_to, FILL};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout};
use std::time::{Duration, Instant};

/// Whose fan-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fan {
    /// ringfile, batches of 64 on both sides, on a ring with [`SLOTS`] consumer slots.
    Ringfile,
    /// ringfile, one `send` per message (readers still batch).
    RingfilePerMessage,
    /// ringfile on a ring of one slot (format version 1): today's single consumer, the
    /// reference for one reader.
    RingfileOneSlot,
    /// iceoryx2 0.10 publish-subscribe, lossless (`RetryUntilDelivered`), `loan`/`send`.
    Iceoryx2,
}

/// The consumer slots of the ringfile rings measured: the same shape at every count of
/// readers, so that a row shows what readers cost, not what slots cost.
pub const SLOTS: u32 = 16;

impl Fan {
    /// Every fan measured, in table order.
    pub const ALL: [Fan; 4] = [
        Fan::Ringfile,
        Fan::RingfilePerMessage,
        Fan::RingfileOneSlot,
        Fan::Iceoryx2,
    ];

    /// Its row name.
    pub fn name(self) -> &'static str {
        match self {
            Fan::Ringfile => "ringfile, batched",
            Fan::RingfilePerMessage => "ringfile, per message",
            Fan::RingfileOneSlot => "ringfile, one-slot ring (today's, 1 reader only)",
            Fan::Iceoryx2 => "iceoryx2",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Fan::Ringfile => "ringfile",
            Fan::RingfilePerMessage => "ringfile-each",
            Fan::RingfileOneSlot => "ringfile-one",
            Fan::Iceoryx2 => "iceoryx2",
        }
    }

    fn from_tag(tag: &str) -> Fan {
        Fan::ALL
            .into_iter()
            .find(|f| f.tag() == tag)
            .expect("known fan")
    }

    /// Whether it can have `readers` readers.
    pub fn takes(self, readers: usize) -> bool {
        self != Fan::RingfileOneSlot || readers == 1
    }
}

/// One run: the producer's processor time per message (burst runs) or the messages all
/// readers received per second of wall time (streaming runs).
#[derive(Clone, Copy, Debug)]
pub struct FanMeasured {
    /// Producer thread's processor time per message sent, in nanoseconds.
    pub producer_ns: f64,
    /// Messages delivered to all readers together, per second.
    pub delivered_per_sec: f64,
}

/// The processor time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The cores readers run on: every online core but the producer's (the producer's own if it
/// is the only one), reader `i` on the `i`-th of them, round robin.
fn reader_core(i: usize) -> usize {
    let (sender, receiver) = crate::cores();
    let online = online_cores();
    let sender = sender % online;
    let mut others: Vec<usize> = (0..online).filter(|&c| c != sender).collect();
    if others.is_empty() {
        others.push(sender);
    }
    // The configured receiver core first.
    if let Some(at) = others.iter().position(|&c| c == receiver % online) {
        others.rotate_left(at);
    }
    others[i % others.len()]
}

/// The readers of one run, spawned and attached.
struct Readers {
    children: Vec<(Child, BufReader<ChildStdout>)>,
}

impl Readers {
    fn spawn(fan: Fan, readers: usize, path: &str, burst: u64, buffer: usize) -> Readers {
        let children = (0..readers)
            .map(|i| {
                let spec = format!("fanout|{}|{path}|{i}|{readers}|{burst}|{buffer}", fan.tag());
                crate::spawn_ready_talking(&spec, None)
            })
            .collect();
        Readers { children }
    }

    /// Waits for every reader's next line (`b` after each burst; the count at the end).
    fn lines(&mut self) -> Vec<String> {
        self.children
            .iter_mut()
            .map(|(_, out)| {
                let mut line = String::new();
                out.read_line(&mut line).expect("read a reader's line");
                line.trim().to_string()
            })
            .collect()
    }

    /// Waits for the end of every reader; each must have received `sent` messages.
    fn finish(mut self, sent: u64) {
        for line in self.lines() {
            assert_eq!(line, format!("done {sent}"), "a reader lost messages");
        }
        for (mut child, _) in self.children {
            assert!(child.wait().expect("wait for a reader").success());
        }
    }
}

/// 64-byte messages.
pub const SIZE: usize = 64;

fn ring_path(fan: Fan, readers: usize) -> String {
    format!(
        "/dev/shm/ringfile-bench-fanout-{}-{}-{readers}",
        std::process::id(),
        fan.tag()
    )
}

/// What the producer side does with the stream: ringfile's or iceoryx2's.
enum Sender {
    /// Boxed: a producer is much larger than iceoryx2's publisher.
    Ring(Box<ringfile::Producer>, bool),
    Iceoryx2(
        crate::peers::IoxPublisher,
        #[allow(dead_code)] crate::peers::Iceoryx2,
    ),
}

impl Sender {
    fn open(fan: Fan, path: &str, capacity: u64, readers: usize) -> (Sender, usize) {
        let _ = std::fs::remove_file(path);
        match fan {
            Fan::Iceoryx2 => {
                let node = crate::peers::Iceoryx2::node();
                let buffer = crate::peers::iceoryx2_buffer(SIZE, capacity);
                let name = service_name(path);
                let publisher = node.publisher_for(&name, SIZE, buffer, readers, true);
                (Sender::Iceoryx2(publisher, node), buffer)
            }
            _ => {
                let slots = if fan == Fan::RingfileOneSlot {
                    1
                } else {
                    SLOTS
                };
                let ring = ringfile::Ring::options()
                    .capacity(capacity)
                    .consumers(slots)
                    .create(path)
                    .expect("create the ring");
                let mut producer = ring.producer().unwrap();
                producer.set_wait_strategy(ringfile::WaitStrategy::Spin);
                (
                    Sender::Ring(Box::new(producer), fan == Fan::RingfilePerMessage),
                    0,
                )
            }
        }
    }

    /// Sends `n` messages (a multiple of 64), published as they go.
    fn send(&mut self, msg: &mut [u8], n: u64, sent: &mut u64) {
        match self {
            Sender::Ring(producer, false) => {
                for _ in 0..n / 64 {
                    let mut batch = producer.batch();
                    for _ in 0..64 {
                        batch.send(msg).unwrap();
                    }
                }
                *sent += n;
            }
            Sender::Ring(producer, true) => {
                for _ in 0..n {
                    producer.send(msg).unwrap();
                }
                *sent += n;
            }
            Sender::Iceoryx2(publisher, _) => {
                for _ in 0..n {
                    msg[..8].copy_from_slice(&sent.to_le_bytes());
                    crate::peers::iceoryx2_publish(publisher, msg);
                    *sent += 1;
                }
            }
        }
    }

    fn close(self) {
        match self {
            Sender::Ring(producer, _) => (*producer).close().unwrap(),
            Sender::Iceoryx2(publisher, _) => crate::peers::iceoryx2_publish(&publisher, &[]),
        }
    }
}

fn service_name(path: &str) -> String {
    format!("ringfile-bench/{}", path.rsplit('/').next().unwrap_or(path))
}

/// The producer's processor time per message with `readers` readers: `bursts` bursts of half
/// of a `capacity`-byte ring each (see the module docs).
pub fn producer_cost(fan: Fan, readers: usize, capacity: u64, bursts: u32) -> FanMeasured {
    pin(crate::End::Sender);
    let path = ring_path(fan, readers);
    let burst = (capacity / 2 / crate::record_size(SIZE) as u64) / 64 * 64;
    let (mut sender, buffer) = Sender::open(fan, &path, capacity, readers);
    let mut rx = Readers::spawn(fan, readers, &path, burst, buffer);
    let mut msg = vec![FILL; SIZE];
    let (mut sent, mut busy) = (0u64, Duration::ZERO);
    for _ in 0..bursts {
        let before = thread_cpu();
        sender.send(&mut msg, burst, &mut sent);
        busy += thread_cpu() - before;
        // Untimed: every reader has the whole burst.
        for line in rx.lines() {
            assert_eq!(line, "b", "a reader stopped");
        }
    }
    sender.close();
    rx.finish(sent);
    let _ = std::fs::remove_file(&path);
    FanMeasured {
        producer_ns: busy.as_nanos() as f64 / sent as f64,
        delivered_per_sec: f64::NAN,
    }
}

/// Messages delivered to `readers` readers together per second, the producer streaming
/// `count` messages (a multiple of 64) without pause through a `capacity`-byte ring.
pub fn aggregate(fan: Fan, readers: usize, capacity: u64, count: u64) -> FanMeasured {
    pin(crate::End::Sender);
    let path = ring_path(fan, readers);
    let (mut sender, buffer) = Sender::open(fan, &path, capacity, readers);
    let rx = Readers::spawn(fan, readers, &path, 0, buffer);
    let mut msg = vec![FILL; SIZE];
    let mut sent = 0u64;
    let start = Instant::now();
    let cpu = thread_cpu();
    sender.send(&mut msg, count, &mut sent);
    let busy = thread_cpu() - cpu;
    sender.close();
    rx.finish(sent);
    let elapsed = start.elapsed();
    let _ = std::fs::remove_file(&path);
    FanMeasured {
        producer_ns: busy.as_nanos() as f64 / sent as f64,
        delivered_per_sec: (sent * readers as u64) as f64 / elapsed.as_secs_f64(),
    }
}

/// A reader process (`CHILD_ENV` is `fanout|FAN|PATH|INDEX|READERS|BURST|BUFFER`): attaches,
/// says `ready`, receives to the end of the stream checking every message's length and first
/// byte (and iceoryx2's sequence numbers), says `b` after each `BURST` messages (when
/// non-zero) and `done COUNT` at the end.
pub(crate) fn child(parts: &[&str]) {
    let fan = Fan::from_tag(parts[1]);
    let path = parts[2];
    let index: usize = parts[3].parse().unwrap();
    let readers: usize = parts[4].parse().unwrap();
    let burst: u64 = parts[5].parse().unwrap();
    let buffer: usize = parts[6].parse().unwrap();
    pin_to(reader_core(index));
    let mut received = 0u64;
    let mut next_report = burst;
    let mut report = |received: u64| {
        while burst != 0 && received >= next_report {
            println!("b");
            next_report += burst;
        }
    };
    match fan {
        Fan::Iceoryx2 => {
            let node = crate::peers::Iceoryx2::node();
            let subscriber = node.subscriber_for(&service_name(path), buffer, readers, false);
            println!("ready");
            loop {
                match subscriber.receive().expect("receive an iceoryx2 sample") {
                    Some(sample) => {
                        let msg = sample.payload();
                        if msg.is_empty() {
                            break;
                        }
                        assert_eq!(msg.len(), SIZE);
                        let seq = u64::from_le_bytes(msg[..8].try_into().unwrap());
                        assert_eq!(seq, received, "lost, duplicated or reordered message");
                        drop(sample);
                        received += 1;
                        report(received);
                    }
                    None => std::thread::yield_now(),
                }
            }
        }
        _ => {
            let ring = ringfile::Ring::open(path).expect("open the ring");
            let mut consumer = if fan == Fan::RingfileOneSlot {
                ring.consumer()
            } else {
                ring.consumer_named(&format!("reader-{index}"))
            }
            .expect("attach a reader");
            consumer.set_wait_strategy(ringfile::WaitStrategy::Park);
            println!("ready");
            loop {
                let mut batch = consumer.recv_batch().unwrap();
                while let Some(msg) = batch.next().unwrap() {
                    assert!(msg.len() == SIZE && msg[SIZE - 1] == FILL, "changed");
                    received += 1;
                }
                let end = batch.is_end();
                drop(batch); // released: the producer may overwrite them
                report(received);
                if end {
                    break;
                }
            }
        }
    }
    println!("done {received}");
}
