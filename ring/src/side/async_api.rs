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
//! the peer wakes the word — see the `watcher` module for why no wake-up is lost. So an async
//! side interoperates with blocking peers in other processes (the `producer` and `consumer`
//! programs, say) as they do with each other, costs no CPU while idle, and needs no
//! particular runtime: the futures work on tokio's multi-threaded and current-thread
//! runtimes alike (or any other executor).
//!
//! # Cancellation
//!
//! Every future here is cancellation-safe: its only await point comes before it changes
//! anything in the ring, and its wait state lives in the [`Producer`](crate::Producer) or
//! [`Consumer`](crate::Consumer), not in the future. Dropping one — `tokio::select!`,
//! `tokio::time::timeout` — loses and duplicates nothing: the next call takes over where it
//! stopped. Each method says what that means for it.
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

pub use crate::side::consumer::MessageStream;
