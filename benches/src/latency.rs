//! Round-trip latency between two processes: ping-pong over two rings, and the floors it is
//! compared with — one cache line bounced between the processes (busy-spin), and a bare futex
//! wake-up round trip (sleeping).

use crate::{peers, pin, End};
use hdrhistogram::Histogram;
use ringfile::{Ring, WaitStrategy};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// What bounces between the two processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingPong {
    /// ringfile, both sides busy-spinning.
    RingfileSpin,
    /// ringfile, both sides sleeping on the futex at once (`WaitStrategy::Park`).
    RingfilePark,
    /// One cache line written by each side in turn, busy-spinning: the spin floor.
    CacheLine,
    /// Each side writes the payload into one cache line, then a sequence number into another
    /// (Release), and the other side spins on the second before it reads the first: the floor
    /// of a protocol whose reader learns of a message from a word on another line than the
    /// message's (ringfile's tail), two serial line transfers each way.
    TwoLines,
    /// A futex word each, wake and sleep in turn: the sleeping floor.
    Futex,
    /// iceoryx2 publish-subscribe (lossless, see `peers`), both sides busy-polling.
    Iceoryx2,
    /// ipc-channel byte channels (Unix sockets: the receiver sleeps in the kernel).
    IpcChannel,
}

impl PingPong {
    /// All of them.
    pub const ALL: [PingPong; 7] = [
        PingPong::RingfileSpin,
        PingPong::RingfilePark,
        PingPong::CacheLine,
        PingPong::TwoLines,
        PingPong::Futex,
        PingPong::Iceoryx2,
        PingPong::IpcChannel,
    ];

    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            PingPong::RingfileSpin => "ringfile, spin",
            PingPong::RingfilePark => "ringfile, park (futex)",
            PingPong::CacheLine => "floor: cache line, spin",
            PingPong::TwoLines => "floor: flag line then data line, spin",
            PingPong::Futex => "floor: bare futex wake-up",
            PingPong::Iceoryx2 => "iceoryx2, spin (busy-poll)",
            PingPong::IpcChannel => "ipc-channel (sleeps)",
        }
    }

    /// How both sides of a ringfile ping-pong wait.
    fn wait_strategy(self) -> WaitStrategy {
        match self {
            PingPong::RingfilePark => WaitStrategy::Park,
            _ => WaitStrategy::Spin,
        }
    }

    /// The name used between processes (and by `report --one-trip`, without `latency-`).
    pub fn tag(self) -> &'static str {
        match self {
            PingPong::RingfileSpin => "latency-spin",
            PingPong::RingfilePark => "latency-park",
            PingPong::CacheLine => "latency-line",
            PingPong::TwoLines => "latency-two-lines",
            PingPong::Futex => "latency-futex",
            PingPong::Iceoryx2 => "latency-iceoryx2",
            PingPong::IpcChannel => "latency-ipc-channel",
        }
    }
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: a valid aligned word; shared futex (no PRIVATE flag): the waker is another process.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            0usize,
            0usize,
            0u32,
        )
    };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: as above.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            1,
            0usize,
            0usize,
            0u32,
        )
    };
}

/// Two words 128 bytes apart in a shared mapping, and two 64-byte data lines.
struct Words {
    map: memmap2::MmapRaw,
}

impl Words {
    fn open(path: &PathBuf, create: bool) -> Words {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(create)
            .open(path)
            .unwrap();
        if create {
            file.set_len(4096).unwrap();
        }
        Words {
            map: memmap2::MmapRaw::map_raw(&file).unwrap(),
        }
    }
    fn word(&self, i: usize) -> &AtomicU32 {
        // SAFETY: offsets 0 and 128 are aligned words inside the 4096-byte mapping.
        unsafe { &*self.map.as_mut_ptr().add(i * 128).cast::<AtomicU32>() }
    }
    /// Writes `msg` (at most 64 bytes) into data line `i` (0 or 1).
    fn put(&self, i: usize, msg: &[u8]) {
        assert!(msg.len() <= 64);
        // SAFETY: lines at 1024 and 2048 are inside the 4096-byte mapping; the protocol (a
        // flag stored after, read before) gives each line to one side at a time.
        unsafe {
            std::ptr::copy_nonoverlapping(
                msg.as_ptr(),
                self.map.as_mut_ptr().add(1024 * (i + 1)),
                msg.len(),
            )
        }
    }
    /// Reads data line `i` into `buf` (at most 64 bytes).
    fn get(&self, i: usize, buf: &mut [u8]) {
        assert!(buf.len() <= 64);
        // SAFETY: as in `put`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(1024 * (i + 1)),
                buf.as_mut_ptr(),
                buf.len(),
            )
        }
    }
}

/// The first eight bytes of `msg` as a sequence number.
fn seq(msg: &[u8]) -> u64 {
    u64::from_le_bytes(msg[..8].try_into().unwrap())
}

const WARMUP: u64 = 2_000;

/// The two iceoryx2 services of a round trip whose rings would be at `a` and `b`.
fn iceoryx2_services(a: &Path, b: &Path) -> (String, String) {
    let name = |p: &Path| {
        format!(
            "ringfile-bench/{}",
            p.file_name().unwrap().to_string_lossy()
        )
    };
    (name(a), name(b))
}

/// Measures `iters` round trips of `size`-byte messages; returns ns per round trip.
pub fn round_trips(kind: PingPong, size: usize, iters: u64) -> Histogram<u64> {
    let id = format!("{}-{size}-{}", kind.tag(), std::process::id());
    let a = PathBuf::from(format!("/dev/shm/ringfile-bench-{id}-a"));
    let b = PathBuf::from(format!("/dev/shm/ringfile-bench-{id}-b"));
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    // `first`: the first path, or what stands in for it (ipc-channel's server name).
    let spawn_with = |first: String| {
        crate::spawn_ready(&format!(
            "{}|{size}|{iters}|{first}|{}",
            kind.tag(),
            b.display()
        ))
    };
    let spawn = || spawn_with(a.display().to_string());
    pin(End::Sender);
    let total = WARMUP + iters;
    match kind {
        PingPong::RingfileSpin | PingPong::RingfilePark => {
            let wait = kind.wait_strategy();
            let ping = Ring::create(&a, 64 * 1024).unwrap();
            let pong = Ring::create(&b, 64 * 1024).unwrap();
            let mut child = spawn();
            let mut tx = ping.producer().unwrap();
            let mut rx = pong.consumer().unwrap();
            tx.set_wait_strategy(wait);
            rx.set_wait_strategy(wait);
            let msg = vec![1u8; size];
            for i in 0..total {
                let t = Instant::now();
                tx.send(&msg).unwrap();
                let back = rx.recv().unwrap().unwrap();
                let ns = t.elapsed().as_nanos() as u64;
                assert_eq!(back.len(), size);
                drop(back);
                if i >= WARMUP {
                    hist.saturating_record(ns.max(1));
                }
            }
            tx.close().unwrap();
            child.wait().unwrap();
        }
        PingPong::Iceoryx2 => {
            let node = peers::Iceoryx2::node();
            let (ping_name, pong_name) = iceoryx2_services(&a, &b);
            let ping = node.publisher(&ping_name, size, 1, true);
            let pong = node.subscriber(&pong_name, 1, true);
            let mut child = spawn();
            let mut msg = vec![1u8; size];
            for i in 0..total {
                msg[..8].copy_from_slice(&i.to_le_bytes());
                let t = Instant::now();
                peers::iceoryx2_publish(&ping, &msg);
                let back =
                    peers::iceoryx2_take(&pong, |m| u64::from_le_bytes(m[..8].try_into().unwrap()));
                let ns = t.elapsed().as_nanos() as u64;
                assert_eq!(back, i, "lost or reordered");
                if i >= WARMUP {
                    hist.saturating_record(ns.max(1));
                }
            }
            peers::iceoryx2_publish(&ping, &[]);
            child.wait().unwrap();
        }
        PingPong::IpcChannel => {
            let server = peers::IpcChannelServer::new();
            let mut child = spawn_with(server.name.clone());
            let (ping, give_back) = server.accept();
            let (pong_tx, pong) = ipc_channel::ipc::bytes_channel().unwrap();
            give_back.send(pong_tx).unwrap();
            let mut msg = vec![1u8; size];
            for i in 0..total {
                msg[..8].copy_from_slice(&i.to_le_bytes());
                let t = Instant::now();
                ping.send(&msg).unwrap();
                let back = pong.recv().unwrap();
                let ns = t.elapsed().as_nanos() as u64;
                assert_eq!(back[..8], msg[..8], "lost or reordered");
                if i >= WARMUP {
                    hist.saturating_record(ns.max(1));
                }
            }
            ping.send(&[]).unwrap();
            child.wait().unwrap();
        }
        PingPong::CacheLine | PingPong::Futex => {
            let words = Words::open(&a, true);
            let mut child = spawn();
            let (ping, pong) = (words.word(0), words.word(1));
            for i in 1..=total as u32 {
                let t = Instant::now();
                ping.store(i, Ordering::Release);
                if kind == PingPong::Futex {
                    futex_wake(ping);
                    loop {
                        let seen = pong.load(Ordering::Acquire);
                        if seen == i {
                            break;
                        }
                        futex_wait(pong, seen);
                    }
                } else {
                    while pong.load(Ordering::Acquire) != i {
                        std::hint::spin_loop();
                    }
                }
                let ns = t.elapsed().as_nanos() as u64;
                if u64::from(i) > WARMUP {
                    hist.saturating_record(ns.max(1));
                }
            }
            child.wait().unwrap();
        }
        PingPong::TwoLines => {
            let words = Words::open(&a, true);
            let mut child = spawn();
            let (ping, pong) = (words.word(0), words.word(1));
            let (mut msg, mut back) = (vec![1u8; size], vec![0u8; size]);
            for i in 1..=total as u32 {
                msg[..8].copy_from_slice(&u64::from(i).to_le_bytes());
                let t = Instant::now();
                words.put(0, &msg);
                ping.store(i, Ordering::Release);
                while pong.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                words.get(1, &mut back);
                let ns = t.elapsed().as_nanos() as u64;
                assert_eq!(seq(&back), u64::from(i), "lost or reordered");
                if u64::from(i) > WARMUP {
                    hist.saturating_record(ns.max(1));
                }
            }
            child.wait().unwrap();
        }
    }
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    hist
}

/// The echoing side, in the child process.
pub(crate) fn child(parts: &[&str]) {
    let kind = PingPong::ALL
        .into_iter()
        .find(|k| k.tag() == parts[0])
        .unwrap();
    let iters: u64 = parts[2].parse().unwrap();
    let (a, b) = (PathBuf::from(parts[3]), PathBuf::from(parts[4]));
    pin(End::Receiver);
    let total = WARMUP + iters;
    match kind {
        PingPong::RingfileSpin | PingPong::RingfilePark => {
            let wait = kind.wait_strategy();
            let mut rx = Ring::open(&a).unwrap().consumer().unwrap();
            let mut tx = Ring::open(&b).unwrap().producer().unwrap();
            rx.set_wait_strategy(wait);
            tx.set_wait_strategy(wait);
            println!("ready");
            while let Some(msg) = rx.recv().unwrap() {
                tx.send(&msg).unwrap();
            }
        }
        PingPong::Iceoryx2 => {
            let node = peers::Iceoryx2::node();
            let (ping_name, pong_name) = iceoryx2_services(&a, &b);
            let ping = node.subscriber(&ping_name, 1, false);
            let pong = node.publisher(&pong_name, parts[1].parse().unwrap(), 1, false);
            println!("ready");
            let mut msg = Vec::new();
            loop {
                peers::iceoryx2_take(&ping, |m| {
                    msg.clear();
                    msg.extend_from_slice(m);
                });
                if msg.is_empty() {
                    break;
                }
                peers::iceoryx2_publish(&pong, &msg);
            }
        }
        PingPong::IpcChannel => {
            let (ping, back) = peers::ipc_channel_connect(parts[3]);
            println!("ready");
            let pong = back.recv().unwrap();
            loop {
                let msg = ping.recv().unwrap();
                if msg.is_empty() {
                    break;
                }
                pong.send(&msg).unwrap();
            }
        }
        PingPong::CacheLine | PingPong::Futex => {
            let words = Words::open(&a, false);
            let (ping, pong) = (words.word(0), words.word(1));
            println!("ready");
            for i in 1..=total as u32 {
                if kind == PingPong::Futex {
                    loop {
                        let seen = ping.load(Ordering::Acquire);
                        if seen == i {
                            break;
                        }
                        futex_wait(ping, seen);
                    }
                    pong.store(i, Ordering::Release);
                    futex_wake(pong);
                } else {
                    while ping.load(Ordering::Acquire) != i {
                        std::hint::spin_loop();
                    }
                    pong.store(i, Ordering::Release);
                }
            }
        }
        PingPong::TwoLines => {
            let words = Words::open(&a, false);
            let (ping, pong) = (words.word(0), words.word(1));
            let mut msg = vec![0u8; parts[1].parse().unwrap()];
            println!("ready");
            for i in 1..=total as u32 {
                while ping.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                words.get(0, &mut msg);
                assert_eq!(seq(&msg), u64::from(i), "lost or reordered");
                words.put(1, &msg);
                pong.store(i, Ordering::Release);
            }
        }
    }
}
