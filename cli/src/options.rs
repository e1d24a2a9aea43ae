//! The options both programs take, and opening the ring they name.

use anyhow::Context;
use clap::{Args, ValueEnum};
use ringfile::{Ring, WaitStrategy};
use std::path::PathBuf;

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

/// A `--wait` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Wait {
    /// Busy-spin: lowest latency, a full core while waiting.
    Spin,
    /// Spin, then sched_yield in a loop.
    Yield,
    /// Sleep in the kernel (futex) at once.
    Park,
    /// Spin for a few microseconds, then sleep: no CPU when idle.
    Adaptive,
}

impl From<Wait> for WaitStrategy {
    fn from(wait: Wait) -> WaitStrategy {
        match wait {
            Wait::Spin => WaitStrategy::Spin,
            Wait::Yield => WaitStrategy::Yield,
            Wait::Park => WaitStrategy::Park,
            Wait::Adaptive => WaitStrategy::Adaptive,
        }
    }
}

/// Options common to both programs.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// The ring file. Created if it does not exist (use /dev/shm for speed).
    pub path: PathBuf,

    /// Data capacity when creating the ring: a power of two such as 64KiB, 16MiB, 1GiB, or
    /// bytes [default when creating: 1MiB]. If given, an existing ring must have this capacity.
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_capacity)]
    pub capacity: Option<u64>,

    /// How to wait for space (producer) or data (consumer).
    #[arg(long, value_enum, default_value = "adaptive", value_name = "STRATEGY")]
    pub wait: Wait,

    /// Message framing of the input (producer) or output (consumer).
    #[arg(long, value_enum, default_value = "lines", value_name = "FRAMING")]
    pub framing: Framing,

    /// Permission bits (octal) of the ring file if this program creates it, e.g. 0640 to let
    /// the group attach. Applied through the umask.
    #[arg(long, value_name = "OCTAL", default_value = "0600", value_parser = parse_mode)]
    pub mode: u32,

    /// Attach to a ring file that belongs to another user. Refused by default: in a shared
    /// directory such as /dev/shm, another user could have created the path first to read
    /// or alter the stream.
    #[arg(long)]
    pub allow_other_owner: bool,

    /// Print the final summary as one JSON object on the last line of stderr.
    #[arg(long)]
    pub json: bool,

    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

impl CommonArgs {
    /// Opens the ring, creating it if it does not exist.
    pub fn open_ring(&self) -> anyhow::Result<Ring> {
        let mut options = Ring::options()
            .mode(self.mode)
            .allow_other_owner(self.allow_other_owner);
        if let Some(capacity) = self.capacity {
            options = options.capacity(capacity);
        }
        // The library's errors already name the path and the reason.
        options
            .open_or_create(&self.path)
            .map_err(anyhow::Error::from)
    }
}

/// Parses file permission bits written in octal (`600`, `0640`); the owner must keep read
/// and write access, which both roles need.
fn parse_mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
        Ok(mode) if mode <= 0o777 && mode & 0o600 == 0o600 => Ok(mode),
        Ok(mode) if mode <= 0o777 => Err(format!(
            "'{text}' leaves the owner without read and write access, which both roles need: include 0600 (e.g. 0600, 0640, 0660)"
        )),
        _ => Err(format!(
            "'{text}' is not an octal file mode such as 0600 or 0640"
        )),
    }
}

/// Opens `path` for reading, or standard input.
pub fn open_input(path: Option<&PathBuf>) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsFd;
    match path {
        Some(p) => {
            std::fs::File::open(p).with_context(|| format!("{}: cannot open input", p.display()))
        }
        None => Ok(std::fs::File::from(
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("standard input")?,
        )),
    }
}

/// Opens `path` for writing — created if missing, then truncated, or with `append` added to —
/// or standard output.
pub fn open_output(path: Option<&PathBuf>, append: bool) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsFd;
    match path {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(p)
            .with_context(|| format!("{}: cannot open output", p.display())),
        None => Ok(std::fs::File::from(
            std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("standard output")?,
        )),
    }
}
