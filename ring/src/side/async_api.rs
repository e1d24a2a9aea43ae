//! Async counterparts of the waiting calls (feature `tokio`): await data or space without a
//! thread blocked per ring.
//!
//! A task that finds nothing to do announces its sleep in the ring exactly as a blocking
//! side does, then hands the ring's futex word to a watcher thread shared by the whole
//! process, which sleeps on every such word at once (`futex_waitv`) and wakes the task when
//! the peer wakes the word — see the `waiter` module for why no wake-up is lost. So an async
//! side interoperates with blocking peers in other processes (the `producer` and `consumer`
//! programs, say) as they do with each other, costs no CPU while idle, and needs no
//! particular runtime: the futures work on tokio's multi-threaded and current-thread
//! runtimes alike (or any other executor).
//!
//! # Cancellation
//!
//! Every future here is cancellation-safe: its only await point comes before it changes
//! anything in the ring, and its wait state lives in the [`Producer`] or [`Consumer`], not in
//! the future. Dropping one — `tokio::select!`, `tokio::time::timeout` — loses and
//! duplicates nothing: the next call takes over where it stopped. Each method says what
//! that means for it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ringfile::Error> {
//! let ring = ringfile::Ring::memfd(4096)?;
//! let (mut producer, mut consumer) = (ring.producer()?, ring.consumer()?);
//! let sender = tokio::spawn(async move {
//!     for n in 0u32..100 {
//!         producer.send_async(&n.to_le_bytes()).await?; // waits for space, as a task
//!     }
//!     producer.close()
//! });
//! let mut sum = 0;
//! while let Some(msg) = consumer.recv_async().await? {  // None at the end of the stream
//!     sum += msg.read_value::<u32>()?;
//! }
//! assert_eq!(sum, 4950);
//! sender.await.unwrap()?;
//! # Ok(()) }
//! ```

use crate::error::Result;
use crate::format::layout::END_RESERVE;
use crate::format::position::Position;
use crate::format::record::Record;
use crate::side::consumer::{Consumer, RecvBatch};
use crate::side::producer::{Claim, Producer, SendBatch};
use crate::side::waiter::Side;
use std::borrow::BorrowMut;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

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
    pub async fn recv_async(&mut self) -> Result<Option<crate::side::consumer::Message<'_>>> {
        let found = poll_fn(|cx| self.poll_record(cx)).await?;
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
        poll_fn(|cx| self.poll_record(cx)).await?;
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
    /// spawned task. [`MessageStream::into_inner`] gives the consumer back.
    pub fn into_stream(self) -> MessageStream<Consumer> {
        MessageStream::new(self)
    }

    /// The first record at the read position, once there is one; waits as a task.
    fn poll_record(&mut self, cx: &mut Context<'_>) -> Poll<Result<(Record, Position)>> {
        let mut woken = false;
        loop {
            if let Some(found) = self.peek(self.read_pos)? {
                self.async_wait.cancel();
                return Poll::Ready(Ok(found));
            }
            if woken {
                // Woken, and still nothing to read: the idle tick (or a spurious wake-up),
                // when a blocking wait checks that the producer lives; so does this one.
                self.check_producer()?;
            }
            let shared = Arc::clone(&self.shared);
            let pos = self.read_pos;
            // Taken out for the call, which also needs the rest of `self` for its re-check.
            let mut wait = std::mem::take(&mut self.async_wait);
            let mut sleep_barrier = self.sleep_barrier;
            let result = wait.poll(cx, &shared, Side::Consumer, &mut sleep_barrier, || {
                self.peek(pos)
            });
            self.sleep_barrier = sleep_barrier;
            self.async_wait = wait;
            match ready!(result)? {
                Some(found) => return Poll::Ready(Ok(found)),
                None => woken = true,
            }
        }
    }
}

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

impl<C: BorrowMut<Consumer>> std::fmt::Debug for MessageStream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("consumer", self.consumer.borrow())
            .field("done", &self.done)
            .finish()
    }
}

impl<C: BorrowMut<Consumer>> MessageStream<C> {
    fn new(consumer: C) -> Self {
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

impl<C: BorrowMut<Consumer> + Unpin> futures_core::Stream for MessageStream<C> {
    type Item = Result<Vec<u8>>;

    /// Cancellation-safe as [`Consumer::recv_async`]: a message is released only when it is
    /// returned.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let consumer = this.consumer.borrow_mut();
        let item = match ready!(consumer.poll_record(cx)) {
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
        Poll::Ready(item)
    }
}

impl<C: BorrowMut<Consumer>> futures_core::FusedStream for MessageStream<C>
where
    Self: futures_core::Stream,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

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
        let pos = poll_fn(|cx| self.poll_reserve(msg.len(), cx)).await?;
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
        let pos = poll_fn(|cx| self.poll_reserve(len, cx)).await?;
        Ok(Claim {
            producer: self,
            pos,
            len: len as u64,
            publish: true,
        })
    }

    /// Room for a record with `len` payload bytes, once there is some; waits as a task.
    fn poll_reserve(&mut self, len: usize, cx: &mut Context<'_>) -> Poll<Result<Position>> {
        loop {
            if let Some(pos) = self.try_reserve(len, END_RESERVE)? {
                self.async_wait.cancel();
                return Poll::Ready(Ok(pos));
            }
            // The consumer may be waiting for what we have written: publish before waiting.
            self.publish();
            // Disjoint borrows: the registration, the barrier and the free space, beside the
            // ring (no `Arc` clone, no moving the wait out and back).
            let (shared, space) = (&self.shared, &mut self.space);
            let woken =
                self.async_wait
                    .poll(cx, shared, Side::Producer, &mut self.sleep_barrier, || {
                        space.try_reserve(shared, len, END_RESERVE)
                    });
            if let Some(pos) = ready!(woken)? {
                return Poll::Ready(Ok(pos));
            }
        }
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl SendBatch<'_> {
    /// As [`Producer::send_async`], unpublished until the batch ends (what the batch holds
    /// is published before it waits for room, as [`send`](Self::send) does).
    ///
    /// # Errors
    ///
    /// As [`send`](crate::Producer::send).
    pub async fn send_async(&mut self, msg: &[u8]) -> Result<()> {
        let pos = poll_fn(|cx| self.producer.poll_reserve(msg.len(), cx)).await?;
        self.producer.write_message(pos, msg, false);
        Ok(())
    }
}
