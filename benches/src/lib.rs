//! Benchmarks of ringfile against the floor of this machine (a bare SPSC byte ring over the same
//! kind of mapping), pipes, Unix sockets and peer queues, measured side by side in one run.
//!
//! Cross-process runs spawn this program again as the receiving side (see [`child_main`]):
//! the parent sends, pinned to core 0; the child receives, pinned to core 1, and reports how
//! many messages it received from its first message to the end of the stream, and how long
//! that took. Throughput is the child's count over the child's time.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub mod awaiting;
pub mod bridge;
pub mod cost;
pub mod fanout;
pub mod floor;
pub mod inprocess;
pub mod latency;
pub mod peers;
pub mod programs;

/// Environment variable that makes the program the receiving side of a run.
pub const CHILD_ENV: &str = "RINGFILE_BENCH_CHILD";

/// Environment variable naming the two cores the benchmarks pin to, `SENDER,RECEIVER`
/// (default `0,1`); `report --cores A,B` sets it for its own runs.
pub const CORES_ENV: &str = "RINGFILE_BENCH_CORES";

/// Which end of a measurement a thread is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The sending thread or process.
    Sender,
    /// The receiving (or echoing) thread or process.
    Receiver,
}

/// The cores the sender and the receiver are pinned to: [`CORES_ENV`], else 0 and 1.
/// Panics with a clear message on a malformed value (a benchmark's set-up error).
pub fn cores() -> (usize, usize) {
    let Ok(text) = std::env::var(CORES_ENV) else {
        return (0, 1);
    };
    cores_from(&text).unwrap_or_else(|| {
        panic!("{CORES_ENV}={text}: expected two core numbers, SENDER,RECEIVER (e.g. 0,1)")
    })
}

/// Parses `A,B`.
pub fn cores_from(text: &str) -> Option<(usize, usize)> {
    let (a, b) = text.split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Whether two cores are hardware threads of one physical core (from sysfs; `None` if it
/// does not say).
pub fn share_a_physical_core(a: usize, b: usize) -> Option<bool> {
    let id = |cpu: usize| -> Option<(String, String)> {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        Some((
            std::fs::read_to_string(format!("{dir}/physical_package_id")).ok()?,
            std::fs::read_to_string(format!("{dir}/core_id")).ok()?,
        ))
    };
    Some(id(a)? == id(b)?)
}

/// Pins the calling thread to the core of `end` (see [`cores`]; modulo the online cores).
pub fn pin(end: End) {
    let (sender, receiver) = cores();
    pin_to(match end {
        End::Sender => sender,
        End::Receiver => receiver,
    });
}

/// The cores online. Not `available_parallelism`: it honours this thread's (already
/// narrowed) affinity.
pub(crate) fn online_cores() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

/// Pins the calling thread to `core` (modulo the online cores).
pub(crate) fn pin_to(core: usize) {
    set_affinity([core % online_cores()]);
}

/// Lets the calling thread (and the processes it starts) run on every core: where the
/// measured processes share the machine as they would in use (the NATS bridge's rows).
pub fn unpin() {
    set_affinity(0..online_cores());
}

/// Lets the calling thread run on `cores` only.
fn set_affinity(cores: impl IntoIterator<Item = usize>) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for core in cores {
            libc::CPU_SET(core, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A way to move messages from one process to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// ringfile, ring file in /dev/shm, batches of 64 on both sides (`batch().send`,
    /// `recv_batch`): one publish and one release per 64 messages.
    Ringfile,
    /// ringfile, the plain API: one `send` and one `recv` per message, each published and
    /// released alone.
    RingfilePerMessage,
    /// [`Ringfile`](Self::Ringfile) with a receiver that reads and checks every byte of every
    /// message (as `consumer --verify` does) rather than touching one.
    RingfileRead,
    /// [`RingfilePerMessage`](Self::RingfilePerMessage) with a receiver that reads and checks
    /// every byte.
    RingfilePerMessageRead,
    /// ringfile, ring file on a disk path (the target directory).
    RingfileDisk,
    /// A bare SPSC byte ring over a /dev/shm mapping: no framing, no checks, no API.
    Floor,
    /// [`Floor`](Self::Floor) with a receiver that reads and checks every byte.
    FloorRead,
    /// [`Floor`](Self::Floor) publishing each message as it is sent and releasing each as it
    /// is received (the receiver loads the tail only when its copy says empty): the floor of
    /// any per-message path, which must make each message visible when sent.
    FloorPerMessage,
    /// [`FloorPerMessage`](Self::FloorPerMessage) with a receiver that reads and checks every
    /// byte: the floor of a per-message path whose reader does real work.
    FloorPerMessageRead,
    /// An anonymous pipe, one write(2) per message.
    Pipe,
    /// The same, with the pipe enlarged to 1 MiB.
    PipeBig,
    /// A Unix stream socket pair, one write(2) per message.
    UnixStream,
    /// A Unix SEQPACKET socket pair, one send per message, one recv per message.
    SeqPacket,
    /// The `ipmpsc` crate (shared-memory ring with bincode framing).
    Ipmpsc,
    /// iceoryx2 publish-subscribe, lossless (see [`peers`]).
    Iceoryx2,
    /// ipc-channel's `IpcBytesSender` (see [`peers`]).
    IpcChannel,
}

impl Transport {
    /// Every cross-process transport, ringfile first.
    pub const ALL: [Transport; 16] = [
        Transport::Ringfile,
        Transport::RingfilePerMessage,
        Transport::RingfileDisk,
        Transport::Floor,
        Transport::FloorPerMessage,
        Transport::RingfileRead,
        Transport::RingfilePerMessageRead,
        Transport::FloorRead,
        Transport::FloorPerMessageRead,
        Transport::Pipe,
        Transport::PipeBig,
        Transport::UnixStream,
        Transport::SeqPacket,
        Transport::Ipmpsc,
        Transport::Iceoryx2,
        Transport::IpcChannel,
    ];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ringfile => "ringfile, batched",
            Transport::RingfilePerMessage => "ringfile, per message",
            Transport::RingfileRead => "ringfile, batched, reading every byte",
            Transport::RingfilePerMessageRead => "ringfile, per message, reading every byte",
            Transport::RingfileDisk => "ringfile (disk file)",
            Transport::Floor => "floor (bare ring)",
            Transport::FloorRead => "floor, reading every byte",
            Transport::FloorPerMessage => "floor, publishing and releasing per message",
            Transport::FloorPerMessageRead => {
                "floor, publishing and releasing per message, reading every byte"
            }
            Transport::Pipe => "pipe",
            Transport::PipeBig => "pipe (1 MiB)",
            Transport::UnixStream => "unix stream",
            Transport::SeqPacket => "unix seqpacket",
            Transport::Ipmpsc => "ipmpsc",
            Transport::Iceoryx2 => "iceoryx2",
            Transport::IpcChannel => "ipc-channel",
        }
    }

    /// The name used on the command line and between processes.
    pub fn tag(self) -> &'static str {
        match self {
            Transport::Ringfile => "ringfile",
            Transport::RingfilePerMessage => "ringfile-each",
            Transport::RingfileRead => "ringfile-read",
            Transport::RingfilePerMessageRead => "ringfile-each-read",
            Transport::RingfileDisk => "ringfile-disk",
            Transport::Floor => "floor",
            Transport::FloorRead => "floor-read",
            Transport::FloorPerMessage => "floor-each",
            Transport::FloorPerMessageRead => "floor-each-read",
            Transport::Pipe => "pipe",
            Transport::PipeBig => "pipe-big",
            Transport::UnixStream => "unix-stream",
            Transport::SeqPacket => "seqpacket",
            Transport::Ipmpsc => "ipmpsc",
            Transport::Iceoryx2 => "iceoryx2",
            Transport::IpcChannel => "ipc-channel",
        }
    }

    /// Whether the receiver reads and checks every byte of every message; otherwise it touches
    /// one byte per message (the byte-stream transports copy every byte out of the kernel
    /// either way).
    pub fn reads_every_byte(self) -> bool {
        matches!(
            self,
            Transport::RingfileRead
                | Transport::RingfilePerMessageRead
                | Transport::FloorRead
                | Transport::FloorPerMessageRead
        )
    }

    /// The ringfile row this transport is compared with: batched ringfile with a receiver
    /// that reads as this one's does.
    pub fn ringfile_counterpart(self) -> Transport {
        if self.reads_every_byte() {
            Transport::RingfileRead
        } else {
            Transport::Ringfile
        }
    }

    /// The transport with this [`tag`](Self::tag).
    pub fn from_tag(tag: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.tag() == tag)
    }
}

/// The bytes of ringfile's record for a payload of `size` bytes
/// ([`ringfile::format::record_size`]).
pub fn record_size(size: usize) -> usize {
    ringfile::format::record_size(size as u64) as usize
}

/// When the sender stops.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this many messages.
    Count(u64),
    /// After this long.
    Time(Duration),
}

impl Stop {
    /// Whether a sender that has sent `sent` messages since `start` should go on. The clock
    /// is read once every 64 messages.
    #[inline]
    pub fn more(self, sent: u64, start: Instant) -> bool {
        match self {
            Stop::Count(n) => sent < n,
            Stop::Time(d) => !sent.is_multiple_of(64) || start.elapsed() < d,
        }
    }
}

/// What the receiving side measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured {
    /// Messages received.
    pub messages: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// From the first message received to the end of the stream.
    pub elapsed: Duration,
}

impl Measured {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Gigabytes (1e9 bytes) per second.
    pub fn gbps(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e9
    }
}

/// Where ring files go: /dev/shm, or a disk directory.
fn ring_path(transport: Transport, id: &str) -> PathBuf {
    let dir = match transport {
        Transport::RingfileDisk => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-rings");
            std::fs::create_dir_all(&dir).expect("create target/bench-rings");
            dir
        }
        _ => PathBuf::from("/dev/shm"),
    };
    dir.join(format!("ringfile-bench-{}-{id}", std::process::id()))
}

fn socketpair(kind: libc::c_int) -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn pipe(big: bool) -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    if big {
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20) };
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Writes all of `buf` to `fd` (one write(2) per call, normally).
fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for reads of its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "write: {e}");
            continue;
        }
        buf = &buf[n as usize..];
    }
}

struct Receiver {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Receiver {
    fn spawn(spec: &str, data: Option<OwnedFd>) -> Receiver {
        let (child, out) = spawn_ready_talking(spec, data);
        Receiver { child, out }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out
            .read_line(&mut line)
            .expect("read the receiver's report");
        line.trim().to_string()
    }

    fn finish(mut self) -> Measured {
        let report = self.line();
        let status = self.child.wait().expect("wait for the receiver");
        assert!(status.success(), "receiver failed: {report}");
        let f: Vec<u64> = report
            .split_whitespace()
            .map(|x| {
                x.parse()
                    .unwrap_or_else(|_| panic!("bad report {report:?}"))
            })
            .collect();
        Measured {
            messages: f[0],
            bytes: f[1],
            elapsed: Duration::from_nanos(f[2]),
        }
    }
}

/// The ringfile sending loop every benchmark uses: batches of 64 (one tail store each) until
/// `stop`. Returns how many were sent.
pub fn ringfile_send(producer: &mut ringfile::Producer, msg: &[u8], stop: Stop) -> u64 {
    producer.set_wait_strategy(ringfile::WaitStrategy::Spin);
    let (mut sent, start) = (0u64, Instant::now());
    while stop.more(sent, start) {
        let mut batch = producer.batch();
        for _ in 0..64 {
            batch.send(msg).unwrap();
        }
        drop(batch);
        sent += 64;
    }
    sent
}

/// The byte every benchmark message is filled with.
pub const FILL: u8 = 0x5a;

/// What a receiver does with each message: touch its first byte, or read and check every
/// byte. Returns 1 for a message that fails the check (touching checks nothing).
#[inline(always)]
pub fn read(msg: &[u8], every_byte: bool) -> u64 {
    if every_byte {
        // An OR of differences rather than `all`, so that it has no early exit and vectorises.
        u64::from(msg.iter().fold(0u8, |acc, &b| acc | (b ^ FILL)) != 0)
    } else {
        std::hint::black_box(msg[0]);
        0
    }
}

/// The ringfile receiving loop every benchmark uses: batches until the end of the stream,
/// [`read`]ing each message. Returns the count and when the first one arrived; panics if a
/// message failed the check.
pub fn ringfile_receive(
    consumer: &mut ringfile::Consumer,
    every_byte: bool,
) -> (u64, Option<Instant>) {
    consumer.set_wait_strategy(ringfile::WaitStrategy::Spin);
    let (mut messages, mut bad, mut first) = (0u64, 0u64, None);
    loop {
        let mut batch = consumer.recv_batch().unwrap();
        while let Some(msg) = batch.next().unwrap() {
            first.get_or_insert_with(Instant::now);
            bad += read(msg, every_byte);
            messages += 1;
        }
        if batch.is_end() {
            assert_eq!(bad, 0, "{bad} messages arrived changed");
            return (messages, first);
        }
    }
}

/// Sends `size`-byte messages through `transport` to a receiving process until `stop`.
/// `capacity` sizes the rings (shared-memory transports).
pub fn cross_process(transport: Transport, size: usize, capacity: u64, stop: Stop) -> Measured {
    let path = ring_path(transport, &format!("{size}-{capacity}"));
    let _ = std::fs::remove_file(&path);
    let spec = format!("{}|{size}|{capacity}|{}", transport.tag(), path.display());
    pin(End::Sender);
    let msg = vec![FILL; size];
    let mut sent = 0u64;
    let start = Instant::now();
    let more = |sent: u64| stop.more(sent, start);
    let measured = match transport {
        Transport::Ringfile | Transport::RingfileRead | Transport::RingfileDisk => {
            let ring = ringfile::Ring::create(&path, capacity).expect("create ring");
            let rx = Receiver::spawn(&spec, None);
            let mut producer = ring.producer().unwrap();
            sent = ringfile_send(&mut producer, &msg, stop);
            producer.close().unwrap();
            rx.finish()
        }
        Transport::RingfilePerMessage | Transport::RingfilePerMessageRead => {
            let ring = ringfile::Ring::create(&path, capacity).expect("create ring");
            let rx = Receiver::spawn(&spec, None);
            let mut producer = ring.producer().unwrap();
            producer.set_wait_strategy(ringfile::WaitStrategy::Spin);
            while more(sent) {
                producer.send(&msg).unwrap();
                sent += 1;
            }
            producer.close().unwrap();
            rx.finish()
        }
        Transport::Floor | Transport::FloorRead => {
            let ring = floor::FloorRing::create(&path, capacity);
            let rx = Receiver::spawn(&spec, None);
            let mut tx = ring.sender(msg.len());
            while more(sent) {
                for _ in 0..64 {
                    tx.send(&msg);
                }
                tx.publish();
                sent += 64;
            }
            tx.close();
            rx.finish()
        }
        Transport::FloorPerMessage | Transport::FloorPerMessageRead => {
            let ring = floor::FloorRing::create(&path, capacity);
            let rx = Receiver::spawn(&spec, None);
            let mut tx = ring.sender(msg.len());
            while more(sent) {
                tx.send(&msg);
                tx.publish();
                sent += 1;
            }
            tx.close();
            rx.finish()
        }
        Transport::Pipe | Transport::PipeBig | Transport::UnixStream | Transport::SeqPacket => {
            let (read_end, write_end) = match transport {
                Transport::Pipe => pipe(false),
                Transport::PipeBig => pipe(true),
                Transport::UnixStream => socketpair(libc::SOCK_STREAM),
                _ => socketpair(libc::SOCK_SEQPACKET),
            };
            let rx = Receiver::spawn(&spec, Some(read_end));
            let fd = write_end.as_raw_fd();
            while more(sent) {
                write_all(fd, &msg);
                sent += 1;
            }
            drop(write_end); // end of stream: EOF at the receiver
            rx.finish()
        }
        Transport::Ipmpsc => {
            let buffer = ipmpsc::SharedRingBuffer::create(path.to_str().unwrap(), capacity as u32)
                .expect("ipmpsc ring");
            let rx = Receiver::spawn(&spec, None);
            let tx = ipmpsc::Sender::new(buffer);
            let bytes = serde_bytes::Bytes::new(&msg);
            while more(sent) {
                tx.send(&bytes).unwrap();
                sent += 1;
            }
            tx.send(&serde_bytes::Bytes::new(&[])).unwrap(); // end marker
            rx.finish()
        }
        Transport::Iceoryx2 => {
            let node = peers::Iceoryx2::node();
            let buffer = peers::iceoryx2_buffer(size, capacity);
            let publisher = node.publisher(&iceoryx2_service(&path), size, buffer, true);
            let rx = Receiver::spawn(&spec, None);
            sent = peers::iceoryx2_send(&publisher, size, stop);
            rx.finish()
        }
        Transport::IpcChannel => {
            let server = peers::IpcChannelServer::new();
            let spec = format!("{}|{size}|{capacity}|{}", transport.tag(), server.name);
            let rx = Receiver::spawn(&spec, None);
            let (tx, _) = server.accept();
            sent = peers::ipc_channel_send(&tx, size, stop);
            rx.finish()
        }
    };
    let _ = std::fs::remove_file(&path);
    // Every message sent arrived (byte-stream transports count whole messages).
    assert_eq!(
        measured.messages,
        sent,
        "{}: messages lost",
        transport.name()
    );
    measured
}

/// The iceoryx2 service a throughput run at `path` uses.
fn iceoryx2_service(path: &Path) -> String {
    format!(
        "ringfile-bench/{}",
        path.file_name().unwrap().to_string_lossy()
    )
}

/// Starts this executable again as the other end of a measurement (`CHILD_ENV` = `spec`,
/// read by [`child_main`]) and waits until it says it is ready.
pub(crate) fn spawn_ready(spec: &str) -> Child {
    spawn_ready_talking(spec, None).0
}

/// [`spawn_ready`] with `data` as the child's stdin (none: /dev/null), keeping the child's
/// stdout for what it says after `ready`.
pub(crate) fn spawn_ready_talking(
    spec: &str,
    data: Option<OwnedFd>,
) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().expect("own executable"))
        .env(CHILD_ENV, spec)
        .stdout(Stdio::piped())
        .stdin(data.map_or_else(Stdio::null, Stdio::from))
        .spawn()
        .expect("spawn the other end");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line)
        .expect("read the other end's first line");
    assert_eq!(line.trim(), "ready", "the other end did not start");
    (child, out)
}

/// Runs the receiving side if this process was spawned as one; returns false otherwise.
/// Call first thing in `main`.
pub fn child_main() -> bool {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return false;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    if parts[0].starts_with("latency-") {
        latency::child(&parts);
        return true;
    }
    if parts[0] == "fanout" {
        fanout::child(&parts);
        return true;
    }
    if parts[0] == "await-send" {
        awaiting::child(&parts);
        return true;
    }
    let transport = Transport::from_tag(parts[0]).expect("known transport");
    let size: usize = parts[1].parse().unwrap();
    let path = PathBuf::from(parts[3]);
    pin(End::Receiver);
    let every_byte = transport.reads_every_byte();
    let mut messages = 0u64;
    let mut touched = 0u64;
    let mut bad = 0u64;
    let mut first: Option<Instant> = None;
    let ready = || println!("ready");
    match transport {
        Transport::Ringfile | Transport::RingfileRead | Transport::RingfileDisk => {
            let ring = ringfile::Ring::open(&path).unwrap();
            let mut consumer = ring.consumer().unwrap();
            ready();
            (messages, first) = ringfile_receive(&mut consumer, every_byte);
        }
        Transport::RingfilePerMessage | Transport::RingfilePerMessageRead => {
            let ring = ringfile::Ring::open(&path).unwrap();
            let mut consumer = ring.consumer().unwrap();
            consumer.set_wait_strategy(ringfile::WaitStrategy::Spin);
            ready();
            while let Some(msg) = consumer.recv().unwrap() {
                first.get_or_insert_with(Instant::now);
                bad += read(&msg, every_byte);
                messages += 1;
            }
        }
        Transport::Floor | Transport::FloorRead => {
            let ring = floor::FloorRing::open(&path);
            let mut rx = ring.receiver(size);
            ready();
            while let Some(n) = rx.recv(|msg| bad += read(msg, every_byte)) {
                first.get_or_insert_with(Instant::now);
                messages += n;
            }
        }
        Transport::FloorPerMessage | Transport::FloorPerMessageRead => {
            let ring = floor::FloorRing::open(&path);
            let mut rx = ring.receiver(size);
            ready();
            while rx.recv_one(|msg| bad += read(msg, every_byte)) {
                first.get_or_insert_with(Instant::now);
                messages += 1;
            }
        }
        Transport::Pipe | Transport::PipeBig | Transport::UnixStream => {
            ready();
            let mut buf = vec![0u8; 1 << 20];
            let mut bytes = 0u64;
            loop {
                // SAFETY: `buf` is valid for writes of its length; fd 0 is the data end.
                let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
                if n == 0 {
                    break;
                }
                if n < 0 {
                    continue; // EINTR
                }
                first.get_or_insert_with(Instant::now);
                touched += u64::from(buf[0]);
                bytes += n as u64;
            }
            messages = bytes / size as u64;
        }
        Transport::SeqPacket => {
            ready();
            let mut buf = vec![0u8; size + 1];
            loop {
                // SAFETY: `buf` is valid for writes of its length; fd 0 is the socket.
                let n = unsafe { libc::recv(0, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n == 0 {
                    break;
                }
                if n < 0 {
                    continue;
                }
                first.get_or_insert_with(Instant::now);
                assert_eq!(n as usize, size);
                touched += u64::from(buf[0]);
                messages += 1;
            }
        }
        Transport::Iceoryx2 => {
            let node = peers::Iceoryx2::node();
            let capacity: u64 = parts[2].parse().unwrap();
            let buffer = peers::iceoryx2_buffer(size, capacity);
            let subscriber = node.subscriber(&iceoryx2_service(&path), buffer, false);
            ready();
            (messages, first) = peers::iceoryx2_receive(&subscriber, size);
        }
        Transport::IpcChannel => {
            let (rx, _) = peers::ipc_channel_connect(parts[3]);
            ready();
            (messages, first) = peers::ipc_channel_receive(&rx, size);
        }
        Transport::Ipmpsc => {
            let buffer = ipmpsc::SharedRingBuffer::open(path.to_str().unwrap()).unwrap();
            let mut rx = ipmpsc::Receiver::new(buffer);
            ready();
            loop {
                let mut ctx = rx.zero_copy_context();
                let msg: &[u8] = ctx.recv().unwrap();
                if msg.is_empty() {
                    break;
                }
                first.get_or_insert_with(Instant::now);
                touched += u64::from(msg[0]);
                messages += 1;
            }
        }
    }
    let elapsed = first.map_or(Duration::ZERO, |f| f.elapsed());
    assert_eq!(
        bad,
        0,
        "{}: {bad} messages arrived changed",
        transport.name()
    );
    std::hint::black_box(touched);
    println!(
        "{messages} {} {}",
        messages * size as u64,
        elapsed.as_nanos()
    );
    true
}

/// Median of `runs` measurements of `f`, by message rate.
pub fn median(runs: usize, mut f: impl FnMut() -> Measured) -> Measured {
    let all: Vec<Measured> = (0..runs).map(|_| f()).collect();
    median_of(&all)
}

/// The median of `values` (sorting them); NaN if there are none.
pub fn median_f64(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    median_by(values, |v| *v)
}

/// The measurement with the median message rate.
pub fn median_of(runs: &[Measured]) -> Measured {
    median_by(&mut runs.to_vec(), Measured::rate)
}

/// The value of median `key` among `values` (not empty), sorting them by it.
pub fn median_by<T: Copy>(values: &mut [T], key: impl Fn(&T) -> f64) -> T {
    values.sort_by(|a, b| key(a).total_cmp(&key(b)));
    values[values.len() / 2]
}
