//! The memory a ring lives in — a shared mapping of a file (or memfd), or plain heap memory
//! for model checking — and the only place that turns addresses into references.
//!
//! The ring algorithm (`producer`, `consumer`) sees a [`Region`] only through bounds-checked
//! accessors: the [`Control`] block and byte ranges of the data region. Who may touch which
//! byte range when is the SPSC protocol's business, argued in those modules; this module
//! guarantees that every access stays inside the memory it owns.

use crate::layout::{Control, Header};
use std::fs::File;
use std::io;
use std::ptr::NonNull;

/// What keeps the memory alive.
enum Backing {
    /// A `MAP_SHARED` mapping of the whole ring file, registered for the SIGBUS handler
    /// while it exists (the registration drops first: fields drop in order).
    #[cfg_attr(loom, allow(dead_code))]
    Map {
        #[cfg(not(loom))]
        _sigbus: Option<crate::sigbus::Registration>,
        map: memmap2::MmapRaw,
    },
    /// Heap memory: the control block and the data region (as u64 for 8-byte alignment).
    #[cfg_attr(not(all(test, loom)), allow(dead_code))]
    Heap {
        _control: Box<Control>,
        _data: Box<[u64]>,
    },
}

/// The memory of one ring: a control block and a data region of `capacity` bytes.
pub(crate) struct Region {
    control: NonNull<Control>,
    data: NonNull<u8>,
    capacity: u64,
    backing: Backing,
    /// Futex emulation for the model checker (which cannot run real system calls).
    #[cfg(loom)]
    pub(crate) parker: crate::wait::LoomParker,
}

// SAFETY: the pointers refer to memory owned by `backing`, which is Send + Sync (a mapping
// or boxes). Concurrent access to that memory goes through atomics (the control block) or is
// partitioned between the producer and consumer by the ring protocol (the data region).
unsafe impl Send for Region {}
// SAFETY: see `Send`.
unsafe impl Sync for Region {}

impl Region {
    /// Maps all of `file`, whose first `HEADER_SIZE` bytes are a header already validated
    /// against the file's length (`HEADER_SIZE + capacity`).
    #[cfg(not(loom))]
    pub(crate) fn map(file: &File, capacity: u64, name: &std::path::Path) -> io::Result<Region> {
        use crate::layout::{CONTROL_OFFSET, HEADER_SIZE};
        let len = HEADER_SIZE + capacity;
        let map = memmap2::MmapOptions::new()
            .len(usize::try_from(len).map_err(|_| io::Error::other("ring too large to map"))?)
            .map_raw(file)?;
        let base = map.as_mut_ptr();
        // SAFETY: the mapping is `HEADER_SIZE + capacity` bytes long and page-aligned, so
        // `base + CONTROL_OFFSET` is in bounds and 128-byte aligned, and `Control` (atomics
        // only, valid for every bit pattern) fits before `HEADER_SIZE` (checked in `layout`).
        let control = unsafe { NonNull::new_unchecked(base.add(CONTROL_OFFSET as usize).cast()) };
        // SAFETY: `HEADER_SIZE` is within the mapping (capacity > 0).
        let data = unsafe { NonNull::new_unchecked(base.add(HEADER_SIZE as usize)) };
        let sigbus = crate::sigbus::register(
            base as usize,
            map.len(),
            std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()),
        );
        Ok(Region {
            control,
            data,
            capacity,
            backing: Backing::Map {
                _sigbus: sigbus,
                map,
            },
        })
    }

    /// Under the model checker, file mappings are not modelled.
    #[cfg(loom)]
    pub(crate) fn map(_file: &File, _capacity: u64, _name: &std::path::Path) -> io::Result<Region> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "file-backed rings are not available under loom",
        ))
    }

    /// A ring in heap memory, for in-process model checking of the algorithm.
    #[cfg(all(test, loom))]
    pub(crate) fn heap(capacity: u64) -> Region {
        let control = Box::<Control>::default();
        let mut data = vec![0u64; (capacity / 8) as usize].into_boxed_slice();
        let data_ptr = NonNull::new(data.as_mut_ptr().cast::<u8>()).expect("non-null box");
        let control_ptr = NonNull::from(&*control);
        Region {
            control: control_ptr,
            data: data_ptr,
            capacity,
            backing: Backing::Heap {
                _control: control,
                _data: data,
            },
            #[cfg(loom)]
            parker: Default::default(),
        }
    }

    /// Writes the header page of a fresh file mapping.
    pub(crate) fn write_header(&self, header: &Header) {
        if let Backing::Map { map, .. } = &self.backing {
            let bytes = bytemuck::bytes_of(header);
            // SAFETY: the mapping is at least HEADER_SIZE bytes and the header is 128 bytes;
            // the file is not yet linked into place, so nobody else maps it.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_mut_ptr(), bytes.len()) };
        }
    }

    /// The shared control block.
    #[inline]
    pub(crate) fn control(&self) -> &Control {
        // SAFETY: `control` points to a live, aligned `Control` for as long as `self` lives;
        // it is only ever accessed through shared references to atomics.
        unsafe { self.control.as_ref() }
    }

    /// Data region size in bytes.
    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    #[inline]
    fn check(&self, offset: u64, len: u64) {
        assert!(
            offset <= self.capacity && len <= self.capacity - offset,
            "data region access {offset}+{len} outside capacity {}",
            self.capacity
        );
    }

    /// The offset in the data region of position `pos`, rounded down to a multiple of 8:
    /// in bounds and aligned for a header word whatever `pos` is.
    #[inline(always)]
    fn word_offset(&self, pos: u64) -> usize {
        (pos & (self.capacity - 1) & !7) as usize
    }

    /// Reads the record header word at position `pos` (a multiple of 8).
    #[inline]
    pub(crate) fn read_word(&self, pos: u64) -> u64 {
        let offset = self.word_offset(pos);
        // SAFETY: `word_offset` is aligned and at most `capacity - 8` (capacity is a multiple
        // of 8). A volatile read makes exactly one load, so the value validated by the caller
        // is the value used even if a misbehaving process writes the word concurrently.
        u64::from_le(unsafe {
            std::ptr::read_volatile(self.data.as_ptr().add(offset).cast::<u64>())
        })
    }

    /// Writes a record header word at position `pos` (a multiple of 8).
    #[inline]
    pub(crate) fn write_word(&self, pos: u64, word: u64) {
        let offset = self.word_offset(pos);
        // SAFETY: in bounds and aligned (`word_offset`); the range belongs to the producer
        // until it publishes it (the ring protocol).
        unsafe {
            std::ptr::write_volatile(self.data.as_ptr().add(offset).cast::<u64>(), word.to_le())
        };
    }

    /// Writes a whole record at position `pos` (a multiple of 8): its header word, then
    /// `payload`. One bounds check for both; small payloads are copied inline rather than
    /// through a `memcpy` call, which dominates the cost of sending a message of a few bytes.
    #[inline]
    pub(crate) fn write_record(&self, pos: u64, word: u64, payload: &[u8]) {
        let offset = self.word_offset(pos);
        let len = payload.len();
        assert!(
            len as u64 <= self.capacity - 8 - offset as u64,
            "record at {offset} of {len} bytes outside capacity {}",
            self.capacity
        );
        // SAFETY: the header is in bounds and aligned (`word_offset`), the payload in bounds
        // (checked); the range belongs to the producer until it publishes it.
        unsafe {
            let at = self.data.as_ptr().add(offset);
            std::ptr::write_volatile(at.cast::<u64>(), word.to_le());
            copy_small(payload.as_ptr(), at.add(8), len);
        }
    }

    /// The bytes `offset .. offset + len` of the data region, for the side that owns them.
    #[inline]
    pub(crate) fn bytes(&self, offset: u64, len: u64) -> &[u8] {
        self.check(offset, len);
        // SAFETY: in bounds (checked); the memory lives as long as `self`. The ring protocol
        // guarantees that the other side does not write this range while it is borrowed.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(offset as usize), len as usize) }
    }

    /// The bytes `offset .. offset + len` of the data region, writable, for the producer.
    #[inline]
    #[allow(clippy::mut_from_ref)] // the ring protocol, not `&mut self`, makes the range exclusive
    pub(crate) fn bytes_mut(&self, offset: u64, len: u64) -> &mut [u8] {
        self.check(offset, len);
        // SAFETY: in bounds (checked). The range lies between the published tail and the
        // released head plus capacity, which only the producer touches, and the producer
        // hands out at most one such slice at a time (a `Claim` borrows the producer mutably).
        unsafe {
            std::slice::from_raw_parts_mut(self.data.as_ptr().add(offset as usize), len as usize)
        }
    }

    /// Flushes the whole mapping to storage (`msync`), for rings on a real disk.
    pub(crate) fn sync(&self) -> io::Result<()> {
        match &self.backing {
            Backing::Map { map, .. } => map.flush(),
            Backing::Heap { .. } => Ok(()),
        }
    }
}

/// Copies `len` bytes from `src` to `dst`, inline for up to 64 bytes (overlapping unaligned
/// word copies), through `memcpy` beyond.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes, not overlapping.
#[inline(always)]
unsafe fn copy_small(src: *const u8, dst: *mut u8, len: usize) {
    use std::ptr::{read_unaligned as rd, write_unaligned as wr};
    // SAFETY (all arms): every access is within `len` bytes of `src`/`dst` (the second
    // copy of each pair ends exactly at `len`), which the caller guarantees are valid.
    unsafe {
        match len {
            0 => {}
            1..=7 => {
                for i in 0..len {
                    *dst.add(i) = *src.add(i);
                }
            }
            8..=16 => {
                wr(dst.cast::<u64>(), rd(src.cast::<u64>()));
                wr(
                    dst.add(len - 8).cast::<u64>(),
                    rd(src.add(len - 8).cast::<u64>()),
                );
            }
            17..=32 => {
                wr(dst.cast::<u128>(), rd(src.cast::<u128>()));
                wr(
                    dst.add(len - 16).cast::<u128>(),
                    rd(src.add(len - 16).cast::<u128>()),
                );
            }
            33..=64 => {
                wr(dst.cast::<[u8; 32]>(), rd(src.cast::<[u8; 32]>()));
                wr(
                    dst.add(len - 32).cast::<[u8; 32]>(),
                    rd(src.add(len - 32).cast::<[u8; 32]>()),
                );
            }
            _ => std::ptr::copy_nonoverlapping(src, dst, len),
        }
    }
}
