//! The on-file layout: the only module that knows byte offsets.
//!
//! A ring file is one header page followed by the data region:
//!
//! ```text
//! offset  size  block            contents
//! ------  ----  ---------------  ---------------------------------------------------------
//!      0   128  Header           magic, format version, sizes, creation info (written once)
//!    128   128  tail line        published_tail: u64       (written by the producer only)
//!    256   128  head line        released_head: u64        (written by the consumer only)
//!    384   128  consumer wait    consumer_sleeping: u32 (futex word: consumer waits for data),
//!                                then the consumer's barrier words (see `WaitWords`)
//!    512   128  producer wait    producer_sleeping: u32 (futex word: producer waits for space),
//!                                then the producer's barrier words
//!    640   128  roles line       producer_pid, consumer_pid: u32; producer_state: u64;
//!                                producer_start: u64; two resume marks (tail, mark: u64)
//!    768   128  producer stats   published_messages, published_bytes: u64 (statistics,
//!                                producer only)
//!    896   128  consumer stats   released_messages: u64 (statistics, consumer only)
//!   1024  3072  (zero)           reserved up to HEADER_SIZE
//!   4096     C  data region      records; C = capacity, a power of two
//! ```
//!
//! Every shared word sits in its own 128-byte block: x86 prefetches cache lines in
//! adjacent pairs, so 64-byte spacing would still let the producer's tail and the consumer's
//! head invalidate each other's line (false sharing). All integers are little-endian.
//!
//! Positions (`published_tail`, `released_head`) are byte counters that only grow; the byte
//! a position refers to is `position % capacity` in the data region. Invariant, checked on every
//! attach: `released_head <= published_tail <= released_head + capacity`, both multiples of 8.

use crate::os::sync::{AtomicU32, AtomicU64, Ordering};
use bytemuck::{Pod, Zeroable};

/// The first eight bytes of every ring file.
pub const MAGIC: [u8; 8] = *b"RINGFILE";
/// The newest layout version this crate reads and writes: 2, a ring with several consumer
/// slots. A ring with one consumer is written in version 1 ([`SINGLE_CONSUMER_VERSION`]),
/// byte for byte the layout from before slots existed, so that it runs exactly as it did and
/// older readers still open it.
pub const FORMAT_VERSION: u32 = 2;
/// The layout of a ring with one consumer (no slot table): format version 1.
pub const SINGLE_CONSUMER_VERSION: u32 = 1;
/// Size of the header page that precedes the data region in a version 1 ring, and the unit
/// a version 2 header is a multiple of (see [`header_size`]).
pub const HEADER_SIZE: u64 = 4096;
/// Offset of the consumers' shared wake-up block in a version 2 ring (FORMAT.md, "Several
/// consumers": a sleeping flag at +0, the futex word `wake_seq` at +4).
pub const FANOUT_WAKE_OFFSET: u64 = 1024;
/// Offset of the first consumer slot in a version 2 ring; slot `i` is at
/// `SLOTS_OFFSET + SLOT_SIZE * i`.
pub const SLOTS_OFFSET: u64 = 1152;
/// Bytes per consumer slot: one 128-byte block (FORMAT.md, "Several consumers").
pub const SLOT_SIZE: u64 = 128;
/// The most consumer slots a ring may have. Each costs 128 bytes of header and one look by
/// the producer when its cached view says the ring may be full.
pub const MAX_CONSUMER_SLOTS: u32 = 256;
/// The lock byte of the registry: held (briefly, waiting for it) by whoever registers or
/// evicts a consumer name, so that two processes never register one name twice.
pub const REGISTRY_LOCK_BYTE: u64 = 3;
/// Slot `i`'s lock byte in a version 2 ring is `SLOT_LOCK_BASE + i`.
pub const SLOT_LOCK_BASE: u64 = 64;
/// The longest consumer name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 64;

/// The header size (the data region's offset) of a ring with `slots` consumer slots: one
/// page for a version 1 ring (`slots` 1), else the slot table rounded up to whole pages.
#[must_use]
pub const fn header_size(slots: u32) -> u64 {
    if slots <= 1 {
        HEADER_SIZE
    } else {
        (SLOTS_OFFSET + SLOT_SIZE * slots as u64).div_ceil(HEADER_SIZE) * HEADER_SIZE
    }
}

/// The lock byte of consumer slot `slot` (slot 0 of a version 1 ring is the consumer role,
/// [`CONSUMER_LOCK_BYTE`]).
#[must_use]
pub const fn slot_lock_byte(version: u32, slot: u32) -> u64 {
    if version == SINGLE_CONSUMER_VERSION {
        CONSUMER_LOCK_BYTE
    } else {
        SLOT_LOCK_BASE + slot as u64
    }
}
/// Offset of the control block (positions, futex words, roles) in the file.
pub const CONTROL_OFFSET: u64 = 128;
/// Byte offsets of the two role locks (open file description locks; they lock no data,
/// they only name a byte of the file as the role's token).
pub const PRODUCER_LOCK_BYTE: u64 = 0;
/// See [`PRODUCER_LOCK_BYTE`].
pub const CONSUMER_LOCK_BYTE: u64 = 1;

/// Smallest data capacity: room for a few small records.
pub const MIN_CAPACITY: u64 = 64;
/// Largest data capacity. Record lengths are 32-bit, and the largest message is half the
/// capacity, so 4 GiB keeps every length representable.
pub const MAX_CAPACITY: u64 = 1 << 32;

/// Positions in a file must be below this (2^62; checked whenever a side attaches), so that
/// no sum of a position and a size can overflow, whatever the file says. A stream of 10 GB/s
/// reaches it after 14 years.
pub const MAX_POSITION: u64 = 1 << 62;

/// Size of a record header: `u32` payload length, then `u32` record type.
pub const RECORD_HEADER: u64 = 8;
/// Records start on multiples of this, so every record header is an aligned `u64`.
pub const RECORD_ALIGN: u64 = 8;
/// Record type: a message.
pub const RECORD_DATA: u32 = 1;
/// Record type: filler up to the end of the data region, so the next record starts at 0.
pub const RECORD_PADDING: u32 = 2;
/// Record type: end of stream (length 0).
pub const RECORD_END: u32 = 3;
/// Record type: the producer stopped on an error; the stream ends here and the payload
/// (possibly empty) is the producer's reason, in UTF-8.
pub const RECORD_ABORT: u32 = 4;

/// Bytes a producer always leaves free for the record that ends its stream (an END, or an
/// ABORT without a reason): a producer can always close or abort at once, without waiting for
/// a consumer that may never come. A record of 8 bytes never needs padding in front of it.
pub const END_RESERVE: u64 = RECORD_HEADER;

/// The largest message a ring of `capacity` bytes carries: half the capacity less one record
/// header. With a record of at most `capacity / 2` bytes, the padding in front of it
/// (which is shorter than the record, so at most `capacity / 2 - 8`) plus the record plus
/// the 8 bytes kept free for the end of the stream always fit an empty ring, so a waiting sender
/// always makes progress.
#[must_use]
pub const fn max_message_len(capacity: u64) -> u64 {
    capacity / 2 - RECORD_HEADER
}

/// Whether `capacity` is a data capacity a ring may have.
#[must_use]
pub const fn capacity_is_valid(capacity: u64) -> bool {
    capacity.is_power_of_two() && capacity >= MIN_CAPACITY && capacity <= MAX_CAPACITY
}

/// The immutable part of the header at offset 0, written once at creation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// Bytes before the data region; [`HEADER_SIZE`].
    pub header_size: u32,
    /// Data region size in bytes, a power of two in `MIN_CAPACITY ..= MAX_CAPACITY`.
    pub capacity: u64,
    /// Largest message payload: `max_message_len(capacity)`.
    pub max_message: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// Process id of the creator.
    pub creator_pid: u32,
    /// Reserved, zero.
    pub flags: u32,
    /// Version 2: the number of consumer slots, `2 ..= MAX_CONSUMER_SLOTS`; version 1: zero.
    pub consumer_slots: u32,
    /// Reserved, zero.
    pub reserved_52: u32,
    /// Reserved, zero.
    pub reserved: [u64; 9],
}

impl Header {
    /// A header for a new ring of `capacity` bytes with `slots` consumer slots (1: the
    /// version 1 layout).
    pub fn new(capacity: u64, slots: u32, created_unix_ns: u64, creator_pid: u32) -> Self {
        let fanout = slots > 1;
        Header {
            magic: MAGIC,
            version: if fanout {
                FORMAT_VERSION
            } else {
                SINGLE_CONSUMER_VERSION
            },
            header_size: header_size(slots) as u32,
            capacity,
            max_message: max_message_len(capacity),
            created_unix_ns,
            creator_pid,
            flags: 0,
            consumer_slots: if fanout { slots } else { 0 },
            reserved_52: 0,
            reserved: [0; 9],
        }
    }

    /// How many consumer slots the ring has (1 for version 1).
    #[must_use]
    pub fn slots(&self) -> u32 {
        self.consumer_slots.max(1)
    }
}

/// One 128-byte block holding one shared word, so no two words share a prefetched line pair.
#[repr(C, align(128))]
#[derive(Default)]
pub struct Block<T>(pub T);

impl<T> std::ops::Deref for Block<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Who holds the roles, written by the role holders.
#[repr(C)]
#[derive(Default)]
pub struct Roles {
    /// Pid of the last process that took the producer role (0: never taken).
    pub producer_pid: AtomicU32,
    /// Pid of the last process that took the consumer role (0: never taken).
    pub consumer_pid: AtomicU32,
    /// `epoch << 1 | attached`: the epoch counts producer attachments (it tells one
    /// producer's life from the next), and the low bit is [`PRODUCER_ATTACHED`] while that
    /// producer is attached. A producer that detaches cleanly (or has closed its stream)
    /// clears the bit; left set with the producer lock free, it means the producer died.
    /// One word, so that "which producer" and "whether it is attached" are always read
    /// together.
    pub producer_state: AtomicU64,
    /// The published tail when the current producer attached: every record at or after it
    /// is this producer's, every record before it an earlier one's. Written before
    /// `producer_state`.
    pub producer_start: AtomicU64,
    /// Two resume marks (see [`ResumeMark`]): a producer that records where its input stood
    /// with a publish writes the one not matching the published tail, so a crash between
    /// writing a mark and publishing leaves the other, which still matches.
    pub resume: [ResumeMark; 2],
}

/// A producer's note of where its input stood at a publish: `mark`, an opaque non-zero value
/// of the producer's (a bridge stores the upstream sequence of the last message written), is
/// valid only while `tail` equals the published tail, i.e. for the publish it was written with.
/// Only producers read and write these; zero (a ring that never had one) means no mark.
#[repr(C)]
#[derive(Default)]
pub struct ResumeMark {
    /// The published tail this mark goes with.
    pub tail: AtomicU64,
    /// The producer's value; 0: none.
    pub mark: AtomicU64,
}

/// One side's waiting words: its futex word, and how the other side must order its wake-up
/// checks (see the `barrier` module). All written by that side but `fence_ack`, which the
/// other side writes; all in the one line the other side reads after every position store.
#[repr(C)]
#[derive(Default)]
pub struct WaitWords {
    /// 1 while the side is (about to be) asleep, else 0: the futex word.
    pub sleeping: AtomicU32,
    /// The pid of the side's role holder if that holder issues a global membarrier between
    /// announcing a sleep and re-checking; 0 if it does not (the other side must fence).
    pub membarrier_pid: AtomicU32,
    /// Bumped by the side each time it starts to rely on the other side's fences.
    pub fence_request: AtomicU32,
    /// The last `fence_request` the other side has seen: from its next wake-up on, it fences.
    pub fence_ack: AtomicU32,
}

/// The producers' traffic counters: statistics, which no decision of the protocol reads.
#[repr(C)]
#[derive(Default)]
pub struct Traffic {
    /// DATA records (messages) since the ring was created.
    pub messages: AtomicU64,
    /// Their payload bytes (record headers and padding not counted).
    pub bytes: AtomicU64,
    /// Version 2 only (zero and unused in version 1): the sequence word of the published
    /// pair, odd while a producer stores `messages` and the tail, even once it has, so that
    /// a reader can read the tail and the number of messages below it as one pair (see
    /// `protocol::lapping`). At offset 784.
    pub seq: AtomicU64,
}

impl Traffic {
    /// The counters as they are (Relaxed: statistics, never used to decide anything).
    pub fn load(&self) -> Tally {
        Tally {
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Stores a side's counts. Relaxed: a reader that Acquire-loads the position stored after
    /// them sees them at least this new, and nothing else depends on them.
    #[inline(always)]
    pub fn store(&self, tally: Tally) {
        self.messages.store(tally.messages, Ordering::Relaxed);
        self.bytes.store(tally.bytes, Ordering::Relaxed);
    }
}

/// A side's own copy of its counters, which only it writes: it counts here and stores them
/// with each position it publishes (the consumer counts only messages).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Messages.
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
}

impl Tally {
    /// Counts `messages` more messages of `bytes` payload bytes in all (wrapping: a forged
    /// start value must not panic a debug build).
    #[inline(always)]
    pub fn add(&mut self, messages: u64, bytes: u64) {
        self.messages = self.messages.wrapping_add(messages);
        self.bytes = self.bytes.wrapping_add(bytes);
    }
}

/// The attached bit of [`Roles::producer_state`].
pub const PRODUCER_ATTACHED: u64 = 1;

/// The mutable, shared part of the header at [`CONTROL_OFFSET`]: every word a side writes
/// while running. All-zero bytes are a valid, empty control block.
#[repr(C)]
#[derive(Default)]
pub struct Control {
    /// End of the last record the producer has published; records below it are complete.
    /// Written only by the producer (Release), read by the consumer (Acquire).
    pub published_tail: Block<AtomicU64>,
    /// Start of the first record the consumer has not yet released; bytes below it may be
    /// overwritten. Written only by the consumer (Release), read by the producer (Acquire).
    pub released_head: Block<AtomicU64>,
    /// The consumer's waiting words: it sleeps here waiting for data.
    pub consumer_wait: Block<WaitWords>,
    /// The producer's waiting words: it sleeps here waiting for space.
    pub producer_wait: Block<WaitWords>,
    /// Role holders.
    pub roles: Block<Roles>,
    /// What every producer has published since the ring was created (`published_messages`,
    /// `published_bytes`). Statistics for tools only (`ringfile watch`): never read by the
    /// protocol, so a wrong value harms nothing; rings written before they existed have 0
    /// here, a valid start. Written by the producer (Relaxed) as it publishes, in a line of
    /// its own: beside the tail, which the consumer reads all the time, each publish would
    /// move that line twice.
    pub published: Block<Traffic>,
    /// Messages released since the ring was created, by every consumer; as `published`,
    /// written by the consumer. (Their payload bytes are `published.bytes` less the payload
    /// still waiting, which readers compute: counting them would cost the consumer an add
    /// per message.)
    pub released_messages: Block<AtomicU64>,
}

impl Control {
    /// The waiting words of `role`'s side: where it announces its sleeps.
    pub fn wait_words(&self, role: crate::error::Role) -> &WaitWords {
        match role {
            crate::error::Role::Producer => &self.producer_wait,
            crate::error::Role::Consumer => &self.consumer_wait,
        }
    }
}

/// The consumers' shared wake-up words of a version 2 ring, at [`FANOUT_WAKE_OFFSET`]: one
/// flag and one futex word for all the consumers, so that a publish wakes every sleeping
/// consumer with one check and at most one system call, whatever their number.
#[repr(C)]
#[derive(Default)]
pub struct FanoutWake {
    /// 1 once a consumer has announced a sleep and no publish has woken it since; cleared
    /// only by the producer, as it wakes (a consumer must not clear it: another may sleep).
    pub sleeping: AtomicU32,
    /// The futex word the consumers sleep on: the producer bumps it (wrapping) before
    /// each wake-up, so a sleeper that read it before announcing never sleeps through one.
    pub wake_seq: AtomicU32,
}

/// One consumer slot of a version 2 ring: a 128-byte block of its own.
#[repr(C)]
#[derive(Default)]
pub struct Slot {
    /// Start of the first record this slot's consumer has not released. Written by the
    /// holder (Release); read by the producer when its cached view says the ring may be full.
    pub released: AtomicU64,
    /// Messages this slot's consumers released (statistics, holder only).
    pub released_messages: AtomicU64,
    /// `epoch << 8 | flags` ([`SLOT_REGISTERED`], [`SLOT_LOSSY`], [`SLOT_ATTACHED`]); the
    /// epoch counts the slot's attaches and evictions. Written under the slot's lock (by its
    /// holder, or by whoever evicts it under the registry lock too).
    pub state: AtomicU64,
    /// Pid of the slot's last holder.
    pub pid: AtomicU32,
    /// Bytes of `name` in use (0 ..= [`MAX_NAME_LEN`]).
    pub name_len: AtomicU32,
    /// When the last holder attached, ns since the Unix epoch.
    pub attached_unix_ns: AtomicU64,
    /// The holder's `--retain` policy: a dead holder may be evicted by the producer after
    /// this many ns (0: never).
    pub retain_ns: AtomicU64,
    /// The holder's `--max-lag` policy: a lossless slot this many bytes behind the tail may
    /// be turned lossy by the producer (0: never).
    pub max_lag: AtomicU64,
    /// Messages a lossy consumer of this slot was overtaken by and never received
    /// (statistics, holder only).
    pub missed: AtomicU64,
    /// The name, UTF-8, `name_len` bytes, the rest zero. Atomic words so that a reader never
    /// races a writer's plain stores (the registry lock orders well-behaved ones).
    pub name: [AtomicU64; MAX_NAME_LEN / 8],
}

/// Slot state bit (the state word at offset 16 of a slot): the slot holds a name; its position
/// holds the producer back unless [`SLOT_LOSSY`].
pub const SLOT_REGISTERED: u64 = 1;
/// Slot state bit: the slot's consumer is lossy (never holds the producer back).
pub const SLOT_LOSSY: u64 = 2;
/// Slot state bit: the slot's holder is attached (cleared when it detaches cleanly; left set
/// with the slot's lock free, it died).
pub const SLOT_ATTACHED: u64 = 4;
/// Slot state bit: the producer turned the slot lossy under its `max_lag` policy (set with
/// [`SLOT_LOSSY`]; the next attach of the name clears both unless it asks to be lossy).
pub const SLOT_DEMOTED: u64 = 8;
/// Slot state: the epoch is the state word shifted right by this.
pub const SLOT_EPOCH_SHIFT: u32 = 8;

// The layout is a file format: pin every offset so a change to the structs cannot move
// a field silently. (Under loom the atomics are model types and live only on the heap.)
#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Header>() == 128);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, header_size) == 12);
    assert!(offset_of!(Header, capacity) == 16);
    assert!(offset_of!(Header, max_message) == 24);
    assert!(offset_of!(Header, created_unix_ns) == 32);
    assert!(offset_of!(Header, creator_pid) == 40);
    assert!(offset_of!(Header, flags) == 44);
    assert!(align_of::<Control>() == 128);
    assert!(size_of::<Control>() == 896);
    assert!(offset_of!(Control, published_tail) == 0);
    assert!(offset_of!(Control, released_head) == 128);
    assert!(offset_of!(Control, consumer_wait) == 256);
    assert!(offset_of!(Control, producer_wait) == 384);
    assert!(offset_of!(WaitWords, sleeping) == 0);
    assert!(offset_of!(WaitWords, membarrier_pid) == 4);
    assert!(offset_of!(WaitWords, fence_request) == 8);
    assert!(offset_of!(WaitWords, fence_ack) == 12);
    assert!(offset_of!(Control, roles) == 512);
    assert!(offset_of!(Control, published) == 640);
    assert!(offset_of!(Control, released_messages) == 768);
    assert!(offset_of!(Traffic, bytes) == 8);
    assert!(offset_of!(Traffic, seq) == 16);
    assert!(offset_of!(Roles, consumer_pid) == 4);
    assert!(offset_of!(Roles, producer_state) == 8);
    assert!(offset_of!(Roles, producer_start) == 16);
    assert!(offset_of!(Roles, resume) == 24);
    assert!(size_of::<ResumeMark>() == 16);
    assert!(offset_of!(ResumeMark, mark) == 8);
    assert!(CONTROL_OFFSET as usize + size_of::<Control>() <= FANOUT_WAKE_OFFSET as usize);
    assert!(size_of::<Slot>() == SLOT_SIZE as usize);
    assert!(offset_of!(Slot, released_messages) == 8);
    assert!(offset_of!(Slot, state) == 16);
    assert!(offset_of!(Slot, pid) == 24);
    assert!(offset_of!(Slot, name_len) == 28);
    assert!(offset_of!(Slot, attached_unix_ns) == 32);
    assert!(offset_of!(Slot, retain_ns) == 40);
    assert!(offset_of!(Slot, max_lag) == 48);
    assert!(offset_of!(Slot, missed) == 56);
    assert!(offset_of!(Slot, name) == 64);
    assert!(offset_of!(FanoutWake, wake_seq) == 4);
    assert!(FANOUT_WAKE_OFFSET + 128 == SLOTS_OFFSET);
    assert!(offset_of!(Header, consumer_slots) == 48);
    assert!(header_size(2) == 4096 && header_size(23) == 4096 && header_size(24) == 8192);
};

#[cfg(target_endian = "big")]
compile_error!("the ringfile file format is little-endian; big-endian targets are not supported");
