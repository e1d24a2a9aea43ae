//! The memory a ring lives in — a shared mapping of a file (or memfd), or plain heap memory
//! for model checking — and the only place that turns addresses into references.
//!
//! The ring algorithm (`producer`, `consumer`) sees a [`Region`] only through bounds-checked
//! accessors: the [`Control`] block and byte ranges of the data region. Who may touch which
//! byte range when is the SPSC protocol's business, argued in those modules; this module
//! guarantees that every access stays inside the memory it owns.

use crate::format::layout::{Control, FanoutWake, Header, Slot};
use crate::format::position::{Capacity, Offset, Position};
use crate::format::shape::Shape;
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
        sigbus: Option<crate::os::sigbus::Registration>,
        map: memmap2::MmapRaw,
    },
    /// Heap memory: the control block and the data region (as u64 for 8-byte alignment).
    #[cfg_attr(not(all(test, loom)), allow(dead_code))]
    Heap {
        _control: Box<Control>,
        _data: Box<[u64]>,
        _wake: Box<FanoutWake>,
        _slots: Box<[Slot]>,
    },
}

/// The memory of one ring: a control block and a data region of `capacity` bytes.
pub(crate) struct Region {
    control: NonNull<Control>,
    data: NonNull<u8>,
    capacity: Capacity,
    /// The ring's shape (capacity and consumer slots).
    shape: Shape,
    /// A version 2 ring's consumers' wake-up block and its first slot (`shape.slots()` of
    /// them follow it); `None` for a version 1 ring.
    fanout: Option<(NonNull<FanoutWake>, NonNull<Slot>)>,
    /// [`Capacity::word_mask`], kept beside the pointer: a position to the offset of its
    /// header word in one `and` (on the consumer's path from one record's header to the next).
    word_mask: u64,
    backing: Backing,
    /// The model checker's futex and membarrier (`model`).
    #[cfg(loom)]
    pub(crate) model: crate::os::model::Model,
    /// One model-checked cell per 8 bytes of the data region: loom checks every access to
    /// the region against the others through them (see `shadow_read`).
    #[cfg(loom)]
    shadow: Box<[loom::cell::UnsafeCell<()>]>,
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
    ///
    /// A `read_only` mapping (for inspection: `PROT_READ`, from a descriptor that may be
    /// read-only) must never be written: only [`Inspector`](crate::Inspector) makes one, and
    /// it only loads.
    pub(crate) fn map(file: &File, shape: Shape, read_only: bool) -> io::Result<Region> {
        use crate::format::layout::{CONTROL_OFFSET, FANOUT_WAKE_OFFSET, SLOTS_OFFSET};
        let capacity = shape.capacity();
        let len = shape.file_len();
        let mut options = memmap2::MmapOptions::new();
        options.len(usize::try_from(len).map_err(|_| io::Error::other("ring too large to map"))?);
        let map = if read_only {
            options.map_raw_read_only(file)?
        } else {
            options.map_raw(file)?
        };
        let base = map.as_mut_ptr();
        // SAFETY: the mapping is `HEADER_SIZE + capacity` bytes long and page-aligned, so
        // `base + CONTROL_OFFSET` is in bounds and 128-byte aligned, and `Control` (atomics
        // only, valid for every bit pattern) fits before `HEADER_SIZE` (checked in `layout`).
        let control = unsafe { NonNull::new_unchecked(base.add(CONTROL_OFFSET as usize).cast()) };
        // SAFETY: the header size is within the mapping (capacity > 0).
        let data = unsafe { NonNull::new_unchecked(base.add(shape.header_size() as usize)) };
        let fanout = shape.fanout().then(|| {
            // SAFETY: a version 2 header holds the wake block and `slots` slots of 128 bytes
            // from FANOUT_WAKE_OFFSET on (`layout::header_size`), within the mapping, 128-byte
            // aligned (page-aligned base); both types are atomics only, valid for every bit
            // pattern.
            unsafe {
                (
                    NonNull::new_unchecked(base.add(FANOUT_WAKE_OFFSET as usize).cast()),
                    NonNull::new_unchecked(base.add(SLOTS_OFFSET as usize).cast()),
                )
            }
        });
        Ok(Region {
            control,
            data,
            capacity,
            shape,
            fanout,
            word_mask: capacity.word_mask(),
            backing: Backing::Map { sigbus: None, map },
        })
    }

    /// Registers the mapping for the SIGBUS handler under `name` (see `os::sigbus`): done by
    /// whoever opened the file, which knows what to call it. The registration lives in the
    /// region, so that it is removed before the mapping is (fields drop in order). A heap
    /// region has nothing to register.
    #[cfg(not(loom))]
    pub(crate) fn report_sigbus_as(mut self, name: &std::path::Path) -> Region {
        if let Backing::Map { sigbus, map } = &mut self.backing {
            *sigbus = crate::os::sigbus::register(
                map.as_ptr() as usize,
                map.len(),
                std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()),
            );
        }
        self
    }

    /// Under the model checker, file mappings are not modelled.
    #[cfg(loom)]
    pub(crate) fn map(_file: &File, _shape: Shape, _read_only: bool) -> io::Result<Region> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "file-backed rings are not available under loom",
        ))
    }

    /// A ring in heap memory, for in-process model checking of the algorithm.
    #[cfg(all(test, loom))]
    pub(crate) fn heap(shape: Shape, barrier: crate::os::model::LoomConfig) -> Region {
        let capacity = shape.capacity();
        let control = Box::<Control>::default();
        let mut data = vec![0u64; (capacity.bytes() / 8) as usize].into_boxed_slice();
        let data_ptr = NonNull::new(data.as_mut_ptr().cast::<u8>()).expect("non-null box");
        let control_ptr = NonNull::from(&*control);
        let wake = Box::<FanoutWake>::default();
        let slots: Box<[Slot]> = (0..shape.slots()).map(|_| Slot::default()).collect();
        let fanout = shape
            .fanout()
            .then(|| (NonNull::from(&*wake), NonNull::from(&slots[0])));
        Region {
            control: control_ptr,
            data: data_ptr,
            capacity,
            shape,
            fanout,
            word_mask: capacity.word_mask(),
            backing: Backing::Heap {
                _control: control,
                _data: data,
                _wake: wake,
                _slots: slots,
            },
            #[cfg(loom)]
            model: crate::os::model::Model::new(barrier),
            #[cfg(loom)]
            shadow: (0..capacity.bytes() / 8)
                .map(|_| loom::cell::UnsafeCell::new(()))
                .collect(),
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
    pub(crate) fn capacity(&self) -> Capacity {
        self.capacity
    }

    /// The ring's shape: capacity and consumer slots.
    #[inline]
    pub(crate) fn shape(&self) -> Shape {
        self.shape
    }

    /// A version 2 ring's consumers' shared wake-up words; `None` for version 1.
    #[inline]
    pub(crate) fn fanout_wake(&self) -> Option<&FanoutWake> {
        // SAFETY: set by `map`/`heap` to a live, aligned `FanoutWake` for as long as `self`
        // lives; atomics only, accessed through shared references.
        self.fanout.map(|(wake, _)| unsafe { wake.as_ref() })
    }

    /// Consumer slot `i` of a version 2 ring; `None` for version 1 or past the last slot.
    #[inline]
    pub(crate) fn slot(&self, i: u32) -> Option<&Slot> {
        let (_, first) = self.fanout?;
        (i < self.shape.slots()).then(|| {
            // SAFETY: slots `0 .. shape.slots()` lie one after the other from `first`, within
            // the header (`layout::header_size`), aligned, alive as long as `self`; atomics
            // only, accessed through shared references.
            unsafe { first.add(i as usize).as_ref() }
        })
    }

    /// Panics unless `offset .. offset + len` lies in the data region (a bug in the caller:
    /// no value from the file reaches here unchecked). The panic is out of line, so that the
    /// check costs the hot paths two compares and no argument set-up.
    #[inline]
    fn check(&self, offset: u64, len: u64) {
        let capacity = self.capacity.bytes();
        if offset > capacity || len > capacity - offset {
            outside(offset, len, capacity);
        }
    }

    /// The offset in the data region of position `pos`, rounded down to a multiple of 8:
    /// in bounds and aligned for a header word whatever `pos` is.
    #[inline(always)]
    fn word_offset(&self, pos: Position) -> usize {
        (pos.get() & self.word_mask) as usize
    }

    /// The header word at data offset `offset` (in bounds and 8-aligned), as an atomic.
    #[inline(always)]
    fn word_at(&self, offset: usize) -> &std::sync::atomic::AtomicU64 {
        // SAFETY: `offset` is 8-aligned and at most `capacity - 8` (callers pass a
        // `word_offset`), and the data region is 8-aligned (page-aligned mapping, or a u64
        // box), so the pointer is valid and aligned for a u64 for as long as `self` lives.
        // Every access to a header word goes through an atomic, so another process writing
        // it at the same time is no data race.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(self.data.as_ptr().add(offset).cast()) }
    }

    /// Reads the record header word at position `pos` (a multiple of 8). An atomic load: it
    /// is one read, so the value the caller validates is the value it uses, whatever another
    /// process writes meanwhile. Relaxed: the caller's Acquire load of the published tail
    /// already orders it after the producer's write.
    #[inline]
    pub(crate) fn read_word(&self, pos: Position) -> u64 {
        let offset = self.word_offset(pos);
        self.shadow_read(offset as u64, 8);
        u64::from_le(
            self.word_at(offset)
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Writes a record header word at position `pos` (a multiple of 8). Relaxed: the
    /// producer's Release store of the tail publishes it.
    #[inline]
    pub(crate) fn write_word(&self, pos: Position, word: u64) {
        let offset = self.word_offset(pos);
        self.shadow_write(offset as u64, 8);
        self.word_at(offset)
            .store(word.to_le(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes a whole record at position `pos` (a multiple of 8): its header word, then
    /// `payload`; see [`RecordWriter::write_record`].
    ///
    /// # Safety
    /// The producer must own the record's bytes under the ring protocol: they lie between
    /// the published tail and the released head plus the capacity, so the consumer neither
    /// reads nor holds them until they are published.
    #[inline]
    pub(crate) unsafe fn write_record(&self, pos: Position, word: u64, payload: &[u8]) {
        // SAFETY: the writer comes from `self`, alive for the call; the caller owns the bytes.
        unsafe { self.record_writer().write_record(pos, word, payload) }
    }

    /// The data region's address, size and mask, for a producer to keep in its own fields
    /// (see [`RecordWriter`]).
    pub(crate) fn record_writer(&self) -> RecordWriter {
        RecordWriter {
            data: self.data,
            capacity: self.capacity.bytes(),
            word_mask: self.word_mask,
            #[cfg(loom)]
            region: NonNull::from(self),
        }
    }

    /// The bytes `offset .. offset + len` of the data region, borrowed in place.
    ///
    /// # Safety
    /// The calling side must own the range under the ring protocol for as long as the
    /// slice lives — the consumer: published and not yet released; the producer: claimed
    /// and not yet published — so the other side does not write it meanwhile. (A process
    /// that ignores the protocol can still change the bytes under the borrow; see the
    /// crate's trust model. It cannot make the access leave the mapping: `offset` and `len`
    /// are bounds-checked.)
    #[inline]
    pub(crate) unsafe fn bytes(&self, offset: Offset, len: u64) -> &[u8] {
        let offset = offset.get();
        self.check(offset, len);
        self.shadow_read(offset, len);
        // SAFETY: in bounds (checked); the memory lives as long as `self`; the caller owns
        // the range.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(offset as usize), len as usize) }
    }

    /// The bytes `offset .. offset + len` of the data region, writable, for the producer.
    ///
    /// # Safety
    /// The producer must own the range (between the published tail and the released head
    /// plus the capacity) and hand out no other slice of it while this one lives.
    #[inline]
    #[allow(clippy::mut_from_ref)] // the ring protocol, not `&mut self`, makes the range exclusive
    pub(crate) unsafe fn bytes_mut(&self, offset: Offset, len: u64) -> &mut [u8] {
        let offset = offset.get();
        self.check(offset, len);
        self.shadow_write(offset, len);
        // SAFETY: in bounds (checked); the caller owns the range exclusively.
        unsafe {
            std::slice::from_raw_parts_mut(self.data.as_ptr().add(offset as usize), len as usize)
        }
    }

    /// Copies the bytes `offset .. offset + len` of the data region into `out` (replacing its
    /// contents) with atomic loads, one 8-byte word at a time. `offset` must be a multiple
    /// of 8, and the words covering the range must lie in the data region (a record's
    /// payload: records are padded to 8 bytes). Safe whatever any process does to the
    /// bytes meanwhile: they may change during the copy (the copy is then torn, never
    /// undefined), never after it.
    pub(crate) fn copy_out(&self, offset: Offset, len: u64, out: &mut Vec<u8>) {
        let offset = offset.get();
        assert!(offset.is_multiple_of(8), "unaligned copy at {offset}");
        let words = len.div_ceil(8);
        self.check(offset, words * 8);
        self.shadow_read(offset, len);
        out.clear();
        out.reserve(len as usize);
        let mut left = len as usize;
        for i in 0..words as usize {
            let word = self
                .word_at(offset as usize + 8 * i)
                .load(std::sync::atomic::Ordering::Relaxed)
                .to_ne_bytes();
            let take = left.min(8);
            out.extend_from_slice(&word[..take]);
            left -= take;
        }
    }

    /// Copies the words covering `offset .. offset + len` of the data region into `out`
    /// (replacing its contents) with atomic loads, as [`copy_out`](Self::copy_out) does, for a
    /// reader the producer may lap: the copy may be torn by a concurrent write, which its
    /// reader detects afterwards (`protocol::lapping`). No read is reported to the model
    /// checker: racing the producer is what such a reader does by design.
    pub(crate) fn copy_words(&self, offset: Offset, len: u64, out: &mut Vec<u64>) {
        let offset = offset.get();
        assert!(offset.is_multiple_of(8), "unaligned copy at {offset}");
        let words = len.div_ceil(8);
        self.check(offset, words * 8);
        out.clear();
        out.extend((0..words as usize).map(|i| {
            self.word_at(offset as usize + 8 * i)
                .load(std::sync::atomic::Ordering::Relaxed)
        }));
    }

    /// Tells the model checker that the bytes `offset .. offset + len` are read now, so that
    /// it checks this read is ordered after every write of them by the other side. (The
    /// data region is real memory; the model tracks it in 8-byte cells.) Nothing outside
    /// loom.
    #[inline(always)]
    fn shadow_read(&self, _offset: u64, _len: u64) {
        #[cfg(loom)]
        for cell in self.shadow_cells(_offset, _len) {
            cell.with(|_| ());
        }
    }

    /// As [`shadow_read`](Self::shadow_read), for a write.
    #[inline(always)]
    fn shadow_write(&self, _offset: u64, _len: u64) {
        #[cfg(loom)]
        for cell in self.shadow_cells(_offset, _len) {
            cell.with_mut(|_| ());
        }
    }

    #[cfg(loom)]
    fn shadow_cells(&self, offset: u64, len: u64) -> &[loom::cell::UnsafeCell<()>] {
        let first = (offset / 8) as usize;
        let last = (offset + len).div_ceil(8) as usize;
        &self.shadow[first..last.max(first)]
    }

    /// Flushes the whole mapping to storage (`msync`), for rings on a real disk.
    pub(crate) fn sync(&self) -> io::Result<()> {
        match &self.backing {
            Backing::Map { map, .. } => map.flush(),
            Backing::Heap { .. } => Ok(()),
        }
    }
}

/// Where a producer writes its records: the data region's address, size and word mask,
/// copied out of its [`Region`] into the producer's own fields.
///
/// A send computes its record's address from these. Read through the ring's shared state
/// instead (producer → `Arc` → region), they are a chain of dependent loads in front of every
/// record's stores, issued while the previous records' stores are still in flight; keeping
/// them in the producer made sending measurably cheaper (`report --cost`, one thread).
#[derive(Clone, Copy)]
pub(crate) struct RecordWriter {
    data: NonNull<u8>,
    capacity: u64,
    word_mask: u64,
    /// The region, for the model checker's shadow cells.
    #[cfg(loom)]
    region: NonNull<Region>,
}

// SAFETY: a copy of the region's pointers, to memory owned by the region's backing (Send +
// Sync, as for `Region`); it writes only through `write_record`, whose caller must own the
// bytes under the ring protocol.
unsafe impl Send for RecordWriter {}
// SAFETY: see `Send`; `&RecordWriter` gives no access that `write_record`'s contract does not
// already restrict.
unsafe impl Sync for RecordWriter {}

impl RecordWriter {
    /// Writes a whole record at position `pos` (a multiple of 8): its header word, then
    /// `payload`. One bounds check for both (a bug in the caller panics; no value from the
    /// file reaches here unchecked); small payloads are copied inline rather than through a
    /// `memcpy` call, which dominates the cost of sending a message of a few bytes. The header
    /// store is atomic (Relaxed: the producer's Release store of the tail publishes it), as
    /// every access to a header word is.
    ///
    /// # Safety
    /// The [`Region`] this writer came from must still be alive (the producer holds it), and
    /// the producer must own the record's bytes under the ring protocol: they lie between the
    /// published tail and the released head plus the capacity, so the consumer neither reads
    /// nor holds them until they are published.
    #[inline]
    pub(crate) unsafe fn write_record(&self, pos: Position, word: u64, payload: &[u8]) {
        let offset = (pos.get() & self.word_mask) as usize;
        let len = payload.len();
        if len as u64 > self.capacity - 8 - offset as u64 {
            outside(offset as u64, 8 + len as u64, self.capacity);
        }
        #[cfg(loom)]
        {
            // SAFETY: the region is alive (the caller's contract).
            let region = unsafe { self.region.as_ref() };
            region.shadow_write(offset as u64, 8 + len as u64);
        }
        // SAFETY: `offset` is 8-aligned (the mask) and header and payload end within the data
        // region (checked above), which is 8-aligned and alive (the caller's contract); the
        // caller owns these bytes, and header words are only ever accessed atomically.
        unsafe {
            let header = self.data.as_ptr().add(offset);
            std::sync::atomic::AtomicU64::from_ptr(header.cast())
                .store(word.to_le(), std::sync::atomic::Ordering::Relaxed);
            copy_small(payload.as_ptr(), header.add(8), len);
        }
    }
}

/// The panic of an access outside the data region (a bug in the caller), out of line so that
/// a bounds check costs the hot paths a compare or two and no argument set-up.
#[cold]
#[inline(never)]
fn outside(offset: u64, len: u64, capacity: u64) -> ! {
    panic!("data region access {offset}+{len} outside capacity {capacity}")
}

/// Copies `len` bytes from `src` to `dst`, inline for up to 64 bytes (overlapping unaligned
/// word copies), through `memcpy` beyond.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `len` bytes, not overlapping.
#[inline(always)]
unsafe fn copy_small(src: *const u8, dst: *mut u8, len: usize) {
    use std::ptr::{read_unaligned as rd, write_unaligned as wr};
    // SAFETY: (all arms) every access is within `len` bytes of `src`/`dst` (the second
    // copy of each pair ends exactly at `len`), which the caller guarantees are valid.
    unsafe {
        match len {
            0 => {}
            // Below 8 bytes: two overlapping copies as above (a byte loop here compiles to a
            // `memcpy` call, which costs more than the message).
            1..=3 => {
                *dst = *src;
                if len > 1 {
                    wr(
                        dst.add(len - 2).cast::<u16>(),
                        rd(src.add(len - 2).cast::<u16>()),
                    );
                }
            }
            4..=7 => {
                wr(dst.cast::<u32>(), rd(src.cast::<u32>()));
                wr(
                    dst.add(len - 4).cast::<u32>(),
                    rd(src.add(len - 4).cast::<u32>()),
                );
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

#[cfg(test)]
mod tests {
    use super::copy_small;

    /// Every length up to well past the inline cases copies exactly its bytes and touches
    /// nothing around them.
    #[test]
    fn copy_small_copies_exactly_len_bytes() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8).collect();
        for len in 0..=260 {
            for start in 0..8 {
                let mut dst = vec![0xeeu8; 280];
                // SAFETY: `src` has 300 bytes; `dst` has room for `start + len <= 268`.
                unsafe { copy_small(src.as_ptr(), dst.as_mut_ptr().add(start), len) };
                assert!(
                    dst[..start].iter().all(|&b| b == 0xee),
                    "{len} {start}: before"
                );
                assert_eq!(&dst[start..start + len], &src[..len], "{len} {start}");
                assert!(
                    dst[start + len..].iter().all(|&b| b == 0xee),
                    "{len} {start}: after"
                );
            }
        }
    }
}
