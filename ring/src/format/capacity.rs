//! What the numbers of the data region mean. A *position* is a byte counter of the stream
//! that only grows (below `MAX_POSITION`, so no sum of a position and a size overflows); an
//! *offset* is a place in the data region, `0 .. capacity`. A [`Capacity`], validated once
//! when a ring is created or opened, is the only thing that turns one into the other and
//! measures room and distances: no other module masks or subtracts positions by hand.
//!
//! Every helper `debug_assert!`s what it relies on and compiles to the one or two
//! instructions it replaces.

use crate::format::layout::{capacity_is_valid, max_message_len, MAX_POSITION, RECORD_ALIGN};

/// A data region's size: a power of two from `MIN_CAPACITY` to `MAX_CAPACITY` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Capacity(u64);

impl Capacity {
    /// `bytes` as a capacity, if it is one a ring may have.
    pub(crate) const fn new(bytes: u64) -> Option<Capacity> {
        if capacity_is_valid(bytes) {
            Some(Capacity(bytes))
        } else {
            None
        }
    }

    /// The size in bytes.
    #[inline(always)]
    pub(crate) const fn bytes(self) -> u64 {
        self.0
    }

    /// The largest message payload a ring of this capacity takes (`capacity / 2 - 8`).
    #[inline]
    pub(crate) const fn max_message(self) -> u64 {
        max_message_len(self.0)
    }

    /// The offset in the data region of position `pos`: `0 .. capacity`.
    #[inline(always)]
    pub(crate) fn offset(self, pos: u64) -> u64 {
        debug_assert!(pos < MAX_POSITION, "position {pos} beyond MAX_POSITION");
        pos & (self.0 - 1)
    }

    /// The offset of the 8-byte word that holds position `pos` (`offset(pos)` rounded down
    /// to a multiple of 8) in one `and`: for reading a record header at a position that a
    /// hostile writer may have left unaligned.
    #[inline(always)]
    #[cfg_attr(loom, allow(dead_code))] // heap rings (tests) use it under loom
    pub(crate) const fn word_mask(self) -> u64 {
        (self.0 - 1) & !(RECORD_ALIGN - 1)
    }

    /// The bytes from position `pos` to the end of the data region: `1 ..= capacity`.
    #[inline(always)]
    pub(crate) fn room_to_end(self, pos: u64) -> u64 {
        self.0 - self.offset(pos)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn only_valid_capacities_exist_and_they_map_positions_to_offsets() {
        assert!(Capacity::new(3000).is_none());
        assert!(Capacity::new(32).is_none());
        let cap = Capacity::new(4096).unwrap();
        assert_eq!(cap.offset(4096 * 3 + 24), 24);
        assert_eq!(cap.room_to_end(4096 * 3 + 24), 4072);
        assert_eq!(cap.room_to_end(4096), 4096);
        assert_eq!(4101 & cap.word_mask(), 0);
        assert_eq!(4109 & cap.word_mask(), 8);
        assert_eq!(cap.max_message(), 2040);
    }
}
