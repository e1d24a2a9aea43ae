//! What one message costs the processor, with no other core involved: one thread sends a
//! run of messages into a ring, then receives them all, and again, with the ring small
//! enough to stay in this core's caches. No cache line moves between cores, so the figure
//! is the work of the code path alone (framing, checks, publishing, releasing), steady from
//! run to run even on a machine whose cross-core transfers are not; the cross-process rows
//! add the transfers to it.

use crate::floor::{duty, tempfile_in_shm, FloorRing, FramedFloor};
use std::hint::black_box;
use std::time::Instant;

/// Ring capacity: small enough to stay in L2 with room to spare.
const CAPACITY: u64 = 256 << 10;

/// Whose code path is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The floor ring (copy in, publish per run; read, release per run).
    Floor,
    /// The floor in ringfile's record format ([`FramedFloor`]): what the format costs
    /// before any of ringfile's code.
    Format,
    /// [`Format`](Self::Format) with a publish per message sent and a release per message
    /// received, the least each must do ([`FramedFloor::send_published`]): the floor of any
    /// per-message path that makes each message visible when sent and gives its space back
    /// when dropped.
    FormatPerMessage,
    /// [`FormatPerMessage`](Self::FormatPerMessage) doing, besides, what ringfile's contract
    /// has each publish and release do ([`FramedFloor::send_dutiful`]): the exact counters,
    /// this process's copies of the positions, the barrier's decision, the fork check. The
    /// floor of ringfile's per-message path as the contract stands.
    DutifulPerMessage,
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
    pub const ALL: [Path; 7] = [
        Path::Floor,
        Path::Format,
        Path::FormatPerMessage,
        Path::DutifulPerMessage,
        Path::Batched,
        Path::PerMessage,
        Path::BatchedMixed,
    ];

    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Path::Floor => "floor (bare ring)",
            Path::Format => "floor in ringfile's record format",
            Path::FormatPerMessage => {
                "the same, publishing and releasing per message (the per-message floor)"
            }
            Path::DutifulPerMessage => {
                "the same, with the contract's per-message duties (counters, local positions, barrier decision, fork check)"
            }
            Path::Batched => "ringfile, batched",
            Path::PerMessage => "ringfile, per message",
            Path::BatchedMixed => "ringfile, batched, random lengths from ½ size to size",
        }
    }
}

/// One thread's time per message, split between sending and receiving.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    /// Nanoseconds per message spent sending (copying in, framing, publishing).
    pub send: f64,
    /// Nanoseconds per message spent receiving (finding the message, reading one byte of it,
    /// releasing).
    pub recv: f64,
}

impl Cost {
    /// Send and receive together.
    pub fn total(self) -> f64 {
        self.send + self.recv
    }
}

/// The run of median total among `runs` (not empty).
pub fn median(mut runs: Vec<Cost>) -> Cost {
    crate::median_by(&mut runs, |c| c.total())
}

/// Time the send and the receive phases of each fill apart (a clock read between them:
/// about 20 ns per fill, under 0.5 ns per message at 1 KiB, the same for every path). Each
/// fill is timed alone and the figure is the median fill: a fill takes tens of
/// microseconds, so the interruptions of a shared machine (another guest, a timer) spoil
/// a few fills rather than every run, and the median leaves them out.
struct Phases {
    send: Vec<std::time::Duration>,
    recv: Vec<std::time::Duration>,
}

impl Phases {
    /// For `messages` messages of `size` bytes: the message, the fill (runs of 64 messages,
    /// as many at once as fill half the ring), the number of fills, and the timings' room.
    fn plan(size: usize, messages: u64) -> (Vec<u8>, u64, u64, Phases) {
        let record = crate::record_size(size) as u64;
        let per_fill = (CAPACITY / 2 / record / 64).max(1) * 64;
        let fills = messages.div_ceil(per_fill);
        let phases = Phases {
            send: Vec::with_capacity(fills as usize),
            recv: Vec::with_capacity(fills as usize),
        };
        (vec![crate::FILL; size], per_fill, fills, phases)
    }

    /// Times `send`, then `recv`, each given `ring` (the state both phases use, where one
    /// value holds both ends).
    fn fill<R>(&mut self, ring: &mut R, send: impl FnOnce(&mut R), recv: impl FnOnce(&mut R)) {
        let start = Instant::now();
        send(ring);
        let sent = Instant::now();
        recv(ring);
        self.send.push(sent - start);
        self.recv.push(sent.elapsed());
    }

    /// `fills` fills of `per_fill` copies of `msg` through a [`FramedFloor`]: published and
    /// released once a fill (`EACH` false), or each message published and released doing the
    /// duties in the mask `DUTIES` ([`duty`]). Constants, so no loop tests them per message.
    fn framed<const EACH: bool, const DUTIES: u8>(
        &mut self,
        fills: u64,
        per_fill: u64,
        msg: &[u8],
    ) {
        let mut ring = FramedFloor::new(&tempfile_in_shm(), CAPACITY as usize);
        for _ in 0..fills {
            self.fill(
                &mut ring,
                |ring| {
                    for _ in 0..per_fill {
                        if EACH {
                            ring.send_each::<DUTIES>(msg);
                        } else {
                            ring.send(msg);
                        }
                    }
                },
                |ring| {
                    let touch = |m: &[u8]| {
                        black_box(m[0]);
                    };
                    for _ in 0..per_fill {
                        if EACH {
                            ring.recv_each::<DUTIES>(touch);
                        } else {
                            ring.recv(touch);
                        }
                    }
                },
            );
        }
    }

    /// The median fill's send and receive, per message, for fills of `per_fill`.
    fn cost(mut self, per_fill: u64) -> Cost {
        Cost {
            send: Phases::per_message(&mut self.send, per_fill),
            recv: Phases::per_message(&mut self.recv, per_fill),
        }
    }

    /// Nanoseconds per message of the median fill of `phase`, for fills of `per_fill`.
    fn per_message(phase: &mut [std::time::Duration], per_fill: u64) -> f64 {
        phase.sort_unstable();
        phase[phase.len() / 2].as_nanos() as f64 / per_fill as f64
    }
}

/// One of the contract's per-message duties ([`duty`]), for the rows that leave it out of
/// [`Path::DutifulPerMessage`] to show what it costs ([`without`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duty {
    /// The exact counters FORMAT.md keeps ("Message counters").
    Counters,
    /// This process's copies of the positions.
    LocalPositions,
    /// The asymmetric barrier's decision.
    BarrierDecision,
    /// The fork check of a release.
    ForkCheck,
}

impl Duty {
    /// All of them.
    pub const ALL: [Duty; 4] = [
        Duty::Counters,
        Duty::LocalPositions,
        Duty::BarrierDecision,
        Duty::ForkCheck,
    ];

    /// Name for tables: what the row leaves out.
    pub fn name(self) -> &'static str {
        match self {
            Duty::Counters => "without the exact counters",
            Duty::LocalPositions => "without this process's copies of the positions",
            Duty::BarrierDecision => "without the barrier's decision",
            Duty::ForkCheck => "without the fork check",
        }
    }
}

/// [`per_message`] of [`Path::DutifulPerMessage`] with `left_out` not done: what that duty
/// costs is the difference (the duties overlap in the processor, so the differences need
/// not add up to the whole).
pub fn without(left_out: Duty, size: usize, messages: u64) -> Cost {
    let (msg, per_fill, fills, mut t) = Phases::plan(size, messages);
    match left_out {
        Duty::Counters => {
            t.framed::<true, { duty::ALL & !duty::COUNTERS }>(fills, per_fill, &msg);
        }
        Duty::LocalPositions => {
            t.framed::<true, { duty::ALL & !duty::LOCAL_POSITIONS }>(fills, per_fill, &msg);
        }
        Duty::BarrierDecision => {
            t.framed::<true, { duty::ALL & !duty::BARRIER_DECISION }>(fills, per_fill, &msg);
        }
        Duty::ForkCheck => {
            t.framed::<true, { duty::ALL & !duty::FORK_CHECK }>(fills, per_fill, &msg);
        }
    }
    t.cost(per_fill)
}

/// One thread's time per message sent and received through `path`, over `messages`
/// messages of `size` bytes (one run; [`median`] of several, interleaved with the other
/// paths, is what the report shows).
pub fn per_message(path: Path, size: usize, messages: u64) -> Cost {
    let (msg, per_fill, fills, mut t) = Phases::plan(size, messages);
    match path {
        Path::Floor => {
            let file = tempfile_in_shm();
            let ring = FloorRing::create(&file, CAPACITY);
            let _ = std::fs::remove_file(&file);
            let (mut tx, mut rx) = (ring.sender(size), ring.receiver(size));
            for _ in 0..fills {
                t.fill(
                    &mut (),
                    |_| {
                        for _ in 0..per_fill / 64 {
                            for _ in 0..64 {
                                tx.send(&msg);
                            }
                            tx.publish();
                        }
                    },
                    |_| {
                        let mut got = 0;
                        while got < per_fill {
                            got += rx
                                .recv(|m| {
                                    black_box(m[0]);
                                })
                                .unwrap();
                        }
                    },
                );
            }
        }
        Path::Format => t.framed::<false, { duty::NONE }>(fills, per_fill, &msg),
        Path::FormatPerMessage => t.framed::<true, { duty::NONE }>(fills, per_fill, &msg),
        Path::DutifulPerMessage => t.framed::<true, { duty::ALL }>(fills, per_fill, &msg),
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
            for _ in 0..fills {
                if path != Path::PerMessage {
                    t.fill(
                        &mut (),
                        |_| {
                            for run in 0..per_fill / 64 {
                                let mut batch = producer.batch();
                                for i in 0..64 {
                                    // The fixed-size row sends `msg` as the floor does, with
                                    // no table lookup per message.
                                    let len = if path == Path::BatchedMixed {
                                        lens[(run * 64 + i) as usize % lens.len()]
                                    } else {
                                        size
                                    };
                                    batch.send(&msg[..len]).unwrap();
                                }
                            }
                        },
                        |_| {
                            let mut got = 0;
                            while got < per_fill {
                                let mut batch = consumer.try_recv_batch().unwrap();
                                while let Some(m) = batch.next().unwrap() {
                                    black_box(m[0]);
                                    got += 1;
                                }
                            }
                        },
                    );
                } else {
                    t.fill(
                        &mut (),
                        |_| {
                            for _ in 0..per_fill {
                                producer.send(&msg).unwrap();
                            }
                        },
                        |_| {
                            for _ in 0..per_fill {
                                let m = consumer.try_recv().unwrap().unwrap();
                                black_box(m[0]);
                            }
                        },
                    );
                }
            }
        }
    }
    t.cost(per_fill)
}
