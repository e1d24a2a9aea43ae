//! What one NATS message carries: a frame of ring messages, or the end of a stream, and the
//! headers that name where in the ring's stream it came from. Both bridges agree on this
//! module alone; README ("Across machines") documents it for other readers of the stream.
//!
//! A data frame's payload is the ring messages in order, each as a 4-byte little-endian
//! length and then its bytes. Its headers:
//!
//! | header | value |
//! |---|---|
//! | `Nats-Msg-Id` | `<ring>:<start>`: JetStream drops a second message of that id (dedup) |
//! | `Ringfile-Ring` | the near ring's stream identity: its creation time (ns, hex) `-` creator pid (hex) |
//! | `Ringfile-Start`, `Ringfile-End` | the ring stream positions (bytes) of the frame's first record and just after its last |
//! | `Ringfile-Kind` | `data`, `end` (the producer closed the stream), `abort` (stopped on an error; the payload is the reason) or `died` (the producer died without closing) |
//! | `Ringfile-Count` | messages in a data frame |
//!
//! Positions only grow over a ring file's life, so `<ring>:<start>` names one place in one
//! stream for good: a bridge that republishes after a restart reuses the id.

use anyhow::{bail, Context};
use async_nats::HeaderMap;
use bytes::Bytes;

/// The dedup header JetStream reads.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The near ring's identity.
pub const RING: &str = "Ringfile-Ring";
/// The position of the frame's first record.
pub const START: &str = "Ringfile-Start";
/// The position just after its last.
pub const END: &str = "Ringfile-End";
/// What the frame is.
pub const KIND: &str = "Ringfile-Kind";
/// How many messages a data frame holds.
pub const COUNT: &str = "Ringfile-Count";

/// The bytes a message takes in a frame beyond its payload: its length.
pub const LEN_BYTES: usize = 4;

/// What a frame carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Messages.
    Data,
    /// The producer closed the stream.
    End,
    /// The producer stopped on an error, with its reason.
    Abort(String),
    /// The producer died without closing the stream.
    Died,
}

impl Kind {
    /// How the summaries and messages name the ending this kind carries.
    pub fn ending(&self) -> &'static str {
        match self {
            Kind::Data => "messages",
            Kind::End => "end of stream",
            Kind::Abort(_) => "producer failed",
            Kind::Died => "producer died",
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Kind::Data => "data",
            Kind::End => "end",
            Kind::Abort(_) => "abort",
            Kind::Died => "died",
        }
    }
}

/// Where a frame lies in the near ring's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The near ring's stream identity ([`ring_id`]).
    pub ring: String,
    /// The position of its first record.
    pub start: u64,
    /// The position just after its last.
    pub end: u64,
}

/// A frame's headers, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Where it came from.
    pub place: Place,
    /// What it is (an abort's reason is in the payload, filled in by [`decode`]).
    pub kind: Kind,
    /// Messages in it (0 for an ending).
    pub count: u64,
}

/// The stream identity of a ring file: its creation time and creator's pid, which the file's
/// header holds for its whole life (a ring recreated at the same path is another stream).
pub fn ring_id(created_unix_ns: u64, creator_pid: u32) -> String {
    format!("{created_unix_ns:x}-{creator_pid:x}")
}

/// The message id of the frame that starts at `place` (an ending that has no record, a
/// death, gets its own kind in the id so that it never collides with a frame's).
pub fn message_id(place: &Place, kind: &Kind) -> String {
    match kind {
        Kind::Died => format!("{}:{}:died", place.ring, place.start),
        _ => format!("{}:{}", place.ring, place.start),
    }
}

/// The headers of a frame.
pub fn headers(meta: &Meta) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(MSG_ID, message_id(&meta.place, &meta.kind).as_str());
    h.insert(RING, meta.place.ring.as_str());
    h.insert(START, meta.place.start.to_string().as_str());
    h.insert(END, meta.place.end.to_string().as_str());
    h.insert(KIND, meta.kind.name());
    if meta.kind == Kind::Data {
        h.insert(COUNT, meta.count.to_string().as_str());
    }
    h
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> anyhow::Result<&'a str> {
    h.get(name)
        .map(|v| v.as_str())
        .with_context(|| format!("no {name} header"))
}

fn number(h: &HeaderMap, name: &str) -> anyhow::Result<u64> {
    let text = header(h, name)?;
    text.parse()
        .with_context(|| format!("{name} header {text:?} is not a number"))
}

/// Decodes a frame's headers (and an abort's reason from its payload). `Err` for a message
/// that is not a ringfile frame, saying why.
pub fn decode(headers: Option<&HeaderMap>, payload: &Bytes) -> anyhow::Result<Meta> {
    let h = headers.context("no headers (not a ringfile-bridge frame)")?;
    let place = Place {
        ring: header(h, RING)?.to_string(),
        start: number(h, START)?,
        end: number(h, END)?,
    };
    if place.end < place.start {
        bail!("{END} {} is before {START} {}", place.end, place.start);
    }
    let kind = match header(h, KIND)? {
        "data" => Kind::Data,
        "end" => Kind::End,
        "abort" => Kind::Abort(String::from_utf8_lossy(payload).into_owned()),
        "died" => Kind::Died,
        other => bail!("{KIND} header {other:?} is none of data, end, abort, died"),
    };
    let count = if kind == Kind::Data {
        number(h, COUNT)?
    } else {
        0
    };
    Ok(Meta { place, kind, count })
}

/// The messages of a data frame's payload, checked against its count: `Err` names the first
/// problem (a length past the end, a count that does not match).
pub fn unpack(payload: &[u8], count: u64) -> anyhow::Result<Vec<&[u8]>> {
    let mut messages = Vec::with_capacity(usize::try_from(count.min(1 << 16)).unwrap_or(0));
    let mut rest = payload;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<LEN_BYTES>() else {
            bail!("frame ends inside a message length");
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            bail!(
                "message {} of the frame is {len} bytes, but only {} remain",
                messages.len() + 1,
                tail.len()
            );
        }
        let (msg, tail) = tail.split_at(len);
        messages.push(msg);
        rest = tail;
    }
    if messages.len() as u64 != count {
        bail!(
            "frame holds {} messages, its {COUNT} header says {count}",
            messages.len()
        );
    }
    Ok(messages)
}

/// Appends one message to a frame's payload.
pub fn pack(frame: &mut Vec<u8>, msg: &[u8]) {
    let len = u32::try_from(msg.len()).expect("a ring message is below 4 GiB");
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(msg);
}

/// The resume mark the `in` bridge records in the far ring with each publish: the JetStream
/// stream sequence of the frame written and how many of its messages are in the ring (all of
/// them but for a frame larger than the room the ring had, written in parts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The frame's stream sequence (1 or more).
    pub sequence: u64,
    /// Its messages written.
    pub written: u64,
}

/// The bits of a mark that count messages: a frame holds at most [`MAX_FRAME_MESSAGES`].
const WRITTEN_BITS: u32 = 20;
/// The most messages one frame carries (the mark has room to count them).
pub const MAX_FRAME_MESSAGES: u64 = (1 << WRITTEN_BITS) - 1;

impl Mark {
    /// As the ring records it: never zero, as the sequence is at least 1.
    pub fn encode(self) -> std::num::NonZeroU64 {
        debug_assert!(self.written <= MAX_FRAME_MESSAGES);
        std::num::NonZeroU64::new(self.sequence << WRITTEN_BITS | self.written)
            .expect("a stream sequence is at least 1")
    }

    /// What [`encode`](Self::encode) recorded.
    pub fn decode(mark: std::num::NonZeroU64) -> Mark {
        Mark {
            sequence: mark.get() >> WRITTEN_BITS,
            written: mark.get() & MAX_FRAME_MESSAGES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips() {
        let mut payload = Vec::new();
        for m in [&b"one"[..], b"", b"three"] {
            pack(&mut payload, m);
        }
        let meta = Meta {
            place: Place {
                ring: ring_id(0x1234, 7),
                start: 64,
                end: 200,
            },
            kind: Kind::Data,
            count: 3,
        };
        let payload = Bytes::from(payload);
        let decoded = decode(Some(&headers(&meta)), &payload).unwrap();
        assert_eq!(decoded, meta);
        assert_eq!(
            unpack(&payload, 3).unwrap(),
            vec![&b"one"[..], b"", b"three"]
        );
        assert_eq!(headers(&meta).get(MSG_ID).unwrap().as_str(), "1234-7:64");
    }

    #[test]
    fn bad_frames_are_named() {
        let e = unpack(&[5, 0, 0, 0, b'a'], 1).unwrap_err().to_string();
        assert!(e.contains("only 1 remain"), "{e}");
        let e = unpack(&[1, 0], 1).unwrap_err().to_string();
        assert!(e.contains("inside a message length"), "{e}");
        let e = unpack(&[0, 0, 0, 0], 2).unwrap_err().to_string();
        assert!(e.contains("says 2"), "{e}");
        let e = decode(None, &Bytes::new()).unwrap_err().to_string();
        assert!(e.contains("not a ringfile-bridge frame"), "{e}");
        let mut h = HeaderMap::new();
        h.insert(RING, "r");
        h.insert(START, "10");
        h.insert(END, "5");
        let e = decode(Some(&h), &Bytes::new()).unwrap_err().to_string();
        assert!(e.contains("before"), "{e}");
    }

    #[test]
    fn marks_round_trip() {
        let m = Mark {
            sequence: 1 << 40,
            written: MAX_FRAME_MESSAGES,
        };
        assert_eq!(Mark::decode(m.encode()), m);
        let m = Mark {
            sequence: 1,
            written: 0,
        };
        assert_eq!(Mark::decode(m.encode()), m);
    }
}
