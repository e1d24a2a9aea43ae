//! A lock-free, bounded, single-producer/single-consumer ring buffer of byte-string
//! messages that lives in a file-backed shared memory mapping (`mmap`, `MAP_SHARED`), for
//! streaming messages between unrelated processes on one Linux machine.
//!
//! One regular file holds the whole ring — a header page, then a power-of-two data region
//! (its layout is in `FORMAT.md`). Any process may create it or open it by path; one
//! [`Producer`] and one [`Consumer`] may be attached at a time, each enforced by a lock the
//! kernel releases when its holder dies. Sending never blocks on the consumer except when
//! the ring is full ([`Producer::try_send`] then fails with [`Error::Full`];
//! [`Producer::send`] waits); receiving borrows each message in place, without copying.
//! Positions live in the file, so either side can be killed and restarted without losing or
//! duplicating a released message, and a message is either wholly visible or not at all.
//! As with a channel, dropping the [`Producer`] ends the stream (the consumer drains it, then
//! sees the end; a producer dropped by a panic ends it as failed), and
//! [`Producer::detach`] leaves it open for a later producer instead.
//! It is not a multi-producer or multi-consumer queue, and not a broadcast log.
//!
//! # Examples
//!
//! Two threads here; two processes work the same way, each opening the path.
//!
//! ```
//! use ringfile::Ring;
//! # fn main() -> Result<(), ringfile::Error> {
//! let dir = tempfile::tempdir().unwrap();        // use /dev/shm for speed
//! let path = dir.path().join("demo.ring");
//! let ring = Ring::options().capacity(64 * 1024).open_or_create(&path)?;
//!
//! let mut producer = ring.producer()?;
//! let sender = std::thread::spawn(move || -> Result<(), ringfile::Error> {
//!     for i in 0u32..1000 {
//!         producer.send(&i.to_le_bytes())?;     // waits while the ring is full
//!     }
//!     producer.close()                           // end of stream
//! });
//!
//! let mut consumer = Ring::open(&path)?.consumer()?;
//! let mut expected = 0u32;
//! while let Some(msg) = consumer.recv()? {       // None at the end of the stream
//!     assert_eq!(&*msg, &expected.to_le_bytes());
//!     expected += 1;
//! }
//! assert_eq!(expected, 1000);
//! sender.join().unwrap()?;
//! # Ok(()) }
//! ```
//!
//! # Limits
//! - Messages are 0 to `capacity / 2 - 8` bytes ([`Ring::max_message_len`]); capacities are
//!   powers of two from 64 bytes to 4 GiB.
//! - A ring file truncated by another process *while mapped* raises SIGBUS at the next access,
//!   as any mapping does. [`install_sigbus_handler`] (opt-in) turns that into a one-line
//!   error naming the ring and exit status 1. Opening a ring reserves its storage
//!   (`fallocate`), so a full file system is an error at open, not a SIGBUS later; rings
//!   from [`Ring::memfd`] are sealed at their size and cannot fault at all.

//!
//! # Trust model
//!
//! The ring file is untrusted input. Any process that can write it — a buggy peer, another
//! program, another user if the file's mode lets them — may write any byte at any time.
//! Here is what such a process **can** do to a process using this crate:
//!
//! - change the bytes of a message this process has borrowed ([`Message`], the slices of a
//!   [`RecvBatch`], a [`Claim`]) while it reads them — the zero-copy API shares the memory,
//!   so it shares this risk. Use the copying receive ([`Consumer::recv_into`],
//!   [`Message::copy_into`]) for payloads from peers you do not trust: a copy is yours, and
//!   is made with atomic loads, so a concurrent writer can at worst make it a mix of old and
//!   new bytes;
//! - stall the stream (never publish, never release), which `recv`/`send` wait out as they
//!   wait for any slow peer — with a timeout (`*_timeout`) if you gave one;
//! - make this process report [`Error::Corrupt`], [`Error::BadPositions`] or another
//!   validation error, or make it see messages that were never sent (the producer's
//!   protocol cannot tell a forged record from a real one).
//!
//! And what it can **never** do, whatever it writes:
//!
//! - make this process read or write outside its mapping: every record header and position
//!   is validated (positions below 2^62, so no sum of them overflows) before it is used, and
//!   each is read with exactly one atomic load, so the value checked is the value used;
//! - make it panic, or loop without end: a wait ends when its timeout fires, and a corrupt
//!   file is an error;
//! - make the producer overwrite a message this process still holds: the producer's space
//!   checks never trust a head that moves backwards or past its own position;
//! - make a data race (undefined behaviour) of the words the protocol shares: positions,
//!   futex words, role words and record headers are only ever accessed as atomics.
//!
//! Two limits are outside any mapping's control: a process that can write the file can also
//! truncate it, which raises SIGBUS at the next access to a lost page (see below, and
//! [`install_sigbus_handler`]); and a ring file that belongs to another user is refused
//! unless you allow it ([`RingOptions::allow_other_owner`]), since that user may have created
//! the path first to read the stream.
//!
//! # Processes and `fork`
//!
//! A role belongs to the process that took it. A child created by `fork` inherits the
//! parent's [`Producer`] or [`Consumer`] but must not use it (it would be a second writer of
//! that side): [`Producer::close`] and [`Producer::abort`] fail there with
//! [`Error::Inherited`], and dropping the producer, the consumer or a message in the child
//! changes nothing in the ring ([`Producer::is_inherited`] and [`Consumer::is_inherited`]
//! tell; the Python package refuses every call there). The child does not keep the parent's roles taken either:
//! its copies of the role locks' descriptors are pointed elsewhere when it first runs, and a
//! role the parent drops is unlocked explicitly, so it is free at once even while a child
//! that has not run yet still shares the lock's descriptor. One window remains: a parent
//! *killed* between `fork` and its child's first run leaves its roles taken until that child
//! runs (a child stopped there, with SIGSTOP say, keeps them until it continues or dies). A
//! child that needs a role takes its own, from a [`Ring`] it opens. Descriptors are
//! close-on-exec.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(unsafe_op_in_unsafe_fn)]
// `cargo clippy -p ringfile -- -W clippy::pedantic` is clean but for these, allowed on purpose:
#![allow(
    // The hot path's helpers (position arithmetic, record framing, the send and receive
    // cores) are `inline(always)` because callgrind showed the calls cost instructions per
    // message when the compiler declined to inline them (`examples/hot_path`).
    clippy::inline_always,
    // Lengths, offsets and positions are checked against the capacity (at most 4 GiB, a
    // record length fits 32 bits) before they are narrowed, and the crate is for 64-bit
    // Linux, where a mapped length always fits a usize; the kernel's types (`off_t`, `short`
    // lock fields, `timespec`) are given values that fit them.
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    // Fractions and rates for people (fill percentages, human-readable sizes) need no more
    // than f64's 52 bits.
    clippy::cast_precision_loss,
    // `Debug` shows what a user can act on (lengths, positions), not the descriptors and
    // mappings behind it.
    clippy::missing_fields_in_debug,
    // Arms with the same body and a comment each say why each case ends the same way.
    clippy::match_same_arms,
    // The header's fields are named as FORMAT.md names them (`header_size`).
    clippy::struct_field_names,
    // The model checker's hooks take `&self` though only loom builds use it.
    clippy::unused_self,
    // Taken by value to be moved in loom builds, or to mirror their pair.
    clippy::needless_pass_by_value,
    clippy::trivially_copy_pass_by_ref,
    // An explicit `continue` on EINTR reads as what it is: try again.
    clippy::needless_continue,
    // A `match` whose second arm is the slow path, with a comment, reads better than
    // `if let ... else`.
    clippy::single_match_else,
)]

// The layers, from the ground up; each imports only from those before it.
// The ring file's layout, capacity and record framing; public: the format's constants.
pub mod format;
/// Read-only inspection, for tools.
#[cfg(not(loom))]
mod inspect;
/// The operating system and the model checker: system calls, `fork`, SIGBUS, memfd hand-off.
mod os;
/// The protocol between the sides: waiting and waking, roles, the producer's lifecycle.
mod protocol;
/// [`Ring`] and [`RingOptions`]: the façade that opens rings and hands out the sides.
mod ring;
/// The producer and consumer sides, blocking, typed and async.
mod side;
/// The ring's memory in this process: the mapping, creating and opening files, what both
/// sides share.
mod store;

pub mod diagnostics;
mod error;
pub mod units;

#[cfg(all(feature = "async", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use side::async_api;
pub use side::typed;

#[cfg(all(feature = "async", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub use async_api::MessageStream;
pub use error::{Error, Result, Role};
#[cfg(not(loom))]
pub use inspect::{ConsumerInfo, Holder, Inspector, PeekSummary, Peeked, Snapshot, StreamState};
#[cfg(not(loom))]
pub use os::sigbus::{install_sigbus_handler, SigbusHandler};
pub use protocol::slots::{PolicyEvent, Start, DEFAULT_NAME};
pub use protocol::wait::{ParseWaitStrategyError, WaitStrategy};
pub use ring::{ConsumerOptions, Ring, RingOptions, DEFAULT_CAPACITY, DEFAULT_MODE};
pub use side::consumer::{Consumer, Message, ReadMark, RecvBatch};
pub use side::producer::{Claim, Producer, SendBatch, SlowestConsumer};
pub use side::typed_sides::{TypedConsumer, TypedMessage, TypedProducer};

#[cfg(all(test, loom))]
mod loom_tests;
