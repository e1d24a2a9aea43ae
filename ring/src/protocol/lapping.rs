//! Readers the producer may lap (format version 2): lossy consumers, which never hold the
//! producer back, and consumers under a `max_lag` policy, which it may stop waiting for.
//! The only module that knows how such a reader proves that what it read is whole, which
//! message a position holds, and where a reader that was overtaken goes on.
//!
//! # Whole or overtaken
//!
//! The producer writes position `x` only below its gate plus the capacity, and it stores
//! every gate it relies on (`slots::raise_gate`, sequentially consistent) and then issues a
//! full fence before it writes the bytes that gate lets it overwrite. A reader at position
//! `p` copies what it needs (the header, the payload) with atomic loads, then issues an
//! Acquire fence and loads the gate:
//!
//! SYNC POINT (the producer's fence after its gate store, the reader's fence before its gate
//! load): if any word the reader copied was written by a lap past `p`, the producer's fence
//! comes before that write, so it synchronises with the reader's fence, and the reader's load
//! sees the gate the producer stored for that lap — one above `p`. So a gate at or below `p`
//! proves the copy whole: every byte from `p` on is the one published there. A gate above `p`
//! proves nothing either way, and the reader treats the copy as overtaken. (A seqlock, with
//! the gate as its sequence word.)
//!
//! # Which message a position holds
//!
//! A slot's `released_messages` is the index of the message at its released position: the
//! number of messages published before it. To learn the index of a position it did not reach
//! by reading, a reader needs the published tail and the message counter stored with it as
//! one pair, which a version 2 producer publishes under a sequence word of its own
//! ([`PublishSeq`]), and it counts the records between the position and that tail.

use crate::format::layout::{Control, Traffic};
use crate::format::position::{Capacity, Position};
use crate::format::record::{decode, Decoded, Record};
use crate::os::sync::{fence, Ordering};
use crate::store::region::Region;

/// The producer's side of the published pair's sequence word (`Traffic::seq`): odd while
/// the tail and the counters are being stored, even once both are.
#[derive(Debug)]
pub(crate) struct PublishSeq {
    /// The even value stored last.
    even: u64,
}

impl PublishSeq {
    /// Goes on from the word in the file (an odd one, left by a producer that died while
    /// publishing, rounds up).
    pub(crate) fn resume(traffic: &Traffic) -> PublishSeq {
        let seq = traffic.seq.load(Ordering::Relaxed);
        PublishSeq {
            even: seq.wrapping_add(seq & 1),
        }
    }

    /// Before the counters and the tail are stored.
    #[inline(always)]
    pub(crate) fn begin(&self, traffic: &Traffic) {
        traffic
            .seq
            .store(self.even.wrapping_add(1), Ordering::Relaxed);
        // SYNC POINT (published pair): this Release fence orders the odd word before the
        // counter and tail stores that follow; a reader that sees any of them and then
        // fences (Acquire) sees the odd word or later on its second load.
        fence(Ordering::Release);
    }

    /// After the counters and the tail were stored.
    #[inline(always)]
    pub(crate) fn end(&mut self, traffic: &Traffic) {
        self.even = self.even.wrapping_add(2);
        // Release: a reader that Acquire-loads this value sees the counters and the tail
        // stored before it.
        traffic.seq.store(self.even, Ordering::Release);
    }
}

/// The published tail and the number of messages published below it, as one pair. When no
/// consistent pair can be read (a producer that died while publishing leaves the sequence
/// word odd), the last values read: the count may then be off by that last publish.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Published {
    pub(crate) tail: u64,
    pub(crate) messages: u64,
}

/// Reads the published pair (see [`PublishSeq`]).
pub(crate) fn published(control: &Control) -> Published {
    let traffic = &control.published;
    let mut tries = 0u32;
    loop {
        let s1 = traffic.seq.load(Ordering::Acquire);
        // Acquire: every record below the tail is complete (as any reader of the tail).
        let tail = control.published_tail.load(Ordering::Acquire);
        let messages = traffic.messages.load(Ordering::Relaxed);
        // SYNC POINT (published pair): pairs with the producer's Release fence in `begin`.
        fence(Ordering::Acquire);
        let s2 = traffic.seq.load(Ordering::Relaxed);
        tries += 1;
        if (s1 == s2 && s1 & 1 == 0) || tries >= 1000 {
            return Published { tail, messages };
        }
        crate::os::sync::retry_pause(tries);
    }
}

/// Whether what a reader copied from position `from` on is whole (module docs): the gate has
/// not passed `from`.
#[inline]
pub(crate) fn whole_since(control: &Control, from: Position) -> bool {
    // SYNC POINT (gate): pairs with the producer's fence after its gate store (module docs).
    fence(Ordering::Acquire);
    control.released_head.load(Ordering::Relaxed) <= from.get()
}

/// The number of data records from `from` up to `to`, read header by header; `None` if a
/// header does not decode (the records were overwritten meanwhile, or the file is damaged).
/// The caller proves the headers whole (with [`whole_since`], or by holding the producer
/// back from `from`).
pub(crate) fn count_records(region: &Region, from: Position, to: Position) -> Option<u64> {
    let capacity: Capacity = region.capacity();
    if !capacity.spans(from, to) {
        return None;
    }
    let max = capacity.max_message();
    let (mut pos, mut count) = (from, 0u64);
    while pos != to {
        let word = region.read_word(pos);
        match decode(word, pos, to, capacity, max).ok()? {
            Decoded::Padding(next) => pos = next,
            Decoded::Record(Record::Data { .. }, next) => {
                count += 1;
                pos = next;
            }
            Decoded::Record(_, next) => pos = next,
        }
    }
    Some(count)
}

/// A position on a record boundary and the index of the message there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) pos: Position,
    pub(crate) index: u64,
}

/// The published tail as an anchor (the next message published will be there); `None` for
/// a tail that is not a position (a damaged file).
pub(crate) fn latest(control: &Control) -> Option<Anchor> {
    let now = published(control);
    Position::new(now.tail)
        .filter(|tail| tail.is_aligned())
        .map(|pos| Anchor {
            pos,
            index: now.messages,
        })
}

/// The oldest message still whole in the ring, for a reader that does not hold the
/// producer back: the gate, with its index counted back from the published pair. A few
/// tries while the producer moves the gate meanwhile; then the published tail (every message
/// in the ring is then given up: the producer laps faster than the records can be counted).
pub(crate) fn oldest(region: &Region) -> Option<Anchor> {
    let control = region.control();
    for _ in 0..4 {
        let gate = control.released_head.load(Ordering::Acquire);
        let now = published(control);
        let (Some(from), Some(to)) = (Position::new(gate), Position::new(now.tail)) else {
            break;
        };
        if !from.is_aligned() || !to.is_aligned() {
            break;
        }
        if let Some(count) = count_records(region, from, to) {
            if whole_since(control, from) && count <= now.messages {
                return Some(Anchor {
                    pos: from,
                    index: now.messages - count,
                });
            }
        }
    }
    latest(control)
}

/// The index of the message at `pos`, a record boundary at or after the gate that the
/// producer does not overwrite meanwhile (the caller's own slot holds it back from `pos`);
/// `None` if the records from `pos` to the tail do not decode.
pub(crate) fn index_of(region: &Region, pos: Position) -> Option<u64> {
    let now = published(region.control());
    let tail = Position::new(now.tail)?;
    let count = count_records(region, pos, tail)?;
    now.messages.checked_sub(count)
}
