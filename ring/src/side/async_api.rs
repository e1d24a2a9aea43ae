//! Async counterparts of the waiting calls (feature `async`): await data or space without a
//! thread blocked per ring. The calls are methods of the sides —
//! [`Producer::send_async`](crate::Producer::send_async), `claim_async`, `send_value_async`,
//! [`SendBatch::send_async`](crate::SendBatch::send_async);
//! [`Consumer::recv_async`](crate::Consumer::recv_async), `recv_batch_async`, and the
//! [`MessageStream`] of [`Consumer::stream`](crate::Consumer::stream) — and wait through the
//! same core as the blocking calls (one announcement of the sleep, one barrier), so that the
//! two kinds of waiter are alike to the peer.
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
//! anything in the ring, and its wait state lives in the [`Producer`](crate::Producer) or [`Consumer`], not in
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
use crate::side::consumer::Consumer;
use std::borrow::BorrowMut;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

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
