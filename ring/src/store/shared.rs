//! [`Shared`]: what one ring's producer and consumer in this process share — the mapping,
//! the file, the name errors use, and the process-local words that keep this process's own
//! producer from overwriting what its own consumer holds, whatever another process forges.
//!
//! Below both sides and the [`Ring`](crate::Ring) façade: the sides take it, the façade
//! builds it; it imports neither.

use crate::error::{Error, Result};
use crate::format::layout::HEADER_SIZE;
use crate::format::position::Position;
use crate::store::file::{self, OpenFile};
use crate::store::region::Region;
use crossbeam_utils::CachePadded;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// What a ring's producer and consumer share: the mapping, the file and the name errors use.
pub(crate) struct Shared {
    pub(crate) region: Region,
    /// `None` only for heap rings (model checking).
    pub(crate) file: Option<File>,
    /// The path, or a description such as `memfd:ringfile`.
    pub(crate) name: PathBuf,
    // The four process-local words below are written by the consumer (`local_head`,
    // `consumer_seen_tail`) or the producer (`local_tail`, `producer_left_tail`) of this
    // process, often from two threads: each on its own cache line, so neither side's stores
    // take the line the other reads (or the region's fields above) away from it.
    /// Per consumer slot, the head as this process's consumer of that slot of this `Ring`
    /// last released it, or `NO_LOCAL_HEAD` while there is none. The producer never writes
    /// below any of them, whatever the shared positions in the file say: another process that
    /// forges them forward cannot make our own producer overwrite a message our own consumer
    /// still borrows. (Plain std atomics, not part of the shared protocol, so not
    /// model-checked.) Slot 0's (the one consumer of a ring without slots) is a field of its
    /// own, so that its consumer's per-message release stores it without an index check;
    /// `more_local_heads` holds slots 1 and up.
    local_head: CachePadded<std::sync::atomic::AtomicU64>,
    /// See `local_head`.
    more_local_heads: Box<[CachePadded<std::sync::atomic::AtomicU64>]>,
    /// The highest published tail this process's consumer of this `Ring` has accepted, and
    /// the tail this process's last producer of it left: records below them exist, so a tail
    /// below them is forged, and a producer attaching there would overwrite messages this
    /// process may still hold. (Plain std atomics, not part of the shared protocol.)
    pub(crate) consumer_seen_tail: CachePadded<std::sync::atomic::AtomicU64>,
    /// See `consumer_seen_tail`.
    pub(crate) producer_left_tail: CachePadded<std::sync::atomic::AtomicU64>,
    /// The tail this process's producer of this `Ring` has written and published up to, or
    /// `NO_LOCAL_TAIL` while there is none. While our producer holds the role, no record
    /// above it exists: a shared tail above it was forged by another process, and our
    /// consumer never reads past it — else our producer would write over a "message" our
    /// consumer holds. Stored before the shared tail (Release), so a consumer that sees a
    /// published tail sees a local tail at least as new.
    pub(crate) local_tail: CachePadded<std::sync::atomic::AtomicU64>,
}

/// [`Shared::local_tail`] when no producer of the ring lives in this process.
pub(crate) const NO_LOCAL_TAIL: u64 = u64::MAX;

/// [`Shared::local_head`] when no consumer of the ring lives in this process.
pub(crate) const NO_LOCAL_HEAD: u64 = u64::MAX;

impl Shared {
    pub(crate) fn from_open(opened: OpenFile, name: PathBuf) -> Arc<Shared> {
        Shared::new(opened.region, Some(opened.file), name)
    }

    /// A ring's state in this process, with no role of it held here yet.
    pub(crate) fn new(region: Region, file: Option<File>, name: PathBuf) -> Arc<Shared> {
        let more_local_heads = (1..region.shape().slots())
            .map(|_| CachePadded::new(NO_LOCAL_HEAD.into()))
            .collect();
        Arc::new(Shared {
            region,
            file,
            name,
            local_head: CachePadded::new(NO_LOCAL_HEAD.into()),
            more_local_heads,
            consumer_seen_tail: CachePadded::new(0.into()),
            producer_left_tail: CachePadded::new(0.into()),
            local_tail: CachePadded::new(NO_LOCAL_TAIL.into()),
        })
    }

    /// `head`, or the lowest local head of this process's consumers if one is below it: a
    /// consumer of this ring in this process may hold messages below a head that another
    /// process forged forward, and the producer must never overwrite those.
    #[inline]
    pub(crate) fn below_local_head(&self, head: u64) -> u64 {
        std::iter::once(&self.local_head)
            .chain(self.more_local_heads.iter())
            .fold(head, |low, local| {
                low.min(local.load(std::sync::atomic::Ordering::Acquire))
            })
    }

    /// Records where this process's consumer of slot `slot` has released up to
    /// (`NO_LOCAL_HEAD`: it is gone). Release, before the shared position: a producer of
    /// this process that sees the shared position also sees a local head at least as new.
    #[inline]
    pub(crate) fn set_local_head(&self, slot: u32, head: u64) {
        let local = match slot.checked_sub(1) {
            None => Some(&self.local_head),
            Some(more) => self.more_local_heads.get(more as usize),
        };
        if let Some(local) = local {
            local.store(head, std::sync::atomic::Ordering::Release);
        }
    }

    /// The published tail as a consumer of this process may read up to: Acquire (pairs with
    /// the producer's Release store of the tail, so every record below it is complete), and
    /// never past what our own producer (if this process has one) has written — a tail
    /// beyond that was forged, and the records there are where our producer writes next.
    #[inline]
    pub(crate) fn readable_tail(&self) -> u64 {
        let tail = self
            .region
            .control()
            .published_tail
            .load(crate::os::sync::Ordering::Acquire);
        tail.min(self.local_tail.load(std::sync::atomic::Ordering::Acquire))
    }

    /// The released head and published tail, validated.
    pub(crate) fn positions(&self) -> Result<(Position, Position)> {
        file::positions(&self.region, &self.name)
    }

    /// Fails with [`Error::SizeMismatch`] if the file is no longer as long as the ring (another
    /// process truncated or extended it).
    pub(crate) fn check_len(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let expected = HEADER_SIZE + self.region.capacity().bytes();
        let actual = file
            .metadata()
            .map_err(|error| Error::Io {
                path: self.name.clone(),
                op: "stat",
                error,
            })?
            .len();
        if actual == expected {
            Ok(())
        } else {
            Err(Error::SizeMismatch {
                path: self.name.clone(),
                expected,
                actual,
            })
        }
    }

    /// Flushes the mapping to storage (`msync`).
    pub(crate) fn sync(&self) -> Result<()> {
        self.region.sync().map_err(|error| Error::Io {
            path: self.name.clone(),
            op: "msync",
            error,
        })
    }
}
