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
//! - Each side trusts the other to follow the protocol for the bytes it borrows: a message's
//!   bytes are only guaranteed stable while no other process writes the ring file outside
//!   the protocol. Record headers and positions are validated, so a corrupt or hostile file
//!   yields [`Error::Corrupt`] rather than an out-of-bounds access.
//! - A ring file truncated by another process *while mapped* raises SIGBUS at the next access,
//!   as any mapping does. [`install_sigbus_handler`] (opt-in) turns that into a one-line
//!   error naming the ring and exit status 1. Opening a ring reserves its storage
//!   (`fallocate`), so a full file system is an error at open, not a SIGBUS later; rings
//!   from [`Ring::memfd`] are sealed at their size and cannot fault at all.

#![deny(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]

mod consumer;
mod error;
mod file;
#[cfg(not(loom))]
mod fork;
pub mod layout;
mod producer;
mod record;
mod region;
mod ring;
mod roles;
#[cfg(not(loom))]
mod sigbus;
mod sync;
mod sys;
mod wait;

pub use consumer::{Consumer, Message, RecvBatch};
pub use error::{Error, Result, Role};
pub use producer::{Claim, Producer, SendBatch};
pub use ring::{Ring, RingOptions, DEFAULT_CAPACITY, DEFAULT_MODE};
#[cfg(not(loom))]
pub use sigbus::{install_sigbus_handler, TRACKED_MAPPINGS};
pub use sys::monotonic_ns;
pub use wait::{futex_fallback, ParseWaitStrategyError, WaitStrategy};

#[cfg(all(test, loom))]
mod loom_tests;
