//! Framing, both ways: how the producer cuts messages from its input ([`Framer`]) and how
//! the consumer and `ringfile peek` write them out ([`Framing::write`]), in one place so that
//! `--framing X` in means exactly `--framing X` out.

use clap::ValueEnum;

/// How messages are cut from input and written to output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Framing {
    /// One message per line; the newline is not part of the message.
    Lines,
    /// The byte stream cut into messages of at most `--chunk` bytes; raw in → raw out is
    /// byte-exact.
    Raw,
    /// Each message is a 4-byte little-endian length, then that many bytes.
    Len,
}

impl Framing {
    /// Writes `msg` to `out` in this framing (lines: the message and a newline; raw: the
    /// bytes; len: a 4-byte little-endian length, then the bytes).
    #[inline]
    pub fn write(self, out: &mut impl std::io::Write, msg: &[u8]) -> std::io::Result<()> {
        match self {
            Framing::Lines => {
                out.write_all(msg)?;
                out.write_all(b"\n")
            }
            Framing::Raw => out.write_all(msg),
            Framing::Len => {
                out.write_all(&(msg.len() as u32).to_le_bytes())?;
                out.write_all(msg)
            }
        }
    }
}

/// What the framer found at the front of the buffered input.
pub enum Cut {
    /// A message: `start..end` of the data, and how many bytes it consumed.
    Message(usize, usize, usize),
    /// Need more input.
    More,
}

/// Cuts messages from the producer's input.
pub struct Framer {
    /// How the input is framed.
    pub framing: Framing,
    /// The largest message the ring takes.
    pub max: usize,
    /// With raw framing, the largest message to cut.
    pub chunk: usize,
    /// Input offset of the data's first byte, for error messages.
    pub offset: u64,
}

impl Framer {
    /// The next message at the front of `data` (the input buffered so far; `eof` if no more
    /// will come), or that more input is needed; an error for input that cannot be framed.
    pub fn cut(&self, data: &[u8], eof: bool) -> anyhow::Result<Cut> {
        match self.framing {
            Framing::Lines => match memchr::memchr(b'\n', data) {
                Some(i) if i <= self.max => Ok(Cut::Message(0, i, i + 1)),
                Some(i) => Err(self.too_long(i)),
                None if data.len() > self.max => Err(self.too_long(data.len())),
                None if eof && !data.is_empty() => Ok(Cut::Message(0, data.len(), data.len())),
                None => Ok(Cut::More),
            },
            // Whatever input is there, in chunks: byte-exact, and nothing waits for more.
            Framing::Raw if data.is_empty() => Ok(Cut::More),
            Framing::Raw => {
                let n = data.len().min(self.chunk);
                Ok(Cut::Message(0, n, n))
            }
            Framing::Len => {
                if data.len() < 4 {
                    if eof && !data.is_empty() {
                        anyhow::bail!("input ends inside a length prefix at byte {}", self.offset);
                    }
                    return Ok(Cut::More);
                }
                let len = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
                if len > self.max {
                    anyhow::bail!(
                        "message of {len} bytes at input byte {} exceeds the ring's maximum message size of {} bytes (use a larger --capacity)",
                        self.offset,
                        self.max
                    );
                }
                if data.len() >= 4 + len {
                    Ok(Cut::Message(4, 4 + len, 4 + len))
                } else if eof {
                    anyhow::bail!(
                        "input ends inside a {len}-byte message at byte {}",
                        self.offset
                    )
                } else {
                    Ok(Cut::More)
                }
            }
        }
    }

    fn too_long(&self, len: usize) -> anyhow::Error {
        anyhow::anyhow!(
            "line at input byte {} is longer ({len}+ bytes) than the ring's maximum message size of {} bytes (use --framing raw or a larger --capacity)",
            self.offset,
            self.max
        )
    }
}
