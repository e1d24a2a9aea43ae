//! Generated messages (`producer --gen`) and their checker (`consumer --verify`).
//!
//! Layout, little-endian, by message size:
//!
//! ```text
//! 24 bytes and more ("full"):
//!   0  u32  stream id    (random per producer run, never 0)
//!   4  u32  check        mix(stream, seq, timestamp): catches a damaged header
//!   8  u64  sequence     0, 1, 2, ... within the stream
//!  16  u64  timestamp    CLOCK_MONOTONIC ns when sent (same clock in every process)
//!  24  ...  filler       bytes of words w(seq, k) (below): catches damaged payload
//!
//! 8 to 23 bytes ("compact"; no stream id, no header check, so a damaged timestamp goes
//! unnoticed):
//!   0  u32  sequence     low 32 bits; a new stream restarts at 0
//!   4  u32  timestamp    low 32 bits of CLOCK_MONOTONIC ns (latency is recovered modulo
//!                        2^32 ns, so latencies over 4.29 s are not measured)
//!   8  ...  filler       as above (none in an 8-byte message, whose damage shows only
//!                        as a break in the sequence)
//! ```
//!
//! The filler is little-endian 64-bit words laid end to end and cut at the message's end. Word
//! `k` is `PATTERN[k % 509] ^ key(seq, k / 509)`: a fixed table of 509 pseudo-random words (a
//! prime count, so no power-of-two shift maps it onto itself) XOR a key mixed from the
//! sequence number and the block index. Every byte of every message depends on its sequence
//! number, and every word on its position: a torn, misplaced or stale message fails the check.
//! Filling and checking are a XOR over a table, which vectorizes: at 64 KiB they cost about
//! what copying the message does.

/// Smallest generated message.
pub const MIN_SIZE: usize = 8;
/// Size from which messages carry a stream id and a header check.
pub const FULL_SIZE: usize = 24;

#[inline]
fn check_word(stream: u32, seq: u64, timestamp: u64) -> u32 {
    let h = (u64::from(stream) ^ seq.rotate_left(17) ^ timestamp.rotate_left(41))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) as u32
}

/// Words in the filler pattern: a prime, so that no shift by a power of two (a cache line, a
/// page, a ring wrap) maps the pattern onto itself.
const PATTERN_WORDS: usize = 509;

/// splitmix64's finaliser: a bijective mix of all 64 bits.
const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The fixed pseudo-random words the filler is made of.
static PATTERN: [u64; PATTERN_WORDS] = {
    let mut words = [0u64; PATTERN_WORDS];
    let mut i = 0;
    while i < PATTERN_WORDS {
        words[i] = mix(i as u64 ^ 0xD6E8_FEB8_6659_FD93);
        i += 1;
    }
    words
};

/// The key of block `block` (words `block * PATTERN_WORDS ..`) of message `seq`: every word
/// of the block is a pattern word XOR this.
#[inline]
fn block_key(seq: u64, block: u64) -> u64 {
    mix(seq ^ 0x9E37_79B9_7F4A_7C15) ^ block.wrapping_mul(0xA076_1D64_78BD_642F)
}

#[inline]
fn write_filler(buf: &mut [u8], seq: u64) {
    for (block, bytes) in buf.chunks_mut(PATTERN_WORDS * 8).enumerate() {
        let key = block_key(seq, block as u64);
        let whole = bytes.len() / 8;
        let mut words = bytes.chunks_exact_mut(8);
        // XOR with one key per block over a fixed table: this loop vectorizes, so filling
        // costs about what copying does.
        for (word, pattern) in (&mut words).zip(&PATTERN) {
            word.copy_from_slice(&(pattern ^ key).to_le_bytes());
        }
        let rest = words.into_remainder();
        let n = rest.len();
        if n > 0 {
            let last = PATTERN[whole] ^ key;
            rest.copy_from_slice(&last.to_le_bytes()[..n]);
        }
    }
}

#[inline]
fn filler_ok(buf: &[u8], seq: u64) -> bool {
    buf.chunks(PATTERN_WORDS * 8)
        .enumerate()
        .all(|(block, bytes)| {
            let key = block_key(seq, block as u64);
            let mut words = bytes.chunks_exact(8);
            // Every difference ORed together, no early exit: this loop vectorizes too.
            let diff = (&mut words)
                .zip(&PATTERN)
                .fold(0u64, |diff, (word, pattern)| {
                    diff | (u64::from_le_bytes(word.try_into().unwrap()) ^ pattern ^ key)
                });
            let rest = words.remainder();
            diff == 0
                && (rest.is_empty()
                    || rest == &(PATTERN[bytes.len() / 8] ^ key).to_le_bytes()[..rest.len()])
        })
}

/// Writes generated message `seq` of `stream` into `buf` (its length is the message size,
/// at least [`MIN_SIZE`]).
#[inline]
pub fn fill(buf: &mut [u8], stream: u32, seq: u64, timestamp: u64) {
    debug_assert!(buf.len() >= MIN_SIZE);
    if buf.len() >= FULL_SIZE {
        buf[0..4].copy_from_slice(&stream.to_le_bytes());
        buf[4..8].copy_from_slice(&check_word(stream, seq, timestamp).to_le_bytes());
        buf[8..16].copy_from_slice(&seq.to_le_bytes());
        buf[16..24].copy_from_slice(&timestamp.to_le_bytes());
        write_filler(&mut buf[24..], seq);
    } else {
        buf[0..4].copy_from_slice(&(seq as u32).to_le_bytes());
        buf[4..8].copy_from_slice(&(timestamp as u32).to_le_bytes());
        write_filler(&mut buf[8..], seq);
    }
}

/// What a generated message says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Stream id (`None` for compact messages).
    pub stream: Option<u32>,
    /// Sequence number (low 32 bits only, for compact messages).
    pub seq: u64,
    /// Send time (low 32 bits only, for compact messages).
    pub timestamp: u64,
}

/// Reads and checks a generated message.
pub fn decode(msg: &[u8]) -> Result<Decoded, String> {
    let u32_at = |i: usize| u32::from_le_bytes(msg[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(msg[i..i + 8].try_into().unwrap());
    if msg.len() < MIN_SIZE {
        return Err(format!(
            "{}-byte message is shorter than a generated message ({MIN_SIZE} bytes)",
            msg.len()
        ));
    }
    if msg.len() >= FULL_SIZE {
        let (stream, check, seq, timestamp) = (u32_at(0), u32_at(4), u64_at(8), u64_at(16));
        if check != check_word(stream, seq, timestamp) {
            return Err(format!("damaged header (stream {stream}, sequence {seq})"));
        }
        if !filler_ok(&msg[24..], seq) {
            return Err(format!("damaged payload (stream {stream}, sequence {seq})"));
        }
        Ok(Decoded {
            stream: Some(stream),
            seq,
            timestamp,
        })
    } else {
        let seq = u64::from(u32_at(0));
        if !filler_ok(&msg[8..], seq) {
            return Err(format!("damaged payload (sequence {seq})"));
        }
        Ok(Decoded {
            stream: None,
            seq,
            timestamp: u64::from(u32_at(4)),
        })
    }
}

/// One-way latency in ns from a decoded send time to `now` (both CLOCK_MONOTONIC).
pub fn latency_ns(decoded: &Decoded, now: u64) -> u64 {
    match decoded.stream {
        Some(_) => now.saturating_sub(decoded.timestamp),
        None => u64::from((now as u32).wrapping_sub(decoded.timestamp as u32)),
    }
}

/// Checks that sequence numbers within a stream are consecutive. A checker may start
/// mid-stream (a restarted consumer), and a new stream may start at any time.
#[derive(Debug, Default)]
pub struct SequenceChecker {
    expected: Option<(Option<u32>, u64)>,
    /// Messages that failed a check.
    pub errors: u64,
    /// Streams seen (a new stream id, or a compact sequence restarting at 0).
    pub streams: u64,
    /// For a lossy consumer: a forward gap in a stream's sequence is counted in `skipped`
    /// instead of being an error (its caller compares it with what the consumer missed).
    pub allow_gaps: bool,
    /// Messages skipped by forward gaps, under `allow_gaps`.
    pub skipped: u64,
}

impl SequenceChecker {
    /// Checks one message; returns a description of what is wrong with it, if anything.
    pub fn check(&mut self, msg: &[u8]) -> Option<String> {
        let decoded = match decode(msg) {
            Ok(d) => d,
            Err(e) => {
                self.errors += 1;
                return Some(e);
            }
        };
        let problem = match self.expected {
            Some((stream, next)) if stream == decoded.stream => {
                let seq_matches = match decoded.stream {
                    Some(_) => decoded.seq == next,
                    None => decoded.seq == next & 0xffff_ffff,
                };
                let expected = match decoded.stream {
                    Some(_) => next,
                    None => next & 0xffff_ffff,
                };
                if seq_matches || (decoded.stream.is_none() && decoded.seq == 0) {
                    if !seq_matches {
                        self.streams += 1; // compact stream restarted at 0
                    }
                    None
                } else if self.allow_gaps && decoded.seq > expected {
                    self.skipped += decoded.seq - expected;
                    None
                } else {
                    Some(format!(
                        "{}expected sequence {}, got {}",
                        decoded
                            .stream
                            .map_or(String::new(), |s| format!("stream {s}: ")),
                        next,
                        decoded.seq
                    ))
                }
            }
            _ => {
                self.streams += 1;
                None
            }
        };
        self.expected = Some((decoded.stream, decoded.seq.wrapping_add(1)));
        if problem.is_some() {
            self.errors += 1;
        }
        problem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_size() {
        for size in MIN_SIZE..100 {
            let mut buf = vec![0; size];
            fill(&mut buf, 7, 12345, 999_000);
            let d = decode(&buf).unwrap();
            assert_eq!(d.seq, 12345);
            if size >= FULL_SIZE {
                assert_eq!(d.stream, Some(7));
                assert_eq!(d.timestamp, 999_000);
            }
            let mut previous = vec![0; size];
            fill(&mut previous, 7, 12344, 998_000);
            for i in 0..size {
                if size < FULL_SIZE && (4..8).contains(&i) {
                    continue; // a compact message's timestamp is not checked (no room)
                }
                let mut bad = buf.clone();
                bad[i] ^= 0x10;
                // What --verify does: decode, then check the sequence.
                let mut checker = SequenceChecker::default();
                assert!(checker.check(&previous).is_none());
                assert!(
                    checker.check(&bad).is_some(),
                    "size {size}: flipped byte {i} unnoticed"
                );
            }
        }
        assert!(decode(&[0; 7]).is_err());
        // 8-byte messages: a damaged sequence number breaks the sequence.
        let mut c = SequenceChecker::default();
        let mut buf = [0u8; 8];
        for seq in 0..3 {
            fill(&mut buf, 1, seq, 0);
            if seq == 2 {
                buf[0] ^= 0x10;
            }
            let problem = c.check(&buf);
            assert_eq!(problem.is_some(), seq == 2);
        }
    }

    /// Large messages (several filler blocks, a ragged end): any flipped byte, a stale copy
    /// of another message's bytes, and a block or page moved within the message are caught.
    #[test]
    fn large_messages_catch_flips_stale_bytes_and_moved_pages() {
        for size in [PATTERN_WORDS * 8 + 24, 65_536, 65_536 + 13] {
            let mut buf = vec![0; size];
            fill(&mut buf, 3, 77, 1);
            assert!(decode(&buf).is_ok());
            for i in (24..size).step_by(97).chain([size - 1]) {
                let mut bad = buf.clone();
                bad[i] ^= 0x01;
                assert!(
                    decode(&bad).is_err(),
                    "size {size}: flipped byte {i} unnoticed"
                );
            }
            // Bytes of message 78 (same stream) in place of message 77's, past the header.
            let mut other = vec![0; size];
            fill(&mut other, 3, 78, 1);
            let mut stale = buf.clone();
            let part = size / 2..size / 2 + 4096.min(size / 2);
            stale[part.clone()].copy_from_slice(&other[part]);
            assert!(decode(&stale).is_err(), "size {size}: stale page unnoticed");
            // A page, and a whole filler block, moved within the message.
            for shift in [4096, PATTERN_WORDS * 8] {
                if 24 + 2 * shift > size {
                    continue;
                }
                let mut moved = buf.clone();
                moved.copy_within(24 + shift..24 + 2 * shift, 24);
                assert!(
                    decode(&moved).is_err(),
                    "size {size}: {shift}-byte move unnoticed"
                );
            }
        }
    }

    #[test]
    fn sequences() {
        let mut c = SequenceChecker::default();
        let msg = |stream: u32, seq: u64| {
            let mut b = vec![0; 32];
            fill(&mut b, stream, seq, 0);
            b
        };
        assert!(c.check(&msg(1, 500)).is_none()); // may start mid-stream
        assert!(c.check(&msg(1, 501)).is_none());
        assert!(c.check(&msg(1, 503)).is_some()); // gap
        assert!(c.check(&msg(1, 504)).is_none());
        assert!(c.check(&msg(2, 0)).is_none()); // a new stream
        assert!(c.check(&msg(2, 0)).is_some()); // duplicate
        assert_eq!(c.errors, 2);
        assert_eq!(c.streams, 2);
    }

    #[test]
    fn compact_latency_wraps() {
        let d = Decoded {
            stream: None,
            seq: 0,
            timestamp: u64::from(u32::MAX - 5),
        };
        assert_eq!(latency_ns(&d, (1u64 << 32) + 10), 16);
    }
}
