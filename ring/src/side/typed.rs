//! Typed views of message bytes, with [`bytemuck`]: a message read in place as a `&T` or a
//! `&[T]`, a claim written in place as a `&mut T`.
//!
//! Every payload in a ring starts at a multiple of [`PAYLOAD_ALIGN`] (8) bytes, in memory as
//! in the file (see `FORMAT.md`), so the in-place views need no copy and cannot fail for
//! alignment. A type that needs more alignment than that (a `#[repr(align(16))]` type,
//! `u128` on some targets) is refused **at compile time** by the in-place views; read it
//! with [`read`] (a copy, any alignment) instead. A length that does not fit the type is
//! [`Error::WrongLength`].
//!
//! These functions serve the slices of a [`RecvBatch`](crate::RecvBatch); [`Message`]
//! and [`Claim`](crate::Claim) have the same views as methods.
//!
//! ```
//! use ringfile::{typed, Ring};
//! # fn main() -> Result<(), ringfile::Error> {
//! let ring = Ring::memfd(4096)?;
//! let (mut producer, mut consumer) = (ring.producer()?, ring.consumer()?);
//! producer.send_value(&[1.5f64, 2.5])?;
//! producer.send_value(&7u32)?;
//! let mut batch = consumer.recv_batch()?;
//! let first = batch.next()?.expect("published");
//! assert_eq!(typed::slice::<f64>(first)?, &[1.5, 2.5]);
//! let second = batch.next()?.expect("published");
//! assert_eq!(typed::value::<u32>(second)?, &7);
//! assert!(typed::value::<u64>(second).is_err()); // 4 bytes are not a u64
//! # Ok(()) }
//! ```
//!
//! A type aligned to 16 does not compile with an in-place view; [`read`] copies it:
//!
//! ```compile_fail
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C, align(16))]
//! struct Wide([u64; 2]);
//!
//! let ring = ringfile::Ring::memfd(4096).unwrap();
//! let mut consumer = ring.consumer().unwrap();
//! if let Some(msg) = consumer.try_recv().unwrap() {
//!     let wide: &Wide = msg.value().unwrap(); // error: payloads are 8-byte aligned
//!     println!("{}", wide.0[0]);
//! };
//! ```
//!
//! ```
//! # #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! # #[repr(C, align(16))]
//! # struct Wide([u64; 2]);
//! fn copy(msg: &ringfile::Message<'_>) -> Wide {
//!     msg.read_value::<Wide>().unwrap()
//! }
//! ```
//!
//! [`Message`]: crate::Message

use crate::error::{Error, Result};
use crate::format::PAYLOAD_ALIGN;
use bytemuck::{AnyBitPattern, NoUninit, Pod};
use std::mem::{align_of, size_of};

/// Refuses, at compile time, a type the guaranteed payload alignment does not serve.
const fn assert_alignment<T>() {
    assert!(
        align_of::<T>() <= PAYLOAD_ALIGN,
        "ringfile payloads are 8-byte aligned: view a type that needs more alignment with ringfile::typed::read (a copy)"
    );
}

pub(crate) fn wrong_length<T>(method: &'static str, len: usize, slice: bool) -> Error {
    Error::WrongLength {
        method,
        len,
        type_name: std::any::type_name::<T>(),
        size: size_of::<T>(),
        slice,
    }
}

/// `bytes` (a payload: 8-byte aligned) as one `T`, in place. [`Error::WrongLength`] unless
/// `bytes` is exactly `size_of::<T>()` long.
///
/// # Errors
///
/// [`Error::WrongLength`] if `bytes` is not `size_of::<T>()` long (or, for bytes that are not a
/// payload or a claim, not aligned for a `T`: those always are).
pub fn value<T: AnyBitPattern>(bytes: &[u8]) -> Result<&T> {
    value_for("typed::value", bytes)
}

/// [`value`] for the call `method`, which its error names.
#[inline]
pub(crate) fn value_for<'a, T: AnyBitPattern>(
    method: &'static str,
    bytes: &'a [u8],
) -> Result<&'a T> {
    const { assert_alignment::<T>() };
    bytemuck::try_from_bytes(bytes).map_err(|_| wrong_length::<T>(method, bytes.len(), false))
}

/// `bytes` (a payload: 8-byte aligned) as a slice of `T`, in place. [`Error::WrongLength`]
/// unless the length is a whole number of `T` (zero is an empty slice; a zero-sized `T` is
/// refused).
///
/// # Errors
///
/// [`Error::WrongLength`] if the length of `bytes` is not a multiple of `size_of::<T>()`, or
/// `T` is zero-sized (or, for bytes that are not a payload or a claim, not aligned for a `T`:
/// those always are).
pub fn slice<T: AnyBitPattern>(bytes: &[u8]) -> Result<&[T]> {
    slice_for("typed::slice", bytes)
}

/// [`slice`] for the call `method`, which its error names.
pub(crate) fn slice_for<'a, T: AnyBitPattern>(
    method: &'static str,
    bytes: &'a [u8],
) -> Result<&'a [T]> {
    const { assert_alignment::<T>() };
    bytemuck::try_cast_slice(bytes).map_err(|_| wrong_length::<T>(method, bytes.len(), true))
}

/// `bytes` (a claim: 8-byte aligned) as one `T` to write in place. [`Error::WrongLength`]
/// unless `bytes` is exactly `size_of::<T>()` long.
///
/// # Errors
///
/// [`Error::WrongLength`] if `bytes` is not `size_of::<T>()` long (or, for bytes that are not a
/// payload or a claim, not aligned for a `T`: those always are).
pub fn value_mut<T: Pod>(bytes: &mut [u8]) -> Result<&mut T> {
    value_mut_for("typed::value_mut", bytes)
}

/// [`value_mut`] for the call `method`, which its error names.
pub(crate) fn value_mut_for<'a, T: Pod>(
    method: &'static str,
    bytes: &'a mut [u8],
) -> Result<&'a mut T> {
    const { assert_alignment::<T>() };
    let len = bytes.len();
    bytemuck::try_from_bytes_mut(bytes).map_err(|_| wrong_length::<T>(method, len, false))
}

/// `bytes` (a claim: 8-byte aligned) as a slice of `T` to write in place.
/// [`Error::WrongLength`] unless the length is a whole number of `T`.
///
/// # Errors
///
/// [`Error::WrongLength`] if the length of `bytes` is not a multiple of `size_of::<T>()`, or
/// `T` is zero-sized (or, for bytes that are not a payload or a claim, not aligned for a `T`:
/// those always are).
pub fn slice_mut<T: Pod>(bytes: &mut [u8]) -> Result<&mut [T]> {
    slice_mut_for("typed::slice_mut", bytes)
}

/// [`slice_mut`] for the call `method`, which its error names.
pub(crate) fn slice_mut_for<'a, T: Pod>(
    method: &'static str,
    bytes: &'a mut [u8],
) -> Result<&'a mut [T]> {
    const { assert_alignment::<T>() };
    let len = bytes.len();
    bytemuck::try_cast_slice_mut(bytes).map_err(|_| wrong_length::<T>(method, len, true))
}

/// A copy of `bytes` as a `T`, for a type of any alignment. [`Error::WrongLength`] unless
/// `bytes` is exactly `size_of::<T>()` long.
///
/// # Errors
///
/// [`Error::WrongLength`] if `bytes` is not `size_of::<T>()` long.
pub fn read<T: AnyBitPattern>(bytes: &[u8]) -> Result<T> {
    read_for("typed::read", bytes)
}

/// [`read`] for the call `method`, which its error names.
pub(crate) fn read_for<T: AnyBitPattern>(method: &'static str, bytes: &[u8]) -> Result<T> {
    if bytes.len() == size_of::<T>() {
        Ok(bytemuck::pod_read_unaligned(bytes))
    } else {
        Err(wrong_length::<T>(method, bytes.len(), false))
    }
}

/// The bytes of a value to send.
pub(crate) fn bytes_of<T: NoUninit>(value: &T) -> &[u8] {
    bytemuck::bytes_of(value)
}
