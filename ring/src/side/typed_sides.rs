//! Typed endpoints: a producer and a consumer of one message type, checked once when they
//! are made ([`Ring::producer_of`](crate::Ring::producer_of),
//! [`Ring::consumer_of`](crate::Ring::consumer_of)) instead of at every call.
//!
//! Every message of a typed stream is one `T`, sent as its bytes and read in place (no copy)
//! on the other side; a message of another length — from an untyped producer, or one of
//! another type — is [`Error::WrongLength`] naming the call, and is consumed (the next
//! receive goes on with the next message), as a channel's receiver never sees a value of the
//! wrong type twice.
//!
//! ```
//! #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Tick {
//!     price: f64,
//!     qty: u32,
//!     side: u32,
//! }
//!
//! # fn main() -> Result<(), ringfile::Error> {
//! let ring = ringfile::Ring::memfd(4096)?;
//! let mut producer = ring.producer_of::<Tick>()?;
//! let mut consumer = ring.consumer_of::<Tick>()?;
//! producer.send(&Tick { price: 101.5, qty: 3, side: 1 })?;
//! producer.close()?;
//! let tick = consumer.recv()?.expect("sent");
//! assert_eq!(tick.qty, 3); // a `TypedMessage<Tick>` dereferences to the `Tick` in the ring
//! drop(tick);
//! assert!(consumer.recv()?.is_none()); // the end of the stream
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::side::consumer::{Consumer, Message};
use crate::side::producer::Producer;
use crate::side::typed::{bytes_of, value_for};
use bytemuck::{AnyBitPattern, NoUninit};
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

/// Fails with [`Error::TooLarge`] unless a `T` fits in one message of a ring whose largest
/// message is `max` bytes.
fn check_fits<T>(max: usize) -> Result<()> {
    let len = std::mem::size_of::<T>();
    if len > max {
        return Err(Error::TooLarge { len, max });
    }
    Ok(())
}

/// A producer of `T` messages: [`Ring::producer_of`](crate::Ring::producer_of). Each send
/// is one message holding a `T`'s bytes. The untyped [`Producer`] is [`inner`](Self::inner)
/// (for `sync`, wait strategies, batches); dropping a `TypedProducer` drops it, ending the
/// stream as a dropped [`Producer`] does.
#[must_use = "dropping a TypedProducer ends the stream and gives up the producer role at once"]
pub struct TypedProducer<T> {
    inner: Producer,
    _type: PhantomData<fn(&T)>,
}

impl<T: NoUninit> TypedProducer<T> {
    pub(crate) fn new(inner: Producer) -> Result<TypedProducer<T>> {
        check_fits::<T>(inner.max_message_len())?;
        Ok(TypedProducer {
            inner,
            _type: PhantomData,
        })
    }

    /// Sends `value`, waiting for room as [`Producer::send`] does.
    ///
    /// # Errors
    ///
    /// As [`Producer::send`](crate::Producer::send) (a `T` always fits: that was checked when
    /// this producer was made).
    #[inline]
    pub fn send(&mut self, value: &T) -> Result<()> {
        self.inner.send(bytes_of(value))
    }

    /// Sends `value` if there is room now; [`Error::Full`] if not.
    ///
    /// # Errors
    ///
    /// [`Error::Full`] if there is no room now; otherwise as [`send`](Self::send).
    #[inline]
    pub fn try_send(&mut self, value: &T) -> Result<()> {
        self.inner.try_send(bytes_of(value))
    }

    /// Sends `value`, waiting at most `timeout` for room ([`Error::Timeout`] then).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if no room came within `timeout`; otherwise as [`send`](Self::send).
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<()> {
        self.inner.send_timeout(bytes_of(value), timeout)
    }

    /// Ends the stream ([`Producer::close`]).
    ///
    /// # Errors
    ///
    /// As [`Producer::close`](crate::Producer::close).
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }

    /// Ends the stream as failed, with `reason` ([`Producer::abort`]).
    ///
    /// # Errors
    ///
    /// As [`Producer::abort`](crate::Producer::abort).
    pub fn abort(self, reason: &str) -> Result<()> {
        self.inner.abort(reason)
    }

    /// Gives up the role leaving the stream open for a successor ([`Producer::detach`]).
    pub fn detach(self) {
        self.inner.detach();
    }

    /// The untyped producer underneath.
    pub fn inner(&mut self) -> &mut Producer {
        &mut self.inner
    }

    /// The untyped producer, for messages of other lengths.
    pub fn into_inner(self) -> Producer {
        self.inner
    }
}

impl<T> std::fmt::Debug for TypedProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedProducer")
            .field("type", &std::any::type_name::<T>())
            .field("producer", &self.inner)
            .finish()
    }
}

/// A consumer of `T` messages: [`Ring::consumer_of`](crate::Ring::consumer_of). Each
/// message is read in place as a `T` (a [`TypedMessage`]); one of another length is
/// [`Error::WrongLength`], and is consumed.
#[must_use = "dropping a TypedConsumer gives up the consumer role at once"]
pub struct TypedConsumer<T> {
    inner: Consumer,
    _type: PhantomData<fn() -> T>,
}

impl<T: AnyBitPattern> TypedConsumer<T> {
    pub(crate) fn new(inner: Consumer) -> Result<TypedConsumer<T>> {
        // The alignment is checked at compile time, by the view below.
        check_fits::<T>(inner.max_message_len())?;
        Ok(TypedConsumer {
            inner,
            _type: PhantomData,
        })
    }

    /// The next `T`, waiting as [`Consumer::recv`] does; `Ok(None)` at the end of the stream.
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] for a message that is not one `T` long (it is consumed: the next
    /// call goes on after it); otherwise as [`Consumer::recv`](crate::Consumer::recv).
    #[inline]
    pub fn recv(&mut self) -> Result<Option<TypedMessage<'_, T>>> {
        typed(self.inner.recv()?, "TypedConsumer::recv")
    }

    /// The next `T` if one is there now; `Ok(None)` if not, as [`Consumer::try_recv`] says
    /// ([`is_ended`](Self::is_ended) tells "nothing yet" from the end of the stream).
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] for a message that is not one `T` long (consumed); otherwise as
    /// [`Consumer::try_recv`](crate::Consumer::try_recv).
    #[inline]
    pub fn try_recv(&mut self) -> Result<Option<TypedMessage<'_, T>>> {
        typed(self.inner.try_recv()?, "TypedConsumer::try_recv")
    }

    /// As [`recv`](Self::recv), waiting at most `timeout` ([`Error::Timeout`] then).
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] for a message that is not one `T` long (consumed); otherwise as
    /// [`Consumer::recv_timeout`](crate::Consumer::recv_timeout).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<TypedMessage<'_, T>>> {
        typed(
            self.inner.recv_timeout(timeout)?,
            "TypedConsumer::recv_timeout",
        )
    }

    /// The next `T` as a copy (released at once), waiting as [`recv`](Self::recv) does: for
    /// peers you do not trust (see [`Consumer::recv_into`]).
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_value(&mut self) -> Result<Option<T>> {
        let mut buf = Vec::new();
        match self.inner.recv_into(&mut buf)? {
            None => Ok(None),
            Some(_) => crate::side::typed::read_for("TypedConsumer::recv_value", &buf).map(Some),
        }
    }

    /// Whether the last receive reached the end of a stream ([`Consumer::is_ended`]).
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.inner.is_ended()
    }

    /// The untyped consumer underneath.
    pub fn inner(&mut self) -> &mut Consumer {
        &mut self.inner
    }

    /// The untyped consumer, for messages of other lengths.
    pub fn into_inner(self) -> Consumer {
        self.inner
    }
}

/// A received message as a `T`, or the error naming `method` (the message is released).
#[inline]
fn typed<'a, T: AnyBitPattern>(
    msg: Option<Message<'a>>,
    method: &'static str,
) -> Result<Option<TypedMessage<'a, T>>> {
    let Some(msg) = msg else {
        return Ok(None);
    };
    value_for::<T>(method, &msg)?;
    Ok(Some(TypedMessage {
        msg,
        _type: PhantomData,
    }))
}

impl<T> std::fmt::Debug for TypedConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedConsumer")
            .field("type", &std::any::type_name::<T>())
            .field("consumer", &self.inner)
            .finish()
    }
}

/// One received `T`, in place in the ring: dereferences to it; dropping it releases it, as
/// a [`Message`] does (which [`message`](Self::message) gives, for its other views).
#[must_use = "dropping a TypedMessage releases it unread"]
pub struct TypedMessage<'a, T> {
    msg: Message<'a>,
    _type: PhantomData<&'a T>,
}

impl<T: AnyBitPattern> Deref for TypedMessage<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // The length was checked when the message was received, and a payload is 8-byte
        // aligned (the alignment of `T` is checked at compile time by `value_for`).
        match value_for::<T>("TypedMessage::deref", &self.msg) {
            Ok(value) => value,
            Err(_) => unreachable!("the length was checked when the message was received"),
        }
    }
}

impl<'a, T> TypedMessage<'a, T> {
    /// The untyped message (its bytes, `copy_into`, `unread`).
    pub fn message(&self) -> &Message<'a> {
        &self.msg
    }

    /// Gives the message back unreleased ([`Message::unread`]).
    pub fn unread(self) {
        self.msg.unread();
    }
}

impl<T: AnyBitPattern + std::fmt::Debug> std::fmt::Debug for TypedMessage<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TypedMessage").field(&**self).finish()
    }
}
