//! The constants of the ring file format, for tools and for readers in other languages.
//!
//! `FORMAT.md` documents the file byte by byte; these are its numbers, under the names it
//! uses. They change only with [`FORMAT_VERSION`]. The in-memory structures that implement
//! the format are private, so that they can change without breaking this API.
//!
//! ```
//! use ringfile::format;
//! // A ring of 1 MiB: one header page, then the data region.
//! assert_eq!(format::HEADER_SIZE + (1 << 20), 1_052_672);
//! assert_eq!(format::max_message_len(1 << 20), 524_280);
//! assert_eq!(format::PUBLISHED_TAIL_OFFSET, 128);
//! ```

pub(crate) mod layout;
pub(crate) mod position;
pub(crate) mod record;
pub(crate) mod shape;

pub use record::record_size;

pub use layout::{
    capacity_is_valid, max_message_len, CONSUMER_LOCK_BYTE, CONTROL_OFFSET, FORMAT_VERSION,
    HEADER_SIZE, MAGIC, MAX_CAPACITY, MAX_POSITION, MIN_CAPACITY, PRODUCER_LOCK_BYTE, RECORD_ABORT,
    RECORD_ALIGN, RECORD_DATA, RECORD_END, RECORD_HEADER, RECORD_PADDING,
};
pub use layout::{
    header_size, slot_lock_byte, FANOUT_WAKE_OFFSET, MAX_CONSUMER_SLOTS, MAX_NAME_LEN,
    REGISTRY_LOCK_BYTE, SINGLE_CONSUMER_VERSION, SLOTS_OFFSET, SLOT_ATTACHED, SLOT_DEMOTED,
    SLOT_EPOCH_SHIFT, SLOT_LOCK_BASE, SLOT_LOSSY, SLOT_REGISTERED, SLOT_SIZE,
};

/// File offset of `published_tail` (u64): the end of the last published record.
pub const PUBLISHED_TAIL_OFFSET: u64 = CONTROL_OFFSET;
/// File offset of `published_messages` (u64): messages published since the ring was
/// created (statistics only; FORMAT.md, "Message counters").
pub const PUBLISHED_MESSAGES_OFFSET: u64 = CONTROL_OFFSET + 640;
/// File offset of `published_bytes` (u64): the payload bytes of those messages (statistics
/// only).
pub const PUBLISHED_BYTES_OFFSET: u64 = PUBLISHED_MESSAGES_OFFSET + 8;
/// File offset of `publish_seq` (u64, version 2): the sequence word under which the
/// producer stores `published_messages` and `published_tail` as one pair (FORMAT.md,
/// "Lossy consumers").
pub const PUBLISH_SEQ_OFFSET: u64 = PUBLISHED_MESSAGES_OFFSET + 16;
/// File offset of `released_head` (u64): the start of the first record not yet released.
pub const RELEASED_HEAD_OFFSET: u64 = CONTROL_OFFSET + 128;
/// File offset of `released_messages` (u64): messages released since the ring was created
/// (statistics only).
pub const RELEASED_MESSAGES_OFFSET: u64 = CONTROL_OFFSET + 768;
/// File offset of the consumer's futex word (u32): 1 while the consumer waits for data.
pub const CONSUMER_SLEEPING_OFFSET: u64 = CONTROL_OFFSET + 256;
/// File offset of the producer's futex word (u32): 1 while the producer waits for space.
pub const PRODUCER_SLEEPING_OFFSET: u64 = CONTROL_OFFSET + 384;
/// File offset of the roles block: `producer_pid` (u32), `consumer_pid` (u32),
/// `producer_state` (u64), `producer_start` (u64).
pub const ROLES_OFFSET: u64 = CONTROL_OFFSET + 512;
/// File offset of the producer's two resume marks, each a `tail` (u64) and a `mark` (u64)
/// (FORMAT.md, "Resume marks").
pub const RESUME_MARKS_OFFSET: u64 = ROLES_OFFSET + 24;
/// The alignment every message payload has in memory: records start on multiples of
/// [`RECORD_ALIGN`] from a page-aligned data region, and the payload follows the 8-byte
/// record header. Typed views ([`Message::value`](crate::Message::value) and the like) need
/// no more than this.
pub const PAYLOAD_ALIGN: usize = RECORD_ALIGN as usize;

// The offsets above are the layout's, pinned.
#[cfg(not(loom))]
const _: () = {
    use crate::format::layout::{Control, Roles};
    use std::mem::offset_of;
    assert!(PUBLISHED_TAIL_OFFSET == CONTROL_OFFSET + offset_of!(Control, published_tail) as u64);
    assert!(RELEASED_HEAD_OFFSET == CONTROL_OFFSET + offset_of!(Control, released_head) as u64);
    assert!(CONSUMER_SLEEPING_OFFSET == CONTROL_OFFSET + offset_of!(Control, consumer_wait) as u64);
    assert!(PRODUCER_SLEEPING_OFFSET == CONTROL_OFFSET + offset_of!(Control, producer_wait) as u64);
    assert!(ROLES_OFFSET == CONTROL_OFFSET + offset_of!(Control, roles) as u64);
    assert!(PUBLISHED_MESSAGES_OFFSET == CONTROL_OFFSET + offset_of!(Control, published) as u64);
    assert!(
        RELEASED_MESSAGES_OFFSET == CONTROL_OFFSET + offset_of!(Control, released_messages) as u64
    );
    assert!(offset_of!(Roles, producer_pid) == 0);
    assert!(RESUME_MARKS_OFFSET == ROLES_OFFSET + offset_of!(Roles, resume) as u64);
    assert!(HEADER_SIZE.is_multiple_of(RECORD_ALIGN) && RECORD_HEADER.is_multiple_of(RECORD_ALIGN));
};
