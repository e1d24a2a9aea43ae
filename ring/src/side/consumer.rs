//! The consumer side: reads published records in place, releases the head.
//!
//! The consumer owns the bytes from the released head up to the published tail. It hands
//! out messages that borrow those bytes, and gives them back to the producer with one
//! `Release` store of the head — per message, or once per [`RecvBatch`]. It reads the
//! producer's tail only when its cached copy says the ring may be empty. Every record header
//! is validated before use, so a corrupt file yields [`Error::Corrupt`], never a read outside
//! the data region.

use crate::error::{Error, Result, Role};
use crate::format::position::{Capacity, Offset, Position};
use crate::format::record::{decode, decode_data, record_size, Decoded, LastData, Record};
use crate::os::sync::{AtomicU64, Ordering};
use crate::protocol::lapping;
use crate::protocol::lifecycle::Watch;
use crate::protocol::roles;
use crate::protocol::slots::{self, Join, SlotState};
use crate::protocol::wait::{store_and_wake, Probe, WaitStrategy};
use crate::side::endpoint::{Endpoint, Waiting};
use crate::store::shared::Shared;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pauses (`spin_loop`) between the polls of an empty ring that a receive makes before it
/// sets up its wait (see `Consumer::polls_find_record`): about a microsecond in all. The busy
/// `Spin` strategy polls after every pause, as its wait then does; the others after 1, 2,
/// 4 ... 32 pauses, as `Backoff`'s spinning then does, so that a consumer that has caught up
/// does not take the line being written from its producer more often than its wait would.
const FIRST_PAUSES: u32 = 63;

/// What `poll` finds, polling as `strategy` does within [`FIRST_PAUSES`], for a receive that
/// found the ring empty (`Park`: no polls, `None`).
#[inline]
fn first_polls<T>(
    strategy: WaitStrategy,
    mut poll: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let doubling = match strategy {
        WaitStrategy::Park => return Ok(None),
        WaitStrategy::Spin => false,
        WaitStrategy::Adaptive | WaitStrategy::Yield => true,
    };
    let (mut paused, mut step) = (0, 1);
    while paused < FIRST_PAUSES {
        for _ in 0..step {
            std::hint::spin_loop();
        }
        paused += step;
        if let Some(found) = poll()? {
            return Ok(Some(found));
        }
        if doubling {
            step *= 2;
        }
    }
    Ok(None)
}

/// The consumer role on a ring: receives messages. Get one with
/// [`Ring::consumer`](crate::Ring::consumer).
///
/// Received messages borrow the ring's memory (no copy). A [`Message`] gives its space back
/// to the producer when dropped; a [`RecvBatch`] gives back all of its messages at once.
/// A process that writes the ring file outside the protocol can change a borrowed message
/// while you read it: for peers you do not trust, receive copies with
/// [`recv_into`](Self::recv_into) (see the crate's trust model).
/// The released position lives in the file: a consumer that is killed and restarted resumes
/// at the first message not yet released.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), ringfile::Error> {
/// let ring = ringfile::Ring::memfd(4096)?;
/// let mut producer = ring.producer()?;
/// for word in ["a", "bb", "ccc"] {
///     producer.send(word.as_bytes())?;
/// }
/// producer.close()?;
///
/// let mut consumer = ring.consumer()?;
/// let mut got = Vec::new();
/// while let Some(msg) = consumer.recv()? {
///     got.push(String::from_utf8(msg.to_vec()).unwrap());
/// }
/// assert_eq!(got, ["a", "bb", "ccc"]);
/// # Ok(()) }
/// ```
///
/// `Send` and `Sync`: a consumer may move to another thread; receiving takes `&mut self`,
/// and a [`Message`] borrows the consumer, so one thread receives at a time.
#[must_use = "dropping a Consumer gives up the consumer role at once"]
pub struct Consumer {
    /// The ring, the role, how we wait, our counters.
    endpoint: Endpoint,
    /// Start of the next record; equal to the released head whenever no message or batch
    /// is outstanding and nothing is kept. `released <= read_pos <= cached_tail`.
    read_pos: Position,
    /// The head this consumer last stored (its slot's, or the ring's): what it released.
    released: Position,
    /// Messages read and kept ([`Message::keep`], [`RecvBatch::keep`]): between `released`
    /// and `read_pos`, not yet given back to the producer.
    kept: u64,
    /// A copy of the producer's published tail. It can be stale (the real tail may be
    /// further on), which only ever makes the ring look emptier than it is.
    cached_tail: Position,
    /// The last data record's header, decoded (see `peek`).
    last_data: LastData,
    capacity: Capacity,
    max_message: u64,
    /// Which producer's end (its death, or the end of its stream) this consumer has learnt.
    watch: Watch,
    /// Whether the last record received ended a stream (see [`is_ended`](Self::is_ended)).
    ended: bool,
    /// Whether an end or abort record is kept as a kept message is, instead of releasing
    /// (see [`set_keep_ends`](Self::set_keep_ends)).
    keep_ends: bool,
    /// The consumer slot held on a ring with several (`None`: the one consumer of a ring of
    /// format version 1).
    seat: Option<SeatInfo>,
    /// For a consumer the producer may lap (lossy, or under a `max_lag` policy): where it
    /// copies records and how it counts them (`None`: it reads in place).
    lapped: Option<Box<Lapped>>,
    /// Messages this consumer missed since it attached (overtaken by the producer).
    missed: u64,
    /// The one consumer of a ring without slots, reading in place (`seat` and `lapped` are
    /// `None`): its release is the short one.
    plain: bool,
}

/// What a consumer the producer may lap keeps: its copy of the last record, and the index
/// (`lapping`) of the positions around it.
#[derive(Debug)]
struct Lapped {
    /// The payload of the last record read (a data record's, or an abort's reason), 8-byte
    /// aligned as payloads in the ring are.
    buf: Vec<u64>,
    /// The position the last look started from, and the record it found there (after any
    /// padding): all three hold the message of index `index`.
    from: Position,
    at: Position,
    /// The position after that record, which holds the message of index `next_index`.
    next: Position,
    index: u64,
    next_index: u64,
}

impl Lapped {
    fn new(start: Position, index: u64) -> Lapped {
        Lapped {
            buf: Vec::new(),
            from: start,
            at: start,
            next: start,
            index,
            next_index: index,
        }
    }

    /// The index of the message at `pos`: a position the consumer looked at last (`from`,
    /// `at`) or the one after it (`next`).
    fn index_at(&self, pos: Position) -> u64 {
        if pos == self.next {
            self.next_index
        } else {
            self.index
        }
    }

    /// The last record's payload.
    fn payload(&self, len: u64) -> &[u8] {
        &bytemuck::cast_slice(&self.buf)[..len as usize]
    }
}

/// Which slot a consumer among several holds, and the state it stored there.
#[derive(Clone, Copy, Debug)]
struct SeatInfo {
    index: u32,
    state: SlotState,
}

impl Consumer {
    /// Takes the consumer role: on a ring of one consumer, the role itself; on a ring with
    /// slots, the slot of `join.name` (`default` for the unnamed consumer).
    pub(crate) fn attach(shared: Arc<Shared>, join: &Join<'_>) -> Result<Consumer> {
        slots::check_name(join.name)?;
        if !shared.region.shape().fanout() {
            let policy = join.retain_ns != 0 || join.max_lag != 0;
            if join.name != slots::DEFAULT_NAME || join.lossy || policy {
                return Err(Error::NoSlot {
                    path: shared.name.clone(),
                    name: join.name.to_string(),
                    reason: if join.lossy {
                        "a ring with one consumer slot has only its lossless consumer; create the ring with several consumer slots (--consumers N) for lossy ones".to_string()
                    } else if policy {
                        "a ring with one consumer slot keeps its consumer's place for good; create the ring with several consumer slots (--consumers N) for --retain and --max-lag".to_string()
                    } else {
                        "a ring with one consumer slot has only the consumer \"default\"; create the ring with several consumer slots (--consumers N) to name consumers".to_string()
                    },
                });
            }
            let endpoint = Endpoint::attach(shared, Role::Consumer)?;
            let (head, _tail) = endpoint.shared.positions()?;
            return Ok(Consumer::at(endpoint, head, None, None));
        }
        let seat = slots::join(&shared, join)?;
        let info = SeatInfo {
            index: seat.index,
            state: seat.state,
        };
        let lapped = (join.lossy || join.max_lag != 0)
            .then(|| Box::new(Lapped::new(seat.start, seat.messages)));
        let endpoint = Endpoint::seated(shared, seat.guard, seat.messages);
        let mut consumer = Consumer::at(endpoint, seat.start, Some(info), lapped);
        consumer.missed = seat.missed;
        if seat.missed != 0 {
            consumer.count_missed_in_slot(seat.missed);
        }
        Ok(consumer)
    }

    fn at(
        endpoint: Endpoint,
        head: Position,
        seat: Option<SeatInfo>,
        lapped: Option<Box<Lapped>>,
    ) -> Consumer {
        if lapped.is_none() {
            // A lapped reader holds nothing in place: the producer of this process need not
            // spare its position (it proves what it copies whole).
            endpoint
                .shared
                .set_local_head(seat.map_or(0, |s| s.index), head.get());
        }
        let capacity = endpoint.shared.region.capacity();
        Consumer {
            read_pos: head,
            released: head,
            kept: 0,
            cached_tail: head,
            last_data: LastData::new(),
            capacity,
            max_message: capacity.max_message(),
            watch: Watch::default(),
            ended: false,
            keep_ends: false,
            plain: seat.is_none() && lapped.is_none(),
            seat,
            lapped,
            missed: 0,
            endpoint,
        }
    }

    /// Messages this consumer missed since it attached: those the producer overwrote before
    /// a lossy consumer (or one turned lossy by its `max_lag`) read them, and those a name
    /// coming back lossless had lost while it was lossy. Always 0 for a lossless consumer
    /// that never was lossy.
    #[must_use]
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Whether this consumer is lossy now: attached as lossy, or turned lossy by the
    /// producer under its `max_lag` policy (the producer no longer waits for it).
    #[must_use]
    pub fn is_lossy(&self) -> bool {
        self.seat
            .and_then(|seat| self.endpoint.shared.region.slot(seat.index))
            .is_some_and(|slot| {
                let state = SlotState::load(slot);
                state.registered() && state.lossy()
            })
    }

    /// Adds `missed` to the slot's missed counter (statistics for `ringfile stat`).
    fn count_missed_in_slot(&self, missed: u64) {
        if let Some(slot) = self
            .seat
            .and_then(|seat| self.endpoint.shared.region.slot(seat.index))
        {
            let total = slot.missed.load(Ordering::Relaxed).wrapping_add(missed);
            slot.missed.store(total, Ordering::Relaxed);
        }
    }

    /// The name this consumer reads under (`default` for the unnamed one).
    #[must_use]
    pub fn name(&self) -> String {
        match self.seat {
            None => slots::DEFAULT_NAME.to_string(),
            Some(seat) => self
                .endpoint
                .shared
                .region
                .slot(seat.index)
                .map_or_else(String::new, slots::name_of),
        }
    }

    /// How [`recv`](Self::recv) and [`recv_batch`](Self::recv_batch) wait for data.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.endpoint.waiting.strategy = wait;
    }

    /// The current wait strategy.
    #[must_use]
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.endpoint.waiting.strategy
    }

    /// Data capacity of the ring.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity.bytes()
    }

    /// The largest message this ring carries: `capacity / 2 - 8` bytes.
    #[must_use]
    pub fn max_message_len(&self) -> usize {
        self.max_message as usize
    }

    /// The next message if one is there now, without waiting. `Ok(None)` when there is none
    /// to receive: nothing is there yet, or the end of the stream was reached (the marker is
    /// consumed; [`is_ended`](Self::is_ended) tells the two apart). An empty ring is not an
    /// error: `Err` is kept for failures — [`Error::StreamAborted`] (reported once, as the
    /// stream's end), [`Error::Corrupt`] — so a loop that drains what is there reads as it
    /// does with a channel:
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let (mut producer, mut consumer) = (ring.producer()?, ring.consumer()?);
    /// producer.send(b"a")?;
    /// producer.send(b"b")?;
    /// let mut got = 0;
    /// while let Some(msg) = consumer.try_recv()? {
    ///     got += msg.len();
    /// }
    /// assert_eq!(got, 2);
    /// assert!(!consumer.is_ended()); // nothing yet: the stream is open
    /// producer.close()?;
    /// assert!(consumer.try_recv()?.is_none());
    /// assert!(consumer.is_ended()); // the end of the stream
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::StreamAborted`], with the producer's reason, where the producer stopped on an
    /// error (reported once); [`Error::Corrupt`] for a record that breaks the format, naming
    /// its position. A dead producer is not an error here: [`recv`](Self::recv) reports it once
    /// the ring is empty.
    #[inline]
    pub fn try_recv(&mut self) -> Result<Option<Message<'_>>> {
        match self.peek(self.read_pos)? {
            None => Ok(None),
            Some(found) => self.deliver(found),
        }
    }

    /// Whether the last record this consumer received ended a stream: an end marker (or an
    /// abort, reported as [`Error::StreamAborted`]), with no message received since. It
    /// tells the two `Ok(None)`s of [`try_recv`](Self::try_recv) apart; a new producer's first
    /// message makes it false again.
    #[inline]
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The next message, waiting for it as the wait strategy says. `Ok(None)` at the end of
    /// the stream. [`Error::ProducerDied`] if the ring is empty and the producer died without
    /// closing the stream, [`Error::StreamAborted`] where the producer stopped on an error
    /// (each reported once; receiving again waits for a new producer).
    ///
    /// # Errors
    ///
    /// [`Error::ProducerDied`] once the ring is empty and its producer died without ending the
    /// stream; [`Error::StreamAborted`], with the producer's reason, where it stopped on an
    /// error (each reported once: receiving again waits for a new producer); [`Error::Corrupt`]
    /// for a record that breaks the format (a damaged ring or a misbehaving writer), naming its
    /// position.
    #[inline]
    pub fn recv(&mut self) -> Result<Option<Message<'_>>> {
        self.recv_until(None)
    }

    /// As [`recv`](Self::recv), waiting at most `timeout` ([`Error::Timeout`] then).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if nothing came within `timeout`; otherwise as [`recv`](Self::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Message<'_>>> {
        self.recv_until(deadline_after(timeout))
    }

    /// Receives the next message as a copy: waits as [`recv`](Self::recv) does, copies the
    /// message into `buf` (replacing its contents), releases it, and returns its length;
    /// `Ok(None)` at the end of the stream.
    ///
    /// This is the receive for peers you do not trust. A [`Message`] borrows the ring's
    /// memory, which every process that can write the ring file can write too: a
    /// misbehaving one can change a borrowed message's bytes while you read them (between
    /// validating and using them, say). A copy is yours: nothing can change it afterwards.
    /// The copy is made with atomic loads, so even a concurrent writer makes it at worst a
    /// mix of old and new bytes, never undefined behaviour. It costs one copy per message.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let mut producer = ring.producer()?;
    /// producer.send(b"untrusted")?;
    /// producer.close()?;
    /// let mut consumer = ring.consumer()?;
    /// let mut buf = Vec::new();
    /// while let Some(len) = consumer.recv_into(&mut buf)? {
    ///     assert_eq!(&buf[..len], b"untrusted");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let msg = self.recv_until(None)?;
        Ok(copied(msg, buf))
    }

    /// As [`recv_into`](Self::recv_into) without waiting: `Ok(None)` if there is nothing to
    /// receive now, as [`try_recv`](Self::try_recv) says.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv).
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let msg = self.try_recv()?;
        Ok(copied(msg, buf))
    }

    /// As [`recv_into`](Self::recv_into), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if nothing came within `timeout`; otherwise as [`recv`](Self::recv).
    pub fn recv_into_timeout(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<Option<usize>> {
        let msg = self.recv_until(deadline_after(timeout))?;
        Ok(copied(msg, buf))
    }

    #[inline(always)]
    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Option<Message<'_>>> {
        // A record the first polls find is read here, by the inlined `peek`, rather than
        // returned through the waiting code: on a round trip's path, between its publish
        // and its delivery (see `polls_find_record`).
        let found = loop {
            if let Some(found) = self.peek(self.read_pos)? {
                break found;
            }
            if !self.polls_find_record()? {
                break self.wait_for_record(deadline)?;
            }
        };
        self.deliver(found)
    }

    /// The messages there now, to be read one by one with [`RecvBatch::next`] and released
    /// together when the batch is dropped. May be empty.
    ///
    /// # Errors
    ///
    /// None today (the batch reads its records as [`RecvBatch::next`] is called, and reports
    /// there); the `Result` leaves room for a check before the batch.
    pub fn try_recv_batch(&mut self) -> Result<RecvBatch<'_>> {
        Ok(RecvBatch::new(self))
    }

    /// Waits until there is at least one message (or the end of the stream), then returns a
    /// batch as [`try_recv_batch`](Self::try_recv_batch) does. Errors as [`recv`](Self::recv).
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let mut producer = ring.producer()?;
    /// producer.send(b"x")?;
    /// producer.send(b"y")?;
    /// producer.close()?;
    /// let mut consumer = ring.consumer()?;
    /// let mut batch = consumer.recv_batch()?;
    /// assert_eq!(batch.next()?, Some(&b"x"[..]));
    /// assert_eq!(batch.next()?, Some(&b"y"[..]));
    /// assert_eq!(batch.next()?, None);
    /// assert!(batch.is_end());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ProducerDied`] once the ring is empty and its producer died without ending the
    /// stream; [`Error::StreamAborted`], with the producer's reason, where it stopped on an
    /// error (each reported once: receiving again waits for a new producer); [`Error::Corrupt`]
    /// for a record that breaks the format (a damaged ring or a misbehaving writer), naming its
    /// position.
    pub fn recv_batch(&mut self) -> Result<RecvBatch<'_>> {
        self.recv_batch_until(None)
    }

    /// As [`recv_batch`](Self::recv_batch), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if nothing came within `timeout`; otherwise as [`recv`](Self::recv).
    pub fn recv_batch_timeout(&mut self, timeout: Duration) -> Result<RecvBatch<'_>> {
        self.recv_batch_until(deadline_after(timeout))
    }

    fn recv_batch_until(&mut self, deadline: Option<Instant>) -> Result<RecvBatch<'_>> {
        while self.peek(self.read_pos)?.is_none() {
            if !self.polls_find_record()? {
                self.wait_for_record(deadline)?;
                break;
            }
        }
        Ok(RecvBatch::new(self))
    }

    /// Whether a producer holds the producer role right now.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the role lock cannot be tested (`fcntl` failed).
    pub fn producer_is_live(&self) -> Result<bool> {
        self.endpoint.is_live(Role::Producer)
    }

    /// Whether this consumer was inherited through `fork` (this process is a child of the one
    /// that took the role): such a consumer must not be used (see the crate's "Processes and
    /// `fork`"). A binding that checks before each call can refuse with
    /// [`Error::Inherited`] where the library would not check on its fast path.
    #[must_use]
    pub fn is_inherited(&self) -> bool {
        self.endpoint.role.inherited()
    }

    /// The pid recorded by the last process that took the producer role, live or not (`None`
    /// if no producer ever attached). The file says it, so a peer can write any value here:
    /// use it for messages, not to signal a process.
    #[must_use]
    pub fn producer_pid(&self) -> Option<u32> {
        roles::holder_pid(&self.endpoint.shared, Role::Producer)
    }

    /// For a receive that found the ring empty: polls it a little (`first_polls`), and says
    /// whether a record may be there now (the receive then looks again). A record about to
    /// be published (a peer mid-send: a round trip's reply) is found by these polls before
    /// a wait is set up, which takes the consumer's waiting state out and clones the ring's
    /// `Arc` (a locked increment, and a locked decrement after the record is found, on the
    /// path from its publish to its delivery). They load the published tail alone, and
    /// return when it moves past this consumer's copy: the record is read by the receive's
    /// own `peek`, in line, rather than returned through here. (A consumer the producer may
    /// lap, whose tail may run more than a capacity ahead, polls with its `peek`, which
    /// copies the record again when the receive looks.) The wait's own spinning polls the
    /// same way; a parking consumer goes straight to its wait (false).
    ///
    /// A true moves the copy of the tail on, so a receive that loops on this ends: each
    /// turn needs another publish, and the polls are bounded.
    #[cold]
    #[inline(never)]
    fn polls_find_record(&mut self) -> Result<bool> {
        if cfg!(loom) {
            return Ok(false);
        }
        let strategy = self.endpoint.waiting.strategy;
        let found = if self.lapped.is_some() {
            first_polls(strategy, || Ok(self.peek(self.read_pos)?.map(|_| ())))?
        } else {
            first_polls(strategy, || Ok(self.refresh_tail()?.then_some(())))?
        };
        Ok(found.is_some())
    }

    #[cold]
    #[inline(never)]
    fn wait_for_record(&mut self, deadline: Option<Instant>) -> Result<(Record, Position)> {
        self.with_waiting(|waiting, shared, consumer| {
            waiting.block(shared, deadline, |probe| match probe {
                Probe::Ready => consumer.peek(consumer.read_pos),
                Probe::Idle => consumer.check_producer().map(|()| None),
            })
        })
    }

    /// Calls `f` with this consumer's [`Waiting`] taken out of it, beside the ring and the
    /// rest of the consumer: a wait's re-check reads records, which needs the whole
    /// consumer. (The producer's re-check needs only its `Space`, a disjoint borrow.)
    fn with_waiting<R>(
        &mut self,
        f: impl FnOnce(&mut Waiting, &Arc<Shared>, &mut Consumer) -> R,
    ) -> R {
        let shared = Arc::clone(&self.endpoint.shared);
        let placeholder = self.endpoint.waiting.placeholder();
        let mut waiting = std::mem::replace(&mut self.endpoint.waiting, placeholder);
        let result = f(&mut waiting, &shared, self);
        self.endpoint.waiting = waiting;
        result
    }

    /// Turns a record found at the read position into what `recv` returns.
    #[inline(always)]
    pub(crate) fn deliver(
        &mut self,
        (record, next): (Record, Position),
    ) -> Result<Option<Message<'_>>> {
        match record {
            Record::Data {
                payload_offset,
                len,
            } => {
                self.ended = false;
                // SAFETY: the record `peek` just returned, published and not yet released: the
                // message holds it (it releases it when dropped, and borrows this consumer
                // mutably meanwhile, so nothing is peeked, released or copied over it before).
                let bytes = unsafe { self.payload(payload_offset, len) };
                // SAFETY: the slice lies in the ring's mapping, or in the lapped copy's buffer,
                // neither of which is this struct's own memory, and both outlive the borrow
                // of `self` the message takes (the mapping lives with `self.endpoint.shared`;
                // the buffer is only written by `peek`, which needs that borrow). Detached
                // from the borrow of `self` here so that the message can hold both; resolved
                // here rather than in `deref`, where the checks of `payload` ran again.
                let bytes: &[u8] = unsafe { &*std::ptr::from_ref(bytes) };
                Ok(Some(Message {
                    consumer: self,
                    bytes,
                    payload_offset,
                    next,
                }))
            }
            Record::End => {
                self.end_seen(next);
                self.release_or_keep_end(next);
                Ok(None)
            }
            Record::Abort {
                payload_offset,
                len,
            } => {
                let error = self.aborted(payload_offset, len, next);
                self.release_or_keep_end(next);
                Err(error)
            }
        }
    }

    /// After an end or abort record that ends at `next`: releases it with what was kept, or,
    /// under [`set_keep_ends`](Self::set_keep_ends), keeps it.
    #[cold]
    fn release_or_keep_end(&mut self, next: Position) {
        if self.keep_ends {
            self.keep(next, 0);
        } else {
            self.release(next, 0);
        }
    }

    /// The error for an abort record (whose reason is at `payload_offset`), which ends the
    /// producer's stream as an end marker does.
    #[cold]
    fn aborted(&mut self, payload_offset: Offset, len: u64, next: Position) -> Error {
        self.end_seen(next);
        let mut reason = Vec::new();
        match &self.lapped {
            None => self
                .endpoint
                .shared
                .region
                .copy_out(payload_offset, len, &mut reason),
            Some(lapped) => reason.extend_from_slice(lapped.payload(len)),
        }
        Error::StreamAborted {
            path: self.endpoint.shared.name.clone(),
            reason: String::from_utf8_lossy(&reason).into_owned(),
        }
    }

    /// The first record at or after `pos` (skipping padding), and the position after it;
    /// `None` if nothing is published there yet.
    ///
    /// The common case — a data record below the cached tail that fits — is a few inlined
    /// compares; refreshing the tail, padding, other records and errors are out of line
    /// ([`peek_slow`](Self::peek_slow)). Inlined, a `recv` returns its record in registers
    /// rather than through the stack, and per-message receiving (one `recv` and one release
    /// per message) keeps few enough instructions per message for the processor to run
    /// ahead to the next record's line while this one is handled. A record whose header
    /// repeats the last data record's is decoded by one compare ([`LastData`]), so that
    /// finding the next record does not wait for this one's header.
    #[inline(always)]
    pub(crate) fn peek(&mut self, pos: Position) -> Result<Option<(Record, Position)>> {
        if self.lapped.is_some() {
            return self.peek_lapped(pos);
        }
        if pos != self.cached_tail {
            let word = self.endpoint.shared.region.read_word(pos);
            if let Some(found) = self
                .last_data
                .decode(word, pos, self.cached_tail, self.capacity)
            {
                return Ok(Some(found));
            }
            let found = decode_data(word, pos, self.cached_tail, self.capacity, self.max_message);
            if let Some(found) = found {
                self.last_data.remember(word, pos, found);
                return Ok(Some(found));
            }
        }
        self.peek_slow(pos)
    }

    /// [`peek`](Self::peek)'s general case.
    #[cold]
    #[inline(never)]
    fn peek_slow(&mut self, mut pos: Position) -> Result<Option<(Record, Position)>> {
        loop {
            // Possibly empty on the cached tail: look at the real one.
            if pos == self.cached_tail && !self.refresh_tail()? {
                return Ok(None);
            }
            let word = self.endpoint.shared.region.read_word(pos);
            match decode(word, pos, self.cached_tail, self.capacity, self.max_message) {
                Ok(Decoded::Record(record, next)) => return Ok(Some((record, next))),
                Ok(Decoded::Padding(next)) => pos = next,
                Err(reason) => return Err(self.corrupt(pos, reason)),
            }
        }
    }

    /// Loads the producer's published tail into this consumer's copy of it, validated (a
    /// multiple of 8, ahead of the copy by at most a capacity); whether it moved (false: the
    /// ring holds nothing past the copy). Not for a consumer the producer may lap.
    #[inline]
    fn refresh_tail(&mut self) -> Result<bool> {
        let seen = self.cached_tail;
        let tail = self.endpoint.shared.readable_tail();
        if tail == seen.get() {
            return Ok(false);
        }
        let tail = Position::new(tail)
            .filter(|&tail| tail.is_aligned() && self.capacity.spans(seen, tail))
            .ok_or_else(|| self.corrupt(seen, "published tail moved backwards or too far"))?;
        self.cached_tail = tail;
        self.endpoint
            .shared
            .consumer_seen_tail
            .store(tail.get(), std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    /// [`peek`](Self::peek) for a consumer the producer may lap (`lapping`): copies the record
    /// at `from` (after any padding), then proves the copy whole; if the producer overtook
    /// it, counts what was missed and goes on from the oldest message still whole.
    #[cold]
    #[inline(never)]
    fn peek_lapped(&mut self, mut from: Position) -> Result<Option<(Record, Position)>> {
        let shared: &Shared = &self.endpoint.shared;
        let region = &shared.region;
        let control = region.control();
        let lapped = self.lapped.as_mut().expect("a lapped consumer");
        // A look from before the last resynchronisation (a receive or a batch that found
        // nothing after it): go on from where it went on.
        from = from.max(lapped.from);
        let mut index = lapped.index_at(from);
        loop {
            let mut pos = from;
            // What the look found: a record (and where), nothing yet, or a reason the bytes
            // do not decode (damage, or a lap).
            let found: std::result::Result<Option<(Record, Position, Position)>, &'static str> = loop {
                if pos == self.cached_tail {
                    let tail = shared.readable_tail();
                    if tail == pos.get() {
                        break Ok(None);
                    }
                    match Position::new(tail).filter(|t| t.is_aligned() && *t >= pos) {
                        None => break Err("published tail moved backwards"),
                        // Published more than a capacity past us: lapped.
                        Some(tail) if !self.capacity.spans(pos, tail) => {
                            break Err("published tail too far")
                        }
                        Some(tail) => self.cached_tail = tail,
                    }
                }
                let word = region.read_word(pos);
                match decode(word, pos, self.cached_tail, self.capacity, self.max_message) {
                    Ok(Decoded::Padding(next)) => pos = next,
                    Ok(Decoded::Record(record, next)) => {
                        if let Record::Data {
                            payload_offset,
                            len,
                        }
                        | Record::Abort {
                            payload_offset,
                            len,
                        } = record
                        {
                            region.copy_words(payload_offset, len, &mut lapped.buf);
                        }
                        break Ok(Some((record, pos, next)));
                    }
                    Err(reason) => break Err(reason),
                }
            };
            if lapping::whole_since(control, from) {
                return match found {
                    Ok(None) => Ok(None),
                    Ok(Some((record, at, next))) => {
                        let data = u64::from(matches!(record, Record::Data { .. }));
                        (lapped.from, lapped.at, lapped.next) = (from, at, next);
                        (lapped.index, lapped.next_index) = (index, index.wrapping_add(data));
                        Ok(Some((record, next)))
                    }
                    // Nothing overwrote it, yet it does not decode: damage.
                    Err(reason) => Err(Error::Corrupt {
                        path: shared.name.clone(),
                        position: pos.get(),
                        reason,
                    }),
                };
            }
            // Overtaken: whatever was copied may be torn. Go on from the oldest whole message.
            let anchor = lapping::oldest(region).ok_or_else(|| Error::Corrupt {
                path: shared.name.clone(),
                position: pos.get(),
                reason: "published tail is not a position",
            })?;
            // The gate passed `from`, so a true anchor lies past it (the gate only grows and
            // never passes the tail); one that does not is a gate forged past the tail, and
            // going on from it would find the same forever.
            if anchor.pos <= from {
                return Err(Error::Corrupt {
                    path: shared.name.clone(),
                    position: from.get(),
                    reason: "released head is past the published tail",
                });
            }
            let missed = anchor.index.saturating_sub(index);
            self.missed = self.missed.wrapping_add(missed);
            if let Some(slot) = self.seat.and_then(|seat| region.slot(seat.index)) {
                let total = slot.missed.load(Ordering::Relaxed).wrapping_add(missed);
                slot.missed.store(total, Ordering::Relaxed);
            }
            **lapped = Lapped {
                buf: std::mem::take(&mut lapped.buf),
                ..Lapped::new(anchor.pos, anchor.index)
            };
            (from, index) = (anchor.pos, anchor.index);
            self.cached_tail = anchor.pos;
        }
    }

    /// The payload of the record this consumer found last at `offset`, `len` bytes: in
    /// place, or its copy for a consumer the producer may lap.
    ///
    /// # Safety
    /// The record must be one [`peek`](Self::peek) returned last, not yet released: under the
    /// ring protocol the producer then does not write it while the slice lives.
    #[inline(always)]
    unsafe fn payload(&self, offset: Offset, len: u64) -> &[u8] {
        match &self.lapped {
            // SAFETY: the caller's contract.
            None => unsafe { self.endpoint.shared.region.bytes(offset, len) },
            Some(lapped) => lapped.payload(len),
        }
    }

    fn corrupt(&self, position: Position, reason: &'static str) -> Error {
        Error::Corrupt {
            path: self.endpoint.shared.name.clone(),
            position: position.get(),
            reason,
        }
    }

    /// Gives the bytes below `pos`, which hold `messages` more messages (after those kept),
    /// back to the producer.
    ///
    /// What is not the one consumer of a ring without slots is out of line: this runs once
    /// per message dropped. Never inlined: inlined, it makes `Message`'s drop glue too large
    /// for LLVM to inline into the caller's loop, and the glue becomes a call that takes the
    /// message through memory (more instructions than this call, which needs no frame).
    #[inline(never)]
    fn release(&mut self, pos: Position, messages: u64) {
        if self.endpoint.role.inherited() {
            // A message dropped in a forked child: the ring is the parent's to release.
            return;
        }
        if !self.plain {
            self.release_other(pos, messages);
            return;
        }
        self.read_pos = pos;
        // A branch rather than a store per message: messages are rarely kept.
        let kept = self.kept;
        if kept != 0 {
            self.kept = 0;
        }
        self.store_own_head(pos, messages + kept);
    }

    /// [`release`](Self::release) for a consumer of a ring with slots, or one the producer
    /// may lap.
    #[cold]
    #[inline(never)]
    fn release_other(&mut self, pos: Position, messages: u64) {
        self.read_pos = pos;
        if self.lapped.is_some() {
            self.release_lapped(pos);
            return;
        }
        let messages = messages + std::mem::take(&mut self.kept);
        self.store_head(pos, messages);
    }

    /// Marks what was read up to `pos` (`messages` more messages) as read but not released:
    /// see [`Message::keep`]. A consumer the producer may lap keeps nothing (the producer
    /// does not wait for its space, so keeping would not protect it): it releases at once.
    fn keep(&mut self, pos: Position, messages: u64) {
        if self.lapped.is_some() {
            self.release(pos, messages);
            return;
        }
        self.read_pos = pos;
        self.kept += messages;
    }

    /// Where this consumer has read to, kept messages included: give it to
    /// [`release_to`](Self::release_to) once what was read before it is handled.
    #[must_use]
    pub fn read_mark(&self) -> ReadMark {
        ReadMark {
            pos: self.read_pos,
            read: self.endpoint.tally.messages + self.kept,
        }
    }

    /// Releases the messages kept ([`Message::keep`], [`RecvBatch::keep`]) that lie before
    /// `mark`, an earlier [`read_mark`](Self::read_mark) of this consumer; those after it
    /// stay kept. A mark at or before what is already released does nothing. For a reader
    /// that hands messages on and learns later, in order, which were delivered — a network
    /// bridge releasing what its peer acknowledged:
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let (mut producer, mut consumer) = (ring.producer()?, ring.consumer()?);
    /// for m in [b"a", b"b", b"c"] {
    ///     producer.send(m)?;
    /// }
    /// consumer.recv()?.expect("a").keep();
    /// let after_a = consumer.read_mark();
    /// consumer.recv()?.expect("b").keep(); // read on while "a" is in flight
    /// consumer.release_to(after_a); // "a" delivered: its space goes back, "b" stays kept
    /// drop(consumer); // stopped before "b" was delivered: the next consumer gets it again
    /// let mut consumer = ring.consumer()?;
    /// assert_eq!(&*consumer.recv()?.expect("b again"), b"b");
    /// # Ok(()) }
    /// ```
    pub fn release_to(&mut self, mark: ReadMark) {
        if self.endpoint.role.inherited() || mark.pos <= self.released || mark.pos > self.read_pos {
            return;
        }
        let messages = mark.read.saturating_sub(self.endpoint.tally.messages);
        self.kept = self.kept.saturating_sub(messages);
        self.store_head(mark.pos, messages);
    }

    /// Whether the end of a stream (an end or abort record) is kept, as [`Message::keep`]
    /// keeps a message, rather than released when it is received. Off by default: receiving
    /// the end releases it and everything kept before it. On, for a reader that hands the end
    /// on as it hands on messages (a network bridge): the end stays in the ring until
    /// [`release_to`](Self::release_to) passes it, so a reader killed before the end was
    /// delivered leaves it, and what was kept before it, to the next consumer of its name.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let mut producer = ring.producer()?;
    /// producer.send(b"last")?;
    /// producer.close()?;
    /// let mut consumer = ring.consumer()?;
    /// consumer.set_keep_ends(true);
    /// consumer.recv()?.expect("last").keep();
    /// assert!(consumer.recv()?.is_none()); // the end: received, kept
    /// drop(consumer); // stopped before it handed the end on
    /// let mut consumer = ring.consumer()?;
    /// assert_eq!(&*consumer.recv()?.expect("again"), b"last");
    /// assert!(consumer.recv()?.is_none()); // released this time (keep_ends is off)
    /// # Ok(()) }
    /// ```
    pub fn set_keep_ends(&mut self, keep: bool) {
        self.keep_ends = keep;
    }

    /// Messages read and kept, not yet released.
    #[must_use]
    pub fn kept(&self) -> u64 {
        self.kept
    }

    /// Stores the head `pos` (`messages` more released) and wakes a producer waiting for room.
    #[inline(always)]
    fn store_head(&mut self, pos: Position, messages: u64) {
        match self.seat {
            None => self.store_own_head(pos, messages),
            Some(seat) => {
                self.count_released(pos, messages);
                self.store_slot_head(pos, seat.index);
            }
        }
    }

    /// [`store_head`](Self::store_head) for the one consumer of a ring without slots: the
    /// ring's own head and counter.
    #[inline(always)]
    fn store_own_head(&mut self, pos: Position, messages: u64) {
        self.count_released(pos, messages);
        let control = self.endpoint.shared.region.control();
        self.store_position(
            pos,
            0,
            &control.released_head.0,
            &control.released_messages.0,
        );
    }

    /// Notes `pos` as released, with `messages` more messages.
    #[inline(always)]
    fn count_released(&mut self, pos: Position, messages: u64) {
        self.released = pos;
        // Messages only: the payload bytes released are what was published less what waits
        // (FORMAT.md, "Message counters"), so receiving adds no count per message.
        self.endpoint.tally.add(messages, 0);
    }

    /// [`store_head`](Self::store_head) for a consumer of a ring with slots: its slot's words.
    #[inline(never)]
    fn store_slot_head(&self, pos: Position, index: u32) {
        let control = self.endpoint.shared.region.control();
        let (head, counter) = match self.endpoint.shared.region.slot(index) {
            Some(slot) => (&slot.released, &slot.released_messages),
            None => (&control.released_head.0, &control.released_messages.0),
        };
        self.store_position(pos, index, head, counter);
    }

    /// Stores `pos` in this process's local head of slot `local`, the message count in
    /// `counter` and `pos` in `head`, in that order, and wakes a producer waiting for room.
    #[inline(always)]
    fn store_position(&self, pos: Position, local: u32, head: &AtomicU64, counter: &AtomicU64) {
        let shared = &self.endpoint.shared;
        let control = shared.region.control();
        // Before the shared head: a producer of this process that sees the shared head also
        // sees a local head at least as new.
        shared.set_local_head(local, pos.get());
        // Before the head: statistics, which a reader that Acquire-loads the head sees at
        // least this new.
        counter.store(self.endpoint.tally.messages, Ordering::Relaxed);
        store_and_wake(
            &shared.region,
            &control.producer_wait,
            &control.roles.producer_pid,
            // Release: our reads of every record below `pos` happen before the producer,
            // which Acquire-loads the head, overwrites them.
            move || head.store(pos.get(), Ordering::Release),
        );
    }

    /// [`release`](Self::release) for a consumer the producer may lap: its slot's position and
    /// the index of the message there.
    #[cold]
    #[inline(never)]
    fn release_lapped(&mut self, pos: Position) {
        let Some(index) = self.lapped.as_ref().map(|lapped| lapped.index_at(pos)) else {
            return;
        };
        self.released = pos;
        self.endpoint.tally.messages = index;
        let shared = &self.endpoint.shared;
        let Some(slot) = self.seat.and_then(|seat| shared.region.slot(seat.index)) else {
            return;
        };
        slot.released_messages.store(index, Ordering::Relaxed);
        let control = shared.region.control();
        // Release, and the producer woken: until it is turned lossy, a consumer under a
        // `max_lag` policy holds the producer back as a lossless one does.
        store_and_wake(
            &shared.region,
            &control.producer_wait,
            &control.roles.producer_pid,
            move || slot.released.store(pos.get(), Ordering::Release),
        );
    }

    /// Called on an END or ABORT record that ends at `next`. If it is the current
    /// producer's own (it attached before the record), that producer ended its stream
    /// properly: never report it as died, even if it dies before clearing its attached bit.
    /// If it is an earlier producer's, a producer that attached since is judged on its own.
    fn end_seen(&mut self, next: Position) {
        self.ended = true;
        self.watch
            .end_seen(&self.endpoint.shared.region.control().roles, next);
    }

    /// Called while waiting on an empty ring: fails with [`Error::ProducerDied`] once per
    /// producer that died (its role lock is free) without closing its stream.
    pub(crate) fn check_producer(&mut self) -> Result<()> {
        // A file truncated under us would fault at the next access to a lost page: say so
        // now, while nothing is being read.
        self.endpoint.shared.check_len()?;
        let shared = Arc::clone(&self.endpoint.shared);
        let roles = &shared.region.control().roles;
        let Some(suspect) = self.watch.suspect(roles) else {
            return Ok(());
        };
        if self.endpoint.is_live(Role::Producer)? {
            return Ok(());
        }
        // The lock is free. Report only once everything published has been received, and
        // only if no new producer attached meanwhile.
        if self.peek(self.read_pos)?.is_some() || !self.watch.confirm_death(roles, suspect) {
            return Ok(());
        }
        Err(Error::ProducerDied {
            path: self.endpoint.shared.name.clone(),
            pid: roles::holder_pid(&self.endpoint.shared, Role::Producer),
        })
    }
}

/// The async receives (feature `async`): see the [`async_api`](crate::side::async_api) module.
#[cfg(all(feature = "async", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl Consumer {
    /// Waits, as a task, for a message: the async form of [`recv`](Self::recv), with the
    /// same results — `None` at the end of the stream, [`Error::ProducerDied`] once everything
    /// a producer that died had published was received, [`Error::StreamAborted`].
    ///
    /// Cancellation-safe: a future dropped before it completes has received nothing, and the
    /// next receive gets the same message.
    ///
    /// [`Error::ProducerDied`]: crate::Error::ProducerDied
    /// [`Error::StreamAborted`]: crate::Error::StreamAborted
    ///
    /// # Errors
    ///
    /// As [`recv`](crate::Consumer::recv).
    pub async fn recv_async(&mut self) -> Result<Option<Message<'_>>> {
        let found = std::future::poll_fn(|cx| self.poll_record(cx)).await?;
        self.deliver(found)
    }

    /// Waits, as a task, for at least one message (or the end of the stream), then returns
    /// the batch of those there: the async form of [`recv_batch`](Self::recv_batch).
    ///
    /// Cancellation-safe: a future dropped before it completes has received nothing.
    ///
    /// # Errors
    ///
    /// As [`recv`](crate::Consumer::recv).
    pub async fn recv_batch_async(&mut self) -> Result<RecvBatch<'_>> {
        std::future::poll_fn(|cx| self.poll_record(cx)).await?;
        Ok(RecvBatch::new(self))
    }

    /// The messages as a [`Stream`](futures_core::Stream) of owned copies, for convenience
    /// (combinators, `tokio_stream::StreamExt`): each message is copied out of the ring (with
    /// atomic loads, as [`Message::copy_into`](crate::Message::copy_into)) and released at
    /// once. [`recv_async`](Self::recv_async) reads in place, without copying. The stream
    /// ends at the end of the stream, and after yielding an error.
    pub fn stream(&mut self) -> MessageStream<&mut Consumer> {
        MessageStream::new(self)
    }

    /// As [`stream`](Self::stream), owning the consumer: a `'static` stream to hand to a
    /// spawned task. [`MessageStream::into_inner`] gives
    /// the consumer back.
    pub fn into_stream(self) -> MessageStream<Consumer> {
        MessageStream::new(self)
    }

    /// The first record at the read position, once there is one; waits as a task.
    pub(crate) fn poll_record(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(Record, Position)>> {
        let mut woken = false;
        let mut polled = false;
        loop {
            if let Some(found) = self.peek(self.read_pos)? {
                self.endpoint.waiting.found();
                return std::task::Poll::Ready(Ok(found));
            }
            if !polled {
                // As a blocking receive does (`polls_find_record`): a record about to be
                // published is found by a few polls (about a microsecond of the executor's
                // time) rather than by a sleep announced, the watcher thread woken and the
                // task woken by it in turn.
                polled = true;
                if self.polls_find_record()? {
                    continue;
                }
            }
            if woken {
                // Woken, and still nothing to read: the idle tick (or a spurious wake-up),
                // when a blocking wait checks that the producer lives; so does this one.
                self.check_producer()?;
            }
            let pos = self.read_pos;
            let result = self.with_waiting(|waiting, shared, consumer| {
                waiting.poll(cx, shared, || consumer.peek(pos))
            });
            match std::task::ready!(result)? {
                Some(found) => return std::task::Poll::Ready(Ok(found)),
                None => woken = true,
            }
        }
    }
}

#[cfg(all(feature = "async", not(loom)))]
/// The messages of a consumer as a [`Stream`](futures_core::Stream) of owned copies: see
/// [`Consumer::stream`]. `C` is `&mut Consumer` or `Consumer`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ringfile::Error> {
/// use futures_core::Stream;
/// use std::pin::Pin;
/// let ring = ringfile::Ring::memfd(4096)?;
/// let mut producer = ring.producer()?;
/// producer.send(b"one")?;
/// producer.send(b"two")?;
/// producer.close()?;
/// let mut stream = ring.consumer()?.into_stream();
/// let mut got = Vec::new();
/// // `tokio_stream::StreamExt::next` does this.
/// while let Some(msg) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
///     got.push(msg?);
/// }
/// assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
/// # Ok(()) }
/// ```
#[must_use = "a stream does nothing unless polled"]
pub struct MessageStream<C> {
    consumer: C,
    done: bool,
}

#[cfg(all(feature = "async", not(loom)))]
impl<C: std::borrow::BorrowMut<Consumer>> std::fmt::Debug for MessageStream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("consumer", self.consumer.borrow())
            .field("done", &self.done)
            .finish()
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl<C: std::borrow::BorrowMut<Consumer>> MessageStream<C> {
    pub(crate) fn new(consumer: C) -> Self {
        MessageStream {
            consumer,
            done: false,
        }
    }

    /// The consumer back.
    pub fn into_inner(self) -> C {
        self.consumer
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl<C: std::borrow::BorrowMut<Consumer> + Unpin> futures_core::Stream for MessageStream<C> {
    type Item = Result<Vec<u8>>;

    /// Cancellation-safe as [`Consumer::recv_async`]: a message is released only when it is
    /// returned.
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return std::task::Poll::Ready(None);
        }
        let consumer = this.consumer.borrow_mut();
        let item = match std::task::ready!(consumer.poll_record(cx)) {
            Ok(found) => match consumer.deliver(found) {
                Ok(Some(msg)) => {
                    let mut copy = Vec::new();
                    msg.copy_into(&mut copy);
                    Some(Ok(copy))
                }
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            },
            Err(e) => Some(Err(e)),
        };
        this.done = !matches!(item, Some(Ok(_)));
        std::task::Poll::Ready(item)
    }
}

#[cfg(all(feature = "async", not(loom)))]
impl<C: std::borrow::BorrowMut<Consumer>> futures_core::FusedStream for MessageStream<C>
where
    Self: futures_core::Stream,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if !self.endpoint.role.inherited() {
            let shared = &self.endpoint.shared;
            shared.set_local_head(
                self.seat.map_or(0, |s| s.index),
                crate::store::shared::NO_LOCAL_HEAD,
            );
            if let Some(seat) = self.seat {
                slots::leave(&shared.region, seat.index, seat.state);
            }
        }
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("ring", &self.endpoint.shared.name)
            .field("read_pos", &self.read_pos)
            .finish()
    }
}

/// One received message, borrowed from the ring. Dereferences to its bytes; dropping it
/// releases its space to the producer.
///
/// A held `Message` blocks this consumer: it borrows the [`Consumer`] mutably (messages are
/// released in order, so the next one cannot be received while this one is unreleased),
/// and its space — and everything after it — stays unavailable to the producer, which waits
/// once the ring is full. Drop it (or copy it out) as soon as it is handled; to handle
/// several messages at once, read a [`RecvBatch`].
///
/// The bytes are the ring's own memory, shared with every process that maps the file: a
/// peer that ignores the protocol can change them under the borrow. Copy them
/// ([`copy_into`](Self::copy_into), [`Consumer::recv_into`]) when the peer is not trusted.
#[must_use = "dropping a Message releases it unread"]
pub struct Message<'a> {
    consumer: &'a mut Consumer,
    /// The payload, in place (see `Consumer::deliver`).
    bytes: &'a [u8],
    payload_offset: Offset,
    next: Position,
}

impl Deref for Message<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl Message<'_> {
    /// The message as one `T`, in place (no copy). [`Error::WrongLength`] if its length is
    /// not `size_of::<T>()`. Payloads are 8-byte aligned; a type that needs more does not
    /// compile here (use [`read_value`](Self::read_value)). See [`typed`](crate::side::typed).
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C)]
    /// struct Tick { price: f64, qty: u32, side: u32 }
    ///
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let (mut producer, mut consumer) = (ring.producer()?, ring.consumer()?);
    /// producer.send_value(&Tick { price: 101.5, qty: 3, side: 1 })?;
    /// let msg = consumer.recv()?.expect("sent");
    /// let tick: &Tick = msg.value()?;
    /// assert_eq!(tick.qty, 3);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] if the message's length is not `size_of::<T>()`, naming this
    /// method. (A type that needs more than 8-byte alignment does not compile: see
    /// [`typed`](crate::side::typed).)
    pub fn value<T: bytemuck::AnyBitPattern>(&self) -> Result<&T> {
        crate::side::typed::value_for("Message::value", self)
    }

    /// The message as a slice of `T`, in place (no copy). [`Error::WrongLength`] unless its
    /// length is a whole number of `T`.
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] if the message's length is not a multiple of `size_of::<T>()`,
    /// naming this method. A zero-sized `T` is refused the same way. (A type that needs more
    /// than 8-byte alignment does not compile: see [`typed`](crate::side::typed).)
    pub fn slice<T: bytemuck::AnyBitPattern>(&self) -> Result<&[T]> {
        crate::side::typed::slice_for("Message::slice", self)
    }

    /// A copy of the message as a `T`, for a type of any alignment. [`Error::WrongLength`] if
    /// its length is not `size_of::<T>()`.
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] if the message's length is not `size_of::<T>()`, naming this
    /// method.
    pub fn read_value<T: bytemuck::AnyBitPattern>(&self) -> Result<T> {
        crate::side::typed::read_for("Message::read_value", self)
    }

    /// Copies the message into `buf` (replacing its contents) with atomic loads: the copy
    /// is this process's own, which no other process can change afterwards. For payloads
    /// from peers you do not trust; see [`Consumer::recv_into`].
    pub fn copy_into(&self, buf: &mut Vec<u8>) {
        if self.consumer.lapped.is_none() {
            self.consumer.endpoint.shared.region.copy_out(
                self.payload_offset,
                self.bytes.len() as u64,
                buf,
            );
        } else {
            // The consumer's own copy: no other process can change it.
            buf.clear();
            buf.extend_from_slice(self.bytes);
        }
    }

    /// Gives the message back unreleased: the next `recv` (of this consumer, or of the next
    /// one if this process stops) receives it again. For a message that could not be
    /// handled, such as one whose output failed.
    pub fn unread(self) {
        // Forgetting skips the release in `drop`; a `Message` owns nothing else.
        std::mem::forget(self);
    }

    /// Ends the borrow with the message read but its space not yet released: the next
    /// receive goes on after it, and it is released with the next release of this consumer
    /// (a later message's, the end of the stream's, or [`Consumer::release_to`]). A
    /// consumer that stops before then leaves it to the next consumer of its name, which
    /// receives it again: for a reader that copies a message out and is not done with it
    /// until it asks for the next one. (A consumer the producer may lap — lossy, or under a
    /// `max_lag` policy — releases it at once: the producer does not wait for its space.)
    ///
    /// Kept messages hold their space: a consumer that keeps what fills the ring and then
    /// waits for more waits for good, as the producer waits for that space. Release
    /// ([`Consumer::release_to`] with [`Consumer::read_mark`]) before a receive that may wait.
    pub fn keep(self) {
        // Not dropped: the release in `drop` does not happen.
        let mut this = std::mem::ManuallyDrop::new(self);
        let next = this.next;
        this.consumer.keep(next, 1);
    }
}

impl Drop for Message<'_> {
    #[inline]
    fn drop(&mut self) {
        self.consumer.release(self.next, 1);
    }
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Messages read together and released together, when the batch is dropped. Read them with
/// [`next`](Self::next) in a `while let` loop, or with [`try_for_each`](Self::try_for_each).
/// A batch reads what the producer publishes while it runs, too, up to what fits in the ring.
///
/// It is not an [`Iterator`]: each message borrows the batch (a message stays valid until
/// the batch moves on, because [`release`](Self::release) may hand its space back to the
/// producer), which `Iterator::next` cannot express. While a batch is held, its messages'
/// space is not released, so keep batches short when the producer is waiting for room.
///
/// ```
/// # fn main() -> Result<(), ringfile::Error> {
/// let ring = ringfile::Ring::memfd(4096)?;
/// let (mut producer, mut consumer) = (ring.producer()?, ring.consumer()?);
/// for word in ["one", "two", "three"] {
///     producer.send(word.as_bytes())?;
/// }
/// let mut batch = consumer.recv_batch()?;    // waits for at least one message
/// let mut total = 0;
/// while let Some(msg) = batch.next()? {
///     total += msg.len();
/// }
/// drop(batch);                                // releases all three at once
/// assert_eq!(total, 11);
/// # Ok(()) }
/// ```
#[must_use = "dropping a RecvBatch releases its messages unread"]
pub struct RecvBatch<'a> {
    consumer: &'a mut Consumer,
    pos: Position,
    end: bool,
    count: usize,
    /// How many of the `count` messages were already released.
    released: usize,
}

impl std::fmt::Debug for RecvBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("consumer", &*self.consumer)
            .field("position", &self.pos)
            .field("received", &self.count)
            .field("end", &self.end)
            .finish()
    }
}

impl<'a> RecvBatch<'a> {
    pub(crate) fn new(consumer: &'a mut Consumer) -> RecvBatch<'a> {
        let pos = consumer.read_pos;
        RecvBatch {
            consumer,
            pos,
            end: false,
            count: 0,
            released: 0,
        }
    }

    /// The next message of the batch, or `None` when no more are published (or the end of
    /// the stream was reached: see [`is_end`](Self::is_end)). The message stays valid until
    /// the next call; its space is released when the batch is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::StreamAborted`] once, at the producer's abort record (which ends the batch);
    /// [`Error::Corrupt`] for a record that breaks the format, naming its position.
    // Always inlined: a call per message, its result returned through memory, doubled the
    // batch's receive cost where the compiler chose not to (the cost table, 8 B: 1.8 → 4.0
    // ns per message).
    #[inline(always)]
    #[allow(clippy::should_implement_trait)] // lending: each message borrows the batch
    pub fn next(&mut self) -> Result<Option<&[u8]>> {
        if self.end {
            return Ok(None);
        }
        match self.consumer.peek(self.pos)? {
            None => Ok(None),
            Some((
                Record::Data {
                    payload_offset,
                    len,
                },
                next,
            )) => {
                self.pos = next;
                self.count += 1;
                // SAFETY: the record is the one `peek` just returned, published, and the batch
                // releases it only when it is dropped (after this borrow of the batch ends).
                Ok(Some(unsafe { self.consumer.payload(payload_offset, len) }))
            }
            Some((Record::End, next)) => {
                self.pos = next;
                self.end = true;
                self.consumer.end_seen(next);
                Ok(None)
            }
            Some((
                Record::Abort {
                    payload_offset,
                    len,
                },
                next,
            )) => {
                // Consumed with the batch, like an end marker: releasing the batch releases
                // it, and the error is reported once.
                self.pos = next;
                self.end = true;
                Err(self.consumer.aborted(payload_offset, len, next))
            }
        }
    }

    /// Calls `f` with each message of the batch in turn, until no more are published or the
    /// stream ends; returns how many `f` accepted. If `f` fails, the batch stops there and
    /// returns `f`'s error: the message it failed on is given back (not consumed), so
    /// releasing the batch releases only the messages before it. An error of the ring
    /// itself ([`Error::Corrupt`], [`Error::StreamAborted`]) is returned as `E::from`.
    ///
    /// ```
    /// # fn main() -> Result<(), ringfile::Error> {
    /// let ring = ringfile::Ring::memfd(4096)?;
    /// let (mut producer, mut consumer) = (ring.producer()?, ring.consumer()?);
    /// for n in 0u32..5 {
    ///     producer.send_value(&n)?;
    /// }
    /// let mut sum = 0;
    /// let mut batch = consumer.recv_batch()?;
    /// let handled = batch.try_for_each(|msg| -> Result<(), ringfile::Error> {
    ///     sum += ringfile::typed::value::<u32>(msg)?;
    ///     Ok(())
    /// })?;
    /// assert_eq!((handled, sum), (5, 10));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `f`'s error, from the message it failed on (given back); the ring's errors of
    /// [`next`](Self::next), as `E::from`.
    pub fn try_for_each<E: From<Error>>(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut handled = 0;
        loop {
            let count = self.count;
            let Some(msg) = self.next()? else {
                return Ok(handled);
            };
            let len = msg.len() as u64;
            if let Err(e) = f(msg) {
                // Only a data record was read (an end or abort yields no message), so
                // stepping back to its start un-reads exactly that message (its start, not
                // where the look began: a lapped consumer may have moved on from there).
                self.pos = Position::new(self.pos.get() - record_size(len)).unwrap_or(self.pos);
                self.count = count;
                return Err(e);
            }
            handled += 1;
        }
    }

    /// Releases the messages read so far and goes on with the batch: for a long batch
    /// whose messages were handled (written out, say) before the end.
    #[inline]
    pub fn release(&mut self) {
        if self.pos != self.consumer.read_pos {
            // Once per release, not per message: what was consumed ends with a message
            // (the consumer is past any earlier end) unless the batch reached an end.
            self.consumer.ended = self.end;
            let messages = (self.count - self.released) as u64;
            self.released = self.count;
            self.consumer.release(self.pos, messages);
        }
    }

    /// Ends the batch without releasing anything: every message it yielded is received
    /// again by the next `recv` (of this consumer, or of the next one if this process stops).
    /// Messages already released with [`release`](Self::release) stay released. For a batch
    /// whose messages could not be handled — the output failed, say — so that none is lost.
    pub fn unread(self) {
        // Forgetting skips the release in `drop`; a `RecvBatch` owns nothing else.
        std::mem::forget(self);
    }

    /// Ends the batch with what it read kept: read, not released (see [`Message::keep`]).
    pub fn keep(self) {
        // Not dropped: the release in `drop` does not happen.
        let mut this = std::mem::ManuallyDrop::new(self);
        if this.pos != this.consumer.read_pos {
            this.consumer.ended = this.end;
            let messages = (this.count - this.released) as u64;
            let pos = this.pos;
            this.consumer.keep(pos, messages);
        }
    }

    /// Whether the batch reached the end of the stream (the end marker, or the abort record
    /// that [`next`](Self::next) reported), which it consumes.
    #[inline]
    #[must_use]
    pub fn is_end(&self) -> bool {
        self.end
    }

    /// How many messages the batch has yielded so far.
    #[inline]
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Drop for RecvBatch<'_> {
    #[inline]
    fn drop(&mut self) {
        self.release();
    }
}

/// Where a consumer had read to (kept messages included), from [`Consumer::read_mark`]; given
/// to [`Consumer::release_to`] once what was read before it is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadMark {
    pos: Position,
    /// Messages read by then, counted as the consumer's released-message counter counts.
    read: u64,
}

impl ReadMark {
    /// The stream position of the mark: the byte position in the ring's stream just after
    /// the last record read. Positions only grow over a ring file's life, so a position
    /// names one place in its stream for good.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.pos.get()
    }
}

/// What the copying receives return: the message copied into `buf`, and its length.
fn copied(msg: Option<Message<'_>>, buf: &mut Vec<u8>) -> Option<usize> {
    msg.map(|msg| {
        msg.copy_into(buf);
        buf.len()
    })
}

/// The deadline `timeout` from now; `None` (no deadline) if that is too far to represent.
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
