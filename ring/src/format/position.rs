//! What the numbers of the data region mean, as types. A [`Position`] is a byte counter of
//! the stream that only grows (below `MAX_POSITION`, so no sum of a position and a record
//! size overflows); an [`Offset`] is a place in the data region, `0 .. capacity`. A
//! [`Capacity`], validated once when a ring is created or opened, is the only thing that turns
//! one into the other and measures room: no other module masks positions by hand.
//!
//! The file stores positions as bare `u64`s that any process may have forged, so a value
//! read from it becomes a `Position` only through [`Position::new`], which checks the bound;
//! everything else is arithmetic on positions already checked. Each helper `debug_assert!`s
//! what it relies on (as rtrb's index helpers do) and compiles to the one or two instructions
//! it replaces: the types are `repr(transparent)` and every method is inlined.

use crate::format::layout::{capacity_is_valid, max_message_len, MAX_POSITION, RECORD_ALIGN};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// The largest record (header, payload, alignment) any ring holds: what one step of a
/// position may add. (`MAX_CAPACITY / 2`, far below this.)
const MAX_STEP: u64 = 1 << 40;

/// A byte counter of the stream: where a record starts or ends, counted from the ring's
/// creation; positions only grow. Invariant: one read from the file is below `MAX_POSITION`
/// (`2^62`, checked by [`Position::new`]), and one computed from it (adding record sizes or
/// a capacity, each at most `2^40`) stays below `2 * MAX_POSITION`: no sum overflows.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub(crate) struct Position(u64);

impl Position {
    /// `raw` as a position, if it is below `MAX_POSITION`: for values read from the file,
    /// which another process may have forged.
    #[inline(always)]
    pub(crate) const fn new(raw: u64) -> Option<Position> {
        if raw < MAX_POSITION {
            Some(Position(raw))
        } else {
            None
        }
    }

    /// The byte count, as the file stores it.
    #[inline(always)]
    pub(crate) const fn get(self) -> u64 {
        self.0
    }

    /// Whether a record may start here (a multiple of `RECORD_ALIGN`).
    #[inline(always)]
    pub(crate) const fn is_aligned(self) -> bool {
        self.0.is_multiple_of(RECORD_ALIGN)
    }
}

impl Add<u64> for Position {
    type Output = Position;

    /// The position `bytes` further on (one record or a ring's capacity at most).
    #[inline(always)]
    fn add(self, bytes: u64) -> Position {
        debug_assert!(bytes <= MAX_STEP, "a step of {bytes} bytes");
        let next = self.0 + bytes;
        debug_assert!(
            next < 2 * MAX_POSITION,
            "position {next} far beyond MAX_POSITION"
        );
        Position(next)
    }
}

impl AddAssign<u64> for Position {
    #[inline(always)]
    fn add_assign(&mut self, bytes: u64) {
        *self = *self + bytes;
    }
}

impl Sub for Position {
    type Output = u64;

    /// The bytes from `earlier` up to `self`, which is not before it.
    #[inline(always)]
    fn sub(self, earlier: Position) -> u64 {
        debug_assert!(earlier <= self, "position {self} before {earlier}");
        self.0 - earlier.0
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A place in the data region. Invariant: below the ring's capacity (an offset plus the
/// length of what is read or written there is checked against it where memory is touched,
/// in `Region`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Offset(u64);

impl Offset {
    /// The byte offset from the start of the data region.
    #[inline(always)]
    pub(crate) const fn get(self) -> u64 {
        self.0
    }
}

impl Add<u64> for Offset {
    type Output = Offset;

    /// The offset `bytes` further on, in the same record.
    #[inline(always)]
    fn add(self, bytes: u64) -> Offset {
        debug_assert!(bytes <= MAX_STEP, "a step of {bytes} bytes");
        Offset(self.0 + bytes)
    }
}

/// A data region's size: a power of two from `MIN_CAPACITY` to `MAX_CAPACITY` bytes.
/// Invariant: [`capacity_is_valid`], checked once by [`Capacity::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
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
    pub(crate) fn offset(self, pos: Position) -> Offset {
        debug_assert!(self.0.is_power_of_two());
        Offset(pos.0 & (self.0 - 1))
    }

    /// The mask that turns a position into the offset of the 8-byte word that holds it
    /// (`offset(pos)` rounded down to a multiple of 8) in one `and`: for reading a record
    /// header at a position that a hostile writer may have left unaligned. `Region` keeps it
    /// beside its data pointer, so that the consumer's step from one header to the next is
    /// one instruction.
    #[inline(always)]
    #[cfg_attr(loom, allow(dead_code))] // heap rings (tests) use it under loom
    pub(crate) const fn word_mask(self) -> u64 {
        (self.0 - 1) & !(RECORD_ALIGN - 1)
    }

    /// The bytes from position `pos` to the end of the data region: `1 ..= capacity`.
    #[inline(always)]
    pub(crate) fn room_to_end(self, pos: Position) -> u64 {
        self.0 - self.offset(pos).0
    }

    /// How far a writer may go while the reader's released position is `head`: one
    /// capacity beyond it.
    #[inline(always)]
    pub(crate) fn limit(self, head: Position) -> Position {
        head + self.0
    }

    /// Whether `ahead` is at most one capacity beyond `behind` (and not before it): what a
    /// published tail may be, seen from a released head.
    #[inline(always)]
    pub(crate) fn spans(self, behind: Position, ahead: Position) -> bool {
        behind <= ahead && ahead.0 - behind.0 <= self.0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn at(raw: u64) -> Position {
        Position::new(raw).unwrap()
    }

    #[test]
    fn only_valid_capacities_exist_and_they_map_positions_to_offsets() {
        assert!(Capacity::new(3000).is_none());
        assert!(Capacity::new(32).is_none());
        let cap = Capacity::new(4096).unwrap();
        assert_eq!(cap.offset(at(4096 * 3 + 24)).get(), 24);
        assert_eq!(cap.room_to_end(at(4096 * 3 + 24)), 4072);
        assert_eq!(cap.room_to_end(at(4096)), 4096);
        assert_eq!(4101 & cap.word_mask(), 0);
        assert_eq!(4109 & cap.word_mask(), 8);
        assert_eq!(cap.max_message(), 2040);
        assert_eq!(cap.limit(at(100)), at(4196));
        assert!(cap.spans(at(100), at(4196)) && cap.spans(at(100), at(100)));
        assert!(!cap.spans(at(100), at(4197)) && !cap.spans(at(100), at(99)));
    }

    #[test]
    fn positions_from_the_file_are_checked_and_measure_distances() {
        assert!(Position::new(MAX_POSITION).is_none());
        assert!(Position::new(u64::MAX).is_none());
        assert_eq!(
            Position::new(MAX_POSITION - 1).map(Position::get),
            Some(MAX_POSITION - 1)
        );
        assert_eq!(at(72) - at(8), 64);
        assert_eq!(at(8) + 64, at(72));
        assert!(at(16).is_aligned() && !at(12).is_aligned());
        assert_eq!(format!("{:?} {}", at(5), at(5)), "5 5");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "before")]
    fn a_distance_backwards_is_a_bug_caught_in_debug_builds() {
        let _ = at(8) - at(16);
    }
}
