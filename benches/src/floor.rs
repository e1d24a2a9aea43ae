//! The floor: the least a shared-memory SPSC transfer can do on this machine. A byte ring in a
//! `MAP_SHARED` mapping of a /dev/shm file, fixed-size messages packed end to end (the ring
//! uses the largest multiple of the message size that fits, so none wraps), no framing, no
//! validation, no waiting strategy but spinning, no API. The
//! producer publishes its tail once per batch and the consumer its head once per batch, as
//! ringfile does in batch mode. ringfile's speed is reported as a fraction of this.
//!
//! The floor is the least a transfer costs where the link is the limit (large messages). At
//! small sizes it is one point of a regime that depends on the receiver's speed: a receiver
//! that only touches one byte per message is faster than the sender, catches up, and then
//! reads each line while the sender writes the next, and both slow down. Measured on the
//! 2-core AMD VM, 64 B: about 60 M msg/s as is, about 220 M msg/s when the receiver spends
//! about 4 ns on each message (and ringfile's own 64 B rate moves the same way with its
//! consumer's speed). Compare small-size ratios against the floor with that in mind.

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const TAIL: usize = 0;
const HEAD: usize = 128;
const CLOSED: usize = 256;
const DATA: usize = 4096;

/// A mapped floor ring.
pub struct FloorRing {
    map: memmap2::MmapRaw,
    capacity: u64,
}

impl FloorRing {
    /// Creates the ring file.
    pub fn create(path: &Path, capacity: u64) -> FloorRing {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .expect("create floor ring");
        file.set_len(DATA as u64 + capacity).unwrap();
        Self::map(&file)
    }

    /// Opens the ring file.
    pub fn open(path: &Path) -> FloorRing {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open floor ring");
        Self::map(&file)
    }

    fn map(file: &std::fs::File) -> FloorRing {
        let len = file.metadata().unwrap().len();
        let map = memmap2::MmapRaw::map_raw(file).unwrap();
        FloorRing {
            map,
            capacity: len - DATA as u64,
        }
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: offsets 0, 128 and 256 are 8-byte aligned words inside the mapping, which
        // lives as long as `self`; atomics are valid for any bit pattern.
        unsafe { &*self.map.as_mut_ptr().add(offset).cast::<AtomicU64>() }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: DATA is inside the mapping.
        unsafe { self.map.as_mut_ptr().add(DATA) }
    }

    /// The bytes of the ring that messages of `size` bytes use: the largest multiple of
    /// `size` that fits.
    fn used(&self, size: usize) -> u64 {
        assert!(
            size > 0 && size as u64 <= self.capacity,
            "floor message size {size}"
        );
        self.capacity - self.capacity % size as u64
    }

    /// The sending side, for messages of `size` bytes.
    pub fn sender(&self, size: usize) -> FloorSender<'_> {
        FloorSender {
            ring: self,
            size,
            used: self.used(size),
            tail: 0,
            offset: 0,
            head: 0,
        }
    }

    /// The receiving side, for messages of `size` bytes.
    pub fn receiver(&self, size: usize) -> FloorReceiver<'_> {
        FloorReceiver {
            ring: self,
            size,
            used: self.used(size),
            head: 0,
            offset: 0,
            cached_tail: 0,
        }
    }
}

/// Where the message after one at `offset` starts, in a ring of `used` bytes of `size`-byte
/// messages.
#[inline(always)]
fn step(offset: usize, size: usize, used: u64) -> usize {
    let next = offset + size;
    if next as u64 == used {
        0
    } else {
        next
    }
}

/// Sends into a [`FloorRing`].
pub struct FloorSender<'a> {
    ring: &'a FloorRing,
    size: usize,
    used: u64,
    /// Bytes sent, ever (the published count is the tail word).
    tail: u64,
    /// Where the next message goes.
    offset: usize,
    head: u64,
}

impl FloorSender<'_> {
    /// Copies `msg` (of the sender's size) in, spinning while the ring is full.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) {
        let len = msg.len() as u64;
        let cap = self.used;
        debug_assert_eq!(msg.len(), self.size);
        if self.tail + len > self.head + cap {
            // Full: publish once (the receiver may be waiting for it), then watch the head.
            // (Storing the tail on every turn of this loop, as this used to, hammers the line
            // the receiver polls and made the floor fall by 8x whenever the ring filled.)
            self.publish();
            loop {
                self.head = self.ring.word(HEAD).load(Ordering::Acquire);
                if self.tail + len <= self.head + cap {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        // SAFETY: `offset + len <= used <= capacity` because len divides `used`; this range is
        // the sender's until published.
        unsafe {
            std::ptr::copy_nonoverlapping(
                msg.as_ptr(),
                self.ring.data().add(self.offset),
                msg.len(),
            )
        };
        self.tail += len;
        self.offset = step(self.offset, self.size, self.used);
    }

    /// Publishes what was sent.
    #[inline]
    pub fn publish(&mut self) {
        self.ring.word(TAIL).store(self.tail, Ordering::Release);
    }

    /// Publishes and marks the end.
    pub fn close(mut self) {
        self.publish();
        self.ring.word(CLOSED).store(1, Ordering::Release);
    }
}

/// Receives from a [`FloorRing`].
pub struct FloorReceiver<'a> {
    ring: &'a FloorRing,
    size: usize,
    used: u64,
    head: u64,
    offset: usize,
    /// The tail as last loaded ([`recv_one`](Self::recv_one)).
    cached_tail: u64,
}

impl FloorReceiver<'_> {
    /// Waits (spinning) for messages, passes each to `f`, releases them all at once; returns
    /// how many, or `None` at the end.
    #[inline]
    pub fn recv(&mut self, mut f: impl FnMut(&[u8])) -> Option<u64> {
        let size = self.size;
        loop {
            let tail = self.ring.word(TAIL).load(Ordering::Acquire);
            let n = (tail - self.head) / size as u64;
            if n > 0 {
                for _ in 0..n {
                    // SAFETY: published, within the mapping (size divides `used`).
                    f(unsafe {
                        std::slice::from_raw_parts(self.ring.data().add(self.offset), size)
                    });
                    self.head += size as u64;
                    self.offset = step(self.offset, size, self.used);
                }
                self.ring.word(HEAD).store(self.head, Ordering::Release);
                return Some(n);
            }
            if self.ring.word(CLOSED).load(Ordering::Acquire) == 1
                && self.ring.word(TAIL).load(Ordering::Acquire) == self.head
            {
                return None;
            }
            std::hint::spin_loop();
        }
    }

    /// Waits (spinning) for one message, passes it to `f` and releases it; `false` at the
    /// end. Loads the tail only when its copy says the ring is empty: what a per-message
    /// receive must do at the least.
    #[inline]
    pub fn recv_one(&mut self, f: impl FnOnce(&[u8])) -> bool {
        let size = self.size as u64;
        while self.cached_tail < self.head + size {
            self.cached_tail = self.ring.word(TAIL).load(Ordering::Acquire);
            if self.cached_tail >= self.head + size {
                break;
            }
            if self.ring.word(CLOSED).load(Ordering::Acquire) == 1
                && self.ring.word(TAIL).load(Ordering::Acquire) == self.head
            {
                return false;
            }
            std::hint::spin_loop();
        }
        // SAFETY: published, within the mapping (size divides `used`).
        f(unsafe { std::slice::from_raw_parts(self.ring.data().add(self.offset), self.size) });
        self.head += size;
        self.offset = step(self.offset, self.size, self.used);
        self.ring.word(HEAD).store(self.head, Ordering::Release);
        true
    }
}

/// The per-message duties of ringfile's contract, as bits of the mask that
/// [`FramedFloor::send_each`] and [`FramedFloor::recv_each`] take: what FORMAT.md and the
/// wake-up protocol have every publish and release do besides storing the position and
/// looking at the other side's sleep flag. The cost table's per-duty rows (`report --duties`)
/// leave one out at a time, to show what each costs.
pub mod duty {
    /// None: the per-message floor.
    pub const NONE: u8 = 0;
    /// The exact message (and, publishing, byte) counters, stored before the position.
    pub const COUNTERS: u8 = 1;
    /// This process's copy of the position, stored before the shared one (what the other
    /// side of this process checks a forged position against).
    pub const LOCAL_POSITIONS: u8 = 2;
    /// The asymmetric barrier's decision: a fence unless this process registered for
    /// membarriers and the sleeper declared its pid as its role's holder.
    pub const BARRIER_DECISION: u8 = 4;
    /// The fork check of a release (a message dropped in a forked child releases nothing).
    pub const FORK_CHECK: u8 = 8;
    /// All of them: ringfile's per-message floor as the contract stands.
    pub const ALL: u8 = COUNTERS | LOCAL_POSITIONS | BARRIER_DECISION | FORK_CHECK;
}

/// The floor in ringfile's record format, for one thread's processor time only
/// ([`crate::cost`]): each message is an 8-byte header (its length) followed by the payload,
/// at positions rounded up to 8 bytes, a record that would cross the end preceded by a skip
/// to the start — ringfile's layout with none of its code (no room checks against the other
/// side, no validation, no API). What separates the floor from this is the format (a
/// payload 8 bytes past its record's start, so rarely aligned as the floor's is); what
/// separates this from ringfile is ringfile's code.
pub struct FramedFloor {
    map: memmap2::MmapMut,
    write: usize,
    read: usize,
    /// The positions of [`send_published`](Self::send_published) and
    /// [`recv_released`](Self::recv_released).
    words: Box<PerMessageWords>,
    /// Bytes written and read since the start (records and skips): the positions.
    written: u64,
    taken: u64,
    /// The sides' copies of each other's position, refreshed only when they say stop.
    cached_tail: u64,
    cached_head: u64,
    /// The duties' counts (see [`send_dutiful`](Self::send_dutiful)) and the fork generation
    /// the ring was set up in.
    sent: u64,
    sent_bytes: u64,
    released: u64,
    generation: u32,
}

/// The words a publish and a release per message touch, each in a line of its own as
/// ringfile's are: the tail and the head, and each side's "I sleep" flag that the other
/// looks at after storing its position.
///
/// With the duties ([`send_dutiful`](FramedFloor::send_dutiful)), also what ringfile's
/// contract has each publish and release do besides: the exact message and byte counters
/// FORMAT.md keeps, the positions this process's other side checks a forged one against, and
/// the asymmetric barrier's decision (whether the sleeper issues membarriers).
#[derive(Default)]
struct PerMessageWords {
    tail: Line<AtomicU64>,
    head: Line<AtomicU64>,
    consumer_sleeps: Line<SleepWords>,
    producer_sleeps: Line<SleepWords>,
    /// Messages and payload bytes published; messages released.
    published: Line<[AtomicU64; 2]>,
    released: Line<AtomicU64>,
    /// The pids of the two roles' holders, side by side as ringfile's role block keeps them.
    pids: Line<[AtomicU32; 2]>,
    /// This process's copies of the positions (ringfile's are in the process, not the file).
    local_tail: Line<AtomicU64>,
    local_head: Line<AtomicU64>,
}

impl PerMessageWords {
    /// Both roles held by this process, each issuing membarriers: the barrier's decision
    /// says no fence, as it does for ringfile's sides in two processes that registered.
    fn for_this_process() -> Box<PerMessageWords> {
        let words = Box::<PerMessageWords>::default();
        let pid = std::process::id();
        for word in [&words.pids[0], &words.pids[1]] {
            word.store(pid, Ordering::Relaxed);
        }
        for side in [&words.consumer_sleeps, &words.producer_sleeps] {
            side.membarrier_pid.store(pid, Ordering::Relaxed);
        }
        words
    }
}

/// A side's "I sleep" flag and the pid that says it issues membarriers, in one line as
/// ringfile's waiting words are.
#[derive(Default)]
struct SleepWords {
    sleeping: AtomicU32,
    membarrier_pid: AtomicU32,
}

/// Whether this process registered for membarriers (ringfile's is a process-wide flag).
static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
/// The fork generation (ringfile bumps its own in a forked child).
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// A value alone in its 128 bytes (a line and the one the adjacent-line prefetcher pairs
/// with it), as ringfile's control block keeps its words.
#[derive(Default)]
#[repr(align(128))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A [`FramedFloor`] header that says "the rest of the ring is skipped".
const SKIP: u64 = u64::MAX;

impl FramedFloor {
    /// A framed ring of `capacity` bytes (a power of two) in a /dev/shm file mapped shared,
    /// as the floor's; the file is removed once mapped.
    pub fn new(path: &Path, capacity: usize) -> FramedFloor {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .expect("create framed floor ring");
        file.set_len(capacity as u64).unwrap();
        // SAFETY: a new file of this length that nothing else maps or truncates.
        let map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
        let _ = std::fs::remove_file(path);
        FramedFloor {
            map,
            write: 0,
            read: 0,
            words: PerMessageWords::for_this_process(),
            written: 0,
            taken: 0,
            cached_tail: 0,
            cached_head: 0,
            sent: 0,
            sent_bytes: 0,
            released: 0,
            generation: GENERATION.load(Ordering::Relaxed),
        }
    }

    /// [`send`](Self::send) with the least a publish per message must do: check the room
    /// against the copy of the head (refreshing it only when that says full), store the
    /// tail (Release), then look at the consumer's sleep flag — ringfile's per-message
    /// protocol where the asymmetric barrier spares the fence, with none of its code.
    #[inline]
    pub fn send_published(&mut self, msg: &[u8]) {
        self.send_each::<{ duty::NONE }>(msg);
    }

    /// [`send_published`](Self::send_published) doing, besides, what ringfile's contract has
    /// every publish do: the local tail stored before the shared one, the message and byte
    /// counters stored with it (FORMAT.md's exact totals), and the barrier's decision made
    /// from the process's registration and the sleeper's membarrier pid against its role's
    /// pid. Still none of ringfile's code: no validation, no API, no fork check.
    #[inline]
    pub fn send_dutiful(&mut self, msg: &[u8]) {
        self.send_each::<{ duty::ALL }>(msg);
    }

    /// [`send_published`](Self::send_published) doing the duties in the mask `DUTIES`
    /// ([`duty`]): a constant, so that a duty left out costs nothing, not even a test.
    #[inline(always)]
    pub fn send_each<const DUTIES: u8>(&mut self, msg: &[u8]) {
        let size = crate::record_size(msg.len()) as u64;
        let cap = self.map.len() as u64;
        // Room for the record and a skip in front of it.
        if self.written + 2 * size > self.cached_head + cap {
            self.cached_head = self.words.head.load(Ordering::Acquire);
            assert!(self.written + 2 * size <= self.cached_head + cap, "full");
        }
        let before = self.write;
        self.send(msg);
        self.written += self.moved(before, self.write);
        let words = &*self.words;
        if DUTIES & duty::LOCAL_POSITIONS != 0 {
            words.local_tail.store(self.written, Ordering::Release);
        }
        if DUTIES & duty::COUNTERS != 0 {
            self.sent += 1;
            self.sent_bytes += msg.len() as u64;
            words.published[0].store(self.sent, Ordering::Relaxed);
            words.published[1].store(self.sent_bytes, Ordering::Relaxed);
        }
        words.tail.store(self.written, Ordering::Release);
        if DUTIES & duty::BARRIER_DECISION != 0 && !unfenced(&words.consumer_sleeps, &words.pids[1])
        {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
        if words.consumer_sleeps.sleeping.load(Ordering::Relaxed) != 0 {
            wake_nobody();
        }
    }

    /// [`recv`](Self::recv) with the least a release per message must do: load the tail
    /// (Acquire) only when the copy says empty, store the head (Release), then look at the
    /// producer's sleep flag.
    #[inline]
    pub fn recv_released(&mut self, f: impl FnOnce(&[u8])) {
        self.recv_each::<{ duty::NONE }>(f);
    }

    /// [`recv_released`](Self::recv_released) doing, besides, what ringfile's contract has
    /// every release do: the fork generation checked (a message dropped in a forked child
    /// releases nothing), the local head stored before the shared one, the released count
    /// stored with it, and the barrier's decision as [`send_dutiful`](Self::send_dutiful)'s.
    #[inline]
    pub fn recv_dutiful(&mut self, f: impl FnOnce(&[u8])) {
        self.recv_each::<{ duty::ALL }>(f);
    }

    /// [`recv_released`](Self::recv_released) doing the duties in the mask `DUTIES`
    /// ([`duty`]), as [`send_each`](Self::send_each) does.
    #[inline(always)]
    pub fn recv_each<const DUTIES: u8>(&mut self, f: impl FnOnce(&[u8])) {
        if self.taken == self.cached_tail {
            self.cached_tail = self.words.tail.load(Ordering::Acquire);
            assert!(self.taken < self.cached_tail, "empty");
        }
        let before = self.read;
        self.recv(f);
        if DUTIES & duty::FORK_CHECK != 0 && GENERATION.load(Ordering::Relaxed) != self.generation {
            return;
        }
        self.taken += self.moved(before, self.read);
        let words = &*self.words;
        if DUTIES & duty::LOCAL_POSITIONS != 0 {
            words.local_head.store(self.taken, Ordering::Release);
        }
        if DUTIES & duty::COUNTERS != 0 {
            self.released += 1;
            words.released.store(self.released, Ordering::Relaxed);
        }
        words.head.store(self.taken, Ordering::Release);
        if DUTIES & duty::BARRIER_DECISION != 0 && !unfenced(&words.producer_sleeps, &words.pids[0])
        {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
        if words.producer_sleeps.sleeping.load(Ordering::Relaxed) != 0 {
            wake_nobody();
        }
    }

    /// The bytes from offset `before` forward to offset `after` (a record moves its side at
    /// least 8 bytes): at or past the start again, the skipped end and what follows the start.
    #[inline]
    fn moved(&self, before: usize, after: usize) -> u64 {
        if after > before {
            (after - before) as u64
        } else {
            (self.map.len() - before + after) as u64
        }
    }

    /// Writes `msg` as a record after the last one (the caller keeps the ring from
    /// overflowing: one thread, half a ring at a time).
    #[inline]
    pub fn send(&mut self, msg: &[u8]) {
        let size = crate::record_size(msg.len());
        if self.write + size > self.map.len() {
            if self.write < self.map.len() {
                self.map[self.write..self.write + 8].copy_from_slice(&SKIP.to_ne_bytes());
            }
            self.write = 0;
        }
        let record = &mut self.map[self.write..self.write + size];
        record[..8].copy_from_slice(&(msg.len() as u64).to_ne_bytes());
        record[8..8 + msg.len()].copy_from_slice(msg);
        self.write += size;
    }

    /// Reads the next record's header and passes its payload to `f`.
    #[inline]
    pub fn recv(&mut self, f: impl FnOnce(&[u8])) {
        if self.read == self.map.len() {
            self.read = 0;
        }
        let mut len = self.header_at(self.read);
        if len == SKIP {
            self.read = 0;
            len = self.header_at(0);
        }
        let len = len as usize;
        f(&self.map[self.read + 8..self.read + 8 + len]);
        self.read += crate::record_size(len);
    }

    /// The header word at `offset`.
    #[inline]
    fn header_at(&self, offset: usize) -> u64 {
        u64::from_ne_bytes(self.map[offset..offset + 8].try_into().unwrap())
    }
}

/// The asymmetric barrier's decision, as ringfile's waker makes it: the fence may be
/// skipped when this process registered for membarriers and the sleeper's membarrier pid is
/// its role's holder's.
#[inline(always)]
fn unfenced(sleeper: &SleepWords, holder: &AtomicU32) -> bool {
    let pid = sleeper.membarrier_pid.load(Ordering::Relaxed);
    REGISTERED.load(Ordering::Relaxed) && pid != 0 && pid == holder.load(Ordering::Relaxed)
}

/// Where a floor side would wake a sleeper (none sleeps on one thread).
#[cold]
#[inline(never)]
fn wake_nobody() {
    unreachable!("nobody sleeps on one thread");
}

/// A fresh path in /dev/shm for a floor ring in this process (the caller removes it once
/// mapped).
pub(crate) fn tempfile_in_shm() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::path::PathBuf::from(format!(
        "/dev/shm/ringfile-bench-floor-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

#[cfg(test)]
mod tests {
    use super::{tempfile_in_shm, FloorRing, FramedFloor};

    /// The per-message floor carries messages of several sizes round its ring, skips
    /// included, unchanged and in order, and its positions count every byte it moved past.
    #[test]
    fn the_per_message_floor_goes_round_the_ring_unchanged() {
        let mut ring = FramedFloor::new(&tempfile_in_shm(), 4096);
        let (mut sent, mut received) = (0u8, 0u8);
        for round in 0..40 {
            let len = [8, 64, 200, 1000][round % 4];
            for _ in 0..3 {
                ring.send_published(&vec![sent; len]);
                sent = sent.wrapping_add(1);
            }
            for _ in 0..3 {
                ring.recv_released(|msg| {
                    assert_eq!(msg.len(), len);
                    assert!(msg.iter().all(|&b| b == received), "message {received}");
                });
                received = received.wrapping_add(1);
            }
            assert_eq!(ring.written, ring.taken);
        }
        assert_eq!(received, sent);
        assert!(ring.written > 4 * 4096, "went round the ring");
    }

    /// Messages whose size does not divide the capacity (ringfile's record size for 1 KiB)
    /// go round the ring several times unchanged and in order.
    #[test]
    fn any_message_size_goes_round_the_ring_unchanged() {
        let path = tempfile_in_shm();
        let ring = FloorRing::create(&path, 64 << 10);
        let _ = std::fs::remove_file(&path);
        let size = crate::record_size(1024);
        let (mut tx, mut rx) = (ring.sender(size), ring.receiver(size));
        // 63 messages fit; 50 at a time, so that the ring wraps mid-batch.
        let (mut sent, mut received) = (0u8, 0u8);
        for _ in 0..6 {
            for _ in 0..50 {
                tx.send(&vec![sent; size]);
                sent = sent.wrapping_add(1);
            }
            tx.publish();
            let mut got = 0;
            while got < 50 {
                got += rx
                    .recv(|msg| {
                        assert_eq!(msg.len(), size);
                        assert!(msg.iter().all(|&b| b == received), "message {received}");
                        received = received.wrapping_add(1);
                    })
                    .unwrap();
            }
            assert_eq!(got, 50);
        }
        assert_eq!(received, sent);
    }
}
