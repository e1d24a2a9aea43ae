//! Record framing: how a message, a padding filler and the end-of-stream marker are laid
//! out in the data region.
//!
//! ```text
//! +----------------+----------------+--------------------------+---------+
//! | length: u32 LE | type: u32 LE   | payload: `length` bytes  | 0..7 pad|
//! +----------------+----------------+--------------------------+---------+
//! ^ record start, a multiple of 8      next record at start + record_size(length)
//! ```
//!
//! A record never wraps: when the next record would cross the end of the data region, the
//! producer first writes a padding record that fills the region up to its end.

use crate::format::layout::{
    RECORD_ABORT, RECORD_ALIGN, RECORD_DATA, RECORD_END, RECORD_HEADER, RECORD_PADDING,
};
use crate::format::position::{Capacity, Offset, Position};

/// Bytes a record with `len` payload bytes occupies in the data region: the 8-byte header
/// plus the payload, rounded up to 8 (FORMAT.md, "Records").
///
/// ```
/// assert_eq!(ringfile::format::record_size(0), 8);
/// assert_eq!(ringfile::format::record_size(64), 72);
/// assert_eq!(ringfile::format::record_size(65), 80);
/// ```
#[inline]
#[must_use]
pub const fn record_size(len: u64) -> u64 {
    // The header's 8 bytes are a multiple of the alignment, so rounding header and payload
    // up together is the same as rounding the payload up and adding the header, with one
    // add fewer on the consumer's critical path (header word to next record).
    const _: () = assert!(RECORD_HEADER.is_multiple_of(RECORD_ALIGN));
    (len + RECORD_HEADER + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// The header word of a record, as stored (little-endian `u64`: length low, type high).
#[inline]
pub(crate) const fn encode(kind: u32, len: u32) -> u64 {
    (len as u64) | ((kind as u64) << 32)
}

/// A record as found in the data region, after its header passed validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// A message whose payload starts at `payload_offset` in the data region.
    Data { payload_offset: Offset, len: u64 },
    /// The end-of-stream marker.
    End,
    /// The producer stopped on an error; its reason starts at `payload_offset`.
    Abort { payload_offset: Offset, len: u64 },
}

/// Why a record header is rejected.
pub(crate) type Invalid = &'static str;

/// Checks and decodes the header word `word` of the record at position `pos`, where
/// `published` is the end of the published records. Returns the record and the position
/// after it, or `Ok(None)`-like padding handling via [`Decoded::Padding`].
///
/// Nothing in the file is trusted: a length that reaches past the end of the data region or
/// past the published tail, an unknown type, or a padding record that does not end exactly
/// at the end of the region is reported as invalid.
#[inline]
pub(crate) fn decode(
    word: u64,
    pos: Position,
    published: Position,
    capacity: Capacity,
    max_message: u64,
) -> Result<Decoded, Invalid> {
    let len = word & 0xffff_ffff;
    let kind = (word >> 32) as u32;
    let offset = capacity.offset(pos);
    let room = capacity.room_to_end(pos);
    let available = published - pos;
    match kind {
        RECORD_DATA | RECORD_ABORT => {
            if len > max_message {
                return Err("message length exceeds the ring's maximum");
            }
            let size = record_size(len);
            if size > room {
                return Err("message record crosses the end of the data region");
            }
            if size > available {
                return Err("message record extends past the published tail");
            }
            let payload_offset = offset + RECORD_HEADER;
            let record = if kind == RECORD_DATA {
                Record::Data {
                    payload_offset,
                    len,
                }
            } else {
                Record::Abort {
                    payload_offset,
                    len,
                }
            };
            Ok(Decoded::Record(record, pos + size))
        }
        RECORD_PADDING => {
            if RECORD_HEADER + len != room {
                return Err("padding record does not end at the end of the data region");
            }
            if room > available {
                return Err("padding record extends past the published tail");
            }
            Ok(Decoded::Padding(pos + room))
        }
        RECORD_END => {
            if len != 0 {
                return Err("end-of-stream record has a non-zero length");
            }
            if RECORD_HEADER > available {
                return Err("end-of-stream record extends past the published tail");
            }
            Ok(Decoded::Record(Record::End, pos + RECORD_HEADER))
        }
        _ => Err("unknown record type"),
    }
}

/// [`decode`] for the common case only: a data record that is valid at `pos` (with the
/// same checks), or `None` for anything else — another kind of record, or one that
/// `decode` would reject — which the caller then hands to `decode`. A few compares, to be
/// inlined into the receive path.
#[inline(always)]
pub(crate) fn decode_data(
    word: u64,
    pos: Position,
    published: Position,
    capacity: Capacity,
    max_message: u64,
) -> Option<(Record, Position)> {
    let (len, kind) = (word & 0xffff_ffff, (word >> 32) as u32);
    let size = record_size(len);
    let offset = capacity.offset(pos);
    // `pos + size` cannot overflow: a position below 2^62 (or a few capacities past it) plus
    // a size below 2^33.
    (kind == RECORD_DATA
        && len <= max_message
        && size <= capacity.room_to_end(pos)
        && pos + size <= published)
        .then_some((
            Record::Data {
                payload_offset: offset + RECORD_HEADER,
                len,
            },
            pos + size,
        ))
}

/// The header of the last data record a consumer found, decoded. Streams often repeat a
/// length, and a record whose header word equals this one is decoded by comparing one word:
/// its size is known before the word arrives, so the next record's position does not wait
/// for this one's header (the processor predicts the compare and runs ahead), where decoding
/// the length would chain each record's load to the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LastData {
    /// Always a data header that [`decode_data`] accepted (or the empty message's, which it
    /// always accepts when it fits), so a match decodes as `decode_data` would.
    word: u64,
    len: u64,
    size: u64,
}

impl LastData {
    /// The empty message's header, before any record is found.
    pub(crate) const fn new() -> LastData {
        LastData {
            word: encode(RECORD_DATA, 0),
            len: 0,
            size: record_size(0),
        }
    }

    /// [`decode_data`] for a `word` equal to the remembered one; `None` for any other word,
    /// or if the record does not fit (the caller then decodes it in full).
    #[inline(always)]
    pub(crate) fn decode(
        &self,
        word: u64,
        pos: Position,
        published: Position,
        capacity: Capacity,
    ) -> Option<(Record, Position)> {
        if word != self.word {
            return None;
        }
        let offset = capacity.offset(pos);
        (self.size <= capacity.room_to_end(pos) && pos + self.size <= published).then_some((
            Record::Data {
                payload_offset: offset + RECORD_HEADER,
                len: self.len,
            },
            pos + self.size,
        ))
    }

    /// Remembers the data record `decode_data` found at `pos` for `word`.
    #[inline(always)]
    pub(crate) fn remember(&mut self, word: u64, pos: Position, found: (Record, Position)) {
        if let (Record::Data { len, .. }, next) = found {
            *self = LastData {
                word,
                len,
                size: next - pos,
            };
        }
    }
}

/// Result of [`decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A record and the position just after it.
    Record(Record, Position),
    /// Padding up to the end of the region; the next record is at the given position.
    Padding(Position),
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: u64 = 1024;
    const MAX: u64 = CAP / 2 - 8;
    const CAPACITY: Capacity = match Capacity::new(CAP) {
        Some(c) => c,
        None => panic!("1024 is a capacity"),
    };

    fn at(raw: u64) -> Position {
        Position::new(raw).expect("a position")
    }

    /// `decode_data` accepts exactly the data records `decode` accepts, and says the same.
    #[test]
    fn fast_data_decoding_agrees_with_decode() {
        let kinds = [RECORD_DATA, RECORD_PADDING, RECORD_END, RECORD_ABORT, 0, 7];
        let lens = [
            0,
            1,
            7,
            8,
            9,
            100,
            MAX - 1,
            MAX,
            MAX + 1,
            CAP,
            u32::MAX as u64,
        ];
        for kind in kinds {
            for len in lens {
                let word = encode(kind, len as u32);
                for raw in (0..3 * CAP).step_by(8) {
                    let pos = at(raw);
                    for published in [0, 8, 16, 120, CAP / 2, CAP].map(|ahead| pos + ahead) {
                        let fast = decode_data(word, pos, published, CAPACITY, MAX);
                        let full = decode(word, pos, published, CAPACITY, MAX);
                        match fast {
                            Some((record, next)) => {
                                assert_eq!(full, Ok(Decoded::Record(record, next)))
                            }
                            None => assert!(
                                kind != RECORD_DATA || full.is_err(),
                                "{kind} {len} {pos} {published}: {full:?}"
                            ),
                        }
                    }
                }
            }
        }
    }

    /// A remembered header decodes a matching word exactly as `decode_data` does, and
    /// nothing else.
    #[test]
    fn remembered_header_decodes_as_decode_data() {
        let lens = [0, 1, 7, 8, 9, 100, MAX - 1, MAX];
        let mut hints = vec![LastData::new()];
        for len in lens {
            let word = encode(RECORD_DATA, len as u32);
            let found = decode_data(word, at(0), at(CAP), CAPACITY, MAX).expect("a valid record");
            let mut hint = LastData::new();
            hint.remember(word, at(0), found);
            hints.push(hint);
        }
        let words: Vec<u64> = [RECORD_DATA, RECORD_PADDING, RECORD_END, 0]
            .iter()
            .flat_map(|&kind| lens.iter().map(move |&len| encode(kind, len as u32)))
            .chain([encode(RECORD_DATA, (MAX + 1) as u32), u64::MAX])
            .collect();
        for hint in &hints {
            for &word in &words {
                for raw in (0..3 * CAP).step_by(8) {
                    let pos = at(raw);
                    for published in [0, 8, 16, 120, CAP / 2, CAP].map(|ahead| pos + ahead) {
                        let fast = hint.decode(word, pos, published, CAPACITY);
                        let full = decode_data(word, pos, published, CAPACITY, MAX);
                        if word == hint.word {
                            assert_eq!(fast, full, "{hint:?} {word:#x} {pos} {published}");
                        } else {
                            assert_eq!(fast, None);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sizes_round_up_to_eight() {
        assert_eq!(record_size(0), 8);
        assert_eq!(record_size(1), 16);
        assert_eq!(record_size(8), 16);
        assert_eq!(record_size(9), 24);
    }

    #[test]
    fn data_record_round_trips() {
        let word = encode(RECORD_DATA, 5);
        assert_eq!(
            decode(word, at(CAP + 16), at(CAP + 32), CAPACITY, MAX),
            Ok(Decoded::Record(
                Record::Data {
                    payload_offset: CAPACITY.offset(at(24)),
                    len: 5
                },
                at(CAP + 32)
            ))
        );
    }

    #[test]
    fn rejects_what_does_not_fit() {
        // past the published tail
        assert!(decode(encode(RECORD_DATA, 9), at(0), at(16), CAPACITY, MAX).is_err());
        // across the end of the region
        assert!(decode(
            encode(RECORD_DATA, 16),
            at(CAP - 16),
            at(CAP + 64),
            CAPACITY,
            MAX
        )
        .is_err());
        // larger than the maximum
        assert!(decode(
            encode(RECORD_DATA, MAX as u32 + 1),
            at(0),
            at(CAP),
            CAPACITY,
            MAX
        )
        .is_err());
        // unknown type, and the all-zero word of never-written memory
        assert!(decode(encode(7, 0), at(0), at(64), CAPACITY, MAX).is_err());
        assert!(decode(0, at(0), at(64), CAPACITY, MAX).is_err());
        // padding that does not reach the end exactly
        assert!(decode(
            encode(RECORD_PADDING, 8),
            at(CAP - 32),
            at(CAP),
            CAPACITY,
            MAX
        )
        .is_err());
        assert_eq!(
            decode(
                encode(RECORD_PADDING, 24),
                at(CAP - 32),
                at(CAP),
                CAPACITY,
                MAX
            ),
            Ok(Decoded::Padding(at(CAP)))
        );
        // end marker with a length
        assert!(decode(encode(RECORD_END, 1), at(0), at(64), CAPACITY, MAX).is_err());
        // an abort record is checked as a message is
        assert!(decode(encode(RECORD_ABORT, 9), at(0), at(16), CAPACITY, MAX).is_err());
        assert_eq!(
            decode(encode(RECORD_ABORT, 3), at(8), at(24), CAPACITY, MAX),
            Ok(Decoded::Record(
                Record::Abort {
                    payload_offset: CAPACITY.offset(at(16)),
                    len: 3
                },
                at(24)
            ))
        );
        assert_eq!(
            decode(encode(RECORD_END, 0), at(0), at(8), CAPACITY, MAX),
            Ok(Decoded::Record(Record::End, at(8)))
        );
    }
}
