//! A ring's shape: its capacity and its number of consumer slots, which together fix the
//! format version, the header size and the file's length.

use crate::format::layout::{header_size, MAX_CONSUMER_SLOTS};
use crate::format::position::Capacity;

/// The capacity and consumer slots of a ring, validated: `1 ..= MAX_CONSUMER_SLOTS` slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    capacity: Capacity,
    slots: u32,
}

impl Shape {
    /// A shape, if `slots` is one a ring may have.
    pub(crate) fn new(capacity: Capacity, slots: u32) -> Option<Shape> {
        (1..=MAX_CONSUMER_SLOTS)
            .contains(&slots)
            .then_some(Shape { capacity, slots })
    }

    /// The data capacity.
    #[inline]
    pub(crate) fn capacity(self) -> Capacity {
        self.capacity
    }

    /// How many consumer slots (1: the version 1 layout, with no slot table).
    #[inline]
    pub(crate) fn slots(self) -> u32 {
        self.slots
    }

    /// Whether the ring has a slot table (format version 2).
    #[inline]
    pub(crate) fn fanout(self) -> bool {
        self.slots > 1
    }

    /// Bytes before the data region.
    #[inline]
    pub(crate) fn header_size(self) -> u64 {
        header_size(self.slots)
    }

    /// The file's length: header and data region.
    #[inline]
    pub(crate) fn file_len(self) -> u64 {
        self.header_size() + self.capacity.bytes()
    }
}
