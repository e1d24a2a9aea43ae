//! The producer side: reserves space, writes records, publishes the tail.
//!
//! The producer owns the bytes from the published tail up to the released head plus the
//! capacity. It writes records there, then publishes them all with one `Release` store of the
//! tail. It reads the consumer's head only when its cached copy says the ring may be full.

use crate::error::{Error, Result, Role};
use crate::format::layout::{
    FanoutWake, Tally, END_RESERVE, RECORD_ABORT, RECORD_ALIGN, RECORD_DATA, RECORD_END,
    RECORD_HEADER, RECORD_PADDING,
};
use crate::format::position::{Capacity, Position};
use crate::format::record::{decode, encode, record_size, Decoded};
use crate::os::sync::Ordering;
use crate::protocol::lapping::PublishSeq;
use crate::protocol::lifecycle::{Attachment, Departure, ResumeMarks};
use crate::protocol::slots::{self, PolicyEvent};
use crate::protocol::wait::{store_and_wake, store_and_wake_all, Probe, WaitStrategy};
use crate::side::endpoint::Endpoint;
use crate::store::region::{RecordWriter, Region};
use crate::store::shared::Shared;
use std::num::NonZeroU64;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The producer role on a ring: sends messages. Get one with
/// [`Ring::producer`](crate::Ring::producer).
///
/// Every send publishes at once, except inside a [`SendBatch`], which publishes all its
/// messages with one store when it ends. A producer ends in one of four ways, and the consumer
/// learns which:
///
/// - [`close`](Self::close): end of stream; the consumer's `recv` returns `None`.
/// - [`abort`](Self::abort): the producer stopped on an error; the consumer gets
///   [`Error::StreamAborted`] with the reason.
/// - dropped: a clean detach that leaves the stream open for a later producer to continue.
/// - [`abandon`](Self::abandon), a panic, or the process dying: the consumer gets
///   [`Error::ProducerDied`] once it has received everything published.
///
/// A producer always leaves 8 bytes of the ring free, so `close` and `abort` never wait for
/// room: a producer can always end its stream, even when no consumer will ever come.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), ringfile::Error> {
/// let ring = ringfile::Ring::memfd(4096)?;
/// let mut producer = ring.producer()?;
/// producer.send(b"one")?;                      // waits while the ring is full
/// let mut claim = producer.claim(3)?;          // zero-copy: write in place
/// claim.copy_from_slice(b"two");
/// claim.commit();
/// producer.close()?;                           // end of stream
///
/// let mut consumer = ring.consumer()?;
/// assert_eq!(&*consumer.recv()?.unwrap(), b"one");
/// assert_eq!(&*consumer.recv()?.unwrap(), b"two");
/// assert!(consumer.recv()?.is_none());         // end of stream
/// # Ok(()) }
/// ```
///
/// `Send` and `Sync`: a producer may move to another thread (or be shared behind a lock);
/// sending takes `&mut self`, so one thread sends at a time.
#[must_use = "dropping a Producer ends the stream and gives up the producer role at once"]
pub struct Producer {
    /// The ring, the role, how we wait, our counters.
    endpoint: Endpoint,
    /// Our attachment in the file's lifecycle words, and what dropping us does to them.
    attachment: Attachment,
    /// Where the next record goes and how much room there is.
    space: Space,
    /// Where records are written: the data region of `shared`, which this producer keeps
    /// alive.
    writer: RecordWriter,
    /// The published pair's sequence word (version 2 rings only).
    publish_seq: PublishSeq,
    /// The resume marks: what the last publish before us recorded, where ours go.
    resume: ResumeMarks,
    /// A mark to record with the next publish ([`Producer::mark_next_publish`]).
    pending_mark: Option<NonZeroU64>,
}

impl Producer {
    pub(crate) fn attach(shared: Arc<Shared>) -> Result<Producer> {
        let endpoint = Endpoint::attach(shared, Role::Producer)?;
        let shared = &endpoint.shared;
        let (head, tail) = shared.positions()?;
        // A tail below one this process has seen was moved backwards by another process:
        // appending there would overwrite records our own consumer may hold.
        let seen = std::sync::atomic::Ordering::Relaxed;
        if tail.get()
            < shared
                .consumer_seen_tail
                .load(seen)
                .max(shared.producer_left_tail.load(seen))
        {
            return Err(Error::BadPositions {
                path: shared.name.clone(),
                head: head.get(),
                tail: tail.get(),
                capacity: shared.region.capacity().bytes(),
            });
        }
        shared
            .local_tail
            .store(tail.get(), std::sync::atomic::Ordering::Release);
        let attachment = Attachment::attach(&shared.region.control().roles, tail);
        if shared.region.shape().fanout() {
            // The gate we start from was stored by an earlier producer: this fence, after our
            // load of it and before our first write, is what lets a lapped reader that sees
            // that write see a gate at least as high (`lapping`, as after `raise_gate`).
            crate::os::sync::fence(Ordering::SeqCst);
        }
        let capacity = shared.region.capacity();
        // A consumer of this ring in this process may hold messages below a head that another
        // process forged forward: start from the lower of the two, as `try_reserve` does, or
        // the first record (an END or ABORT reason, say) could land on a held message.
        // (The lower of two values, the first a position: a position.)
        let head = Position::new(shared.below_local_head(head.get())).unwrap_or(head);
        Ok(Producer {
            attachment,
            space: Space {
                write_pos: tail,
                published: tail,
                cached_head: head,
                capacity,
                max_message: capacity.max_message(),
                fanout: shared.region.shape().fanout(),
                policies: slots::Policies::default(),
            },
            writer: shared.region.record_writer(),
            publish_seq: PublishSeq::resume(&shared.region.control().published),
            resume: ResumeMarks::read(&shared.region.control().roles, tail),
            pending_mark: None,
            endpoint,
        })
    }

    /// The mark the last publish before this producer attached recorded
    /// ([`mark_next_publish`](Self::mark_next_publish)), if it recorded one: a producer that
    /// copies another stream into this ring (`ringfile-bridge in`) learns from it how far its
    /// predecessor — perhaps killed — got, and goes on from there. `None` for a ring whose
    /// last publish had no mark (or that never had one).
    #[must_use]
    pub fn resume_mark(&self) -> Option<NonZeroU64> {
        self.resume.found()
    }

    /// Records `mark` (an opaque non-zero value of the caller's, e.g. the sequence number of
    /// the last input message written) with the next publish, atomically with it as a
    /// successor sees it: a later producer's [`resume_mark`](Self::resume_mark) returns the
    /// mark of the last publish, and a producer that dies before publishing leaves the
    /// previous mark in place. A second call before the publish replaces the first. Costs
    /// two stores per marked publish and nothing otherwise.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("ring");
    /// let ring = ringfile::Ring::create(&path, 4096)?;
    /// let mut producer = ring.producer()?;
    /// producer.mark_next_publish(std::num::NonZeroU64::new(41).unwrap());
    /// producer.send(b"input message 41")?;
    /// producer.detach();
    /// assert_eq!(ring.producer()?.resume_mark().map(|m| m.get()), Some(41));
    /// # Ok(())
    /// # }
    /// ```
    pub fn mark_next_publish(&mut self, mark: NonZeroU64) {
        self.pending_mark = Some(mark);
    }

    /// How [`send`](Self::send) and [`claim`](Self::claim) wait for space.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.endpoint.waiting.strategy = wait;
    }

    /// The current wait strategy.
    #[must_use]
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.endpoint.waiting.strategy
    }

    /// Whether this producer was inherited through `fork` (this process is a child of the one
    /// that took the role): such a producer must not be used (see the crate's "Processes and
    /// `fork`"). A binding that checks before each call can refuse with
    /// [`Error::Inherited`] where the library would not check on its fast path.
    #[must_use]
    pub fn is_inherited(&self) -> bool {
        self.endpoint.role.inherited()
    }

    /// The largest message this ring carries.
    #[must_use]
    pub fn max_message_len(&self) -> usize {
        self.space.max_message as usize
    }

    /// Whether a consumer holds the consumer role right now (in any process): without one,
    /// what is sent only fills the ring until a consumer comes.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let producer = ring.producer()?;
    /// assert!(!producer.consumer_is_live()?);
    /// let _consumer = ring.consumer()?;
    /// assert!(producer.consumer_is_live()?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the role lock cannot be tested (`fcntl` failed).
    pub fn consumer_is_live(&self) -> Result<bool> {
        self.endpoint.is_live(Role::Consumer)
    }

    /// The pid recorded by the last process that took the consumer role, live or not
    /// (`None` if no consumer ever attached). With [`consumer_is_live`](Self::consumer_is_live),
    /// tells a consumer that is gone from one that never came. The file says it, so a peer
    /// can write any value here: use it for messages, not to signal a process.
    #[must_use]
    pub fn consumer_pid(&self) -> Option<u32> {
        crate::protocol::roles::holder_pid(&self.endpoint.shared, Role::Consumer)
    }

    /// The consumer that holds this producer back the most: on a ring with consumer slots,
    /// the registered, lossless consumer with the lowest position (`None` if none is
    /// registered: nothing holds the producer back); on a ring of one consumer, that consumer
    /// (`default`). A full ring waits for it; `live: false` says its process is gone, and on a
    /// ring with slots it holds the producer back until
    /// [`Ring::evict`](crate::Ring::evict)ed or its retain policy runs out.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::options().capacity(4096).consumers(2).memfd()?;
    /// let producer = ring.producer()?;
    /// assert!(producer.slowest_consumer()?.is_none());
    /// drop(ring.consumer_named("archive")?);
    /// let slowest = producer.slowest_consumer()?.unwrap();
    /// assert_eq!((slowest.name.as_str(), slowest.live), ("archive", false));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a lock cannot be tested (`fcntl` failed).
    pub fn slowest_consumer(&self) -> Result<Option<SlowestConsumer>> {
        let shared = &self.endpoint.shared;
        if !shared.region.shape().fanout() {
            return Ok(Some(SlowestConsumer {
                name: slots::DEFAULT_NAME.to_string(),
                pid: self.consumer_pid(),
                live: self.consumer_is_live()?,
                position: self.space.cached_head.get(),
            }));
        }
        let Some(view) = slots::slowest(&shared.region) else {
            return Ok(None);
        };
        Ok(Some(SlowestConsumer {
            live: slots::is_held(shared, view.index)?,
            name: view.name,
            pid: Some(view.pid).filter(|&pid| pid != 0),
            position: view.released,
        }))
    }

    /// What this producer did under its consumers' policies since the last call: names
    /// evicted because their holder was gone for their `retain` time, and names turned lossy
    /// because they lagged more than their `max_lag` (see [`ConsumerOptions`](crate::ConsumerOptions)).
    /// The producer applies the policies as it looks at the consumers: when its cached view
    /// says the ring may be full, and while it waits for room.
    pub fn take_policy_events(&mut self) -> Vec<PolicyEvent> {
        std::mem::take(&mut self.space.policies.events)
    }

    /// How many consumer slots the ring has (1: a ring of one consumer).
    #[must_use]
    pub fn consumer_slots(&self) -> u32 {
        self.endpoint.shared.region.shape().slots()
    }

    /// The path the ring was opened by (or a description, such as `memfd:ringfile`).
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        &self.endpoint.shared.name
    }

    /// Data capacity of the ring.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.space.capacity.bytes()
    }

    /// Sends `msg` if there is room now; [`Error::Full`] if not, [`Error::TooLarge`] if it
    /// could never fit.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(64)?;        // max message: 24 bytes
    /// let mut producer = ring.producer()?;
    /// producer.try_send(&[1; 24])?;                // a 32-byte record
    /// producer.try_send(&[2; 16])?;                // 24 bytes: 8 stay free for the end
    /// assert!(matches!(producer.try_send(&[3; 1]), Err(ringfile::Error::Full)));
    /// assert!(matches!(producer.try_send(&[0; 25]), Err(ringfile::Error::TooLarge { .. })));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Full`] if there is no room now; [`Error::TooLarge`] for a message longer than
    /// the ring's maximum (it could never fit); [`Error::BadPositions`] if another process
    /// moved the consumer's head out of bounds.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_inner(msg, Patience::None, true)
    }

    /// Sends `msg`, waiting for room as the wait strategy says.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for a message longer than the ring's maximum (it could never fit;
    /// nothing is waited for); [`Error::BadPositions`] if another process moved the consumer's
    /// head out of bounds. A consumer that is gone does not end the wait: the producer waits
    /// for a later one.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_inner(msg, Patience::Forever, true)
    }

    /// Sends the bytes of `value` (any plain-old-data type: a `#[repr(C)]` struct deriving
    /// [`bytemuck::NoUninit`] or `Pod`, a number, an array of them) as one message, waiting
    /// for room as [`send`](Self::send) does. The consumer reads it in place with
    /// [`Message::value`](crate::Message::value); see [`typed`](crate::side::typed). For a slice
    /// of such values, send `bytemuck::cast_slice(values)`.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for a `T` larger than the ring's maximum (it could never fit;
    /// nothing is waited for); [`Error::BadPositions`] if another process moved the consumer's
    /// head out of bounds. A consumer that is gone does not end the wait: the producer waits
    /// for a later one.
    #[inline]
    pub fn send_value<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<()> {
        self.send(crate::side::typed::bytes_of(value))
    }

    /// Sends `msg`, waiting at most `timeout` for room ([`Error::Timeout`] then).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if no room came within `timeout`; [`Error::TooLarge`] for a message
    /// longer than the ring's maximum (it could never fit; nothing is waited for);
    /// [`Error::BadPositions`] if another process moved the consumer's head out of bounds. A
    /// consumer that is gone does not end the wait: the producer waits for a later one.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_inner(msg, Patience::For(timeout), true)
    }

    /// Reserves `len` bytes for a message if there is room now ([`Error::Full`] if not).
    /// Write the message into the returned [`Claim`], then [`commit`](Claim::commit) it.
    ///
    /// # Errors
    ///
    /// [`Error::Full`] if there is no room now; [`Error::TooLarge`] for a `len` longer than the
    /// ring's maximum (it could never fit); [`Error::BadPositions`] if another process moved
    /// the consumer's head out of bounds.
    pub fn try_claim(&mut self, len: usize) -> Result<Claim<'_>> {
        self.claim_inner(len, Patience::None, true)
    }

    /// Reserves `len` bytes for a message, waiting for room.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let mut producer = ring.producer()?;
    /// let mut claim = producer.claim(100)?;
    /// let n = 5; // e.g. what a read() into the claim returned
    /// claim[..n].copy_from_slice(b"short");
    /// claim.commit_len(n);                         // publish only the bytes written
    /// assert_eq!(&*ring.consumer()?.try_recv()?.unwrap(), b"short");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for a `len` longer than the ring's maximum (it could never fit;
    /// nothing is waited for); [`Error::BadPositions`] if another process moved the consumer's
    /// head out of bounds. A consumer that is gone does not end the wait: the producer waits
    /// for a later one.
    pub fn claim(&mut self, len: usize) -> Result<Claim<'_>> {
        self.claim_inner(len, Patience::Forever, true)
    }

    /// Reserves `len` bytes, waiting at most `timeout` ([`Error::Timeout`] then).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if no room came within `timeout`; [`Error::TooLarge`] for a `len`
    /// longer than the ring's maximum (it could never fit; nothing is waited for);
    /// [`Error::BadPositions`] if another process moved the consumer's head out of bounds. A
    /// consumer that is gone does not end the wait: the producer waits for a later one.
    pub fn claim_timeout(&mut self, len: usize, timeout: Duration) -> Result<Claim<'_>> {
        self.claim_inner(len, Patience::For(timeout), true)
    }

    /// Starts a batch: messages sent through it are published together, with one store of
    /// the tail (and at most one wake-up of the consumer), when the batch is dropped — or
    /// earlier, whenever it has to wait for room, so the consumer is never kept waiting on
    /// messages the batch already holds.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let mut producer = ring.producer()?;
    /// let mut consumer = ring.consumer()?;
    /// {
    ///     let mut batch = producer.batch();
    ///     for i in 0..10u8 {
    ///         batch.send(&[i])?;
    ///     }
    ///     assert!(consumer.try_recv()?.is_none()); // nothing published yet
    /// }                                            // published here
    /// assert_eq!(&*consumer.try_recv()?.unwrap(), &[0]);
    /// # Ok(()) }
    /// ```
    pub fn batch(&mut self) -> SendBatch<'_> {
        SendBatch { producer: self }
    }

    /// Ends the stream: writes the end-of-stream marker, publishes it, and gives up the
    /// producer role. The consumer receives every message before the marker, then the end. A
    /// later producer may start a new stream on the same ring.
    ///
    /// Does not wait: the producer keeps 8 bytes free for the marker after every message.
    /// The one exception is a ring that another writer of the file left without that room
    /// (its tail a whole capacity past the head, which FORMAT.md allows): the producer then
    /// publishes everything and waits, with its [wait strategy](Self::set_wait_strategy),
    /// until the consumer releases a record, then writes the marker — so a thread that is
    /// also the ring's consumer should use [`close_timeout`](Self::close_timeout). It fails
    /// only if the ring's positions turn out to be corrupt; the producer is then
    /// [abandoned](Self::abandon), so that the consumer reports it as died rather than
    /// seeing a clean detach.
    ///
    /// # Errors
    ///
    /// [`Error::Inherited`] in a child created by `fork` (the role is the parent's: nothing is
    /// written); [`Error::BadPositions`] if the ring's positions turn out corrupt (the producer
    /// is then abandoned, so the consumer reports it as died).
    pub fn close(self) -> Result<()> {
        self.finish(RECORD_END, "", Patience::Forever)
    }

    /// [`close`](Self::close), waiting at most `timeout` for room for the marker (which only
    /// a ring left without the reserve makes it do; `Duration::ZERO` never waits). On
    /// [`Error::Timeout`] the stream is not ended: the producer detaches cleanly, leaving it
    /// open for a later producer, as dropping it does.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let mut producer = ring.producer()?;
    /// producer.send(b"last")?;
    /// producer.close_timeout(std::time::Duration::ZERO)?; // room was kept: no wait
    /// let mut consumer = ring.consumer()?;
    /// assert_eq!(&*consumer.recv()?.unwrap(), b"last");
    /// assert!(consumer.recv()?.is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if no room for the marker came within `timeout` (the stream is left
    /// open, the producer detached cleanly); otherwise as [`close`](Self::close).
    pub fn close_timeout(self, timeout: Duration) -> Result<()> {
        self.finish(RECORD_END, "", Patience::For(timeout))
    }

    /// Ends the stream because the producer stopped on an error: the consumer receives every
    /// message sent before, then [`Error::StreamAborted`] with `reason`. A later producer
    /// may start a new stream on the same ring.
    ///
    /// Waits as [`close`](Self::close) does (only on a ring left without room for the marker
    /// by another writer). The reason is cut, at a character boundary, to what fits in the
    /// ring now (at most the ring's maximum message size): a full ring may record only its
    /// first bytes, or none. Fails as [`close`](Self::close) does.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let mut producer = ring.producer()?;
    /// producer.send(b"fine")?;
    /// producer.abort("input ended inside a message")?;
    ///
    /// let mut consumer = ring.consumer()?;
    /// assert_eq!(&*consumer.recv()?.unwrap(), b"fine");
    /// match consumer.recv() {
    ///     Err(ringfile::Error::StreamAborted { reason, .. }) => {
    ///         assert_eq!(reason, "input ended inside a message")
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Inherited`] in a child created by `fork` (the role is the parent's: nothing is
    /// written); [`Error::BadPositions`] if the ring's positions turn out corrupt (the producer
    /// is then abandoned, so the consumer reports it as died).
    pub fn abort(self, reason: &str) -> Result<()> {
        self.finish(RECORD_ABORT, reason, Patience::Forever)
    }

    /// [`abort`](Self::abort), waiting at most `timeout` for room, as
    /// [`close_timeout`](Self::close_timeout) does (and on [`Error::Timeout`] detaching
    /// cleanly, the stream left open).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if no room for the marker came within `timeout` (the stream is left
    /// open, the producer detached cleanly); otherwise as [`abort`](Self::abort).
    pub fn abort_timeout(self, reason: &str, timeout: Duration) -> Result<()> {
        self.finish(RECORD_ABORT, reason, Patience::For(timeout))
    }

    /// Gives up the producer role without ending the stream and without a clean detach: the
    /// consumer reports [`Error::ProducerDied`] once it has received everything published, as
    /// if this process had been killed. For a program that must stop and cannot say why in the
    /// ring. What was sent is published first.
    pub fn abandon(mut self) {
        self.attachment.leave();
    }

    /// Gives up the producer role and leaves the stream open, for a later producer to go on
    /// with (what `producer --no-close` does): the consumer receives everything published,
    /// then waits for the next producer. What was sent is published first. Compare dropping
    /// the producer, which ends the stream.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let mut first = ring.producer()?;
    /// first.send(b"one")?;
    /// first.detach();
    /// let mut second = ring.producer()?;
    /// second.send(b"two")?;
    /// drop(second); // ends the stream, as close() does
    ///
    /// let mut consumer = ring.consumer()?;
    /// assert_eq!(&*consumer.recv()?.unwrap(), b"one");
    /// assert_eq!(&*consumer.recv()?.unwrap(), b"two"); // the same stream
    /// assert!(consumer.recv()?.is_none());
    /// # Ok(()) }
    /// ```
    pub fn detach(mut self) {
        self.attachment.keep_open();
    }

    /// Writes the record that ends the stream (`kind` END, or ABORT with as much of `reason`
    /// as fits), in the room kept free for it — or, where another writer left none, in the
    /// first room the consumer releases.
    fn finish(mut self, kind: u32, reason: &str, patience: Patience) -> Result<()> {
        if self.endpoint.role.inherited() {
            self.attachment.leave();
            return Err(Error::Inherited {
                path: self.endpoint.shared.name.clone(),
                role: Role::Producer,
            });
        }
        match self.write_final(kind, reason, patience) {
            // No room came in time: nothing is lost and nothing is wrong with the ring, so
            // this is a clean detach (the drop that follows), the stream left open.
            Err(Error::Timeout) => {
                self.attachment.keep_open();
                Err(Error::Timeout)
            }
            written => {
                // Otherwise the state word must not say "detached cleanly" unless the record
                // that ends the stream is published.
                self.attachment.leave();
                written?;
                self.attachment
                    .detach(&self.endpoint.shared.region.control().roles);
                Ok(())
            }
        }
    }

    /// [`finish`](Self::finish)'s record: waits for room if there is none, cuts the reason
    /// to the room there is, writes the record and publishes it.
    fn write_final(&mut self, kind: u32, reason: &str, patience: Patience) -> Result<()> {
        let room = match self.space.final_room(&self.endpoint.shared)? {
            Some(room) => room,
            None => {
                // No room even for an END record: another writer ignored the reserve. The
                // consumer frees room by releasing anything, so wait for it as for a full
                // ring (publishing first, in `reserve_waiting`), then measure again.
                self.reserve_waiting(0, 0, patience)?;
                self.space
                    .final_room(&self.endpoint.shared)?
                    .ok_or(Error::Full)?
            }
        };
        let mut cut = reason.len().min(room as usize);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let payload = &reason.as_bytes()[..cut];
        let pos = self.try_reserve(payload.len(), 0)?.ok_or(Error::Full)?;
        // SAFETY: `try_reserve` returned `pos` with room for this record below the released
        // head plus the capacity, and we have not published it: the bytes are ours alone.
        unsafe {
            self.endpoint.shared.region.write_record(
                pos,
                encode(kind, payload.len() as u32),
                payload,
            );
        };
        self.space.write_pos = pos + record_size(payload.len() as u64);
        self.publish();
        Ok(())
    }

    /// Flushes the ring to storage (`msync`): see [`Ring::sync`](crate::Ring::sync).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `msync` fails (an I/O error of the file system holding the ring).
    pub fn sync(&self) -> Result<()> {
        self.endpoint.shared.sync()
    }

    #[inline(always)]
    fn send_inner(&mut self, msg: &[u8], patience: Patience, publish: bool) -> Result<()> {
        let pos = self.reserve(msg.len(), patience)?;
        self.write_message(pos, msg, publish);
        Ok(())
    }

    /// Writes `msg` as a record at `pos`, which [`try_reserve`](Self::try_reserve) returned
    /// for a message of its length.
    #[inline(always)]
    pub(crate) fn write_message(&mut self, pos: Position, msg: &[u8], publish: bool) {
        let len = msg.len() as u64;
        // SAFETY: the writer's region is `self.endpoint.shared`'s, alive as long as we are;
        // `reserve` returned `pos` with room for this record below the released head plus the
        // capacity, and we have not published it: the bytes are ours alone.
        unsafe {
            self.writer
                .write_record(pos, encode(RECORD_DATA, len as u32), msg);
        };
        self.advance(pos, len, publish);
    }

    /// Counts the data record of `len` payload bytes just written at `pos` and moves past it,
    /// publishing if asked.
    #[inline(always)]
    fn advance(&mut self, pos: Position, len: u64, publish: bool) {
        self.space.write_pos = pos + record_size(len);
        self.endpoint.tally.add(1, len);
        if publish {
            self.publish();
        }
    }

    fn claim_inner(&mut self, len: usize, patience: Patience, publish: bool) -> Result<Claim<'_>> {
        let pos = self.reserve(len, patience)?;
        Ok(Claim {
            producer: self,
            pos,
            len: len as u64,
            publish,
        })
    }

    /// Finds room for a record with `len` payload bytes, writing a padding record first if
    /// the record would cross the end of the data region. Returns the record's position.
    #[inline(always)]
    fn reserve(&mut self, len: usize, patience: Patience) -> Result<Position> {
        if let Some(pos) = self.try_reserve(len, END_RESERVE)? {
            return Ok(pos);
        }
        self.reserve_waiting(len, END_RESERVE, patience)
    }

    /// [`reserve`](Self::reserve) once the ring is full: waits as `wait` says for room for
    /// the record with `keep_free` bytes left after it.
    #[cold]
    #[inline(never)]
    fn reserve_waiting(
        &mut self,
        len: usize,
        keep_free: u64,
        patience: Patience,
    ) -> Result<Position> {
        let deadline = match patience {
            Patience::None => return Err(Error::Full),
            Patience::Forever => None,
            // A timeout too long to represent (`Duration::MAX`) waits forever.
            Patience::For(timeout) => Instant::now().checked_add(timeout),
        };
        // The consumer may be waiting for what we have written: publish before waiting.
        self.publish();
        // The closure borrows only `space`, beside the ring and the barrier: no `Arc` clone (a
        // locked increment) per wait.
        let (shared, space) = (&self.endpoint.shared, &mut self.space);
        self.endpoint
            .waiting
            .block(shared, deadline, |probe| match probe {
                // Idle: look again all the same, so that the consumers' policies (`retain`)
                // are applied while we wait.
                Probe::Ready | Probe::Idle => space.try_reserve(shared, len, keep_free),
            })
    }

    /// As [`reserve`](Self::reserve) without waiting: `None` if the record (and any padding
    /// in front of it) would leave less than `keep_free` bytes of the ring free.
    #[inline]
    pub(crate) fn try_reserve(&mut self, len: usize, keep_free: u64) -> Result<Option<Position>> {
        self.space
            .try_reserve(&self.endpoint.shared, len, keep_free)
    }

    /// Completes the record at `pos` with `len` payload bytes already written.
    #[inline]
    fn commit(&mut self, pos: Position, len: u64, publish: bool) {
        debug_assert_eq!(pos, self.space.write_pos);
        self.endpoint
            .shared
            .region
            .write_word(pos, encode(RECORD_DATA, len as u32));
        self.advance(pos, len, publish);
    }

    /// Makes every record written so far visible to the consumer.
    ///
    /// Always inlined, with what is not a ring of one consumer out of line: this runs once
    /// per message sent, and LLVM, left to choose, stopped inlining it into a send loop when
    /// unrelated code of the caller's crate changed (a call, and the tail through memory).
    #[inline(always)]
    pub(crate) fn publish(&mut self) {
        if self.space.write_pos != self.space.published {
            let control = self.endpoint.shared.region.control();
            // Before the shared tail (Release): our consumer, which Acquire-loads that tail,
            // then sees a local tail at least as new (see `Shared::local_tail`).
            self.endpoint.shared.local_tail.store(
                self.space.write_pos.get(),
                std::sync::atomic::Ordering::Release,
            );
            let tail = self.space.write_pos;
            // Read, then cleared only when set: `take` would store `None` every publish, one
            // more store queued behind the record's (they drain in order, and the record's
            // wait for the line the consumer reads).
            if let Some(mark) = self.pending_mark {
                self.pending_mark = None;
                self.resume.write(&control.roles, tail, mark);
            }
            let region = &self.endpoint.shared.region;
            if let Some(wake) = region.fanout_wake() {
                publish_among(
                    region,
                    wake,
                    &mut self.publish_seq,
                    self.endpoint.tally,
                    tail,
                );
            } else {
                // Before the tail: statistics, which a reader that Acquire-loads the tail
                // sees at least this new.
                control.published.store(self.endpoint.tally);
                store_and_wake(
                    region,
                    &control.consumer_wait,
                    &control.roles.consumer_pid,
                    // Release: every record byte written below `tail` is visible to a
                    // consumer that Acquire-loads this tail.
                    move || control.published_tail.store(tail.get(), Ordering::Release),
                );
            }
            self.space.published = tail;
        }
    }
}

/// [`Producer::publish`]'s store of `tail` on a ring with consumer slots (`region`, whose
/// consumers' wake-up words are `wake`): the counters (`tally`) and the tail as one pair
/// under `seq`, and every sleeping consumer woken. Out of line: publish is inlined into every
/// send, and this is the less common ring.
#[inline(never)]
fn publish_among(
    region: &Region,
    wake: &FanoutWake,
    seq: &mut PublishSeq,
    tally: Tally,
    tail: Position,
) {
    let control = region.control();
    // The counter and the tail as one pair, for readers that must learn which message a
    // position holds (`lapping`).
    seq.begin(&control.published);
    control.published.store(tally);
    store_and_wake_all(region, wake, || {
        // Release: every record byte written below `tail` is visible to a consumer that
        // Acquire-loads this tail.
        control.published_tail.store(tail.get(), Ordering::Release);
        seq.end(&control.published);
    });
}

/// The consumer that holds a producer back: see [`Producer::slowest_consumer`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlowestConsumer {
    /// Its name (`default` for the unnamed consumer).
    pub name: String,
    /// The pid its last holder recorded (as the file says: for messages only).
    pub pid: Option<u32>,
    /// Whether a live process holds it now (from its lock).
    pub live: bool,
    /// Its released position.
    pub position: u64,
}

/// The producer's view of the free space: where its next record goes and a copy of the
/// consumer's head. Apart from the rest of [`Producer`] so that a wait can borrow it mutably
/// while it borrows the ring.
#[derive(Debug)]
pub(crate) struct Space {
    /// End of the records written so far; `published <= write_pos <= cached_head + capacity`.
    write_pos: Position,
    /// The last value stored to the shared published tail.
    published: Position,
    /// A copy of the consumer's released head. It can be stale (the real head may be
    /// further on), which only ever makes the ring look fuller than it is.
    cached_head: Position,
    capacity: Capacity,
    max_message: u64,
    /// Whether the ring has consumer slots: the head is then the gate of the slowest
    /// consumer that holds us back (`slots`), not one consumer's head.
    fanout: bool,
    /// What the consumers' policies (`retain`, `max_lag`) need us to remember.
    policies: slots::Policies,
}

impl Space {
    /// As [`Producer::reserve`] without waiting: `None` if the record (and any padding
    /// in front of it) would leave less than `keep_free` bytes of the ring free.
    ///
    /// The common case — the record fits before the end of the region and below the cached
    /// head — is a few compares inlined into every send; the rest is out of line. That
    /// matters more than it looks: a send that is a call of its own pushes and pops a frame,
    /// a dozen stores that queue in the store buffer behind the record's stores, which wait
    /// for their cache lines — with batches of 256-byte messages the producer spent most of
    /// its time stalled on those pushes (perf, `report --one ringfile 256`).
    #[inline(always)]
    pub(crate) fn try_reserve(
        &mut self,
        shared: &Shared,
        len: usize,
        keep_free: u64,
    ) -> Result<Option<Position>> {
        let wide = len as u64;
        if wide <= self.max_message {
            let size = record_size(wide);
            // No overflow: as in `try_reserve_slow`.
            if size <= self.capacity.room_to_end(self.write_pos)
                && self.write_pos + (size + keep_free) <= self.capacity.limit(self.cached_head)
            {
                return Ok(Some(self.write_pos));
            }
        }
        self.try_reserve_slow(shared, len, keep_free)
    }

    /// [`try_reserve`](Self::try_reserve) when the cached head says full, the record needs
    /// padding in front, or it is too large.
    #[cold]
    #[inline(never)]
    fn try_reserve_slow(
        &mut self,
        shared: &Shared,
        len: usize,
        keep_free: u64,
    ) -> Result<Option<Position>> {
        let len = len as u64;
        if len > self.max_message {
            return Err(Error::TooLarge {
                len: len as usize,
                max: self.max_message as usize,
            });
        }
        let size = record_size(len);
        let room_to_end = self.capacity.room_to_end(self.write_pos);
        let padding = if size > room_to_end { room_to_end } else { 0 };
        // No overflow: positions are below MAX_POSITION (checked at attach, and the head is
        // checked against our own write position below), sizes below 2^33.
        let end = self.write_pos + (padding + size + keep_free);
        if end > self.capacity.limit(self.cached_head) {
            // Possibly full on the cached head: look at the real one.
            let head = self.refresh_head(shared, end)?;
            if end > self.capacity.limit(head) {
                return Ok(None); // really full
            }
        }
        if padding != 0 {
            shared.region.write_word(
                self.write_pos,
                encode(RECORD_PADDING, (padding - RECORD_HEADER) as u32),
            );
            self.write_pos += padding;
        }
        Ok(Some(self.write_pos))
    }
}

impl Space {
    /// Reads the consumer's released head into `cached_head`, refusing one that moved
    /// backwards or past our own write position.
    fn refresh_head(&mut self, shared: &Shared, need: Position) -> Result<Position> {
        if self.fanout {
            return Ok(self.refresh_gate(shared, need));
        }
        // SYNC POINT (released_head): Acquire pairs with the consumer's Release store of the
        // head, so its reads of the bytes it released happen before we overwrite them.
        let head = shared
            .region
            .control()
            .released_head
            .load(Ordering::Acquire);
        // A consumer of this ring in this process may hold messages below a head that
        // another process forged forward: never overwrite those.
        let raw = shared.below_local_head(head);
        let head = Position::new(raw)
            .filter(|&head| self.cached_head <= head && head <= self.write_pos)
            .ok_or_else(|| Error::BadPositions {
                path: shared.name.clone(),
                head: raw,
                tail: self.write_pos.get(),
                capacity: self.capacity.bytes(),
            })?;
        self.cached_head = head;
        Ok(head)
    }

    /// [`refresh_head`](Self::refresh_head) on a ring with consumer slots: the lowest
    /// position among the slots that hold us back (and this process's own consumers), at
    /// most what we published, never below the last one (a position lower than that was
    /// forged: every consumer that joined since starts at or after the gate, see `slots`).
    fn refresh_gate(&mut self, shared: &Shared, need: Position) -> Position {
        let limit = self.published.get();
        let scan = slots::scan(shared, limit, &mut self.policies);
        let mut low = scan.low;
        if scan.lapped {
            // Readers that do not hold us back read what lies at or after the gate (see
            // `lapping`): move it no further than the room this record needs, or half the
            // ring, so that a lapped reader that keeps up loses nothing — to the first record
            // boundary there (readers start at the gate), found by walking our own records
            // from the last gate.
            let cap = self.capacity.bytes();
            let wanted = need
                .get()
                .saturating_sub(cap)
                .max(self.write_pos.get().saturating_sub(cap / 2));
            if wanted < low {
                low = low.min(self.boundary_from(shared, wanted));
            }
        }
        let low = slots::raise_gate(&shared.region, low, limit);
        let low = shared.below_local_head(low);
        let head = Position::new(low)
            .filter(|&low| low >= self.cached_head)
            .unwrap_or(self.cached_head);
        self.cached_head = head;
        head
    }

    /// The first record boundary at or after `wanted` (at most the published tail), walking
    /// the records we published from the cached gate, a boundary. Those records are whole: we
    /// overwrite nothing at or after the gate. A header that does not decode (another
    /// process wrote there) ends the walk at the published tail.
    fn boundary_from(&self, shared: &Shared, wanted: u64) -> u64 {
        let (mut pos, tail) = (self.cached_head, self.published);
        while pos.get() < wanted && pos < tail {
            let word = shared.region.read_word(pos);
            match decode(word, pos, tail, self.capacity, self.max_message) {
                Ok(Decoded::Record(_, next) | Decoded::Padding(next)) => pos = next,
                Err(_) => return tail.get(),
            }
        }
        pos.get().min(tail.get())
    }

    /// The longest payload (at most the maximum message size) a record that ends the stream
    /// can carry in the room free now, placed where [`try_reserve`](Self::try_reserve) with
    /// `keep_free` 0 would put it; `None` if not even an empty record fits (the ring was left
    /// without the reserve by another writer and the consumer has not released since).
    #[cold]
    fn final_room(&mut self, shared: &Shared) -> Result<Option<u64>> {
        let head = self.refresh_head(shared, self.write_pos)?;
        // Saturating: a head forged by another process, lowered to this process's own
        // consumer's at attach, may leave the write position past head + capacity.
        let free = self
            .capacity
            .limit(head)
            .get()
            .saturating_sub(self.write_pos.get());
        let room_to_end = self.capacity.room_to_end(self.write_pos);
        // In place, before the end of the region; or after a padding record, at its start.
        let in_place = room_to_end.min(free);
        let wrapped = free.saturating_sub(room_to_end);
        // Whole records only (a forged, unaligned head must not make a record overlap it).
        let best = in_place.max(wrapped) & !(RECORD_ALIGN - 1);
        if best < RECORD_HEADER {
            return Ok(None);
        }
        Ok(Some((best - RECORD_HEADER).min(self.max_message)))
    }
}

/// The async sends (feature `async`): see the [`async_api`](crate::side::async_api) module.
#[cfg(all(feature = "async", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl Producer {
    /// Waits, as a task, for room, then sends `msg`: the async form of [`send`](Self::send),
    /// with the same errors.
    ///
    /// Cancellation-safe: a future dropped before it completes has sent nothing (the message
    /// is written in one go once there is room, with no await after); sending again sends it
    /// once.
    ///
    /// # Errors
    ///
    /// As [`send`](crate::Producer::send).
    pub async fn send_async(&mut self, msg: &[u8]) -> Result<()> {
        let pos = std::future::poll_fn(|cx| self.poll_reserve(msg.len(), cx)).await?;
        self.write_message(pos, msg, true);
        Ok(())
    }

    /// As [`send_async`](Self::send_async), for a plain-old-data value (see
    /// [`send_value`](Self::send_value)).
    ///
    /// # Errors
    ///
    /// As [`send`](crate::Producer::send).
    pub async fn send_value_async<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<()> {
        self.send_async(bytemuck::bytes_of(value)).await
    }

    /// Waits, as a task, for room for a `len`-byte message and claims it: the async form of
    /// [`claim`](Self::claim).
    ///
    /// Cancellation-safe: a future dropped before it completes has claimed nothing.
    ///
    /// # Errors
    ///
    /// As [`claim`](crate::Producer::claim).
    pub async fn claim_async(&mut self, len: usize) -> Result<Claim<'_>> {
        let pos = std::future::poll_fn(|cx| self.poll_reserve(len, cx)).await?;
        Ok(Claim {
            producer: self,
            pos,
            len: len as u64,
            publish: true,
        })
    }

    /// Room for a record with `len` payload bytes, once there is some; waits as a task.
    fn poll_reserve(
        &mut self,
        len: usize,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Position>> {
        loop {
            if let Some(pos) = self.try_reserve(len, END_RESERVE)? {
                self.endpoint.waiting.found();
                return std::task::Poll::Ready(Ok(pos));
            }
            // The consumer may be waiting for what we have written: publish before waiting.
            self.publish();
            // Disjoint borrows: the registration, the barrier and the free space, beside the
            // ring (no `Arc` clone, no moving the wait out and back).
            let (shared, space) = (&self.endpoint.shared, &mut self.space);
            let woken = self
                .endpoint
                .waiting
                .poll(cx, shared, || space.try_reserve(shared, len, END_RESERVE));
            if let Some(pos) = std::task::ready!(woken)? {
                return std::task::Poll::Ready(Ok(pos));
            }
        }
    }
}

#[cfg(all(feature = "async", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl SendBatch<'_> {
    /// As [`Producer::send_async`], unpublished until the batch ends (what the batch holds
    /// is published before it waits for room, as [`send`](Self::send) does).
    ///
    /// # Errors
    ///
    /// As [`send`](crate::Producer::send).
    pub async fn send_async(&mut self, msg: &[u8]) -> Result<()> {
        let pos = std::future::poll_fn(|cx| self.producer.poll_reserve(msg.len(), cx)).await?;
        self.producer.write_message(pos, msg, false);
        Ok(())
    }
}

impl Drop for Producer {
    /// Publishes what was written and ends the stream, as [`Producer::close`] does — or, if
    /// the thread is panicking, as [`Producer::abort`] does, with the reason "the producer's
    /// thread panicked" — so the consumer drains and then learns the stream ended, as a
    /// dropped channel sender's receiver does. It never waits: where another writer left the
    /// ring without room for the marker, the producer detaches cleanly instead (the stream
    /// stays open). [`Producer::detach`] keeps the stream open on purpose.
    ///
    /// A producer inherited through `fork` does nothing when dropped: the role, and the
    /// ring's state, are the parent's.
    fn drop(&mut self) {
        if self.endpoint.role.inherited() {
            return;
        }
        // A clone of the Arc (drop only): `roles` borrows it, not `self`.
        let shared = Arc::clone(&self.endpoint.shared);
        let roles = &shared.region.control().roles;
        match self.attachment.departure() {
            Departure::End => {
                let (kind, reason) = if std::thread::panicking() {
                    (RECORD_ABORT, "the producer's thread panicked")
                } else {
                    (RECORD_END, "")
                };
                match self.write_final(kind, reason, Patience::None) {
                    // Ended: the record is published, the bit may go.
                    Ok(()) => self.attachment.detach(roles),
                    // No room for the marker now (another writer ignored the reserve): a
                    // clean detach, the stream left open, nothing lost.
                    Err(Error::Full) => self.attachment.detach(roles),
                    // A corrupt ring: the consumer is to learn that this producer is gone.
                    Err(_) => {}
                }
            }
            Departure::Detach => {
                self.publish();
                self.attachment.detach(roles);
            }
            Departure::Leave => self.publish(),
        }
        self.endpoint.shared.producer_left_tail.store(
            self.space.published.get(),
            std::sync::atomic::Ordering::Relaxed,
        );
        // No longer writing: records above our tail may be a later producer's.
        self.endpoint.shared.local_tail.store(
            crate::store::shared::NO_LOCAL_TAIL,
            std::sync::atomic::Ordering::Release,
        );
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("ring", &self.endpoint.shared.name)
            .field("write_pos", &self.space.write_pos)
            .field("published", &self.space.published)
            .finish()
    }
}

/// How long a call may wait for room: not at all (`try_*`), for ever, or at most a while
/// (`*_timeout`). (Not to be confused with the [`WaitStrategy`], which says *how* it waits.)
#[derive(Clone, Copy)]
enum Patience {
    None,
    Forever,
    /// At most this long. The deadline is computed only if the ring is full: a clock read
    /// on every send would cost as much as the send.
    For(Duration),
}

/// Room for one message in the ring, to be written in place and then committed.
///
/// Dereferences to the `len` bytes claimed (their contents are unspecified: write them).
/// Dropping a claim without committing it discards it.
#[must_use = "a claim sends nothing until it is committed"]
pub struct Claim<'a> {
    producer: &'a mut Producer,
    pos: Position,
    len: u64,
    publish: bool,
}

impl std::fmt::Debug for Claim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("ring", &self.producer.endpoint.shared.name)
            .field("position", &self.pos)
            .field("len", &self.len)
            .finish()
    }
}

impl Claim<'_> {
    /// Commits the whole claimed length as one message.
    pub fn commit(self) {
        let len = self.len;
        self.commit_len(len as usize);
    }

    /// Commits the first `len` bytes as one message (the rest of the claim is given back).
    ///
    /// # Panics
    /// If `len` exceeds the length claimed.
    pub fn commit_len(self, len: usize) {
        assert!(
            len as u64 <= self.len,
            "commit_len({len}) exceeds the {} bytes claimed",
            self.len
        );
        self.producer.commit(self.pos, len as u64, self.publish);
    }

    /// Discards the claim; nothing is sent (dropping it does the same). Not to be confused
    /// with [`Producer::abort`], which ends the stream.
    pub fn discard(self) {}

    /// The claimed bytes as one `T` to write in place. [`Error::WrongLength`] unless the
    /// claim is `size_of::<T>()` bytes long. Claims are 8-byte aligned; a type that needs
    /// more does not compile here. See [`typed`](crate::side::typed).
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let (mut producer, mut consumer) = (ring.producer()?, ring.consumer()?);
    /// let mut claim = producer.claim(std::mem::size_of::<[u64; 4]>())?;
    /// *claim.value_mut::<[u64; 4]>()? = [1, 2, 3, 4];
    /// claim.commit();
    /// assert_eq!(consumer.recv()?.expect("sent").slice::<u64>()?, &[1, 2, 3, 4]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] if the claim's length is not `size_of::<T>()`, naming this
    /// method. (A type that needs more than 8-byte alignment does not compile: see
    /// [`typed`](crate::side::typed).)
    pub fn value_mut<T: bytemuck::Pod>(&mut self) -> Result<&mut T> {
        crate::side::typed::value_mut_for("Claim::value_mut", self)
    }

    /// The claimed bytes as a slice of `T` to write in place. [`Error::WrongLength`] unless
    /// the claim's length is a whole number of `T`.
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] if the claim's length is not a multiple of `size_of::<T>()`,
    /// naming this method. (A type that needs more than 8-byte alignment does not compile: see
    /// [`typed`](crate::side::typed).)
    pub fn slice_mut<T: bytemuck::Pod>(&mut self) -> Result<&mut [T]> {
        crate::side::typed::slice_mut_for("Claim::slice_mut", self)
    }
}

impl Deref for Claim<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let offset = self.producer.space.capacity.offset(self.pos) + RECORD_HEADER;
        // SAFETY: the claim's bytes were reserved for it (below the released head plus the
        // capacity) and are not published until it is committed; the claim borrows the
        // producer, so no other claim or send can touch them meanwhile.
        unsafe { self.producer.endpoint.shared.region.bytes(offset, self.len) }
    }
}

impl DerefMut for Claim<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let offset = self.producer.space.capacity.offset(self.pos) + RECORD_HEADER;
        // SAFETY: as in `deref`; `&mut self` makes this the only slice of the claim.
        unsafe {
            self.producer
                .endpoint
                .shared
                .region
                .bytes_mut(offset, self.len)
        }
    }
}

/// Several sends published together; see [`Producer::batch`].
#[must_use = "a batch publishes when it is dropped: dropping it at once does nothing useful"]
pub struct SendBatch<'a> {
    producer: &'a mut Producer,
}

impl std::fmt::Debug for SendBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("producer", &*self.producer)
            .finish()
    }
}

impl SendBatch<'_> {
    /// As [`Producer::send_value`], unpublished until the batch ends.
    ///
    /// # Errors
    ///
    /// As the producer's [`send_value`](Producer::send_value).
    #[inline]
    pub fn send_value<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<()> {
        self.send(crate::side::typed::bytes_of(value))
    }

    /// As [`Producer::try_send`], unpublished until the batch ends.
    ///
    /// # Errors
    ///
    /// As the producer's [`try_send`](Producer::try_send).
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        self.producer.send_inner(msg, Patience::None, false)
    }

    /// As [`Producer::send`]; publishes the batch so far if it has to wait.
    ///
    /// # Errors
    ///
    /// As the producer's [`send`](Producer::send).
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.producer.send_inner(msg, Patience::Forever, false)
    }

    /// As [`Producer::send_timeout`]; publishes the batch so far if it has to wait.
    ///
    /// # Errors
    ///
    /// As the producer's [`send_timeout`](Producer::send_timeout).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.producer.send_inner(msg, Patience::For(timeout), false)
    }

    /// As [`Producer::try_claim`], unpublished until the batch ends.
    ///
    /// # Errors
    ///
    /// As the producer's [`try_claim`](Producer::try_claim).
    pub fn try_claim(&mut self, len: usize) -> Result<Claim<'_>> {
        self.producer.claim_inner(len, Patience::None, false)
    }

    /// As [`Producer::claim`]; publishes the batch so far if it has to wait.
    ///
    /// # Errors
    ///
    /// As the producer's [`claim`](Producer::claim).
    pub fn claim(&mut self, len: usize) -> Result<Claim<'_>> {
        self.producer.claim_inner(len, Patience::Forever, false)
    }

    /// As [`Producer::claim_timeout`]; publishes the batch so far if it has to wait.
    ///
    /// # Errors
    ///
    /// As the producer's [`claim_timeout`](Producer::claim_timeout).
    pub fn claim_timeout(&mut self, len: usize, timeout: Duration) -> Result<Claim<'_>> {
        self.producer
            .claim_inner(len, Patience::For(timeout), false)
    }

    /// As [`Producer::mark_next_publish`]: records `mark` with the batch's next publish
    /// (the one [`publish`](Self::publish) or the end of the batch makes, or one a send
    /// makes when it has to wait for room).
    pub fn mark_next_publish(&mut self, mark: NonZeroU64) {
        self.producer.mark_next_publish(mark);
    }

    /// Publishes the messages sent so far and goes on batching.
    pub fn publish(&mut self) {
        self.producer.publish();
    }
}

impl Drop for SendBatch<'_> {
    fn drop(&mut self) {
        self.producer.publish();
    }
}
